"""The prediction log's write-ahead journal: an answered prediction survives a crash.

The router answers a prediction only after its row is appended here (one ``write`` to a local
file: once it returns, the row is in the operating system's cache and a crash of the router
process, ``kill -9`` included, cannot lose it). The log's writer copies rows to the database
in batches and, in the same transaction, moves this journal's checkpoint (table
``journal_checkpoints``: the last sequence number in the database). A router restarted after a
crash replays the entries after the checkpoint, so each row lands exactly once.

Files in the journal folder:
    ``journal.json``: the journal's id (its checkpoint's key) and the database it feeds.
    ``journal.lock``: held (``flock``) by the router using the folder: one router per folder.
    ``segment-<first seq>.jsonl``: entries ``[seq, row]``, one JSON line each; a segment is
        deleted once all its entries are in the database.

Not covered: an operating-system crash or power cut can lose the writes of the last moments
unless ``fsync`` is on (each append then waits for the disk), as SQLite's
``synchronous=NORMAL`` does for the database itself.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

META = "journal.json"
LOCK = "journal.lock"
_SEGMENT = "segment-{:012d}.jsonl"
#: Size past which a segment whose entries are all in the database is replaced by a new one.
_EMPTY_AT = 64 << 10


class JournalError(RuntimeError):
    """The journal folder cannot be used: locked by another router, unreadable, or holding
    rows written for another database."""


@dataclass(frozen=True)
class Entry:
    """One journalled prediction row and its sequence number (from 1, in append order)."""

    seq: int
    row: dict[str, Any]


class Journal:
    """An append-only journal of prediction rows in ``directory`` (made if missing).

    Args:
        directory: The journal folder; one router at a time.
        segment_bytes: Size past which appends go to a new segment file.
        fsync: Wait for the disk after each append (survives a power cut; slower).
    """

    def __init__(
        self, directory: Path, *, segment_bytes: int = 64 << 20, fsync: bool = False
    ) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.journal_id = ""
        self.database = ""
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._segments: list[tuple[int, Path]] = []  # (first seq, path), oldest first
        self._size = 0  # bytes of whole entries in the current segment
        self._seq = 0
        self._torn = False  # a failed write left bytes to cut off

    # -- opening ------------------------------------------------------------------------------

    def open(self, database: str) -> list[Entry]:
        """Lock the folder and read what it holds.

        Args:
            database: The database this journal feeds (a URL, password hidden).

        Returns:
            Every entry still in the folder, oldest first: the caller writes those after the
            database's checkpoint, then calls :meth:`start`.

        Raises:
            JournalError: Another process holds the folder, it cannot be read or written,
                or it holds entries for a different database.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(f"the journal folder {self.directory}: {exc.strerror}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise JournalError(
                f"the journal folder {self.directory} is in use by another duration-router: "
                "give each router its own (DURATION_ROUTER_LOG_JOURNAL_DIR)"
            ) from None
        os.ftruncate(self._lock_fd, 0)
        os.write(self._lock_fd, f"{os.getpid()}\n".encode())
        try:
            meta = self._read_meta()
            entries = list(self._read_segments())
        except JournalError:
            self.close()  # releases the folder
            raise
        if entries and meta.get("database") not in (None, database):
            self.close()
            raise JournalError(
                f"the journal folder {self.directory} holds {len(entries)} prediction rows "
                f"(seq {entries[0].seq}-{entries[-1].seq}), not all known to be written, for "
                f"the database {meta.get('database')}, not {database}: start the router once "
                "on that database to write what is missing, or move the folder away to "
                "discard them"
            )
        self.journal_id = str(meta.get("journal_id") or uuid.uuid4())
        self.database = database
        self._seq = entries[-1].seq if entries else 0
        return entries

    def _read_meta(self) -> dict[str, Any]:
        path = self.directory / META
        if not path.exists():
            return {}
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise JournalError(f"{path}: not a journal description ({exc})") from exc
        if not isinstance(meta, dict) or not isinstance(meta.get("journal_id"), str):
            raise JournalError(f"{path}: not a journal description (no journal_id)")
        return meta

    def _segment_paths(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.glob("segment-*.jsonl"):
            try:
                found.append((int(path.stem.removeprefix("segment-")), path))
            except ValueError:
                logger.warning("journal: ignoring %s (not a segment name)", path)
        return sorted(found)

    def _read_segments(self) -> Iterator[Entry]:
        last = 0
        for _, path in self._segment_paths():
            try:
                lines = path.read_bytes().splitlines()
            except OSError as exc:
                raise JournalError(f"{path}: {exc.strerror}") from exc
            for number, line in enumerate(lines, 1):
                try:
                    seq, row = json.loads(line)
                    if not isinstance(seq, int) or not isinstance(row, dict) or seq <= last:
                        raise ValueError("not [seq, row] in order")
                except ValueError:
                    # Only a torn last write (a power cut) can leave one; the rows before it
                    # are good. Anything else means the folder is not ours to replay.
                    if number == len(lines):
                        logger.warning("journal: %s ends with a torn entry, skipped", path)
                        break
                    raise JournalError(f"{path}, line {number}: not a journal entry") from None
                last = seq
                yield Entry(seq, row)

    def start(self, after_seq: int) -> None:
        """Forget the entries read by :meth:`open` (they are in the database now), record
        which database this journal feeds, and open a new segment.

        Args:
            after_seq: The database's checkpoint: new entries are numbered after it (and after
                anything read).

        Raises:
            JournalError: The folder cannot be written.
        """
        try:
            for _, path in self._segment_paths():
                path.unlink()
            self._seq = max(self._seq, after_seq)
            meta = {"journal_id": self.journal_id, "database": self.database}
            temporary = self.directory / (META + ".tmp")
            temporary.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            temporary.replace(self.directory / META)  # atomic: never half a description
        except OSError as exc:
            raise JournalError(f"the journal folder {self.directory}: {exc.strerror}") from exc
        self._new_segment()

    def _new_segment(self) -> None:
        """Open the next segment, then close the current one (never a closed descriptor in
        ``_fd``: its number would be reused by a socket or a file).

        Raises:
            JournalError: The segment cannot be created; the current one stays in use.
        """
        path = self.directory / _SEGMENT.format(self._seq + 1)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise JournalError(f"the journal {path}: {exc.strerror}") from exc
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._segments.append((self._seq + 1, path))
        self._size = 0

    # -- appending ----------------------------------------------------------------------------

    def append(self, rows: Sequence[dict[str, Any]], enqueue: Any) -> None:
        """Append rows (one ``write``), then hand each ``(seq, row)`` to ``enqueue`` in
        sequence order (under the journal's lock, so the writer sees them in that order).

        A write that fails half-way (disk full) is cut back off the segment, so the next one
        starts on a line of its own.

        Raises:
            JournalError: The write failed (disk full, folder removed): the rows are not
                journalled and must not be answered.
        """
        with self._lock:
            if self._fd is None:
                raise JournalError(f"the journal {self.directory} is not open")
            if self._torn:
                self._cut_back()
            first = self._seq + 1
            # NaN is written as NaN (Python's json reads it back): a row the database would
            # take must never fail here.
            data = b"".join(
                json.dumps([first + i, row], separators=(",", ":")).encode() + b"\n"
                for i, row in enumerate(rows)
            )
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
                if self.fsync:
                    os.fdatasync(self._fd)
            except OSError as exc:
                self._torn = True
                self._cut_back(exc)
            self._seq += len(rows)
            self._size += len(data)
            for i, row in enumerate(rows):
                enqueue((first + i, row))
            if self._size >= self.segment_bytes:
                try:
                    self._new_segment()
                except JournalError as exc:  # the rows are safe; try again at the next one
                    logger.error("journal: %s (appending to the current segment)", exc)

    def _cut_back(self, cause: OSError | None = None) -> None:
        """Truncate the segment to its last whole entry after a failed write, then raise (the
        rows of the failed write are not journalled).

        Raises:
            JournalError: Always when ``cause`` is given; when the truncation fails too (the
                next append tries again first).
        """
        if self._fd is None:  # closed meanwhile: nothing to cut
            raise JournalError(f"the journal {self.directory} is not open")
        try:
            os.ftruncate(self._fd, self._size)
            self._torn = False
        except OSError as exc:
            raise JournalError(f"the journal {self.directory}: {exc.strerror}") from exc
        if cause is not None:
            raise JournalError(f"the journal {self.directory}: {cause.strerror}") from cause

    def written(self, seq: int) -> None:
        """Entries up to ``seq`` are in the database: delete the segments holding only those;
        when every entry is and the current segment has grown, start a new one and delete it
        too (a full disk frees up, and a crash leaves nothing to replay). Files are deleted
        outside the lock, so appends never wait for the file system to free their pages."""
        stale: list[Path] = []
        with self._lock:
            while len(self._segments) > 1 and self._segments[1][0] <= seq + 1:
                stale.append(self._segments.pop(0)[1])
            if seq >= self._seq and self._size >= _EMPTY_AT and self._fd is not None:
                try:
                    self._new_segment()
                except JournalError as exc:
                    logger.error("journal: %s (the written one is kept)", exc)
                else:
                    stale.extend(path for _, path in self._segments[:-1])
                    del self._segments[:-1]
        for path in stale:
            path.unlink(missing_ok=True)

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest entry."""
        return self._seq

    def close(self, *, everything_written: bool = False) -> None:
        """Close the files and release the folder; with ``everything_written``, delete the
        segments too (nothing is left to replay)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if everything_written:
                for _, path in self._segment_paths():
                    path.unlink(missing_ok=True)
            self._segments.clear()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None
