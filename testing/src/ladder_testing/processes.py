"""Real server processes started by tests: wait until they answer, stop them after."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

#: Exit codes of a graceful stop: uvicorn (>= 0.29) shuts down, then re-raises SIGTERM.
GRACEFUL = (0, -signal.SIGTERM)


def wait_until_answers(
    url: str,
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    log: Path | None = None,
    *,
    timeout: float = 120.0,
    status: int | None = None,
) -> None:
    """Return once ``url`` answers: with ``status`` if given, else with any status below 500.

    Raises:
        pytest.fail.Exception: The process exited first, or ``timeout`` seconds passed; the
            message has the end of ``log``.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"{url}: the process exited {process.returncode}:\n{_tail(log)}")
        try:
            answer = httpx.get(url, timeout=2)
            if answer.status_code == status or (status is None and answer.status_code < 500):
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer within {timeout:.0f} s:\n{_tail(log)}")
        time.sleep(0.1)


def stop_process(
    process: subprocess.Popen[bytes] | subprocess.Popen[str], *, timeout: float = 30.0
) -> int:
    """SIGTERM, as a process manager stops a server; SIGKILL after ``timeout`` seconds.

    Returns:
        The exit code (see :data:`GRACEFUL` for a clean stop of uvicorn).
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


def _tail(log: Path | None, chars: int = 3000) -> str:
    if log is None or not log.is_file():
        return "(no log)"
    return log.read_text(errors="replace")[-chars:]
