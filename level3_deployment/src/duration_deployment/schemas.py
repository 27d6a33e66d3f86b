"""Bodies of the router's API. Rides are level 1's :class:`~duration_service.schemas.Ride`."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from duration_deployment.registry import MODEL_URI_PATTERN
from duration_deployment.routing import MIN_WEIGHT, VARIANT_NAME


class RoutedPrediction(BaseModel):
    """The predicted duration of one ride, and which deployed model made it."""

    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {"duration": 4.4038, "variant": "champion", "model_version": "1", "ride_id": "r-1"}
            ]
        },
    )

    duration: float = Field(description="predicted trip duration, minutes")
    variant: str = Field(description="the variant that answered")
    model_version: str = Field(description="its registered model version")
    ride_id: str | None = Field(default=None, description="the ride_id of the request, if any")


class RoutedBatch(BaseModel):
    """Predictions for a batch, in the order of the request; rides may go to different variants."""

    predictions: list[RoutedPrediction]
    count: int = Field(description="number of predictions")


class DeployRequest(BaseModel):
    """The one call: deploy a registered model version as a variant."""

    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={
            # The rule of _weight_or_shadow, for clients that read the schema.
            "not": {
                "required": ["shadow", "weight"],
                "properties": {"shadow": {"const": True}, "weight": {"type": "number"}},
            },
            "examples": [
                {
                    "model_uri": "models:/nyc-taxi-duration@challenger",
                    "variant": "challenger",
                    "weight": 0.1,
                },
                {
                    "model_uri": "models:/nyc-taxi-duration/3",
                    "variant": "shadow-gbm",
                    "shadow": True,
                },
            ],
        },
    )

    model_uri: str = Field(
        min_length=1,
        max_length=400,
        description="models:/NAME@ALIAS, models:/NAME/VERSION or a version number, in the "
        "router's registry; file paths and URLs are refused",
        json_schema_extra={"pattern": MODEL_URI_PATTERN},
    )
    variant: str = Field(default="challenger", pattern=VARIANT_NAME)
    weight: float | None = Field(
        default=None,
        strict=True,
        ge=MIN_WEIGHT,
        le=1,
        allow_inf_nan=False,
        description="share of live traffic, 0.0001-1 (default 0.1)",
    )
    shadow: bool = Field(
        default=False, strict=True, description="copy of the traffic, never answered"
    )

    @field_validator("model_uri")
    @classmethod
    def _registry_uri(cls, value: str) -> str:
        # The documented pattern, checked here to say what to send instead.
        if re.fullmatch(MODEL_URI_PATTERN, value.strip()) is None:
            raise ValueError(
                f"{value[:200]!r} is not a registry URI: use models:/NAME@ALIAS, "
                "models:/NAME/VERSION or a version number (files, URLs and runs:/ URIs are "
                "refused)"
            )
        return value

    @model_validator(mode="after")
    def _weight_or_shadow(self) -> DeployRequest:
        if self.shadow and self.weight is not None:
            raise ValueError("a shadow variant takes no share of traffic: give weight or shadow")
        return self


class WeightRequest(BaseModel):
    """A new traffic share for a variant."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"weight": 0.5}]})

    weight: float = Field(
        strict=True, ge=MIN_WEIGHT, le=1, allow_inf_nan=False,
        description="share of live traffic, 0.0001-1",
    )  # fmt: skip


class PromoteRequest(BaseModel):
    """Which variant becomes the champion."""

    model_config = ConfigDict(extra="forbid")

    variant: str = Field(default="challenger", pattern=VARIANT_NAME)


class Actual(BaseModel):
    """The actual duration of a ride that was predicted."""

    model_config = ConfigDict(extra="forbid")

    ride_id: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
    duration: float = Field(
        strict=True, ge=0, le=24 * 60, allow_inf_nan=False,
        description="actual trip duration, minutes",
    )  # fmt: skip


class FeedbackRequest(BaseModel):
    """Actual durations, one or many (the last one for a ride id wins)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"actuals": [{"ride_id": "r-1", "duration": 6.5}]}]},
    )

    actuals: list[Actual] = Field(min_length=1, max_length=100_000)


class FeedbackResult(BaseModel):
    """What became of the actual durations sent."""

    received: int
    matched: int = Field(description="ride ids with a logged prediction, stored")
    unknown: int = Field(description="ride ids never predicted, ignored")
    unknown_examples: list[str] = Field(description="up to 10 of the unknown ride ids")


class ControlResult(BaseModel):
    """The routing table after a control call, the aliases and the history entry."""

    table: dict[str, Any]
    aliases: dict[str, str]
    event: dict[str, Any]


class DeploymentsState(BaseModel):
    """``GET /deployments``: the routing table, the registry's aliases and the history."""

    model_config = ConfigDict(protected_namespaces=())

    table: dict[str, Any] = Field(description="revision and deployed variants")
    aliases: dict[str, str] = Field(description="MLflow alias -> model version")
    registry: str = Field(description="the registry's URI")
    model_name: str = Field(description="the registered model the router deploys")
    rollback_available: bool = Field(description="whether POST /rollback has a table to restore")
    history: list[dict[str, Any]] = Field(description="the last changes, oldest first")


#: Kinds of note (level 4 writes ``monitor``, ``retrain``, ``stage``, ``decision``, ...).
NOTE_KIND = r"^[a-z][a-z0-9_-]{0,39}$"
#: Largest JSON text of a note's ``data``, bytes.
MAX_NOTE_BYTES = 64 * 1024


class NoteRequest(BaseModel):
    """A note for the history: a decision of an automated loop or an operator's remark. The
    routing table does not change."""

    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "kind": "monitor",
                    "summary": "no trigger fired",
                    "data": {"psi": {"PULocationID": 0.06}},
                }
            ]
        },
    )

    kind: str = Field(pattern=NOTE_KIND, description="what the note is about")
    summary: str = Field(min_length=1, max_length=500, description="one sentence")
    data: dict[str, Any] = Field(
        default_factory=dict, description=f"figures, as JSON (at most {MAX_NOTE_BYTES:,} bytes)"
    )
    variant: str | None = Field(default=None, pattern=VARIANT_NAME)
    model_version: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$")

    @field_validator("data")
    @classmethod
    def _small_json(cls, data: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(data, allow_nan=False).encode())
        except (TypeError, ValueError) as exc:
            raise ValueError(f"data is not plain JSON (no NaN or infinity): {exc}") from None
        if size > MAX_NOTE_BYTES:
            raise ValueError(f"data is {size:,} bytes of JSON, more than {MAX_NOTE_BYTES:,}")
        return data


class HistoryPage(BaseModel):
    """``GET /history``: entries of the history, oldest first."""

    entries: list[dict[str, Any]]
    count: int


class PredictionsPage(BaseModel):
    """``GET /predictions``: logged predictions with their actual durations, oldest first, as
    columns and rows (``actual`` is null without feedback, ``prediction`` null on error)."""

    columns: list[str]
    rows: list[list[Any]]
    count: int
    last_id: int = Field(description="the highest id in the page (0 when empty): pass it as "
                         "after_id for the next page")  # fmt: skip
