"""Bad and large input: a usage error exits 2; a file that cannot be used is a note, never a
crash, and the criteria it could hide evidence of say "evidence unreadable in FILE"."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from mlops_assess import cli, tree
from mlops_assess.assess import Assessment, CriterionResult, assess
from mlops_assess.report_json import criterion_dict
from mlops_assess.report_text import text
from mlops_assess.tree import MAX_READ_BYTES, walk

MakeRepo = Callable[..., Path]


def _notes(assessment: Assessment) -> dict[str, str]:
    return {n.path: n.problem for n in assessment.notes}


def _result(assessment: Assessment, criterion_id: str) -> CriterionResult:
    return next(r for r in assessment.results if r.criterion.id == criterion_id)


# -- usage errors ----------------------------------------------------------------------------
def test_path_that_does_not_exist_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(SystemExit) as raised:
        cli.main([str(missing)])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert str(missing) in err
    assert "no such file or folder" in err


def test_path_that_is_a_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "setup.py"
    file.write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(SystemExit) as raised:
        cli.main([str(file)])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert str(file) in err
    assert "not a folder" in err


def test_assess_raises_the_documented_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        assess(tmp_path / "missing")
    (tmp_path / "f.txt").write_text("", encoding="utf-8")
    with pytest.raises(NotADirectoryError):
        assess(tmp_path / "f.txt")


# -- files that cannot be used ---------------------------------------------------------------
def test_broken_yaml_workflow_is_a_note_and_unreadable_evidence(make_repo: MakeRepo) -> None:
    workflow = "on: [push]\njobs:\n  test:\n    steps:\n      - run: pytest\n     bad: [\n"
    root = make_repo({".github/workflows/ci.yml": workflow})
    assessment = assess(root)
    problem = _notes(assessment)[".github/workflows/ci.yml"]
    assert re.match(r"YAML error at line \d+: ", problem), problem
    ci_tests = _result(assessment, "ci-tests")
    assert not ci_tests.met
    assert [n.path for n in ci_tests.unreadable] == [".github/workflows/ci.yml"]
    unreadable = criterion_dict(ci_tests)["unreadable"]
    assert unreadable == [f"evidence unreadable in .github/workflows/ci.yml: {problem}"]
    assert "evidence unreadable in .github/workflows/ci.yml" in text(assessment)
    # A criterion that reads no CI does not blame the workflow.
    assert _result(assessment, "unit-tests").unreadable == []


def test_yaml_that_is_not_a_mapping_is_a_note(make_repo: MakeRepo) -> None:
    assessment = assess(make_repo({".github/workflows/ci.yml": "- just\n- a list\n"}))
    assert "not a GitHub Actions file" in _notes(assessment)[".github/workflows/ci.yml"]


def test_notebook_that_is_not_json(make_repo: MakeRepo) -> None:
    assessment = assess(make_repo({"explore.ipynb": "this is { not json"}))
    assert _notes(assessment)["explore.ipynb"].startswith("not a notebook")
    tracking = _result(assessment, "experiment-tracking")
    assert [n.path for n in tracking.unreadable] == ["explore.ipynb"]


def test_python_file_with_nul_bytes_is_binary(make_repo: MakeRepo) -> None:
    assessment = assess(make_repo({"blob.py": b"import mlflow\x00\x00\x01\x02"}))
    assert "binary" in _notes(assessment)["blob.py"]


def test_python_file_that_is_not_utf8(make_repo: MakeRepo) -> None:
    assessment = assess(make_repo({"latin.py": "name = 'caf\xe9'\n".encode("latin-1")}))
    assert "not UTF-8" in _notes(assessment)["latin.py"]


def test_fifty_megabyte_python_file_is_not_read(make_repo: MakeRepo) -> None:
    root = make_repo({"small.py": "import mlflow\nmlflow.log_metric('m', 1)\n"})
    big = root / "generated.py"
    with big.open("wb") as handle:  # sparse: 50 MiB of size, no 50 MiB written
        handle.write(b"import mlflow\n")
        handle.truncate(50 * 2**20)
    assert big.stat().st_size > MAX_READ_BYTES
    assessment = assess(root)
    problem = _notes(assessment)["generated.py"]
    assert problem == "not read: 50.0 MiB, larger than the 5 MiB limit"
    assert _result(assessment, "experiment-tracking").met  # the rest is still read


def test_file_that_cannot_be_read(make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_repo({"secret.py": "import mlflow\n", "ok.py": "import mlflow\n"})
    real_open = tree._open_nonblocking

    def refusing_open(path: str, flags: int) -> int:
        if path.endswith("secret.py"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags)

    monkeypatch.setattr(tree, "_open_nonblocking", refusing_open)
    assessment = assess(root)
    notes = _notes(assessment)
    assert notes["secret.py"] == "cannot be read: Permission denied"
    assert "ok.py" not in notes


def test_invalid_python_syntax(make_repo: MakeRepo) -> None:
    source = "import mlflow\n\ndef broken(:\n    pass\n"
    assessment = assess(make_repo({"broken.py": source}))
    assert _notes(assessment)["broken.py"].startswith("not valid Python (line 3")


def test_deeply_nested_python_is_a_note(make_repo: MakeRepo) -> None:
    source = "x = " + "(" * 400 + "1" + ")" * 400 + "\n"
    assessment = assess(make_repo({"nested.py": source}))
    assert "nested.py" in _notes(assessment)


def test_bad_toml_and_ini_are_notes(make_repo: MakeRepo) -> None:
    files = {
        "pyproject.toml": "[project\nname = 'x'\n",
        "tox.ini": "not an ini file\n",
        ".github/workflows/ci.yml": "on: [push]\njobs:\n  t:\n    steps:\n      - run: tox\n",
    }
    assessment = assess(make_repo(files))
    notes = _notes(assessment)
    assert notes["pyproject.toml"].startswith("not TOML")
    assert notes["tox.ini"].startswith("not an INI file")
    pinned = _result(assessment, "pinned-dependencies")
    assert [n.path for n in pinned.unreadable] == ["pyproject.toml"]


# -- links -----------------------------------------------------------------------------------
def test_symlink_leaving_the_repository_is_not_followed(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "track.py").write_text("import mlflow\nmlflow.log_metric('m', 1)\n")
    root = make_repo({"app.py": "x = 1\n"})
    (root / "elsewhere").symlink_to(outside, target_is_directory=True)
    (root / "track_link.py").symlink_to(outside / "track.py")
    assessment = assess(root)
    notes = _notes(assessment)
    assert notes["elsewhere"] == "not followed: symbolic link that leaves the repository"
    assert notes["track_link.py"] == "not followed: symbolic link that leaves the repository"
    assert not _result(assessment, "experiment-tracking").met
    assert walk(root).files == ["app.py"]


def test_broken_symlink_is_a_note(make_repo: MakeRepo) -> None:
    root = make_repo({"app.py": "x = 1\n"})
    (root / "dangling.py").symlink_to(root / "nowhere.py")
    assert _notes(assess(root))["dangling.py"] == "not followed: broken symbolic link"


def test_symlink_loop_between_folders_ends(make_repo: MakeRepo) -> None:
    root = make_repo({"a/x.py": "x = 1\n", "b/y.py": "y = 1\n"})
    (root / "a" / "to_b").symlink_to(Path("..") / "b", target_is_directory=True)
    (root / "b" / "to_a").symlink_to(Path("..") / "a", target_is_directory=True)
    (root / "a" / "self").symlink_to(Path(), target_is_directory=True)
    repo = walk(root)
    # Each folder once, under its real path (not a/to_b/y.py), so `b` keeps its own files.
    assert sorted(repo.files) == ["a/x.py", "b/y.py"]
    assert walk(root / "b").in_folder("b") == ["b/y.py"]
    assert assess(root / "b").files == 1


def test_symlink_inside_the_repository_is_followed(make_repo: MakeRepo) -> None:
    root = make_repo({"vendor/lib/track.py": "import mlflow\nmlflow.log_metric('m', 1)\n"})
    (root / "build").mkdir()  # not entered by name, but a link to a folder is followed
    (root / "src").symlink_to(Path("vendor") / "lib", target_is_directory=True)
    (root / "src.py").symlink_to(Path("vendor") / "lib" / "track.py")
    files = walk(root).files
    assert "vendor/lib/track.py" in files
    assert "src.py" in files


def test_skipped_folders_are_not_entered(make_repo: MakeRepo) -> None:
    files = {
        ".venv/lib/track.py": "import mlflow\nmlflow.log_metric('m', 1)\n",
        "env/pyvenv.cfg": "home = /usr\n",
        "env/lib/track.py": "import mlflow\nmlflow.log_metric('m', 1)\n",
        "node_modules/x/track.py": "import mlflow\nmlflow.log_metric('m', 1)\n",
        "pkg.egg-info/track.py": "import mlflow\nmlflow.log_metric('m', 1)\n",
        "app.py": "x = 1\n",
    }
    root = make_repo(files)
    assert walk(root).files == ["app.py"]
    assert not _result(assess(root), "experiment-tracking").met


# -- size ------------------------------------------------------------------------------------
def test_twenty_thousand_files(make_repo: MakeRepo) -> None:
    root = make_repo({})
    for package in range(200):
        folder = root / f"pkg_{package:03d}"
        folder.mkdir()
        for module in range(100):
            (folder / f"mod_{module:03d}.py").write_text(
                f"import os\n\ndef f_{module}(x):\n    return os.path.join(x, '{package}')\n"
            )
    assessment = assess(root)
    assert assessment.files == 20000
    assert assessment.notes == []
    assert assessment.level == 0


def test_no_crash_on_a_mixture(make_repo: MakeRepo) -> None:
    """All the problems in one repository: every one is a note, the assessment completes."""
    files: dict[str, str | bytes] = {
        ".github/workflows/ci.yml": "on: [push\n",
        ".gitlab-ci.yml": "job: [1, 2\n",
        "azure-pipelines.yml": "steps: {\n",
        "buildspec.yml": ": :\n",
        "Jenkinsfile": b"\xff\xfe\x00",
        "nb.ipynb": "{}",
        "bad.py": "def (\n",
        "bin.py": b"\x00" * 10,
        "requirements.txt": b"\xff\xff",
        "environment.yml": "dependencies: [\n",
        "Pipfile": "[packages\n",
        "setup.cfg": "no section\n",
    }
    root = make_repo(files)
    assessment = assess(root)
    notes = _notes(assessment)
    assert set(notes) == set(files)
    assert os.fspath(root) == assessment.root


def test_a_file_replaced_by_a_fifo_after_listing_is_refused_not_waited_on(
    make_repo: MakeRepo,
) -> None:
    root = make_repo({"train.py": "import mlflow\n"})
    (root / "train.py").unlink()
    os.mkfifo(root / "train.py")  # nobody will ever write to it
    text, problem = tree.read_file(root / "train.py")
    assert (text, problem) == (None, "not read: not a regular file")


def test_a_folder_nested_too_deep_for_recursion_is_walked(make_repo: MakeRepo) -> None:
    root = make_repo({})
    start = Path.cwd()
    try:
        os.chdir(root)
        for _ in range(1_100):  # relative steps: the whole path is past some calls' limits
            Path("d").mkdir()
            os.chdir("d")
        Path("train.py").write_text("import mlflow\n")
    finally:
        os.chdir(start)
    try:
        repo = walk(root)
        assert repo.files == ["d/" * 1_100 + "train.py"]
    finally:
        _remove_deep(root / "d", 1_100)


def _remove_deep(top: Path, depth: int) -> None:
    """Remove a chain of ``depth`` folders bottom up (shutil.rmtree recurses per level)."""
    start = Path.cwd()
    try:
        os.chdir(top)
        for _ in range(depth - 1):
            os.chdir("d")
        Path("train.py").unlink()
        for _ in range(depth - 1):
            os.chdir("..")
            Path("d").rmdir()
    finally:
        os.chdir(start)
    top.rmdir()


def test_yaml_aliases_that_expand_without_bound_are_a_note(make_repo: MakeRepo) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)
    ]
    workflow = "\n".join(
        [
            *levels,
            "on: push",
            "jobs:",
            "  t:",
            "    steps:",
            "      - run: pytest",
            "        with: {a: *a8}",
        ]
    )
    root = make_repo({".github/workflows/ci.yml": workflow + "\n"})
    notes = _notes(assess(root))
    assert notes[".github/workflows/ci.yml"] == (
        "not read: its aliases expand to more than 200,000 nodes"
    )


def test_fields_of_the_wrong_type_are_notes(make_repo: MakeRepo) -> None:
    files: dict[str, str | bytes] = {
        ".github/workflows/a.yml": (
            "on: push\njobs:\n  t:\n    defaults: foo\n    steps: [{run: x, with: foo}]\n"
        ),
        ".github/workflows/b.yml": "on: push\njobs: [a, b]\n",
        "buildspec.yml": "phases: [a]\n",
        "azure-pipelines.yml": "trigger: {paths: [a]}\nsteps: [{script: x, inputs: y}]\n",
        "pyproject.toml": 'project = "x"\ntool = 3\n',
        "sub/pyproject.toml": (
            '[project]\nname = "s"\nscripts = ["x"]\noptional-dependencies = ["x"]\ndynamic = 5\n'
        ),
        "Pipfile": 'packages = ["a"]\n',
        "environment.yml": "dependencies:\n  - {pip: 5}\n",
    }
    root = make_repo(files)
    notes = _notes(assess(root))
    kinds = {
        ".github/workflows/a.yml": "GitHub Actions file",
        ".github/workflows/b.yml": "GitHub Actions file",
        "buildspec.yml": "AWS CodeBuild file",
        "azure-pipelines.yml": "Azure Pipelines file",
        "pyproject.toml": "pyproject.toml",
        "sub/pyproject.toml": "pyproject.toml",
        "Pipfile": "Pipfile",
        "environment.yml": "environment.yml",
    }
    assert set(notes) == set(files)
    for path, kind in kinds.items():
        assert notes[path].startswith(f"not a valid {kind}: a field has an unexpected type ("), (
            path,
            notes[path],
        )


def test_a_matrix_of_billions_of_combinations_is_cut_at_githubs_256(
    make_repo: MakeRepo,
) -> None:
    keys = [f"k{i}" for i in range(8)]
    matrix = "\n".join(f"          {k}: [{', '.join(str(v) for v in range(10))}]" for k in keys)
    run = " ".join(f"${{{{ matrix.{k} }}}}" for k in keys)
    workflow = (
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n"
        f"{matrix}\n    steps:\n      - run: pytest {run}\n"
    )
    root = make_repo(
        {".github/workflows/ci.yml": workflow, "tests/test_a.py": "def test_a(): pass\n"}
    )
    assert _result(assess(root), "ci-tests").met
