"""Settings: the DURATION_SERVE_ prefix, warnings about unknown and renamed variables, and
settings that reach the server as arguments, never through the environment."""

from __future__ import annotations

import logging
import os

import pytest

from duration_service import cli
from duration_service.config import ServiceSettings, Settings


def test_settings_read_their_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURATION_SERVE_PORT", "8123")
    monkeypatch.setenv("DURATION_PORT", "9999")  # the name before 0.2: not read
    monkeypatch.setenv("DURATION_ROUTER_PORT", "9998")  # level 3's: not read
    assert Settings().port == 8123
    assert issubclass(Settings, ServiceSettings)


def test_unknown_and_renamed_variables_warn_and_level_3_ones_do_not(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in [n for n in os.environ if n.startswith("DURATION_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DURATION_SERVE_MODLE_PATH", "typo.zip")
    monkeypatch.setenv("DURATION_MODEL_PATH", "old.zip")
    monkeypatch.setenv("DURATION_ROUTER_TOKEN", "a-router-token-of-some-length")
    monkeypatch.setenv("DURATION_PIPELINE_MIN_RIDES", "10")
    monkeypatch.setenv("DURATION_CACHE_DIR", "/tmp/cache")
    with caplog.at_level(logging.WARNING, logger="duration_service.cli"):
        cli.warn_unknown_environment()
    assert [r.getMessage() for r in caplog.records] == [
        "DURATION_MODEL_PATH is ignored: duration-serve reads DURATION_SERVE_MODEL_PATH now",
        "DURATION_SERVE_MODLE_PATH is not a setting of duration-serve and is ignored",
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_main_passes_settings_as_arguments_not_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, workers: int, tmp_path: object
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setattr(cli.tempfile, "gettempdir", lambda: str(tmp_path))
    served: list[Settings] = []
    monkeypatch.setattr(cli, "serve", served.append)
    before = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    code = cli.main(["--model", "m.zip", "--port", "8765", "--workers", str(workers)])
    after = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    assert code == 0
    assert after == before
    assert [(s.model_path.name, s.port, s.workers) for s in served] == [("m.zip", 8765, workers)]
