"""Prometheus as the tests meet it: an exposition read the way a scrape sees it, and a real
``prometheus`` server scraping real processes, queried through its HTTP API."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ladder_testing.net import free_port
from ladder_testing.processes import stop_process, wait_until_answers
from ladder_testing.programs import PROMETHEUS_HINT, require_program


def sample(text: str, name: str, /, missing: float = 0.0, **labels: str) -> float:
    """The value of the first series ``name`` whose labels include ``labels``, in the
    exposition ``text``; ``missing`` when there is none (a counter not yet incremented)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return missing


@dataclass
class PrometheusServer:
    """A started ``prometheus``: its URL, process and folder (config, data, log)."""

    url: str
    process: subprocess.Popen[bytes]
    folder: Path

    def api(self, path: str, **params: str) -> Any:
        """The ``data`` of ``GET /api/v1/<path>``.

        Raises:
            AssertionError: Prometheus answered an error (a bad query, say).
        """
        answer = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = answer.json()
        assert answer.status_code == 200, answer.text
        assert body["status"] == "success", answer.text
        return body["data"]

    def query(self, promql: str) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant query's vector as ``{sorted label pairs: value}``."""
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        return {
            tuple(sorted(item["metric"].items())): float(item["value"][1])
            for item in data["result"]
        }


def scrape_config(
    targets: dict[str, str], rule_files: Sequence[Path], *, interval_seconds: int = 1
) -> str:
    """A ``prometheus.yml`` scraping ``{job: "host:port"}`` every ``interval_seconds`` and
    evaluating ``rule_files`` as often."""
    jobs = "".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
        for job, target in targets.items()
    )
    rules = "".join(f"  - {path}\n" for path in rule_files)
    return (
        f"global:\n  scrape_interval: {interval_seconds}s\n"
        f"  evaluation_interval: {interval_seconds}s\n"
        f"rule_files:\n{rules}scrape_configs:\n{jobs}"
    )


@contextmanager
def prometheus_server(folder: Path, config: str) -> Iterator[PrometheusServer]:
    """``prometheus`` on a free port of 127.0.0.1 with ``config`` (a ``prometheus.yml`` text)
    and its data under ``folder``, ready (``/-/ready``); stopped on exit.

    Raises:
        pytest.skip.Exception: No ``prometheus`` program (outside CI, see
            :func:`~ladder_testing.programs.require_program`).
    """
    program = require_program(["prometheus"], PROMETHEUS_HINT)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prometheus.yml").write_text(config)
    port = free_port()
    log = folder / "prometheus.log"
    process = subprocess.Popen(
        [
            program,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={folder / 'data'}",
        ],
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        cwd=folder,
    )
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, folder)
    try:
        wait_until_answers(f"{server.url}/-/ready", process, log, status=200)
        yield server
    finally:
        stop_process(process)


def query_until(
    server: PrometheusServer,
    promql: str,
    done: Callable[[dict[Any, float]], bool],
    *,
    timeout: float = 60.0,
) -> dict[Any, float]:
    """Query ``promql`` until its answer (``{label pairs: value}``) satisfies ``done``, or
    ``timeout`` seconds passed (scrapes and rules take their interval); the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        got = server.query(promql)
        if done(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def wait_for_value(
    server: PrometheusServer, promql: str, expected: dict[Any, float], *, timeout: float = 60.0
) -> dict[Any, float]:
    """:func:`query_until` the answer is ``expected``; the last answer (the caller asserts)."""
    return query_until(server, promql, lambda got: got == expected, timeout=timeout)
