"""Files Git ignores are not evidence: ``.gitignore`` at every depth and ``.git/info/exclude``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlops_assess.assess import assess
from mlops_assess.report_json import to_dict
from mlops_assess.tree import walk

MakeRepo = Callable[..., Path]

TRACKING = "import mlflow\n\nmlflow.log_metric('rmse', 7.5)\n"


def _met(root: Path, criterion_id: str) -> bool:
    result = next(r for r in assess(root).results if r.criterion.id == criterion_id)
    return result.met


def test_evidence_in_an_ignored_folder_does_not_count(make_repo: MakeRepo) -> None:
    files = {"generated/train.py": TRACKING, "src/app.py": "print('hi')\n"}
    assert _met(make_repo(files, name="plain"), "experiment-tracking")
    root = make_repo({**files, ".gitignore": "# build output\ngenerated/\n"}, name="ignoring")
    assert not _met(root, "experiment-tracking")
    repo = walk(root)
    assert sorted(repo.files) == [".gitignore", "src/app.py"]
    assert repo.ignored == 1  # the folder, not entered


def test_patterns_follow_gits_rules(make_repo: MakeRepo) -> None:
    root = make_repo(
        {
            ".gitignore": "*.pkl\n/local_runs/\nscratch_*.py\n",
            "model.pkl": "x",
            "pkg/model.pkl": "x",
            "local_runs/train.py": TRACKING,
            "pkg/local_runs/train.py": TRACKING,  # anchored pattern: only at the root
            "scratch_a.py": "",
            "pkg/.gitignore": "!scratch_keep.py\n",
            "pkg/scratch_keep.py": "",  # re-included by the deeper file
            "pkg/scratch_b.py": "",
            "out/.gitignore": "!x.py\n",
            "out/x.py": "",
            ".gitignore.d/ignored_by_exclude.py": "",
        }
    )
    (root / ".git" / "info").mkdir()
    (root / ".git" / "info" / "exclude").write_text("out/\n.gitignore.d/\n")
    repo = walk(root)
    assert sorted(repo.files) == [
        ".gitignore",
        "pkg/.gitignore",
        "pkg/local_runs/train.py",
        "pkg/scratch_keep.py",
    ]
    # model.pkl, pkg/model.pkl, local_runs/, scratch_a.py, pkg/scratch_b.py, out/, .gitignore.d/
    assert repo.ignored == 7


def test_an_invalid_pattern_is_a_note_and_the_other_lines_still_apply(
    make_repo: MakeRepo,
) -> None:
    root = make_repo({".gitignore": "generated/\n!\n", "generated/train.py": TRACKING})
    assessment = assess(root)
    notes = {n.path: n.problem for n in assessment.notes}
    assert notes == {".gitignore": "line 2: '!' is not a valid pattern (left out)"}
    assert assessment.files == 1
    assert to_dict(assessment)["ignored_by_git"] == 1


def test_an_assessed_folder_that_git_ignores_is_still_read(make_repo: MakeRepo) -> None:
    root = make_repo({".gitignore": "vendor/\n", "vendor/lib/train.py": TRACKING})
    assessment = assess(root / "vendor" / "lib")
    assert assessment.files == 1
    assert _met(root / "vendor" / "lib", "experiment-tracking")
    assert not _met(root, "experiment-tracking")


def test_an_unreadable_gitignore_is_a_note(make_repo: MakeRepo) -> None:
    root = make_repo({".gitignore": b"\xff\xfe*.pkl\n", "model.pkl": "x"})
    assessment = assess(root)
    notes = {n.path: n.problem for n in assessment.notes}
    assert notes == {".gitignore": "not read: not UTF-8 text (byte 0)"}
    assert assessment.files == 2  # nothing ignored: the rules could not be read
