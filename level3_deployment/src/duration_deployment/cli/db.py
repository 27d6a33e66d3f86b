"""``duration-deploy db current|upgrade``: the prediction log's schema, read or upgraded
straight in its database (the router does ``upgrade`` itself at start)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from duration_deployment.config import DEFAULT_LOG_URL, ENV_PREFIX
from duration_deployment.log_migrations import SchemaState, schema_state, upgrade
from duration_deployment.prediction_log import make_engine


def add_db_parser(verbs: Any) -> None:
    """The ``db`` verb of ``duration-deploy``."""
    db = verbs.add_parser("db", help="the prediction log's schema: current revision, or upgrade")
    db.add_argument("action", choices=["current", "upgrade"])
    db.add_argument(
        "--database",
        default=os.environ.get(f"{ENV_PREFIX}PREDICTION_LOG_URL", DEFAULT_LOG_URL),
        help=f"SQLAlchemy URL (default ${ENV_PREFIX}PREDICTION_LOG_URL or {DEFAULT_LOG_URL})",
    )


def run_db(args: argparse.Namespace) -> dict[str, Any]:
    """Read or upgrade the schema; the state before (``upgrade``) or now (``current``).

    Raises:
        FileNotFoundError: ``current`` of a SQLite file that does not exist.
        SchemaError: The database is at a revision this code does not know, or a migration
            refused its data.
        sqlalchemy.exc.SQLAlchemyError: It cannot be reached, or refused a change.
    """
    url = make_url(args.database)
    if (
        args.action == "current"
        and url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
        and not Path(url.database).exists()
    ):  # connecting would create it: `current` changes nothing
        raise FileNotFoundError(f"{args.database}: no such SQLite file")
    engine = make_engine(args.database)
    try:
        state: SchemaState = upgrade(engine) if args.action == "upgrade" else schema_state(engine)
    finally:
        engine.dispose()
    return {"action": args.action, **dataclasses.asdict(state)}


def show_db(result: dict[str, Any]) -> None:
    """Print what :func:`run_db` returned, as a sentence."""
    before = result["current"] or "(empty)"
    if result["action"] == "upgrade":
        if result["pending"]:
            print(f"{result['database']}: upgraded {before} -> {result['head']}")
        else:
            print(f"{result['database']}: already at {result['head']} (the newest)")
    elif not result["pending"]:
        print(f"{result['database']}: at {result['head']} (the newest)")
    else:
        print(
            f"{result['database']}: at {before}; the newest is {result['head']}: "
            f"`duration-deploy db upgrade` applies {', '.join(result['pending'])}"
        )
    if result["adopted"]:
        print(f"  (made before the migrations: its columns are those of {result['adopted']})")
