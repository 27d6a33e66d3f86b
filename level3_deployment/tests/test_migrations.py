"""The prediction log's schema under Alembic: a log written by the first release (and by the
release that added ``forced``) is upgraded by a new router with every row kept; a log from a
newer release is refused, untouched; ``duration-deploy db`` reports and upgrades; each
revision goes down and up again. On SQLite, and on a real PostgreSQL server.

The old logs are made with the tables exactly as those releases declared them
(``released_logs.py``), filled with real rides of green 2021-03, never with the migrations
under test.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from released_logs import OLD_ROWS, T0, fill_old_log
from sqlalchemy import create_engine, inspect, text

from duration_deployment.cli.deploy import main as deploy_main
from duration_deployment.log_migrations import (
    SchemaTooNewError,
    SchemaUpgradeError,
    alembic_config,
    head_revision,
    schema_state,
    upgrade,
)
from duration_deployment.main import create_app
from duration_deployment.prediction_log import PredictionLog, make_engine
from ladder_testing.net import free_port
from ladder_testing.router import AUTH, TOKEN, router_settings
from ladder_testing.services import BIN


def revision_of(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("select version_num from alembic_version")).scalar()
    finally:
        engine.dispose()


@pytest.mark.parametrize("forced", [False, True], ids=["release-1", "with-forced"])
def test_a_new_router_upgrades_an_old_log_and_keeps_every_row(
    log_url: str, forced: bool, tmp_path: Path, registry_uri: str
) -> None:
    old = fill_old_log(log_url, forced=forced)
    assert revision_of(log_url) is None  # made before the migrations: no alembic_version
    settings = router_settings(tmp_path, registry_uri, prediction_log_url=log_url)
    app = create_app(settings)
    with TestClient(app) as client:
        history = client.get("/history", headers=AUTH).json()["entries"]
        assert history[0]["action"] == "start"
        assert history[0]["at_iso"] == "2021-03-01T07:59:00Z"
        answer = client.post(
            "/predict",
            json={"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5, "ride_id": "new"},
        )
        assert answer.status_code == 200, answer.text
        assert client.get("/ab/report", headers=AUTH).status_code == 200
        assert client.get("/monitoring/report", headers=AUTH).status_code == 200
        exported = client.get("/predictions", headers=AUTH, params={"last": 10_000})
        assert exported.status_code == 200, exported.text
        log: PredictionLog = app.state.log
        frame = log.frame()
    assert revision_of(log_url) == head_revision() == "0004"
    assert len(frame) == OLD_ROWS + 1
    kept = frame.iloc[:OLD_ROWS]
    assert list(kept["ride_id"]) == [r["ride_id"] for r in old]
    assert list(kept["prediction"]) == pytest.approx([r["prediction"] for r in old], abs=1e-12)
    assert list(kept["at"]) == pytest.approx([r["at"] for r in old], abs=1e-6)
    assert not kept["forced"].any()
    assert kept["actual"].notna().all()  # feedback at T0 + 1 h still labels the old rows
    assert frame.iloc[-1]["ride_id"] == "new"
    assert frame.iloc[-1]["at"] > dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()


def test_a_migration_that_fails_half_way_leaves_the_old_schema_and_rows(
    log_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = fill_old_log(log_url, forced=False)

    def disk_full(name: str, *_args: object, **_kwargs: object) -> None:
        raise OSError(f"creating {name}: no space left on device")

    monkeypatch.setattr("alembic.op.create_table", disk_full)  # 0004, after 0002 and 0003 ran
    engine = make_engine(log_url)
    with pytest.raises(OSError, match="creating journal_checkpoints"):
        upgrade(engine)
    monkeypatch.undo()
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        columns = {c["name"] for c in inspect(connection).get_columns("predictions")}
        at = list(connection.execute(text("select at from predictions order by id")).scalars())
    assert tables == {"predictions", "feedback", "events"}  # no alembic_version, no leftovers
    assert "forced" not in columns
    assert at == pytest.approx([r["at"] for r in old], abs=1e-9)  # still Unix seconds
    assert upgrade(engine).pending == ("0002", "0003", "0004")  # and it upgrades afterwards
    assert revision_of(log_url) == "0004"
    engine.dispose()


def test_timestamps_no_date_can_hold_stop_the_upgrade_naming_the_column(log_url: str) -> None:
    fill_old_log(log_url, forced=False)
    engine = make_engine(log_url)
    with engine.begin() as connection:  # milliseconds written as seconds, and a 1969 moment
        connection.execute(text("update predictions set at = 1.6e12 where request_id = 'old-7'"))
        connection.execute(text("update predictions set at = -0.5 where request_id = 'old-8'"))
        connection.execute(text("update predictions set at = 1614585600.9996 where id = 10"))
    with pytest.raises(SchemaUpgradeError, match=r"predictions\.at: 1 rows hold Unix seconds"):
        upgrade(engine)
    assert revision_of(log_url) is None  # rolled back
    with engine.begin() as connection:
        connection.execute(text("delete from predictions where request_id = 'old-7'"))
    upgrade(engine)
    engine.dispose()
    log = PredictionLog(log_url).open()
    try:
        at = log.frame().set_index("ride_id")["at"]
    finally:
        log.close()
    assert at["old-8"] == pytest.approx(-0.5, abs=1e-6)
    assert at["old-9"] == pytest.approx(1614585600.9996, abs=2e-6)  # not a second late


def test_every_revision_goes_down_and_up_again(log_url: str) -> None:
    fill_old_log(log_url, forced=True)
    engine = make_engine(log_url)
    try:
        upgrade(engine)
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0002")
        assert revision_of(log_url) == "0002"
        with engine.connect() as connection:
            at = connection.execute(text("select at from predictions order by id")).scalars()
            assert list(at)[:2] == pytest.approx([T0, T0 + 0.5], abs=1e-3)  # julianday: ms
        before = upgrade(engine)
        assert before.pending == ("0003", "0004")
        assert schema_state(engine).pending == ()
    finally:
        engine.dispose()
    log = PredictionLog(log_url).open()
    try:
        assert log.count() == OLD_ROWS
        assert log.frame()["at"].iloc[1] == pytest.approx(T0 + 0.5, abs=1e-3)
    finally:
        log.close()


def test_a_log_from_a_newer_release_is_refused_untouched(log_url: str, tmp_path: Path) -> None:
    PredictionLog(log_url).open().close()
    engine = make_engine(log_url)
    with engine.begin() as connection:
        connection.execute(text("update alembic_version set version_num = '0099'"))
    with pytest.raises(SchemaTooNewError, match=r"revision 0099.*its newest is 0004"):
        upgrade(engine)
    engine.dispose()
    assert revision_of(log_url) == "0099"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DURATION_", "MLFLOW_"))}
    env |= {"DURATION_ROUTER_TOKEN": TOKEN, "DURATION_ROUTER_DEPLOY_ON_START": "false"}
    router = subprocess.run(
        [str(BIN / "duration-router"), "--prediction-log", log_url, "--port", str(free_port())],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert router.returncode == 1, router.stderr
    assert "schema revision 0099" in router.stderr
    assert "its newest is 0004" in router.stderr
    assert "Traceback" not in router.stderr
    assert revision_of(log_url) == "0099"


def test_duration_deploy_db_current_and_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    fill_old_log(url, forced=False)
    assert deploy_main(["--json", "db", "current", "--database", url]) == 0
    state = json.loads(capsys.readouterr().out)
    assert (state["current"], state["head"], state["pending"]) == (
        "0001", "0004", ["0002", "0003", "0004"]
    )  # fmt: skip
    assert state["adopted"] == "0001"
    assert deploy_main(["db", "upgrade", "--database", url]) == 0
    out = capsys.readouterr().out
    assert "0001 -> 0004" in out
    assert deploy_main(["db", "current", "--database", url]) == 0
    assert "at 0004 (the newest)" in capsys.readouterr().out
    assert revision_of(url) == "0004"
    typo = tmp_path / "typo.db"
    assert deploy_main(["db", "current", "--database", f"sqlite:///{typo}"]) == 1
    assert capsys.readouterr().err == (
        f"duration-deploy db current: sqlite:///{typo}: no such SQLite file\n"
    )
    assert not typo.exists()  # `current` created nothing
    missing = f"sqlite:///{tmp_path}/no/such.db"
    assert deploy_main(["db", "upgrade", "--database", missing]) == 1
    assert "unable to open database file" in capsys.readouterr().err
