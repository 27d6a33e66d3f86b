"""The rule for system programs: found, skipped with the install hint, or failed under CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ladder_testing import free_port, require_program
from ladder_testing.programs import find_browser


def test_a_program_on_path_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = tmp_path / "google-chrome"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("LADDER_BROWSER", raising=False)
    assert find_browser() == str(program)


def test_a_missing_program_skips_with_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"promtool not found: apt-get install prom"):
        require_program(["promtool"], "apt-get install prometheus")


def test_a_missing_program_fails_under_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("LADDER_BROWSER", raising=False)
    with pytest.raises(pytest.fail.Exception, match=r"chromium or .* not found: apt-get install"):
        find_browser()


def test_a_browser_variable_that_names_no_program_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("LADDER_BROWSER", str(tmp_path / "nope"))
    with pytest.raises(pytest.fail.Exception, match=r"LADDER_BROWSER=.*nope is not an executable"):
        find_browser()


def test_free_port_is_free() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # would raise if something listened there
    assert 1024 <= port <= 65_535
    assert os.environ.get("PATH")  # the fixture-free helpers need nothing else
