"""Bring a prediction log's database to the schema the code writes, with Alembic.

The revisions live in ``migrations/versions/``: ``0001`` is the first released schema, each
later one a change since (``0002`` ``predictions.forced``, ``0003`` timezone-aware timestamps,
``0004`` journal checkpoints). The router runs :func:`upgrade` at start; ``duration-deploy db
upgrade`` and ``db current`` do it by hand.

A log made before the migrations existed has the tables but no ``alembic_version``: its
revision is read off its columns (the two schemas released without migrations) and stamped
before upgrading, so its rows stay. A log at a revision this code does not know (written by a
newer release) is refused, never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

#: What the log's schema was called before the migrations, by the columns it had.
_UNVERSIONED = (("0002", "forced"), ("0001", None))


class SchemaError(RuntimeError):
    """The prediction log's schema cannot be brought to the code's."""


class SchemaTooNewError(SchemaError):
    """The database is at a revision this code does not know (a newer release wrote it)."""


class SchemaUpgradeError(SchemaError):
    """A migration refused the data it found (the upgrade was rolled back)."""


@dataclass(frozen=True)
class SchemaState:
    """Where a prediction log's schema stands.

    Attributes:
        database: The database URL, password hidden.
        current: Its revision (``None``: no tables yet).
        head: The newest revision this code knows.
        pending: Revisions an upgrade would apply, oldest first.
        adopted: The revision read off a log made before the migrations (stamped on upgrade),
            or ``None``.
    """

    database: str
    current: str | None
    head: str
    pending: tuple[str, ...]
    adopted: str | None = None


def alembic_config() -> Config:
    """An Alembic configuration whose scripts are this package's ``migrations``."""
    config = Config()
    config.set_main_option("script_location", str(resources.files(__package__) / "migrations"))
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this code knows."""
    head = _scripts().get_current_head()
    if head is None:  # the package ships its revisions: a broken install
        raise RuntimeError("duration_deployment ships no prediction-log migrations")
    return head


def _unversioned_revision(connection: Connection) -> str | None:
    """The revision of a log without ``alembic_version`` (``None``: an empty database)."""
    inspector = inspect(connection)
    if not inspector.has_table("predictions"):
        return None
    columns = {c["name"] for c in inspector.get_columns("predictions")}
    for revision, column in _UNVERSIONED:
        if column is None or column in columns:
            return revision
    return None  # unreachable: the last entry matches any table


def _state(connection: Connection, database: str) -> SchemaState:
    scripts = _scripts()
    head = head_revision()
    current = MigrationContext.configure(connection).get_current_revision()
    adopted = None
    if current is None:
        adopted = current = _unversioned_revision(connection)
    known = {s.revision for s in scripts.walk_revisions()}
    if current is not None and current not in known:
        raise SchemaTooNewError(
            f"the prediction log {database} is at schema revision {current}, which this "
            f"duration-deployment does not know (its newest is {head}): it was written by a "
            "newer release; run that release, or point the router at another database"
        )
    pending = [s.revision for s in scripts.iterate_revisions(head, current or "base") if s.revision]
    return SchemaState(database, current, head, tuple(reversed(pending)), adopted)


def schema_state(engine: Engine) -> SchemaState:
    """Where the database's schema stands; changes nothing.

    Raises:
        SchemaTooNewError: The database is at a revision this code does not know.
        sqlalchemy.exc.SQLAlchemyError: The database cannot be reached.
    """
    with engine.connect() as connection:
        return _state(connection, engine.url.render_as_string(hide_password=True))


def upgrade(engine: Engine) -> SchemaState:
    """Upgrade the database to :func:`head_revision` in one transaction (SQLite and PostgreSQL
    both roll DDL back: a failure or a kill half-way leaves the schema as it was); a no-op when
    it is there. Give it an engine of :func:`~duration_deployment.prediction_log.make_engine`
    for SQLite (the driver's own transaction handling would commit DDL statement by statement).

    Returns:
        The state before the upgrade (``pending`` lists what was applied).

    Raises:
        SchemaTooNewError: The database is at a revision this code does not know; nothing is
            changed.
        SchemaUpgradeError: A migration refused the data (rows it cannot convert); nothing is
            changed.
        sqlalchemy.exc.SQLAlchemyError: The database cannot be reached or refused a change.
    """
    database = engine.url.render_as_string(hide_password=True)
    with engine.begin() as connection:
        before = _state(connection, database)
        if not before.pending and before.adopted is None:
            return before
        config = alembic_config()
        config.attributes["connection"] = connection
        try:
            if before.adopted is not None:
                command.stamp(config, before.adopted)
            command.upgrade(config, "head")
        except ValueError as exc:  # a migration's own check (see 0003): the data, not the code
            raise SchemaUpgradeError(
                f"the prediction log {database} cannot be upgraded from "
                f"{before.current} to {before.head}: {exc}"
            ) from exc
    return before
