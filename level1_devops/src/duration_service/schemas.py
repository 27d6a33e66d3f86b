"""Request and response bodies of the service (JSON), with the examples shown in OpenAPI.

Unknown fields are **rejected** (422 naming the field), so a typo such as ``trip_distnace``
is reported instead of silently predicting without it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

#: TLC taxi zones are numbered 1-265 (taxi_zone_lookup.csv; 264 and 265 are "Unknown").
MIN_ZONE, MAX_ZONE = 1, 265
#: Longest trip accepted, miles. NYC's longest taxi trips are ~100 miles; the TLC files hold
#: odometer errors of up to 244,152 miles, which the service refuses rather than extrapolates.
MAX_TRIP_DISTANCE_MILES = 500.0


def _whole_number(value: object) -> object:
    """``152.0`` -> ``152``: JSON Schema's ``integer`` admits whole floats; strings, booleans
    and fractions still fail the strict integer check that follows."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


ZoneID = Annotated[
    int,
    Field(
        strict=True,
        ge=MIN_ZONE,
        le=MAX_ZONE,
        description="TLC taxi zone ID, 1-265 (see the TLC's taxi_zone_lookup.csv)",
    ),
    # After Field, so the JSON schema keeps minimum/maximum; it still runs before the check.
    BeforeValidator(_whole_number),
]
Miles = Annotated[
    float,
    Field(
        strict=True,  # a JSON number (3 or 3.0), never a string such as "3"
        ge=0.0,
        le=MAX_TRIP_DISTANCE_MILES,
        allow_inf_nan=False,
        description=f"trip distance in miles, finite, 0-{MAX_TRIP_DISTANCE_MILES:g}",
    ),
]

RIDE_EXAMPLE: dict[str, Any] = {
    "PULocationID": 43,
    "DOLocationID": 151,
    "trip_distance": 1.5,
    "ride_id": "r-1",
}


class Ride(BaseModel):
    """One ride to predict: the raw fields of a TLC trip record."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [RIDE_EXAMPLE]})

    PULocationID: ZoneID
    DOLocationID: ZoneID
    trip_distance: Miles
    ride_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        # No control characters: the id is logged and stored (PostgreSQL refuses NUL in text).
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="caller's identifier, echoed in the answer; no control characters",
    )

    def record(self) -> dict[str, Any]:
        """The fields the model reads, as the dict ``pipeline.predict`` takes."""
        return {
            "PULocationID": self.PULocationID,
            "DOLocationID": self.DOLocationID,
            "trip_distance": self.trip_distance,
        }


class Prediction(BaseModel):
    """The predicted trip duration of one ride."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"duration": 4.4038, "model_version": "1cb9ff4e5ed1", "ride_id": "r-1"}]
        }
    )

    duration: float = Field(description="predicted trip duration, minutes")
    model_version: str = Field(description="first 12 hex digits of the model artifact's sha256")
    ride_id: str | None = Field(default=None, description="the ride_id of the request, if any")


class BatchRequest(BaseModel):
    """Several rides at once; the answer keeps their order.

    The app uses :func:`batch_request_model` to cap ``rides`` at its ``max_batch_size``; this
    base class has no upper bound.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rides": [
                        RIDE_EXAMPLE,
                        {"PULocationID": 74, "DOLocationID": 75, "trip_distance": 0.8},
                    ]
                }
            ]
        },
    )

    rides: list[Ride] = Field(min_length=1, description="1 or more rides")


def batch_request_model(max_rides: int) -> type[BatchRequest]:
    """A :class:`BatchRequest` whose ``rides`` holds 1 to ``max_rides`` rides.

    pydantic checks a list's length before its items, so an oversized batch is refused in
    microseconds instead of validating (and reporting on) every ride first.
    """
    return create_model(
        "BatchRequest",
        __base__=BatchRequest,
        __doc__=(BatchRequest.__doc__ or "").split("\n\n")[0],
        rides=(
            list[Ride],
            Field(min_length=1, max_length=max_rides, description=f"1 to {max_rides:,} rides"),
        ),
    )


class BatchPrediction(BaseModel):
    """Predictions for a batch, in the order of the request."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "predictions": [
                        {"duration": 4.4038, "model_version": "1cb9ff4e5ed1", "ride_id": "r-1"},
                        {"duration": 5.9611, "model_version": "1cb9ff4e5ed1", "ride_id": None},
                    ],
                    "model_version": "1cb9ff4e5ed1",
                    "count": 2,
                }
            ]
        }
    )

    predictions: list[Prediction]
    model_version: str
    count: int = Field(description="number of predictions")


class ModelInfo(BaseModel):
    """The served artifact: its identity and the metadata saved with it."""

    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "model_version": "1cb9ff4e5ed1",
                    "sha256": "1cb9ff4e5ed1" + "0" * 52,
                    "path": "models/linear.zip",
                    "metadata": {"model": "linear", "train_rows": 73908, "val_rows": 61921},
                }
            ]
        },
    )

    model_version: str
    sha256: str
    path: str
    metadata: dict[str, Any] = Field(description="the artifact's metadata.json")


class Health(BaseModel):
    """Liveness: the process answers."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


class Readiness(BaseModel):
    """Readiness: whether a model is loaded and predictions can be served."""

    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {"status": "ready", "model_version": "1cb9ff4e5ed1", "reason": None},
                {
                    "status": "not ready",
                    "model_version": None,
                    "reason": "model file not found: models/model.zip",
                },
            ]
        },
    )

    status: str
    model_version: str | None = None
    reason: str | None = None


class FieldError(BaseModel):
    """One problem with the request."""

    field: str = Field(description="where: e.g. 'trip_distance' or 'rides[3].PULocationID'")
    message: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: a readable summary, and the field errors for a 422."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "PULocationID: Input should be less than or equal to 265",
                    "errors": [
                        {
                            "field": "PULocationID",
                            "message": "Input should be less than or equal to 265",
                            "type": "less_than_equal",
                        }
                    ],
                }
            ]
        }
    )

    detail: str
    errors: list[FieldError] = Field(default_factory=list)
