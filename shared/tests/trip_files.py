"""Small green-taxi trip files for code tests: the columns of one or more identical rides."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

PICKUP = datetime(2021, 1, 5, 8, 0, 0)
DROPOFF = datetime(2021, 1, 5, 8, 12, 30)  # 12.5 minutes later


def green_columns(n: int = 1, **overrides: pa.Array) -> dict[str, pa.Array]:
    """Columns of ``n`` rides 43 -> 151, 1.5 miles, 12.5 minutes; ``overrides`` replace or add."""
    columns = {
        "lpep_pickup_datetime": pa.array([PICKUP] * n, pa.timestamp("us")),
        "lpep_dropoff_datetime": pa.array([DROPOFF] * n, pa.timestamp("us")),
        "PULocationID": pa.array([43] * n, pa.int64()),
        "DOLocationID": pa.array([151] * n, pa.int64()),
        "trip_distance": pa.array([1.5] * n, pa.float64()),
    }
    columns.update(overrides)
    return columns
