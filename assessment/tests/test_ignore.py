"""Files Git ignores are not evidence: ``.gitignore`` at every depth and ``.git/info/exclude``."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
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


def test_gits_folder_rules_allow_lists_and_double_stars(make_repo: MakeRepo) -> None:
    # Each case checked against `git ls-files -o --exclude-standard` (git 2.39).
    cases = {
        # the allow-list idiom: every .py file, in every folder
        "*\n!*/\n!*.py\n": ["gen/ok.py", "gen/x.py", "sub/a.py", "sub/deep/b.py", "top.py"],
        "gen/**\n!gen/ok.py\n": ["gen/ok.py", "sub/a.py", "sub/deep/b.py", "top.py", "x.txt"],
        "sub/*\n!/sub\n": ["gen/ok.py", "gen/x.py", "top.py", "x.txt"],  # sub/a.py is ignored
    }
    tree = {
        "top.py": "",
        "x.txt": "",
        "sub/a.py": "",
        "sub/deep/b.py": "",
        "gen/ok.py": "",
        "gen/x.py": "",
    }
    for number, (patterns, kept) in enumerate(cases.items()):
        root = make_repo({**tree, ".gitignore": patterns}, name=f"case{number}")
        files = sorted(f for f in walk(root).files if f != ".gitignore")
        assert files == sorted(kept), patterns


def test_links_do_not_bring_back_what_is_left_out(make_repo: MakeRepo) -> None:
    root = make_repo({".gitignore": "secret/\n", "secret/t.py": TRACKING, ".git/hooks/pre.py": ""})
    (root / "pub").symlink_to("secret")
    (root / "gitlink").symlink_to(".git")
    repo = walk(root)
    assert repo.files == [".gitignore"]
    notes = {n.path: n.problem for n in repo.notes}
    assert notes == {
        "gitlink": "not followed: symbolic link into a folder that is left out",
        "pub": "not followed: symbolic link into a folder that is left out",
    }


def test_a_gitignore_that_links_outside_the_repository_is_not_used(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("a.py\nTOKEN=hunter2\\\n")
    root = make_repo({"a.py": "print(1)\n"})
    (root / ".gitignore").symlink_to(outside)
    repo = walk(root)
    assert "a.py" in repo.files
    notes = {n.path: n.problem for n in repo.notes}
    assert notes == {".gitignore": "not used: symbolic link that leaves the repository"}


def test_siblings_of_an_assessed_folder_inside_an_ignored_one_stay_ignored(
    make_repo: MakeRepo,
) -> None:
    root = make_repo(
        {
            ".gitignore": "scratch/\n",
            "scratch/deep/train.py": TRACKING,
            "scratch/old/.github/workflows/ci.yml": (
                "on: push\njobs: {t: {steps: [{run: pytest}]}}\n"
            ),
            "scratch/old/tests/test_a.py": "def test_a(): pass\n",
        }
    )
    assessment = assess(root / "scratch" / "deep")
    assert assessment.files == 1
    assert assessment.ignored == 1  # scratch/old
    met = {r.criterion.id for r in assessment.results if r.met}
    assert "ci-tests" not in met
    assert "experiment-tracking" in met


PATTERN_ATOMS = [
    "*.py", "src/", "src", "/src", "**/sub", "sub/", "**/*.py", "a.py", "src/**", "src/*",
    "!src/", "!*.py", "!a.py", "!sub/", "!**/b.py", "*/", "!*/", "gen", "**/gen/", "gen/**",
    "!gen/ok.py", "s*", "?.py", "**", "/*", "!/src", "src/sub/**", "!src/sub/b.py", "*",
    "!gen/",
]  # fmt: skip
TREE_FILES = [
    "top.py", "src/a.py", "src/sub/b.py", "keep/k.py", "gen/x.py", "gen/ok.py",
    "src/gen/ok.py", "src/gen/y.py", "a.py", "s/x.py", "src/sub/deep/c.py",
]  # fmt: skip


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git (apt-get install git)")
def test_the_files_left_are_the_ones_git_leaves(tmp_path: Path) -> None:
    """200 random ignore files (root and nested) against `git ls-files -o --exclude-standard`."""
    rng = random.Random(20261204)
    for case in range(200):
        root = tmp_path / f"case{case}"
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        for rel in TREE_FILES:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("x = 1\n")
        top = rng.sample(PATTERN_ATOMS, rng.randint(1, 4))
        nested = rng.sample(PATTERN_ATOMS, rng.randint(0, 2))
        (root / ".gitignore").write_text("\n".join(top) + "\n")
        if nested:
            (root / "src" / ".gitignore").write_text("\n".join(nested) + "\n")
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "-o", "--exclude-standard"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert sorted(walk(root).files) == sorted(f for f in listed.split("\0") if f), (
            top,
            nested,
        )
