"""Read and parse many Python files and notebooks, on every core when there are enough of them.

Parsing is most of an assessment's time (``ast.parse`` and one walk of each tree: about
0.6 ms per KiB of source on one core), and files are independent, so large trees are split
into chunks of similar size that worker processes read and parse. Small trees stay in one
process: starting workers costs more than it saves below :data:`PARALLEL_MIN_BYTES`.

Workers only read and parse; they never import or run the assessed code. If worker processes
cannot be started (a sandbox without ``fork``, a broken pool), the same work is done in this
process: the result does not depend on how it was computed.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlops_assess.python_facts import PyFacts, SourceSyntaxError, notebook_facts, python_facts
from mlops_assess.tree import read_file

#: Below this much source (bytes, summed over the files) parsing stays in this process.
PARALLEL_MIN_BYTES = 4 * 1024 * 1024
#: Chunks per worker: enough to even out uneven files, few enough to keep overhead low.
_CHUNKS_PER_WORKER = 4


@dataclass(frozen=True)
class Parsed:
    """One file's facts, or why there are none (``problem`` is the note to record)."""

    path: str
    facts: PyFacts | None
    problem: str | None


def default_workers() -> int:
    """The cores this process may use (``os.sched_getaffinity`` where it exists)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def parse_files(
    root: Path,
    paths: list[str],
    workers: int | None = None,
    *,
    parallel_min_bytes: int | None = None,
) -> list[Parsed]:
    """Read and parse ``paths`` (relative to ``root``; ``.py`` or ``.ipynb``), in their order.

    Args:
        root: the repository root.
        paths: files to parse, relative POSIX paths.
        workers: worker processes to use at most (``None``: :func:`default_workers`; 1: this one).
        parallel_min_bytes: below this much source in total, parse in this process
            (``None``: :data:`PARALLEL_MIN_BYTES`).

    Returns:
        One :class:`Parsed` per path, in the order given. Never raises for a file's content:
        unreadable, binary, too large or unparsable files come back with ``problem`` set.
    """
    workers = default_workers() if workers is None else max(1, workers)
    sizes = [_size(root / p) for p in paths]
    if (
        workers == 1
        or len(paths) < 2
        or sum(sizes) < (PARALLEL_MIN_BYTES if parallel_min_bytes is None else parallel_min_bytes)
    ):
        return _parse_chunk(root, paths)
    chunks = _chunks(paths, sizes, workers * _CHUNKS_PER_WORKER)
    try:
        with (
            ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool,
            _no_cycle_collection(),
        ):
            results = list(pool.map(_parse_chunk, [root] * len(chunks), chunks))
    except (OSError, BrokenProcessPool, RuntimeError):
        return _parse_chunk(root, paths)
    by_path = {item.path: item for chunk in results for item in chunk}
    return [by_path[p] for p in paths]


def parse_one(root: Path, path: str) -> Parsed:
    """Read and parse one file (what every worker does for each of its files)."""
    text, problem = read_file(root / path)
    if text is None:
        return Parsed(path, None, problem)
    try:
        facts = notebook_facts(text) if path.endswith(".ipynb") else python_facts(text)
    except SourceSyntaxError as exc:
        return Parsed(path, None, str(exc))
    return Parsed(path, facts, None)


def _parse_chunk(root: Path, paths: list[str]) -> list[Parsed]:
    with _no_cycle_collection():
        return [parse_one(root, p) for p in paths]


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    # Syntax trees and facts hold no reference cycles (reference counting frees them), but
    # building millions of nodes while facts accumulate makes the cycle collector rescan
    # everything again and again: a third of the parse time on a large tree.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _chunks(paths: list[str], sizes: list[int], count: int) -> list[list[str]]:
    """Split ``paths`` into about ``count`` consecutive runs of similar total size."""
    target = max(1, sum(sizes) // count)
    chunks: list[list[str]] = [[]]
    filled = 0
    for path, size in zip(paths, sizes, strict=True):
        if filled >= target and chunks[-1]:
            chunks.append([])
            filled = 0
        chunks[-1].append(path)
        filled += size
    return chunks


def _context() -> multiprocessing.context.BaseContext:
    # fork is fastest (workers inherit the imported modules); forkserver where fork is
    # unsafe or missing. Workers run no assessed code, so inheriting state is harmless.
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
