"""A real ``mlflow server``, real ``duration-router`` processes and the real command lines.

The story a workshop follows: the level-2 pipeline registers v1 (linear, champion) against the
tracking server; a router starts and deploys it from the alias; ``duration-deploy pipeline``
trains v2 (gbm) and deploys it as challenger at 10% in one call; rides are routed 90/10;
promote and rollback move the MLflow aliases; a restarted router comes back with the same
table. Then the zero-downtime test, a router whose credentials the registry refuses, and last
the registry going away.

The server runs MLflow's basic-auth app: the pipeline (and ``duration-deploy pipeline``) runs
as the user ``pipeline``, each router as the user ``router`` with
:data:`~ladder_testing.mlflow_auth.ROUTER_GRANTS`, the grants level 3's README lists.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy
from released_logs import OLD_ROWS, fill_old_log

from duration_core import read_trips
from ladder_testing import GRACEFUL, mlflow_auth, stop_process
from ladder_testing.mlflow_auth import PIPELINE_GRANTS, READER_GRANTS, ROUTER_GRANTS
from ladder_testing.router import AUTH, TOKEN
from ladder_testing.services import BIN, RouterProcess, Server, mlflow_server

MODEL = "nyc-taxi-duration"


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


@pytest.fixture(scope="module")
def base_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DURATION_"))
    }
    environment["DURATION_ROUTER_TOKEN"] = TOKEN
    environment["DURATION_ROUTER_LOG_FLUSH_SECONDS"] = "0.05"
    # The smoke test's 2 s latency budget is not what these tests check: on a loaded CI
    # machine a gbm version's first predictions took 3.1 s (the default stays 2 s).
    environment["DURATION_ROUTER_SMOKE_MAX_SECONDS"] = "60"
    environment["DURATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("tlc-cache"))
    return environment


@pytest.fixture(scope="module")
def env(base_env: dict[str, str], tracking_server: Server) -> dict[str, str]:
    """The pipeline's: ``duration-pipeline`` and ``duration-deploy``."""
    return base_env | tracking_server.add_user("pipeline", PIPELINE_GRANTS).env


@pytest.fixture(scope="module")
def router_env(base_env: dict[str, str], tracking_server: Server) -> dict[str, str]:
    """The routers'."""
    return base_env | tracking_server.add_user("router", ROUTER_GRANTS).env


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout


class Router(RouterProcess):
    """A ``duration-router`` process with the control token of these tests; ``duration-deploy``
    runs with ``cli_env`` (the pipeline's user: ``duration-deploy pipeline`` trains)."""

    def __init__(
        self,
        folder: Path,
        tracking_uri: str,
        env: dict[str, str],
        cli_env: dict[str, str],
        log_url: str | None = None,
    ) -> None:
        super().__init__(folder, tracking_uri, env, log_url)
        self.cli_env = cli_env

    def start(self) -> Router:
        super().start()
        return self

    def deploy_cli(self, *args: str) -> str:
        command = [str(BIN / "duration-deploy"), "--url", self.url, *args]
        return run(command, self.cli_env, self.folder)

    def table(self, token: str = TOKEN) -> dict[str, tuple[str, float, bool]]:
        return super().table(token)


def aliases(server: Server) -> dict[str, str]:
    """``{alias: version}`` of the model as the admin reads it; empty before it is registered."""
    answer = httpx.get(
        f"{server.url}/api/2.0/mlflow/registered-models/get",
        params={"name": MODEL},
        auth=server.admin.auth,
        timeout=30,
    )
    if answer.status_code == 404:
        return {}
    assert answer.status_code == 200, answer.text
    found = answer.json()["registered_model"].get("aliases", [])
    return {a["alias"]: str(a["version"]) for a in found}


def train_linear(uri: str, env: dict[str, str], folder: Path) -> None:
    """The level-2 pipeline, linear model only, against the tracking server ``uri``."""
    run(
        [str(BIN / "duration-pipeline"), "run", "--train", "green:2021-01",
         "--val", "green:2021-02", "--candidates", "linear", "--tracking-uri", uri, "-q"],
        env,
        folder,
    )  # fmt: skip


