"""System programs a test needs (a browser, ``promtool``, ...): found as a user's machine has
them, or a skip that says how to install them; under CI (``CI=true``) a missing program fails
the test, so a green CI run never hides a skipped check."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

#: Where a browser is looked for, in order, after ``$LADDER_BROWSER``.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER_HINT = "apt-get install chromium (Debian/Ubuntu), or set LADDER_BROWSER=/path/to/chrome"
#: How to get ``promtool`` and ``prometheus`` (one Debian package has both).
PROMETHEUS_HINT = (
    "apt-get install prometheus (Debian/Ubuntu: promtool and the server), "
    "or bash scripts/ci/system-deps.sh"
)


def in_ci() -> bool:
    """Whether the tests run under CI (``CI=true``, as GitHub Actions and ``.ci/run`` set)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_program(
    candidates: Sequence[str], install_hint: str, *, env_var: str | None = None
) -> str:
    """The path of the first of ``candidates`` on ``PATH`` (or of ``$env_var`` when set).

    Raises:
        pytest.skip.Exception: None is found (outside CI); the reason names ``install_hint``.
        pytest.fail.Exception: None is found under CI, or ``$env_var`` names no executable
            file (a typo is never skipped silently).
    """
    if env_var and os.environ.get(env_var):
        path = Path(os.environ[env_var])
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"{env_var}={path} is not an executable file", pytrace=False)
        return str(path)
    for name in candidates:
        found = shutil.which(name)
        if found is not None:
            return found
    message = f"{' or '.join(candidates)} not found: {install_hint}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: the tests need it)", pytrace=False)
    pytest.skip(message)


def find_browser() -> str:
    """A Chromium or Chrome binary (see :func:`require_program` for what happens without)."""
    return require_program(BROWSERS, BROWSER_HINT, env_var="LADDER_BROWSER")


def promtool_problems(exposition: str) -> str:
    """What ``promtool check metrics`` (Prometheus' own linter) says of a ``/metrics`` text:
    empty when it passes. The program is required as :func:`require_program` says.

    Raises:
        AssertionError: promtool could not read the text at all (a parse error, exit 3)."""
    promtool = require_program(["promtool"], PROMETHEUS_HINT)
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1), f"promtool exited {done.returncode}: {done.stderr}"
    return (done.stdout + done.stderr).strip()
