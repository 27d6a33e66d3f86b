"""A live ``duration-router`` against its own OpenAPI document, checked by schemathesis'
command-line client with every check (``--checks all``): the statuses, content types, bodies
and headers it answers must be the documented ones, and schema-valid requests are not refused
for being malformed.

The router runs as a real process on the session's registry (champion v1 linear, challenger
v2 gbm), with the control token, so the control routes are exercised too (deploy, weight,
remove, promote, rollback, feedback), in a bounded run: 30 generated requests per operation
and phase, one seed.

The standard protocols' scoring routes (``POST /invocations``, ``POST .../infer``) have rules
JSON Schema cannot state (a tensor's shape agrees with its data, a request-level ``ride_id``
only for one ride), so a schema-valid body may rightly get a 400 or 422 there: for those
operations only, the run's configuration adds those two to the statuses the "schema-valid
request accepted" check expects.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from ladder_testing import free_port, stop_process, wait_until_answers
from ladder_testing.router import TOKEN

BIN = Path(sys.executable).parent

CONFIG = """
[[operations]]
include-method = "POST"
include-path-regex = "^/(invocations|v2/models/.+/infer)$"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", 400, 401, 403, 404, 409, 422, 429, "5xx",
]
"""


def test_a_live_router_conforms_to_its_openapi_document(registry_uri: str, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DURATION_ROUTER_TOKEN": TOKEN,
        "DURATION_ROUTER_MODEL_CACHE_DIR": str(tmp_path / "cache"),
        # The smoke test's 2 s budget is not what this test checks: on a loaded CI machine the
        # gbm challenger's first predictions can take longer.
        "DURATION_ROUTER_SMOKE_MAX_SECONDS": "60",
    }
    log = tmp_path / "router.log"
    process = subprocess.Popen(
        [
            str(BIN / "duration-router"),
            "--tracking-uri", registry_uri,
            "--port", str(port),
            "--prediction-log", f"sqlite:///{tmp_path / 'prediction_log.db'}",
        ],
        env=env, cwd=tmp_path, stdout=log.open("a"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until_answers(f"{url}/ready", process, log)
        variants = httpx.get(f"{url}/ready").json()["variants"]
        assert variants == {"champion": "1", "challenger": "2"}, log.read_text()[-3000:]
        (tmp_path / "schemathesis.toml").write_text(CONFIG)
        done = subprocess.run(
            [
                str(BIN / "schemathesis"), "--config-file", str(tmp_path / "schemathesis.toml"),
                "run", f"{url}/openapi.json",
                "--checks", "all",
                "--header", f"Authorization: Bearer {TOKEN}",
                "--max-examples", "30",
                "--seed", "1",
            ],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        assert httpx.get(f"{url}/health").status_code == 200  # still up after the run
    finally:
        stop_process(process)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts is not None, output[-3000:]
    generated, passed = int(counts[1]), int(counts[2])
    assert generated == passed
    assert generated >= 300  # every operation was exercised, not skipped
    assert "Tested: 33" in output  # all 33 documented operations
    assert "Traceback" not in log.read_text()
