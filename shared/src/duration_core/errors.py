"""The library's exception family.

Every error that ``duration_core`` raises on bad input derives from :class:`DurationCoreError`,
so callers (a CLI, a web service) can catch one type and show its message. The messages name
the file, column or field at fault; none of them is a bare ``KeyError`` or a pandas traceback.
"""

from __future__ import annotations


class DurationCoreError(Exception):
    """Base class of every error raised by ``duration_core`` on bad input or state."""


class TripDataError(DurationCoreError):
    """A trip-record file cannot be used (missing, not parquet, wrong schema, bad values)."""


class TripFileNotFoundError(TripDataError, FileNotFoundError):
    """The trip-record file does not exist."""


class NotParquetError(TripDataError):
    """The file exists but is not a readable parquet file."""


class MissingColumnError(TripDataError):
    """A column the reader needs is absent from the file.

    Attributes:
        column: The canonical name of the missing column (e.g. ``DOLocationID``).
        path: The file that lacks it.
    """

    def __init__(self, message: str, *, column: str, path: str) -> None:
        super().__init__(message)
        self.column = column
        self.path = path


class InvalidValueError(TripDataError):
    """A column holds values of the wrong kind (e.g. a location ID of 12.5)."""


class EmptyDatasetError(TripDataError):
    """No rides are left: the file is empty, or every ride failed the duration filter."""


class DatasetSpecError(DurationCoreError, ValueError):
    """A dataset spec such as ``green:2021-13`` cannot be parsed."""


class DownloadError(DurationCoreError):
    """A month could not be downloaded (HTTP error, interrupted transfer, not parquet)."""


class InvalidRidesError(DurationCoreError, ValueError):
    """Ride records given to the model lack a field or hold an unusable value."""


class ModelArtifactError(DurationCoreError):
    """A model artifact cannot be read (missing, not an artifact, damaged)."""


class ChecksumMismatchError(ModelArtifactError):
    """The artifact's content does not match the sha256 recorded for it."""


class IncompatibleModelError(ModelArtifactError):
    """The artifact was saved under another scikit-learn version than the one installed."""


class ProfileError(DurationCoreError):
    """A reference profile cannot be used: a missing or bad key, or an unreadable file."""
