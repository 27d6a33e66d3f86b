"""Fixtures of the mlops-assess tests: small repositories written into ``tmp_path``.

``make_repo({path: text})`` writes a repository (with a ``.git`` folder, so it is its own
root and the walk never climbs into the ladder) and returns its root; ``check(folder, id)``
evaluates one catalogue criterion on a folder of it, the way :func:`assess` does.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from mlops_assess.assess import CriterionResult, evaluate
from mlops_assess.catalogue import load_catalogue
from mlops_assess.index import Index
from mlops_assess.tree import walk

MakeRepo = Callable[..., Path]


def write_files(root: Path, files: Mapping[str, str | bytes]) -> None:
    """Write ``files`` (relative path -> text, dedented; or bytes) under ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")


@pytest.fixture
def make_repo(tmp_path: Path) -> MakeRepo:
    """A factory: ``make_repo(files, name="repo")`` writes a repository and returns its root."""

    def make(files: Mapping[str, str | bytes], name: str = "repo") -> Path:
        root = tmp_path / name
        (root / ".git").mkdir(parents=True, exist_ok=True)
        write_files(root, files)
        return root

    return make


def _criterion(folder: Path, criterion_id: str) -> CriterionResult:
    return evaluate(load_catalogue().get(criterion_id), Index(walk(folder)))


@pytest.fixture
def check() -> Callable[[Path, str], CriterionResult]:
    """``check(folder, id)``: one criterion of the packaged catalogue evaluated on ``folder``."""
    return _criterion
