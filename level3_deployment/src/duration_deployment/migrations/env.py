"""Alembic environment of the prediction log (run by :mod:`duration_deployment.log_migrations`).

The caller hands an open connection in ``config.attributes["connection"]``; the ``alembic``
command line works too, with ``sqlalchemy.url`` set in its ini file. SQLite cannot alter a
column in place, so changes are rendered as batch operations (copy and move).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from duration_deployment.log_schema import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(
        config.get_main_option("sqlalchemy.url") or "sqlite:///prediction_log.db"
    )
    with engine.connect() as own:
        context.configure(connection=own, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