def ensure_champion(server: Server, env: dict[str, str], folder: Path) -> None:
    """Register v1 when this test runs alone (the first test of the module registers it)."""
    if "champion" not in aliases(server):
        train_linear(server.url, env, folder)


@pytest.fixture(scope="module")
def march_rides() -> list[dict[str, object]]:
    rides = read_trips("green:2021-03").head(1_000)
    return [
        {
            "PULocationID": int(r.PULocationID),
            "DOLocationID": int(r.DOLocationID),
            "trip_distance": float(r.trip_distance),
            "ride_id": f"2021-03-{i}",
        }
        for i, r in enumerate(rides.itertuples())
    ]


def test_train_deploy_route_promote_rollback_restart(
    tracking_server: Server,
    env: dict[str, str],
    router_env: dict[str, str],
    tmp_path: Path,
    march_rides: list[dict[str, object]],
) -> None:
    uri = tracking_server.url
    train_linear(uri, env, tmp_path)
    assert aliases(tracking_server) == {"champion": "1", "challenger": "1"}

    router = Router(tmp_path, uri, router_env, env).start()
    try:
        assert router.table() == {"champion": ("1", 1.0, False)}  # deployed from the alias
        # Data prep, training, registration and deployment in one call.
        out = router.deploy_cli(
            "pipeline",
            "--train",
            "green:2021-01",
            "--val",
            "green:2021-02",
            "--candidates",
            "gbm",
            "--tracking-uri",
            uri,
            "--weight",
            "10%",
        )
        assert "registered v2 (gbm)" in out
        assert router.table() == {"champion": ("1", 0.9, False), "challenger": ("2", 0.1, False)}
        # The champion stays: with a router serving, the A/B test decides, not the val month.
        assert aliases(tracking_server) == {"champion": "1", "challenger": "2"}

        answer = httpx.post(
            f"{router.url}/predict/batch", json={"rides": march_rides}, timeout=60
        ).json()
        versions = [p["model_version"] for p in answer["predictions"]]
        challenger = versions.count("2")
        assert versions.count("1") + challenger == 1_000
        assert abs(challenger - 100) <= 4 * (1_000 * 0.1 * 0.9) ** 0.5  # binomial, 4 sd
        again = httpx.post(
            f"{router.url}/predict/batch", json={"rides": march_rides}, timeout=60
        ).json()
        assert [p["model_version"] for p in again["predictions"]] == versions  # sticky by ride_id

        router.deploy_cli("promote")
        assert router.table() == {"champion": ("2", 1.0, False)}
        assert aliases(tracking_server) == {"champion": "2"}
        router.deploy_cli("rollback")
        assert router.table() == {"champion": ("1", 0.9, False), "challenger": ("2", 0.1, False)}
        assert aliases(tracking_server) == {"champion": "1", "challenger": "2"}
        router.deploy_cli("weight", "challenger", "0.25")
        status = router.deploy_cli("status")
        assert "challenger   v2      25.0%" in status
        assert router.stop() in GRACEFUL
    finally:
        if router.process.poll() is None:  # type: ignore[union-attr]
            router.stop()

    # Every answered ride is in the log, flushed on shutdown.
    with sqlite3.connect(router.log_db) as db:
        assert (
            db.execute("select count(*) from predictions where not shadow").fetchone()[0] == 2_000
        )
        actions = [row[0] for row in db.execute("select action from events order by id")]
    assert actions == ["start", "deploy", "promote", "rollback", "weight"]

    restarted = Router(tmp_path, uri, router_env, env).start()
    try:
        assert restarted.table() == {
            "champion": ("1", 0.75, False),
            "challenger": ("2", 0.25, False),
        }
        answer = httpx.post(
            f"{restarted.url}/predict/batch", json={"rides": march_rides[:100]}, timeout=60
        ).json()
        assert [p["model_version"] for p in answer["predictions"]] != ["1"] * 100
    finally:
        restarted.stop()


LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys, threading, time
    import httpx
    url, total, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    with open(sys.argv[4]) as handle:
        rides = json.load(handle)
    statuses, lock = {}, threading.Lock()
    start = time.perf_counter()

    def worker(offset, step):
        with httpx.Client(timeout=30) as client:
            for i in range(offset, total, step):
                pause = start + i * seconds / total - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                try:
                    body = rides[i % len(rides)] | {"ride_id": f"load-{i}"}
                    status = client.post(url, json=body).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with lock:
                    statuses[str(status)] = statuses.get(str(status), 0) + 1

    threads = [threading.Thread(target=worker, args=(k, 4)) for k in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    print(json.dumps(statuses))
    """
)


def log_rows(url: str, query: str) -> list[tuple[object, ...]]:
    """Rows of a query on the prediction log (SQLite file or PostgreSQL), read by SQLAlchemy."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(sqlalchemy.text(query))]
    finally:
        engine.dispose()


def test_zero_downtime_under_load(
    tracking_server: Server,
    env: dict[str, str],
    router_env: dict[str, str],
    tmp_path: Path,
    log_url: str,
    march_rides: list[dict[str, object]],
) -> None:
    """2,000 requests over about 10 s from another process while the table changes five times:
    every request answers 200 and the log holds exactly one row per answer (SQLite and
    PostgreSQL)."""
    ensure_champion(tracking_server, env, tmp_path)
    router = Router(tmp_path, tracking_server.url, router_env, env, log_url).start()
    try:
        rides = tmp_path / "rides.json"
        rides.write_text(json.dumps(march_rides[:200]))
        load = subprocess.Popen(
            [sys.executable, "-c", LOAD_SCRIPT, f"{router.url}/predict", "2000", "10", str(rides)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        time.sleep(1.0)
        steps = [
            ("deploy", "1", "--variant", "canary", "--weight", "0.2"),
            ("weight", "canary", "0.5"),
            ("promote", "--variant", "canary"),
            ("rollback",),
            ("remove", "canary"),
        ]
        for step in steps:
            router.deploy_cli(*step)
            time.sleep(1.0)
        out, err = load.communicate(timeout=120)
        assert load.returncode == 0, err.decode()[-2000:]
        assert json.loads(out) == {"200": 2000}
        assert router.stop() in GRACEFUL
    finally:
        if router.process.poll() is None:  # type: ignore[union-attr]
            router.stop()
    rows = log_rows(
        log_url,
        "select count(*), count(distinct ride_id) from predictions"
        " where ride_id like 'load-%' and not shadow",
    )
    actions = [row[0] for row in log_rows(log_url, "select action from events order by id")]
    assert rows == [(2000, 2000)]
    assert actions == ["start", "deploy", "weight", "promote", "rollback", "remove"]


#: Sends rides from 8 threads until the router stops answering; writes each 200 answer (and
#: the ride it answered) as a JSON line as soon as it arrives.
CRASH_LOAD = textwrap.dedent(
    """
    import json, sys, threading
    import httpx
    url, out = sys.argv[1], open(sys.argv[2], "a", buffering=1)
    with open(sys.argv[3]) as handle:
        rides = json.load(handle)
    lock, down = threading.Lock(), threading.Event()

    def worker(k):
        with httpx.Client(timeout=10) as client:
            i = k
            while not down.is_set():
                ride = rides[i % len(rides)] | {"ride_id": f"crash-{i}"}
                try:
                    answer = client.post(url, json=ride)
                except httpx.HTTPError:
                    down.set()
                    break
                if answer.status_code == 200:
                    with lock:
                        out.write(json.dumps({"ride": ride, "answer": answer.json()}) + "\\n")
                i += 8

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    """
)


def test_no_answered_prediction_is_lost_when_the_router_is_killed(
    tracking_server: Server,
    env: dict[str, str],
    router_env: dict[str, str],
    tmp_path: Path,
    log_url: str,
    march_rides: list[dict[str, object]],
) -> None:
    """Under load from another process, ``kill -9`` the router after 1,500 answers; once
    restarted, every request that got a 200 has its row, with the version and inputs it was
    answered with (before the journal: 1,482 rows for 1,501 answers)."""
    ensure_champion(tracking_server, env, tmp_path)
    router = Router(tmp_path, tracking_server.url, router_env, env, log_url).start()
    answered_file, rides = tmp_path / "answered.jsonl", tmp_path / "rides.json"
    rides.write_text(json.dumps(march_rides))
    load = subprocess.Popen(
        [sys.executable, "-c", CRASH_LOAD, f"{router.url}/predict", str(answered_file), str(rides)],
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not answered_file.exists() or answered_file.read_text().count("\n") < 1_500:
            assert time.monotonic() < deadline, "the load did not reach 1,500 answers"
            time.sleep(0.02)
        router.kill()
        assert load.wait(timeout=60) == 0
    finally:
        if load.poll() is None:
            load.kill()
        if router.process is not None and router.process.poll() is None:
            router.kill()  # the test failed before its kill: no router outlives it
    answered = [json.loads(line) for line in answered_file.read_text().splitlines()]
    assert len(answered) >= 1_500
    router.start()  # the same folder: its journal is replayed into the log
    assert router.stop() in GRACEFUL
    logged = {
        ride_id: (version, prediction, pu, do, distance)
        for ride_id, version, prediction, pu, do, distance in log_rows(
            log_url,
            "select ride_id, model_version, prediction, pu_location_id, do_location_id,"
            " trip_distance from predictions where ride_id like 'crash-%' and not shadow",
        )
    }
    missing = [a["ride"]["ride_id"] for a in answered if a["ride"]["ride_id"] not in logged]
    assert missing == []
    for a in answered:
        version, prediction, pu, do, distance = logged[a["ride"]["ride_id"]]
        assert version == a["answer"]["model_version"]
        assert prediction == pytest.approx(a["answer"]["duration"], abs=1e-9)
        assert (pu, do) == (a["ride"]["PULocationID"], a["ride"]["DOLocationID"])
        assert distance == pytest.approx(a["ride"]["trip_distance"])


def test_a_router_process_upgrades_a_log_of_the_first_release(
    tracking_server: Server,
    env: dict[str, str],
    router_env: dict[str, str],
    tmp_path: Path,
    log_url: str,
) -> None:
    """A ``duration-router`` started on a log written by the first release (no ``forced``,
    Unix-second timestamps, no migrations table) upgrades it, keeps its rows and serves."""
    ensure_champion(tracking_server, env, tmp_path)
    fill_old_log(log_url, forced=False)
    router = Router(tmp_path, tracking_server.url, router_env, env, log_url).start()
    try:
        ride = {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5, "ride_id": "new"}
        assert httpx.post(f"{router.url}/predict", json=ride, timeout=30).status_code == 200
        for route in ("/ab/report", "/monitoring/report", "/history"):
            assert httpx.get(router.url + route, headers=AUTH, timeout=60).status_code == 200
    finally:
        assert router.stop() in GRACEFUL
    assert log_rows(log_url, "select version_num from alembic_version") == [("0004",)]
    assert log_rows(log_url, "select count(*) from predictions where ride_id like 'old-%'") == [
        (OLD_ROWS,)
    ]
    assert log_rows(log_url, "select count(*) from predictions where ride_id = 'new'") == [(1,)]


def deploy(router: Router, model_uri: str, variant: str = "challenger") -> httpx.Response:
    body = {"model_uri": model_uri, "variant": variant, "weight": 0.1}
    return httpx.post(f"{router.url}/deployments", headers=AUTH, json=body, timeout=120)


def test_refused_credentials_keep_serving_and_deploys_answer_503(
    tracking_server: Server, env: dict[str, str], base_env: dict[str, str], tmp_path: Path
) -> None:
    """A router whose user may only read (READ_GRANTS) deploys the champion and serves; the
    registry refuses it an alias move (403), then reading once its grant is revoked (403),
    then its password once changed (401): each a 503 naming the user, the table unchanged and
    /predict 200. Restarted with refused credentials, it starts and /ready says why."""
    server = tracking_server
    ensure_champion(server, env, tmp_path)
    # Champion only: deploying v1 as challenger must then move the challenger alias.
    httpx.request(
        "DELETE",
        f"{server.url}/api/2.0/mlflow/registered-models/alias",
        json={"name": MODEL, "alias": "challenger"},
        auth=server.admin.auth,
        timeout=30,
    ).raise_for_status()
    reader = server.add_user("router-reader", READER_GRANTS)
    ride = {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}
    router = Router(tmp_path, server.url, base_env | reader.env, env).start()
    try:
        assert router.table() == {"champion": ("1", 1.0, False)}  # READ is enough to deploy
        before = aliases(server)

        answer = deploy(router, "1")  # as challenger: the alias moves, which needs EDIT
        assert answer.status_code == 503, answer.text
        detail = answer.json()["detail"]
        assert "cannot move the alias challenger to v1" in detail
        assert "denied user 'router-reader' permission (HTTP 403)" in detail
        assert "EDIT on the registered model" in detail
        assert "put them back" not in detail  # a refused call moved nothing
        assert aliases(server) == before
        assert router.table() == {"champion": ("1", 1.0, False)}
        answer = deploy(router, "1", variant="canary")  # no alias: READ is enough
        assert answer.status_code == 201, answer.text
        table = router.table()

        mlflow_auth.revoke(server.url, server.admin, "router-reader", "registered_model", MODEL)
        answer = deploy(router, "1", variant="canary-2")
        assert answer.status_code == 503, answer.text
        detail = answer.json()["detail"]
        assert "cannot resolve 1" in detail or "cannot resolve models:/" in detail, detail
        assert "denied user 'router-reader' permission (HTTP 403)" in detail
        assert "READ on the registered model" in detail

        mlflow_auth.set_password(server.url, server.admin, "router-reader", "a-new-password-42")
        answer = deploy(router, "1", variant="canary-2")
        assert answer.status_code == 503, answer.text
        detail = answer.json()["detail"]
        assert f"the model registry {server.url} refused the credentials of user " in detail
        assert "'router-reader' (HTTP 401: unknown user or wrong password)" in detail
        assert "Traceback" not in answer.text
        assert router.table() == table
        assert httpx.post(f"{router.url}/predict", json=ride, timeout=10).status_code == 200
        assert router.stop() in GRACEFUL
    finally:
        if router.process.poll() is None:  # type: ignore[union-attr]
            router.stop()

    restarted = Router(tmp_path, server.url, base_env | reader.env, env).start()  # old password
    try:
        assert httpx.get(f"{restarted.url}/health", timeout=10).status_code == 200
        ready = httpx.get(f"{restarted.url}/ready", timeout=10)
        assert ready.status_code == 503
        assert "nothing deployed at start-up" in ready.json()["reason"]
        assert "refused the credentials of user 'router-reader'" in ready.json()["reason"]
        answer = httpx.post(f"{restarted.url}/predict", json=ride, timeout=10)
        assert answer.status_code == 503
        assert answer.json()["detail"] == "no model is deployed: POST /deployments first"
    finally:
        restarted.stop()
    log = restarted.log.read_text()
    assert "refused the credentials of user 'router-reader'" in log
    assert "aliases not yet put back" not in log


def test_registry_down_keeps_serving_and_deploys_answer_503(
    tracking_server: Server, env: dict[str, str], router_env: dict[str, str], tmp_path: Path
) -> None:
    ensure_champion(tracking_server, env, tmp_path)
    router = Router(tmp_path, tracking_server.url, router_env, env).start()
    try:
        before = router.table()
        assert "champion" in before
        stop_process(tracking_server.process)  # the registry goes away (last test of the module)
        ride = {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}
        assert httpx.post(f"{router.url}/predict", json=ride, timeout=10).status_code == 200
        started = time.monotonic()
        answer = httpx.post(
            f"{router.url}/deployments", headers=AUTH, json={"model_uri": "2"}, timeout=60
        )
        assert answer.status_code == 503
        assert tracking_server.url in answer.json()["detail"]
        assert time.monotonic() - started < 10  # fails fast, no minutes of retries
        promote = httpx.post(f"{router.url}/promote", headers=AUTH, timeout=60)
        assert promote.status_code in (409, 503)
        assert router.table() == before
    finally:
        router.stop()
