"""Real service processes the level-3 and level-4 tests start: an ``mlflow server`` and a
``duration-router``, each on a free port of 127.0.0.1, from the test environment's own
``bin/`` folder, with its output in a log file of its folder. The mlflow server runs MLflow's
basic-auth app (:mod:`ladder_testing.mlflow_auth`): every client needs a user of its own."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ladder_testing import mlflow_auth
from ladder_testing.mlflow_auth import Credentials, Grants
from ladder_testing.net import free_port
from ladder_testing.processes import stop_process, wait_until_answers

#: The folder of the test environment's console scripts.
BIN = Path(sys.executable).parent


@dataclass
class Server:
    """A started ``mlflow server``: its URL, process, folder and admin."""

    url: str
    process: subprocess.Popen[bytes]
    folder: Path
    admin: Credentials

    def add_user(self, username: str, grants: Grants) -> Credentials:
        """A new user with ``grants`` (e.g. :data:`~ladder_testing.mlflow_auth.ROUTER_GRANTS`)."""
        return mlflow_auth.add_user(self.url, self.admin, username, grants)


def start_mlflow_server(
    folder: Path, *, port: int | None = None, backend_store_uri: str | None = None
) -> Server:
    """``mlflow server --app-name basic-auth`` with a backend store (default a SQLite file
    under ``folder``; a ``postgresql+psycopg://`` URL for PostgreSQL), an artifacts folder and
    the auth configuration and database under ``folder`` (one worker), answering ``/health``.
    Started again on the same folder, it keeps its users and admin."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = folder / "server.log"
    config, admin = mlflow_auth.auth_config(folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        # The auth app's CSRF protection wants a static key (one worker: any key will do).
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        # No job workers (MLflow 3.17 starts eight huey processes for its GenAI jobs): the
        # ladder submits none, and they share two cores with the tests.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    process = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--app-name",
            "basic-auth",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            backend_store_uri or f"sqlite:///{folder / 'server.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
        ],
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        cwd=folder,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{url}/health", process, log)
    except BaseException:
        stop_process(process)
        raise
    return Server(url, process, folder, admin)


@contextmanager
def mlflow_server(folder: Path, *, backend_store_uri: str | None = None) -> Iterator[Server]:
    """:func:`start_mlflow_server`, stopped on exit."""
    server = start_mlflow_server(folder, backend_store_uri=backend_store_uri)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            stop_process(server.process)


class RouterProcess:
    """A ``duration-router`` process on a free port (the same port across restarts), working in
    ``folder`` (its prediction-log journal is there); its prediction log is ``log_url``, by
    default the SQLite file :attr:`log_db`."""

    def __init__(
        self, folder: Path, tracking_uri: str, env: dict[str, str], log_url: str | None = None
    ) -> None:
        self.folder, self.tracking_uri, self.env = folder, tracking_uri, env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_db = folder / "prediction_log.db"
        self.log_url = log_url or f"sqlite:///{self.log_db}"
        self.log = folder / "router.log"

    def start(self) -> RouterProcess:
        self.process = subprocess.Popen(
            [
                str(BIN / "duration-router"),
                "--tracking-uri",
                self.tracking_uri,
                "--port",
                str(self.port),
                "--prediction-log",
                self.log_url,
            ],
            env=self.env,
            cwd=self.folder,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
        )
        wait_until_answers(f"{self.url}/health", self.process, self.log)
        return self

    def stop(self) -> int:
        assert self.process is not None
        return stop_process(self.process)

    def kill(self) -> None:
        """``kill -9``: no shutdown, no flush."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def table(self, token: str) -> dict[str, tuple[str, float, bool]]:
        """``{variant: (model_version, weight, shadow)}`` from ``GET /deployments``."""
        state = httpx.get(
            f"{self.url}/deployments", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ).json()
        return {
            v["variant"]: (v["model_version"], round(v["weight"], 6), v["shadow"])
            for v in state["table"]["variants"]
        }
