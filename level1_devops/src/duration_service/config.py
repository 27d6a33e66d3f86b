"""Service configuration: pydantic-settings, validated at start-up.

:class:`ServiceSettings` holds what every service of the ladder shares (where it listens, its
request limits, logging, the scikit-learn version rule); level 1's :class:`Settings` and level
3's ``RouterSettings`` extend it, each under its own environment prefix, so that no variable of
one is read, or warned about, by the other.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from duration_core import MODEL_NAME

#: Environment prefix of ``duration-serve``'s settings.
ENV_PREFIX = "DURATION_SERVE_"


class ServiceSettings(BaseSettings):
    """What every HTTP service of the ladder shares.

    Attributes:
        host: Interface to bind.
        port: TCP port.
        max_batch_size: Most rides in one ``POST /predict/batch``.
        max_body_bytes: Largest request body accepted; larger ones get 413 before parsing.
        log_level: Logging level of the service and uvicorn.
        access_log: uvicorn's per-request access log (off by default: ``/metrics`` counts
            requests, and the log line costs about a tenth of a request's time).
        allow_version_mismatch: Serve a model saved under another scikit-learn version.
    """

    model_config = SettingsConfigDict(extra="ignore")

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8000, ge=1, le=65_535)
    max_batch_size: int = Field(default=10_000, ge=1, le=1_000_000)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    access_log: bool = False
    allow_version_mismatch: bool = False

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class Settings(ServiceSettings):
    """``duration-serve``'s settings; every field can be set as ``DURATION_SERVE_<NAME>``
    (e.g. ``DURATION_SERVE_MODEL_PATH=models/linear.zip``).

    Attributes:
        model_path: The ``duration-train`` artifact to serve.
        model_sha256: Expected sha256 of the artifact (full or a prefix of at least 12 hex
            digits); when set, any other file is refused.
        workers: uvicorn worker processes.
        model_name: The model's name in the inference protocols (``/v2/models/{name}``),
            the registered model's name by default.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    model_path: Path = Path("models/model.zip")
    model_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{12,64}$")
    workers: int = Field(default=1, ge=1, le=64)
    model_name: str = Field(default=MODEL_NAME, pattern=r"^[A-Za-z0-9._-]{1,100}$")


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read from the environment once (tests pass their own)."""
    return Settings()
