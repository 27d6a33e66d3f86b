"""What the protocols share: a JSON body read the way ``/predict`` reads it, rides validated
by :class:`~duration_service.schemas.Ride` (so zones, distances and their messages are the
same on every route), and the error every protocol raises."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.requests import ClientDisconnect, Request

from duration_service.field_errors import MAX_FIELD_NAME, MAX_LISTED_ERRORS, field_name, summary
from duration_service.metrics import STATUS_ERROR_KINDS
from duration_service.schemas import Ride

#: The 415 answer of every JSON route (``/predict`` included).
JSON_ONLY = "the body must be JSON, sent with Content-Type: application/json"

_RIDES = TypeAdapter(list[Ride])


class ProtocolError(Exception):
    """A request a protocol refuses, with what to answer.

    Attributes:
        status: HTTP status (400 bad JSON or shape, 404 unknown model, 415 not JSON, 422 bad
            field values, 503 no model).
        message: One line naming the field or input and what is wrong.
        errors: The field errors (``{"field", "message", "type"}``) of a 422, else empty.
        kind: The error kind counted in ``duration_errors_total``.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: Sequence[dict[str, str]] = (),
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = list(errors)
        self.kind = kind or STATUS_ERROR_KINDS.get(status, "internal")


def is_json_media(content_type: str | None) -> bool:
    """True for ``application/json`` (any parameters) and ``+json`` media types."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def read_body(request: Request) -> bytes:
    """The request's body.

    Raises:
        ProtocolError: 400, counted as ``client_disconnected``, when the client hung up before
            sending all of it (nobody reads the answer; no traceback is logged).
    """
    try:
        return await request.body()
    except ClientDisconnect:
        raise ProtocolError(
            400, "the client disconnected before sending the whole body",
            kind="client_disconnected",
        ) from None  # fmt: skip


def read_json(body: bytes, content_type: str | None) -> Any:
    """The JSON document of a request body.

    Raises:
        ProtocolError: 415 when the body is not sent as JSON, 400 when it does not parse
            (the message gives the parser's reason and the character, like ``/predict``).
    """
    if not is_json_media(content_type):
        raise ProtocolError(415, JSON_ONLY)
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            400, f"request body is not valid JSON: {exc.msg} (at character {exc.pos})",
            kind="bad_json",
        ) from None  # fmt: skip
    except (ValueError, RecursionError) as exc:  # bad UTF-8, a 5,000-digit integer, nesting
        raise ProtocolError(
            400, f"request body is not valid JSON: {exc}"[:300], kind="bad_json"
        ) from None


def validate_rides(
    rows: Sequence[Any], max_rides: int, where: Callable[[int, str], str]
) -> list[Ride]:
    """Rides from row dicts, validated like ``/predict``'s bodies.

    Args:
        rows: One mapping per ride (``PULocationID``, ``DOLocationID``, ``trip_distance``,
            optionally ``ride_id``).
        max_rides: The most rides one request may hold (the service's ``max_batch_size``).
        where: (row index, field) -> the name errors give it, e.g. ``(3, "PULocationID")``
            -> ``"dataframe_records[3].PULocationID"`` (field is ``""`` for a whole row).

    Raises:
        ProtocolError: 422 with one field error per bad value (the first 100) when there are
            no rides, too many, or a bad one.
    """
    if not rows:
        raise ProtocolError(422, "no rides: send at least one", errors=[
            {"field": "body", "message": "no rides: send at least one", "type": "too_short"}
        ])  # fmt: skip
    if len(rows) > max_rides:
        message = f"{len(rows):,} rides: at most {max_rides:,} per request"
        raise ProtocolError(
            422, message, errors=[{"field": "body", "message": message, "type": "too_long"}]
        )
    try:
        return _RIDES.validate_python(rows)
    except ValidationError as exc:
        located = [
            {"field": _relocate(e["loc"], where), "message": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False)[:MAX_LISTED_ERRORS]
        ]
        raise ProtocolError(422, summary(located, exc.error_count()), errors=located) from None


def _relocate(loc: Sequence[Any], where: Callable[[int, str], str]) -> str:
    """pydantic's ``(3, "PULocationID")`` -> the protocol's name for row 3's field."""
    if not loc or not isinstance(loc[0], int):
        return field_name(loc)
    return where(loc[0], field_name(loc[1:]) if len(loc) > 1 else "")[:MAX_FIELD_NAME]


def apply_ride_id(ride_id: Any, where: str, rows: list[dict[str, Any]]) -> None:
    """Give the one ride of ``rows`` a request-level ride id (in place; validated with the
    ride).

    Raises:
        ProtocolError: 400 when the request holds several rides, or its ride has a
            ``ride_id`` already.
    """
    if len(rows) != 1:
        raise ProtocolError(
            400, f"{where} names one ride; this request has {len(rows):,}: "
            "send a ride_id per ride instead",
        )  # fmt: skip
    if isinstance(rows[0], dict) and rows[0].get("ride_id") is not None:
        raise ProtocolError(400, f"{where}: the ride has a ride_id already")
    rows[0] = {**rows[0], "ride_id": ride_id} if isinstance(rows[0], dict) else rows[0]
