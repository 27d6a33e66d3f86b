"""Read and parse many Python files and notebooks, on every core when there are enough of them.

Parsing is most of an assessment's time (``ast.parse`` and one walk of each tree: about
0.6 ms per KiB of source on one core), and files are independent, so large trees are split
into one run of files of similar total size per worker process. Small trees stay in one
process: starting workers costs more than it saves below :data:`PARALLEL_MIN_BYTES`.

Workers only read and parse; they never import or run the assessed code. Each sends its
results back on its own pipe, which this process drains as soon as it is readable (a worker
never waits on a reader that waits on it). A worker that dies (killed, out of memory) has its
files parsed here instead; if workers cannot be started at all (a sandbox without ``fork``, a
process limit) everything is parsed here: the result never depends on how it was computed.
Ctrl-C or SIGTERM in this process stops every worker before the exception goes on.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from mlops_assess.python_facts import PyFacts, SourceSyntaxError, notebook_facts, python_facts
from mlops_assess.tree import read_file

#: Below this much source (bytes, summed over the files) parsing stays in this process.
PARALLEL_MIN_BYTES = 4 * 1024 * 1024


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
        workers: worker processes to use at most (``None``: :func:`default_workers`; 1: this
            one; more than the cores is the cores: extra processes would only cost memory).
        parallel_min_bytes: below this much source in total, parse in this process
            (``None``: :data:`PARALLEL_MIN_BYTES`).

    Returns:
        One :class:`Parsed` per path, in the order given. Never raises for a file's content:
        unreadable, binary, too large or unparsable files come back with ``problem`` set.
    """
    workers = min(default_workers() if workers is None else max(1, workers), default_workers())
    sizes = [_size(root / p) for p in paths]
    minimum = PARALLEL_MIN_BYTES if parallel_min_bytes is None else parallel_min_bytes
    if workers == 1 or len(paths) < 2 or sum(sizes) < minimum:
        return _parse_chunk(root, paths)
    chunks = _chunks(paths, sizes, workers)
    results: dict[int, list[Parsed]] = {}
    processes: list[Any] = []
    try:
        with _no_cycle_collection():
            pending = _start(root, chunks, processes)
            _collect(pending, results)
    except BaseException:  # Ctrl-C, SIGTERM (SystemExit): no worker outlives this process
        _stop(processes)
        raise
    _stop(processes)
    for number, chunk in enumerate(chunks):
        if number not in results:  # its worker died or never started
            results[number] = _parse_chunk(root, chunk)
    return [item for number in range(len(chunks)) for item in results[number]]


def _start(
    root: Path, chunks: list[list[str]], processes: list[Any]
) -> dict[Connection, tuple[int, Any]]:
    """One worker per chunk; ``{its pipe: (chunk number, process)}`` for those that started."""
    context = _context()
    pending: dict[Connection, tuple[int, Any]] = {}
    for number, chunk in enumerate(chunks):
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=_work, args=(root, chunk, writer), daemon=True)
        try:
            process.start()
        except (OSError, RuntimeError):  # no fork, a process limit: parse it here
            reader.close()
            writer.close()
            continue
        writer.close()  # the worker holds the only writing end: its death closes the pipe
        processes.append(process)
        pending[reader] = (number, process)
    return pending


def _collect(pending: dict[Connection, tuple[int, Any]], results: dict[int, list[Parsed]]) -> None:
    """Receive each worker's results as they come; a dead worker's chunk stays missing."""
    while pending:
        for ready in wait(list(pending)):
            reader = ready if isinstance(ready, Connection) else None
            if reader is None or reader not in pending:
                continue
            number, _ = pending.pop(reader)
            try:
                results[number] = reader.recv()
            except (EOFError, OSError):
                pass  # the worker died before sending: parsed in this process afterwards
            finally:
                reader.close()


def _work(root: Path, paths: list[str], writer: Connection) -> None:
    # Ctrl-C reaches the whole process group: the parent stops the workers, so they need not
    # print a traceback each; SIGTERM (how the parent stops them) ends them quietly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()  # this process, or the fork server that started the worker
    try:
        parsed = []
        for number, path in enumerate(paths):
            if number % 64 == 0 and os.getppid() != parent:
                return  # orphaned (the parent was killed): nobody will read the results
            parsed.append(parse_one(root, path))
        writer.send(parsed)
    finally:
        writer.close()


def _stop(processes: list[Any]) -> None:
    """Stop the workers still running (none, after a normal run) and reap them."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)


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
    """Split ``paths`` into at most ``count`` consecutive, non-empty runs of similar size.

    Run ``i`` ends at the first file where the running total reaches ``(i + 1) / count`` of
    the whole, so no run is more than one file away from its share.
    """
    total = max(1, sum(sizes))
    chunks: list[list[str]] = [[]]
    filled = 0
    for path, size in zip(paths, sizes, strict=True):
        if chunks[-1] and filled >= total * len(chunks) / count and len(chunks) < count:
            chunks.append([])
        chunks[-1].append(path)
        filled += size
    return chunks


def _context() -> Any:  # a multiprocessing context (its type has no Process in typeshed)
    # fork is fastest (workers inherit the imported modules); forkserver where fork is
    # unsafe or missing. Workers run no assessed code, so inheriting state is harmless.
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
