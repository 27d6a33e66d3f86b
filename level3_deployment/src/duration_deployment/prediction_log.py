"""The prediction log: every prediction, every actual duration fed back, every table change.

A SQL database through SQLAlchemy: SQLite in WAL mode by default (a file beside the router),
PostgreSQL by URL. Requests never wait for it: :meth:`PredictionLog.record` appends to an
in-memory queue and a writer thread inserts the rows in batches (``log_batch_rows`` at most,
every ``log_flush_seconds`` at least). If the database is unreachable the rows stay queued and
the writer retries; :meth:`PredictionLog.close` writes whatever is left.

Tables:
    ``predictions``: one row per prediction, shadow ones included: time (Unix seconds), request
        id, ride id, variant, model version, the inputs, the predicted minutes (NULL when the
        variant failed, with ``error`` saying why), latency (ms), shadow or not.
    ``feedback``: the actual duration (minutes) of a ride id, the last one sent wins.
    ``events``: the deployment history (deploy, weight, remove, promote, rollback, guardrail
        rollbacks), with who, when, which version before and after, and the table after.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from duration_deployment.history import Action

logger = logging.getLogger(__name__)

metadata = MetaData()

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, doc="Unix time of the answer, seconds"),
    Column("request_id", String(36), nullable=False),
    Column("ride_id", String(128), index=True),
    Column("variant", String(40), nullable=False, index=True),
    Column("model_version", String(20), nullable=False),
    Column("shadow", Boolean, nullable=False),
    Column(
        "forced",
        Boolean,
        nullable=False,
        default=False,
        doc="X-Model-Variant or a versioned route chose it",
    ),
    Column("pu_location_id", Integer),
    Column("do_location_id", Integer),
    Column("trip_distance", Float),
    Column("prediction", Float, doc="predicted trip duration, minutes; NULL on error"),
    Column("latency_ms", Float, nullable=False),
    Column("error", Text),
)

feedback = Table(
    "feedback",
    metadata,
    Column("ride_id", String(128), primary_key=True),
    Column("actual_minutes", Float, nullable=False),
    Column("received_at", Float, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("action", String(32), nullable=False),
    Column("variant", String(40)),
    Column("model_version", String(20)),
    Column("previous_version", String(20)),
    Column("actor", String(100), nullable=False),
    Column("detail", Text, nullable=False),
    Column("log_position", Integer, nullable=False, doc="last predictions.id before the change"),
    Column("revision", Integer, nullable=False),
    Column("table_after", Text, nullable=False, doc="JSON: {variant: {version, weight, shadow}}"),
    Column("aliases_after", Text, nullable=False, doc="JSON: {alias: version}"),
)

#: Columns of :meth:`PredictionLog.frame`, as :func:`duration_deployment.analysis.ab_report`
#: reads them.
FRAME_COLUMNS = (
    "id",
    "at",
    "ride_id",
    "variant",
    "model_version",
    "shadow",
    "forced",
    "PULocationID",
    "DOLocationID",
    "trip_distance",
    "prediction",
    "actual",
    "latency_ms",
    "error",
)


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine; SQLite files get WAL mode, ``synchronous=NORMAL`` and a 10 s busy
    timeout, so report queries and the writer do not block each other."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 10, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class PredictionLog:
    """Batched, off-request-path writer and the queries the reports need.

    Args:
        url: SQLAlchemy database URL.
        batch_rows: Most rows per insert.
        flush_seconds: Longest wait before queued rows are written.
        max_pending: Queue bound while the database is down; the oldest rows beyond it are
            dropped and counted in :attr:`dropped`.

    Raises:
        SQLAlchemyError: From :meth:`open`, when the database cannot be opened or its tables
            created (the router reports it at start-up).
    """

    def __init__(
        self,
        url: str,
        *,
        batch_rows: int = 2_000,
        flush_seconds: float = 0.2,
        max_pending: int = 1_000_000,
    ) -> None:
        self.url = url
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self.engine: Engine | None = None
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None
        self.recorded = 0  # rows handed to record()
        self.written = 0  # rows committed
        self.dropped = 0  # rows dropped while the database was down
        self.last_error: str | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def _opened(self) -> Engine:
        """The engine; the log must be open.

        Raises:
            RuntimeError: :meth:`open` was not called (or :meth:`close` was).
        """
        if self.engine is None:
            raise RuntimeError(f"the prediction log {self.url} is not open")
        return self.engine

    def open(self) -> PredictionLog:
        """Create the tables if needed and start the writer thread."""
        self.engine = make_engine(self.url)
        metadata.create_all(self.engine)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Write every queued row (waiting up to ``timeout`` seconds), then stop."""
        if self._thread is None:
            return
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None
        if self._queue:
            logger.error("prediction log closed with %d rows not written", len(self._queue))
        if self.engine is not None:
            self.engine.dispose()

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._queue)

    # -- writing ------------------------------------------------------------------------------

    def record(self, row: dict[str, Any]) -> None:
        """Queue one prediction row (see the ``predictions`` table); returns at once."""
        self._queue.append(row)
        self.recorded += 1
        if len(self._queue) >= self.batch_rows:
            self._wake.set()

    def record_many(self, rows: Iterable[dict[str, Any]]) -> None:
        """Queue several rows."""
        for row in rows:
            self.record(row)

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
                self._wake.set()
        return True

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
                    with self._opened().begin() as connection:
                        connection.execute(insert(predictions), batch)
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
                with self._progress:
                    self.written += len(batch)
                    self._progress.notify_all()
            if stopping and not self._queue:
                return

    def _write_one_by_one(self, batch: list[dict[str, Any]]) -> None:
        bad = written = 0
        for position, row in enumerate(batch):
            try:
                with self._opened().begin() as connection:
                    connection.execute(insert(predictions), [row])
                written += 1
            except (DataError, IntegrityError):
                bad += 1
            except SQLAlchemyError:  # the database went away: the rest waits for it
                self._queue.extendleft(reversed(batch[position:]))
                break
        with self._progress:
            self.written += written
            self.dropped += bad
            self._progress.notify_all()
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

    # -- events -------------------------------------------------------------------------------

    def add_event(
        self,
        *,
        action: str,
        actor: str,
        detail: str,
        revision: int,
        table_after: dict[str, Any],
        aliases_after: dict[str, str],
        variant: str | None = None,
        model_version: str | None = None,
        previous_version: str | None = None,
    ) -> dict[str, Any]:
        """Write one history entry (after flushing, so ``log_position`` is exact); return it."""
        self.flush()
        row = {
            "at": time.time(),
            "action": action,
            "variant": variant,
            "model_version": model_version,
            "previous_version": previous_version,
            "actor": actor[:100],
            "detail": detail,
            "log_position": self.last_prediction_id(),
            "revision": revision,
            "table_after": json.dumps(table_after, sort_keys=True),
            "aliases_after": json.dumps(aliases_after, sort_keys=True),
        }
        with self._opened().begin() as connection:
            result = connection.execute(insert(events), row)
            key = result.inserted_primary_key
            if key is None:  # every INSERT of one row has one: a driver that broke that rule
                raise SQLAlchemyError("the history entry was written without an id")
            row["id"] = key[0]
        return _event_dict(row)

    def history(
        self,
        limit: int = 100,
        *,
        actions: Sequence[str] | None = None,
        after_id: int = 0,
        kind: str | Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The last ``limit`` events with an ``id`` above ``after_id``, oldest first: all of
        them, or those of one of ``actions`` and the notes of one of the kinds ``kind`` (either
        filter alone selects only what it names)."""
        query = select(events).where(events.c.id > after_id)
        kinds = [kind] if isinstance(kind, str) else list(kind or [])
        chosen: list[ColumnElement[bool]] = []
        if actions is not None:
            chosen.append(events.c.action.in_(list(actions)))
        if kinds:
            # A note's detail is JSON written by _note_detail, with "kind" as its first key.
            chosen.append(
                (events.c.action == Action.NOTE)
                & or_(*(events.c.detail.startswith(_note_prefix(k)) for k in kinds))
            )
        if chosen:
            query = query.where(or_(*chosen))
        query = query.order_by(events.c.id.desc()).limit(limit)
        with self._opened().connect() as connection:
            rows = [dict(r._mapping) for r in connection.execute(query)]
        return [_event_dict(r) for r in reversed(rows)]

    def last_event(self, actions: Sequence[str] | None = None) -> dict[str, Any] | None:
        """The newest event (of one of ``actions``), or None."""
        query = select(events).order_by(events.c.id.desc()).limit(1)
        if actions:
            query = query.where(events.c.action.in_(actions))
        with self._opened().connect() as connection:
            row = connection.execute(query).first()
        return _event_dict(dict(row._mapping)) if row is not None else None

    def last_prediction_id(self) -> int:
        """The highest ``predictions.id`` written (0 when empty)."""
        with self._opened().connect() as connection:
            return int(connection.execute(select(func.max(predictions.c.id))).scalar() or 0)

    # -- feedback -----------------------------------------------------------------------------

    def add_feedback(self, actuals: dict[str, float]) -> tuple[int, list[str]]:
        """Store actual durations by ride id; return (rides matched, unknown ride ids).

        Only ride ids that have a logged prediction are stored; the others are returned, not
        an error, so one bad id does not spoil a batch.
        """
        self.flush()
        ids = list(actuals)
        known: set[str] = set()
        with self._opened().connect() as connection:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                query = select(predictions.c.ride_id).where(predictions.c.ride_id.in_(chunk))
                known.update(r[0] for r in connection.execute(query.distinct()))
        now = time.time()
        rows = [
            {"ride_id": r, "actual_minutes": float(actuals[r]), "received_at": now}
            for r in ids
            if r in known
        ]
        if rows:
            dialect = postgresql if self._opened().dialect.name == "postgresql" else sqlite
            statement = dialect.insert(feedback)
            statement = statement.on_conflict_do_update(
                index_elements=[feedback.c.ride_id],
                set_={
                    "actual_minutes": statement.excluded.actual_minutes,
                    "received_at": statement.excluded.received_at,
                },
            )
            with self._opened().begin() as connection:
                for start in range(0, len(rows), 5_000):
                    connection.execute(statement, rows[start : start + 5_000])
        return len(rows), [r for r in ids if r not in known]

    # -- reading ------------------------------------------------------------------------------

    def frame(
        self,
        *,
        after_id: int = 0,
        variant: str | None = None,
        model_version: str | None = None,
        shadow: bool | None = None,
        last: int | None = None,
        labelled: bool = False,
    ) -> pd.DataFrame:
        """Logged predictions with their actual durations, oldest first.

        Args:
            after_id: Only rows with ``id`` above this (an event's ``log_position``).
            variant: Only this variant.
            model_version: Only this model version.
            shadow: Only shadow (True) or only live (False) rows.
            last: Only the newest ``last`` rows.
            labelled: Only rows with an actual duration.

        Returns:
            One row per prediction, columns :data:`FRAME_COLUMNS`; ``actual`` is NaN without
            feedback, ``error`` is True when the variant failed.
        """
        self.flush()
        p, f = predictions, feedback
        query = (
            select(
                p.c.id,
                p.c.at,
                p.c.ride_id,
                p.c.variant,
                p.c.model_version,
                p.c.shadow,
                p.c.forced,
                p.c.pu_location_id.label("PULocationID"),
                p.c.do_location_id.label("DOLocationID"),
                p.c.trip_distance,
                p.c.prediction,
                f.c.actual_minutes.label("actual"),
                p.c.latency_ms,
                p.c.error,
            )
            # Only feedback that arrived after the prediction labels it: a prediction made
            # later, for a ride whose duration is already known, is no test of the model.
            .select_from(p.outerjoin(f, (p.c.ride_id == f.c.ride_id) & (p.c.at <= f.c.received_at)))
            .where(p.c.id > after_id)
        )
        if variant is not None:
            query = query.where(p.c.variant == variant)
        if model_version is not None:
            query = query.where(p.c.model_version == model_version)
        if shadow is not None:
            query = query.where(p.c.shadow == shadow)
        if labelled:
            query = query.where(f.c.actual_minutes.is_not(None))
        query = query.order_by(p.c.id.desc())
        if last is not None:
            query = query.limit(last)
        with self._opened().connect() as connection:
            frame = pd.DataFrame(connection.execute(query).all(), columns=list(FRAME_COLUMNS))
        frame = frame.iloc[::-1].reset_index(drop=True)
        frame["error"] = frame["error"].notna()
        frame["shadow"] = frame["shadow"].astype(bool)
        frame["forced"] = frame["forced"].fillna(False).astype(bool)
        for column in ("prediction", "actual", "latency_ms", "trip_distance"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        return frame

    def count(self) -> int:
        """Rows in ``predictions``."""
        with self._opened().connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(predictions)).scalar_one()
            )

    def last_feedback_at(self) -> float | None:
        """Unix time (seconds) the newest stored actual duration arrived; None when none has."""
        with self._opened().connect() as connection:
            at = connection.execute(select(func.max(feedback.c.received_at))).scalar()
        return None if at is None else float(at)


def note_detail(kind: str, summary: str, data: dict[str, Any]) -> str:
    """The ``detail`` text of a note event: JSON with ``kind`` first (:meth:`history`
    filters on that prefix)."""
    return json.dumps({"kind": kind, "summary": summary, "data": data}, allow_nan=False)


def _note_prefix(kind: str) -> str:
    return '{"kind": ' + json.dumps(kind) + ","


def _event_dict(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if out["action"] == Action.NOTE:
        try:
            note = json.loads(out["detail"])
        except ValueError:
            note = {"kind": "unknown", "summary": out["detail"], "data": {}}
        out["note"] = note
        out["detail"] = note.get("summary", "")
    out["table_after"] = json.loads(out["table_after"])
    out["aliases_after"] = json.loads(out["aliases_after"])
    out["at_iso"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(out["at"]))
    return out
