"""The scored dataset: its columns, its partitions and their all-or-nothing publication.

Layout (Hive-style partitions, which pyarrow, pandas, Spark, DuckDB and Athena read as
columns)::

    OUT/service=green/year=2021/month=3/part-00000.parquet

One row per scored ride with :data:`SCHEMA`'s columns (``service``, ``year`` and ``month`` are
the folder names, not stored in the files). ``diff`` is actual minus predicted, minutes, as
in the course's ``score.py`` (DataTalksClub mlops-zoomcamp ``04-deployment/batch``).

Engines write a month into a staging folder inside ``OUT`` (hidden: its name starts with a
dot, which dataset readers skip); :func:`publish` then renames the finished month into place,
so a reader never sees half a month, and an interrupted job leaves none.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pyarrow as pa

from duration_core.datasets import TripMonth

#: The columns of every scored file, in order.
SCHEMA = pa.schema(
    [
        pa.field("ride_id", pa.string(), nullable=False),
        pa.field("pickup_datetime", pa.timestamp("us")),
        pa.field("PULocationID", pa.int64()),
        pa.field("DOLocationID", pa.int64()),
        pa.field("trip_distance", pa.float64()),
        pa.field("actual_duration", pa.float64()),
        pa.field("predicted_duration", pa.float64()),
        pa.field("diff", pa.float64()),
        pa.field("model_name", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("run_id", pa.string()),
    ]
)
#: The partition columns, outermost first.
PARTITIONS = ("service", "year", "month")
#: Prefix of staging folders (hidden from dataset readers).
STAGING_PREFIX = ".duration-score-"


class OutputError(Exception):
    """The output folder cannot be written."""


def partition(month: TripMonth) -> Path:
    """The month's folder relative to the output: ``service=green/year=2021/month=3``."""
    return Path(f"service={month.service}") / f"year={month.year}" / f"month={month.month}"


def make_staging(out: Path) -> Path:
    """Create ``out`` (if needed) and a fresh staging folder inside it.

    Raises:
        OutputError: ``out`` is not a folder or cannot be written.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = out / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        probe = staging / ".write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    return staging


def publish(written: Path, out: Path, month: TripMonth) -> Path:
    """Move a finished month from ``written`` (a folder of parquet files) to its partition
    in ``out``, replacing an earlier scoring of it; returns the partition folder.

    The new folder is renamed into place (the same file system, so each rename is atomic);
    an earlier version is first renamed aside, then deleted.

    Raises:
        OutputError: A rename failed (nothing of the new month is visible then).
    """
    target = out / partition(month)
    aside = written.parent / f"replaced-{uuid.uuid4().hex[:8]}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.rename(aside)
        written.rename(target)
    except OSError as exc:
        if aside.exists() and not target.exists():
            aside.rename(target)  # put the earlier scoring back
        raise OutputError(f"cannot publish {month} to {target}: {exc}") from None
    shutil.rmtree(aside, ignore_errors=True)
    return target


def remove_staging(staging: Path) -> None:
    """Delete a staging folder and whatever it holds (after success or failure)."""
    shutil.rmtree(staging, ignore_errors=True)
