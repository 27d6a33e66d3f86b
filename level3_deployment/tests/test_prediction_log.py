"""The prediction log's writer: batches, a database that goes away and comes back, the bound on
rows kept meanwhile, and the router's answer when the log cannot be read.

A database that "goes away" is a real SQLite file whose ``predictions`` table another
connection renames (inserts then fail with ``no such table``, an ``OperationalError``, as
against a server that is down) and later renames back.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from duration_deployment.main import create_app
from duration_deployment.prediction_log import PredictionLog
from ladder_testing.router import AUTH, router_settings


def row(i: int) -> dict[str, Any]:
    """A logged prediction of real-looking ride ``r-<i>`` (green 2021-01's first ride)."""
    return {
        "at": 1_700_000_000.0 + i,
        "request_id": f"req-{i}",
        "ride_id": f"r-{i}",
        "variant": "champion",
        "model_version": "1",
        "shadow": False,
        "forced": False,
        "pu_location_id": 43,
        "do_location_id": 151,
        "trip_distance": 1.5,
        "prediction": 4.4,
        "latency_ms": 1.0,
        "error": None,
    }


def insert_sizes(log: PredictionLog) -> list[int]:
    """Rows per INSERT statement the log's engine executes from now on (appended live)."""
    sizes: list[int] = []

    @event.listens_for(log.engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, parameters: Any, _c: Any, many: bool):
        if statement.startswith("INSERT INTO predictions"):
            sizes.append(len(parameters) if many else 1)

    return sizes


def move_table(path: Path, source: str, target: str) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(f"ALTER TABLE {source} RENAME TO {target}")


def ride_ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [r[0] for r in connection.execute("SELECT ride_id FROM predictions ORDER BY id")]


def test_rows_are_written_in_batches_of_at_most_batch_rows(tmp_path: Path) -> None:
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}", batch_rows=100, flush_seconds=60)
    log.open()
    try:
        sizes = insert_sizes(log)
        log.record_many(row(i) for i in range(250))
        assert log.flush(timeout=10)
        assert sizes == [100, 100, 50]
        assert (log.written, log.dropped, log.pending, log.count()) == (250, 0, 0, 250)
        assert ride_ids(tmp_path / "log.db") == [f"r-{i}" for i in range(250)]
    finally:
        log.close()


def test_rows_wait_for_a_database_that_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = PredictionLog(f"sqlite:///{path}", batch_rows=50, flush_seconds=0.05)
    log.open()
    try:
        move_table(path, "predictions", "away")  # the database "goes away"
        log.record_many(row(i) for i in range(120))
        assert not log.flush(timeout=1.0)  # nothing can be written...
        assert (log.written, log.dropped, log.pending) == (0, 0, 120)  # ...and nothing is lost
        assert log.last_error is not None
        assert "no such table: predictions" in log.last_error
        move_table(path, "away", "predictions")  # it comes back
        assert log.flush(timeout=20)
        assert (log.written, log.dropped, log.pending, log.last_error) == (120, 0, 0, None)
        assert ride_ids(path) == [f"r-{i}" for i in range(120)]  # in order, once each
    finally:
        log.close()


def test_past_the_bound_the_oldest_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = PredictionLog(f"sqlite:///{path}", batch_rows=10, flush_seconds=0.05, max_pending=30)
    log.open()
    try:
        move_table(path, "predictions", "away")
        log.record_many(row(i) for i in range(100))
        deadline = time.monotonic() + 10
        while log.dropped < 70 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (log.dropped, log.pending, log.written) == (70, 30, 0)
        move_table(path, "away", "predictions")
        assert log.flush(timeout=20)
        assert (log.written, log.dropped, log.pending) == (30, 70, 0)
        assert ride_ids(path) == [f"r-{i}" for i in range(70, 100)]  # the newest 30 kept
    finally:
        log.close()


def test_closing_writes_what_is_queued(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = PredictionLog(f"sqlite:///{path}", batch_rows=1_000, flush_seconds=60)
    log.open()
    log.record_many(row(i) for i in range(7))
    log.close()
    assert ride_ids(path) == [f"r-{i}" for i in range(7)]


@pytest.mark.parametrize("route", ["/ab/report", "/ab/report.html", "/deployments"])
def test_the_router_answers_503_naming_the_database_when_the_log_is_unreadable(
    tmp_path: Path, route: str
) -> None:
    path = tmp_path / "prediction_log.db"
    settings = router_settings(
        tmp_path, f"sqlite:///{tmp_path / 'no-registry.db'}", deploy_on_start=False
    )
    with TestClient(create_app(settings)) as client:
        move_table(path, "events", "events_away")
        move_table(path, "predictions", "predictions_away")
        answer = client.get(route, headers=AUTH)
        assert answer.status_code == 503, answer.text
        detail = answer.json()["detail"]
        assert detail.startswith(f"the prediction log database sqlite:///{path} is unavailable: ")
        assert "no such table" in detail
        assert answer.json()["errors"] == []
        metrics = client.get("/metrics").text
        assert 'duration_errors_total{kind="log_unavailable"} 1.0' in metrics
        move_table(path, "events_away", "events")
        move_table(path, "predictions_away", "predictions")
        assert client.get(route, headers=AUTH).status_code == 200  # back once the table is
