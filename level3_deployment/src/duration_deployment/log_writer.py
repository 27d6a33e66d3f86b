"""The prediction log's writer: rows in, batched inserts out, off the request path.

:meth:`LogWriter.record` returns once the row is safe from a crash of the router (appended to
the :class:`~duration_deployment.journal.Journal`, when there is one) and queued in memory; a
thread inserts queued rows in batches (``batch_rows`` at most, every ``flush_seconds`` at
least) and moves the journal's checkpoint in the same transaction. If the database is
unreachable the rows stay queued (and journalled) and the writer retries with a backoff; rows
the database refuses (bad values, not an outage) are dropped one by one and counted.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from duration_deployment.journal import Journal
from duration_deployment.log_schema import journal_checkpoints, predictions

logger = logging.getLogger(__name__)

#: A queued row and its journal sequence number (0 without a journal).
Item = tuple[int, dict[str, Any]]


def upsert(connection: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table``, replacing rows with the same primary key (SQLite and
    PostgreSQL: ``ON CONFLICT DO UPDATE``)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys},
    )
    connection.execute(statement, list(rows))


def read_checkpoint(connection: Connection, journal_id: str) -> int:
    """The last journal sequence number of ``journal_id`` in the database (0: none)."""
    table = journal_checkpoints
    query = table.select().where(table.c.journal_id == journal_id)
    row = connection.execute(query).first()
    return int(row.seq) if row is not None else 0


class LogWriter:
    """Queue, journal and writer thread of the ``predictions`` table.

    Args:
        engine: Returns the open engine (raises if the log is closed).
        batch_rows: Most rows per insert.
        flush_seconds: Longest wait before queued rows are written.
        max_pending: Queue bound while the database is down; the oldest rows beyond it are
            dropped and counted in :attr:`dropped` (they stay in the journal only until the
            checkpoint passes them).
        journal: The write-ahead journal, opened by :meth:`open`; ``None``: rows live in memory
            only until written (a crash loses the queued ones).
    """

    def __init__(
        self,
        engine: Callable[[], Engine],
        *,
        batch_rows: int,
        flush_seconds: float,
        max_pending: int,
        journal: Journal | None,
    ) -> None:
        self._engine = engine
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self.journal = journal
        self._queue: collections.deque[Item] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None
        self.recorded = 0  # rows handed to record()
        self.written = 0  # rows committed
        self.dropped = 0  # rows refused by the database, or past max_pending
        self.replayed = 0  # journalled rows written at open, after a crash
        self.last_error: str | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def open(self, database: str) -> None:
        """Replay the journal's rows after the database's checkpoint, then start the thread.

        Raises:
            JournalError: The journal folder cannot be used.
            sqlalchemy.exc.SQLAlchemyError: The database refused the replay.
        """
        if self.journal is not None:
            entries = self.journal.open(database)
            try:
                with self._engine().connect() as connection:
                    checkpoint = read_checkpoint(connection, self.journal.journal_id)
                self._replay([(e.seq, e.row) for e in entries if e.seq > checkpoint])
                self.journal.start(checkpoint)
            except Exception:
                self.journal.close()  # the folder's lock too: nothing holds it for nothing
                raise
            if self.replayed:
                logger.warning(
                    "prediction log: wrote %d journalled rows a crash had left", self.replayed
                )
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def _replay(self, items: list[Item]) -> None:
        """Write journalled rows, ``batch_rows`` per transaction with their checkpoint.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: The database is unreachable (refused rows are
                dropped and counted instead).
        """
        self.recorded += len(items)  # recorded == written + dropped + pending, always
        for start in range(0, len(items), self.batch_rows):
            chunk = items[start : start + self.batch_rows]
            try:
                self._insert(chunk)
                self.replayed += len(chunk)
            except (DataError, IntegrityError):
                for item in chunk:
                    try:
                        self._insert([item])
                        self.replayed += 1
                    except (DataError, IntegrityError):
                        self.dropped += 1
                        logger.error("prediction log: journalled row %d was refused", item[0])
        self.written += self.replayed

    def close(self, timeout: float) -> None:
        """Write every queued row (waiting up to ``timeout`` seconds), then stop; the journal
        is emptied only when nothing is left unwritten."""
        if self._thread is None:
            return
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None
        if self._queue:
            logger.error("prediction log closed with %d rows not written", len(self._queue))
        if self.journal is not None:
            self.journal.close(everything_written=not self._queue)

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._queue)

    # -- recording ----------------------------------------------------------------------------

    def record_many(self, rows: Iterable[dict[str, Any]]) -> None:
        """Journal and queue rows; returns once a crash of this process cannot lose them.

        Raises:
            JournalError: The journal could not be written: the rows are not recorded.
        """
        batch = list(rows)
        if not batch:
            return
        if self.journal is not None:
            self.journal.append(batch, self._queue.append)
        else:
            self._queue.extend((0, row) for row in batch)
        self.recorded += len(batch)
        if len(self._queue) >= self.batch_rows and self.last_error is None:
            self._wake.set()  # not while the database is down: the retry keeps its backoff

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every row recorded so far is written (or dropped); False on timeout."""
        target = self.recorded
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._progress:
            while self.written + self.dropped < target:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None:
                    return False
                self._progress.wait(min(left, 0.05))
                if self.last_error is None:  # a database that is down is retried on its own
                    self._wake.set()
        return True

    # -- the thread ---------------------------------------------------------------------------

    def _checkpoint(self, connection: Connection, seq: int) -> None:
        if self.journal is not None and seq:
            row = {"journal_id": self.journal.journal_id, "seq": seq, "updated_at": time.time()}
            upsert(connection, journal_checkpoints, [row])

    def _insert(self, items: list[Item]) -> None:
        with self._engine().begin() as connection:
            connection.execute(insert(predictions), [row for _, row in items])
            self._checkpoint(connection, items[-1][0])

    def _done(self, items: list[Item], *, written: int, dropped: int = 0) -> None:
        if self.journal is not None:
            self.journal.written(items[-1][0])
        with self._progress:
            self.written += written
            self.dropped += dropped
            self._progress.notify_all()

    def _run(self) -> None:
        backoff = 0.0
        while True:
            self._wake.wait(backoff or self.flush_seconds)
            self._wake.clear()
            stopping = self._stop.is_set()
            while self._queue:
                batch = [
                    self._queue.popleft() for _ in range(min(self.batch_rows, len(self._queue)))
                ]
                try:
                    self._insert(batch)
                except (DataError, IntegrityError) as exc:
                    # Rows the database refuses (not a database that is down): write the
                    # others one by one and drop those, so one bad row cannot stop the log.
                    logger.error("prediction log: a batch was refused: %s", exc.orig)
                    self._write_one_by_one(batch)
                    continue
                except SQLAlchemyError as exc:
                    self._queue.extendleft(reversed(batch))  # keep their order
                    self._trim()
                    self.last_error = str(exc).splitlines()[0][:300]
                    logger.error("prediction log: write failed, will retry: %s", self.last_error)
                    backoff = min(max(backoff * 2, 0.5), 10.0)
                    if stopping:
                        return
                    break
                backoff = 0.0
                self.last_error = None
                self._done(batch, written=len(batch))
            if stopping and not self._queue:
                return

    def _write_one_by_one(self, batch: list[Item]) -> None:
        bad = written = 0
        for position, item in enumerate(batch):
            try:
                self._insert([item])
                written += 1
            except (DataError, IntegrityError):
                bad += 1
            except SQLAlchemyError:  # the database went away: the rest waits for it
                self._queue.extendleft(reversed(batch[position:]))
                batch = batch[:position]
                break
        if batch:
            try:  # past the refused rows too, or a restart would replay them
                with self._engine().begin() as connection:
                    self._checkpoint(connection, batch[-1][0])
            except SQLAlchemyError:
                pass  # a replay refuses them again, and drops them then
            self._done(batch, written=written, dropped=bad)
        if bad:
            logger.error("prediction log: dropped %d rows the database refused", bad)

    def _trim(self) -> None:
        excess = len(self._queue) - self.max_pending
        if excess > 0:
            for _ in range(excess):
                self._queue.popleft()
            with self._progress:
                self.dropped += excess
                self._progress.notify_all()
            logger.error("prediction log: dropped the %d oldest rows (database down)", excess)
