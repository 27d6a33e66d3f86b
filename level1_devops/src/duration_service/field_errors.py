"""How every answer of the ladder's services names a bad field (one rule for ``/predict``,
the MLflow scoring protocol and the Open Inference Protocol)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: At most this many field errors are listed in a 422 (a 10,000-ride batch of bad rides
#: would otherwise answer megabytes of them).
MAX_LISTED_ERRORS = 100
MAX_FIELD_NAME = 100
#: How many field errors the one-line ``detail`` names before "and N more".
SUMMARIZED_ERRORS = 5


def field_name(loc: Sequence[Any]) -> str:
    """``("body", "rides", 3, "trip_distance")`` -> ``"rides[3].trip_distance"``."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path") else loc)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    name = name or "body"
    return name if len(name) <= MAX_FIELD_NAME else name[:MAX_FIELD_NAME] + "..."


def field_errors(
    errors: Sequence[Mapping[str, Any]], prefix: Sequence[Any] = ()
) -> list[dict[str, str]]:
    """pydantic's errors as ``{"field", "message", "type"}``, the first
    :data:`MAX_LISTED_ERRORS` of them; ``prefix`` is put before each error's location."""
    return [
        {
            "field": field_name((*prefix, *e.get("loc", ()))),
            "message": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors[:MAX_LISTED_ERRORS]
    ]


def summary(fields: Sequence[Mapping[str, str]], total: int) -> str:
    """``"PULocationID: Input should be ...; and 7 more"``: the first few of ``total`` errors."""
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:SUMMARIZED_ERRORS])
    if total > SUMMARIZED_ERRORS:
        detail += f"; and {total - SUMMARIZED_ERRORS:,} more"
    return detail
