"""The prediction log: every prediction, every actual duration fed back, every table change.

A SQL database through SQLAlchemy: SQLite in WAL mode by default (a file beside the router),
PostgreSQL by URL. Its tables (:mod:`duration_deployment.log_schema`) are kept at the code's
schema by Alembic (:mod:`duration_deployment.log_migrations`, run by :meth:`PredictionLog.open`).
Predictions are written by a :class:`~duration_deployment.log_writer.LogWriter`: a request
waits only for its row to reach the local journal, never for the database. Feedback and
history entries are written at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, create_engine, event, func, insert, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from duration_deployment.history import Action
from duration_deployment.journal import Journal
from duration_deployment.log_migrations import upgrade
from duration_deployment.log_schema import events, feedback, predictions
from duration_deployment.log_writer import LogWriter, upsert

logger = logging.getLogger(__name__)

_EPOCH = pd.Timestamp(0, tz="UTC")

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


def database_error(exc: SQLAlchemyError) -> str:
    """The first line of what the database driver said (SQLAlchemy's wrapper and its SQL
    left out): what a message about an unavailable log quotes."""
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine; SQLite files get WAL mode, ``synchronous=NORMAL`` and a 10 s busy
    timeout, so report queries and the writer do not block each other, and transactions that
    SQLite itself begins and ends, DDL included, so that a migration that fails or is killed
    half-way leaves the old schema (SQLAlchemy's recipe for pysqlite: the driver's own
    transaction handling would commit each table rebuild on its own)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 10, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            connection.isolation_level = None  # the driver leaves BEGIN/COMMIT to us
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)


class PredictionLog:
    """The log's schema, its writer and the queries the reports need.

    Args:
        url: SQLAlchemy database URL.
        batch_rows: Most rows per insert.
        flush_seconds: Longest wait before queued rows are written.
        max_pending: Queue bound while the database is down; the oldest rows beyond it are
            dropped and counted in :attr:`dropped`.
        journal_dir: The write-ahead journal's folder (see :mod:`duration_deployment.journal`);
            ``None``: no journal, a crash loses the rows not yet written.
        journal_fsync: Wait for the disk after each journal append.

    Raises:
        SQLAlchemyError: From :meth:`open`, when the database cannot be opened or upgraded.
        SchemaError: From :meth:`open`, when a newer release wrote the database or a
            migration refused its data.
        JournalError: From :meth:`open` and :meth:`record`, when the journal cannot be used.
    """

    def __init__(
        self,
        url: str,
        *,
        batch_rows: int = 2_000,
        flush_seconds: float = 0.2,
        max_pending: int = 1_000_000,
        journal_dir: Path | None = None,
        journal_fsync: bool = False,
    ) -> None:
        self.url = url
        self.engine: Engine | None = None
        journal = Journal(journal_dir, fsync=journal_fsync) if journal_dir is not None else None
        self.writer = LogWriter(
            self._opened,
            batch_rows=batch_rows,
            flush_seconds=flush_seconds,
            max_pending=max_pending,
            journal=journal,
        )

    # -- life cycle ---------------------------------------------------------------------------

    def _opened(self) -> Engine:
        """The engine; the log must be open.

        Raises:
            RuntimeError: :meth:`open` was not called (or :meth:`close` was).
        """
        if self.engine is None:
            raise RuntimeError(f"the prediction log {self.url} is not open")
        return self.engine

    @property
    def database(self) -> str:
        """The database URL, password hidden."""
        if self.engine is not None:
            return self.engine.url.render_as_string(hide_password=True)
        return self.url

    def open(self) -> PredictionLog:
        """Upgrade the schema to the code's, replay the journal, start the writer."""
        self.engine = make_engine(self.url)
        try:
            state = upgrade(self.engine)
            if state.pending:
                logger.info(
                    "prediction log %s: schema %s upgraded to %s",
                    self.database,
                    state.current or "(empty)",
                    state.head,
                )
            self.writer.open(_identity(self.engine))
        except Exception:
            self.engine.dispose()
            self.engine = None
            raise
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Write every queued row (waiting up to ``timeout`` seconds), then stop."""
        self.writer.close(timeout)
        if self.engine is not None:
            self.engine.dispose()

    # -- writing ------------------------------------------------------------------------------

    def record(self, row: dict[str, Any]) -> None:
        """Record one prediction row (see ``predictions``); returns once it is journalled."""
        self.writer.record_many([row])

    def record_many(self, rows: Iterable[dict[str, Any]]) -> None:
        """Record several rows with one journal write."""
        self.writer.record_many(rows)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every row recorded so far is written (or dropped); False on timeout."""
        return self.writer.flush(timeout)

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return self.writer.pending

    @property
    def written(self) -> int:
        """Rows written since the log was opened (journalled rows replayed at open included)."""
        return self.writer.written

    @property
    def dropped(self) -> int:
        """Rows refused by the database, or dropped past ``max_pending`` while it was down."""
        return self.writer.dropped

    @property
    def last_error(self) -> str | None:
        """Why the last write failed, while the database is unreachable."""
        return self.writer.last_error

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
            "at": dt.datetime.now(dt.UTC),
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
        now = dt.datetime.now(dt.UTC)
        rows = [
            {"ride_id": r, "actual_minutes": float(actuals[r]), "received_at": now}
            for r in ids
            if r in known
        ]
        if rows:
            with self._opened().begin() as connection:
                for start in range(0, len(rows), 5_000):
                    upsert(connection, feedback, rows[start : start + 5_000])
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
        frame["at"] = (pd.to_datetime(frame["at"], utc=True) - _EPOCH).dt.total_seconds()
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
        return None if at is None else float(at.timestamp())


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
    moment: dt.datetime = out["at"]
    out["at"] = moment.timestamp()
    out["at_iso"] = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def _identity(engine: Engine) -> str:
    """The database's URL, password hidden and a SQLite file's path made absolute: what a
    journal records as the database it feeds."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        url = url.set(database=str(Path(url.database).resolve()))
    return url.render_as_string(hide_password=True)
