"""Parsing in worker processes gives what parsing in this process gives, file for file."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from mlops_assess import sources
from mlops_assess.assess import assess
from mlops_assess.report_json import to_dict
from mlops_assess.sources import Parsed, parse_files
from mlops_assess.tree import walk

MakeRepo = Callable[..., Path]

REPOSITORY = Path(__file__).resolve().parents[2]

FILES: dict[str, str | bytes] = {
    "pkg/model.py": "import mlflow as m\n\ndef train(rows):\n    m.log_metric('rmse', 1.0)\n",
    "pkg/serve.py": "from fastapi import FastAPI\napp = FastAPI()\n\n@app.get('/health')\n"
    "def health():\n    return {}\n",
    "pkg/broken.py": "def (\n",
    "pkg/binary.py": b"\x00\x01" * 10,
    "pkg/latin1.py": b"name = '\xe9'\n",
    "tests/test_model.py": "def test_train():\n    assert True\n",
    "nb.ipynb": '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
    "bad.ipynb": "not json",
}


def _small_tree(make_repo: MakeRepo) -> tuple[Path, list[str], list[Parsed]]:
    """``FILES`` written as a repository: its root, its Python paths, their one-process parse."""
    root = make_repo(FILES)
    paths = _python_paths(root)
    return root, paths, parse_files(root, paths, workers=1)


def _python_paths(root: Path) -> list[str]:
    return [f for f in walk(root).files if f.endswith((".py", ".ipynb"))]


def test_workers_give_the_same_facts_and_problems_as_one_process(make_repo: MakeRepo) -> None:
    root = make_repo(FILES)
    paths = _python_paths(root)
    serial = parse_files(root, paths, workers=1)
    parallel = parse_files(root, paths, workers=2, parallel_min_bytes=0)
    assert parallel == serial
    assert [p.path for p in parallel] == paths  # order kept
    problems = {p.path: p.problem for p in parallel if p.problem}
    assert problems == {
        "pkg/broken.py": "not valid Python (line 1: invalid syntax)",
        "pkg/binary.py": "not read: binary content (NUL bytes)",
        "pkg/latin1.py": "not read: not UTF-8 text (byte 8)",
        "bad.ipynb": problems["bad.ipynb"],
    }
    assert problems["bad.ipynb"].startswith("not a notebook (")
    model = next(p for p in parallel if p.path == "pkg/model.py")
    assert model.facts is not None
    assert model.facts.calls["mlflow.log_metric"] == (4, None)


def test_this_repositorys_sources_parse_alike_in_workers() -> None:
    paths = _python_paths(REPOSITORY)
    assert len(paths) > 100
    serial = parse_files(REPOSITORY, paths, workers=1)
    assert parse_files(REPOSITORY, paths, workers=2, parallel_min_bytes=0) == serial
    assert all(p.facts is not None for p in serial if p.path.startswith("assessment/src/"))


def test_workers_that_cannot_start_leave_the_work_to_this_process(
    make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, paths, expected = _small_tree(make_repo)
    context = multiprocessing.get_context()

    class NoProcesses:
        Pipe = staticmethod(context.Pipe)

        class Process:
            def __init__(self, *args: object, **kwargs: object) -> None:
                pass

            def start(self) -> None:
                raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(sources, "_context", lambda: NoProcesses)
    monkeypatch.setattr(sources, "default_workers", lambda: 2)
    assert parse_files(root, paths, workers=2, parallel_min_bytes=0) == expected


def test_a_worker_that_dies_has_its_files_parsed_here(
    make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, paths, expected = _small_tree(make_repo)
    real_work = sources._work

    def dying_work(root: Path, chunk: list[str], writer: Connection) -> None:
        if chunk[0] == paths[0]:
            os._exit(9)  # as if killed: nothing sent
        real_work(root, chunk, writer)

    monkeypatch.setattr(sources, "_work", dying_work)
    monkeypatch.setattr(sources, "default_workers", lambda: 2)
    assert parse_files(root, paths, workers=2, parallel_min_bytes=0) == expected
    assert multiprocessing.active_children() == []


def test_an_interrupt_stops_every_worker(
    make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(FILES)
    paths = _python_paths(root)

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sources, "_collect", interrupted)
    monkeypatch.setattr(sources, "default_workers", lambda: 2)
    with pytest.raises(KeyboardInterrupt):
        parse_files(root, paths, workers=2, parallel_min_bytes=0)
    assert multiprocessing.active_children() == []


def test_more_workers_than_cores_are_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []
    real_start = sources._start

    def counting_start(root: Path, chunks: list[list[str]], processes: list[object]) -> object:
        started.append(len(chunks))
        return real_start(root, chunks, processes)  # type: ignore[arg-type]

    monkeypatch.setattr(sources, "_start", counting_start)
    monkeypatch.setattr(sources, "default_workers", lambda: 2)
    paths = _python_paths(REPOSITORY)[:50]
    parse_files(REPOSITORY, paths, workers=99_999, parallel_min_bytes=0)
    assert started == [2]


def test_chunks_are_consecutive_and_cover_every_path() -> None:
    paths = [f"f{i}.py" for i in range(50)]
    sizes = [(i % 7 + 1) * 100 for i in range(50)]
    chunks = sources._chunks(paths, sizes, 8)
    assert [p for chunk in chunks for p in chunk] == paths
    assert len(chunks) == 8
    assert all(chunks)
    totals = [sum(sizes[paths.index(p)] for p in chunk) for chunk in chunks]
    assert max(totals) - min(totals) <= 700  # within the largest file of one another


def test_assessment_does_not_depend_on_the_number_of_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sources, "PARALLEL_MIN_BYTES", 0)  # a small tree, parsed in workers
    one = to_dict(assess(REPOSITORY / "level3_deployment", workers=1))
    two = to_dict(assess(REPOSITORY / "level3_deployment", workers=2))
    assert one == two
    assert one["level"] == 3


def test_workers_started_by_a_fork_server_give_the_same_facts(
    make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where fork is unsafe (threads running) the workers come from a fork server: their
    # parent is that server, not this process, and they must still do their work.
    root, paths, expected = _small_tree(make_repo)
    monkeypatch.setattr(sources, "_context", lambda: multiprocessing.get_context("forkserver"))
    monkeypatch.setattr(sources, "default_workers", lambda: 2)
    started: list[int] = []
    real_start = sources._start

    def counting_start(root: Path, chunks: list[list[str]], processes: list[object]) -> object:
        pending = real_start(root, chunks, processes)  # type: ignore[arg-type]
        started.append(len(pending))
        return pending

    real_collect = sources._collect
    received: list[int] = []

    def counting_collect(pending: dict[object, object], results: dict[int, object]) -> None:
        real_collect(pending, results)  # type: ignore[arg-type]
        received.append(len(results))

    monkeypatch.setattr(sources, "_start", counting_start)
    monkeypatch.setattr(sources, "_collect", counting_collect)
    assert parse_files(root, paths, workers=2, parallel_min_bytes=0) == expected
    assert started == received == [2]  # both chunks came back from workers
