"""A throwaway PostgreSQL server for the tests: ``initdb`` and ``postgres`` from the machine's
PostgreSQL (Debian's ``postgresql`` package keeps them in ``/usr/lib/postgresql/<major>/bin``,
off ``PATH``), on a free port of 127.0.0.1, trust authentication, deleted after.

PostgreSQL refuses to run as root: under root (CI containers) the server runs as the
``postgres`` user the package creates, in a folder it owns. ``fsync`` is off: the tests kill
clients, never the server, and a test server need not survive a power cut.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ladder_testing.net import free_port
from ladder_testing.processes import stop_process
from ladder_testing.programs import in_ci

INSTALL_HINT = "apt-get install postgresql (Debian/Ubuntu), or bash scripts/ci/system-deps.sh"
#: The superuser the tests connect as (no password: trust authentication on 127.0.0.1 only).
USER = "ladder"


def postgres_bin() -> Path:
    """The folder of ``initdb`` and ``postgres``: from ``PATH``, else the newest
    ``/usr/lib/postgresql/*/bin``.

    Raises:
        pytest.skip.Exception: PostgreSQL is not installed (outside CI); the reason says how.
        pytest.fail.Exception: It is not installed under CI.
    """
    found = shutil.which("initdb")
    if found is not None and shutil.which("postgres", path=str(Path(found).parent)):
        return Path(found).parent
    folders = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for folder in reversed(folders):
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    message = f"PostgreSQL's initdb and postgres not found: {INSTALL_HINT}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: the tests need it)", pytrace=False)
    pytest.skip(message)


@dataclass
class PostgresServer:
    """A running server: ``url(database)`` is a SQLAlchemy URL (psycopg 3 driver)."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes]
    databases: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (a fresh one per test) and return its URL."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        self.databases.append(name)
        return self.url(name)


def _as_postgres_user() -> dict[str, object]:
    """``Popen`` arguments that run a program as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root, and there is no 'postgres' user to run PostgreSQL as")
    return {"user": "postgres", "group": "postgres"}


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a PostgreSQL server; stop it and delete its files after."""
    folder_bin = postgres_bin()
    run_as = _as_postgres_user()
    folder = Path(tempfile.mkdtemp(prefix="ladder-postgres-"))
    data, sockets, log = folder / "data", folder / "sockets", folder / "server.log"
    sockets.mkdir()
    if run_as:
        for path in (folder, sockets):
            shutil.chown(path, "postgres", "postgres")
    subprocess.run(
        [str(folder_bin / "initdb"), "-D", str(data), "-U", USER, "--auth=trust",
         "-E", "UTF8", "--locale=C", "--no-sync"],
        check=True, capture_output=True, timeout=120, **run_as,  # type: ignore[arg-type]
    )  # fmt: skip
    port = free_port()
    process = subprocess.Popen(
        [str(folder_bin / "postgres"), "-D", str(data), "-p", str(port),
         "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sockets}",
         "-c", "fsync=off", "-c", "max_connections=200"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, **run_as,  # type: ignore[arg-type]
    )  # fmt: skip
    server = PostgresServer(port, folder, process)
    try:
        _wait_ready(server, log)
        yield server
    finally:
        # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client).
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop_process(process)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(server: PostgresServer, log: Path, timeout: float = 60.0) -> None:
    import sqlalchemy

    deadline = time.monotonic() + timeout
    engine = sqlalchemy.create_engine(server.url())
    try:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"postgres exited at start:\n{log.read_text()[-3000:]}")
            try:
                with engine.connect():
                    return
            except sqlalchemy.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        engine.dispose()
