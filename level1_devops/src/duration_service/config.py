"""Service configuration: pydantic-settings, environment variables prefixed ``DURATION_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Validated at start-up; every field can be set as ``DURATION_<NAME>`` (e.g.
    ``DURATION_MODEL_PATH=models/linear.zip``).

    Attributes:
        model_path: The ``duration-train`` artifact to serve.
        model_sha256: Expected sha256 of the artifact (full or a prefix of at least 12 hex
            digits); when set, any other file is refused.
        allow_version_mismatch: Serve an artifact saved under another scikit-learn version.
        host: Interface to bind.
        port: TCP port.
        workers: uvicorn worker processes.
        max_batch_size: Most rides in one ``POST /predict/batch``.
        max_body_bytes: Largest request body accepted; larger ones get 413 before parsing.
        log_level: Logging level of the service and uvicorn.
        access_log: uvicorn's per-request access log (off by default: ``/metrics`` counts
            requests, and the log line costs about a tenth of a request's time).
    """

    model_config = SettingsConfigDict(env_prefix="DURATION_", extra="ignore")

    model_path: Path = Path("models/model.zip")
    model_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{12,64}$")
    allow_version_mismatch: bool = False
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8000, ge=1, le=65_535)
    workers: int = Field(default=1, ge=1, le=64)
    max_batch_size: int = Field(default=10_000, ge=1, le=1_000_000)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    access_log: bool = False

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read from the environment once (tests pass their own)."""
    return Settings()
