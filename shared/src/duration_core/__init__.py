"""duration_core: the core of the MLOps maturity ladder.

Reads NYC TLC trip records, builds the course's features, fits one scikit-learn pipeline that
predicts trip duration in minutes from raw ride records, scores it and saves it with its
provenance and a reference profile of its training data, against which later rides are checked
for drift. Every level of the ladder uses this library, so every level predicts the same thing.
"""

from importlib.metadata import PackageNotFoundError, version

from duration_core.artifact import (
    LoadedModel,
    load_model,
    read_metadata,
    read_profile,
    save_model,
)
from duration_core.datasets import TripMonth, resolve_month
from duration_core.errors import (
    ChecksumMismatchError,
    DatasetSpecError,
    DownloadError,
    DurationCoreError,
    EmptyDatasetError,
    IncompatibleModelError,
    InvalidRidesError,
    InvalidValueError,
    MissingColumnError,
    ModelArtifactError,
    NotParquetError,
    ProfileError,
    TripDataError,
    TripFileNotFoundError,
)
from duration_core.evaluation import Metrics, evaluate
from duration_core.features import RIDE_FIELDS, RideFeatures, build_features
from duration_core.model import MODEL_NAME, REGRESSORS, build_pipeline
from duration_core.profile import (
    FEATURES,
    PSI_THRESHOLDS,
    DriftReport,
    FeatureDrift,
    ReferenceProfile,
    build_profile,
    drift_report,
    psi,
)
from duration_core.training import TrainingResult, train_model
from duration_core.trip_batches import TripBatch, TripBatches, merge_reports, open_trips
from duration_core.trips import FilterReport, TripData, load_trips, read_trips

try:
    __version__ = version("duration-core")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "FEATURES",
    "MODEL_NAME",
    "PSI_THRESHOLDS",
    "REGRESSORS",
    "RIDE_FIELDS",
    "ChecksumMismatchError",
    "DatasetSpecError",
    "DownloadError",
    "DriftReport",
    "DurationCoreError",
    "EmptyDatasetError",
    "FeatureDrift",
    "FilterReport",
    "IncompatibleModelError",
    "InvalidRidesError",
    "InvalidValueError",
    "LoadedModel",
    "Metrics",
    "MissingColumnError",
    "ModelArtifactError",
    "NotParquetError",
    "ProfileError",
    "ReferenceProfile",
    "RideFeatures",
    "TrainingResult",
    "TripBatch",
    "TripBatches",
    "TripData",
    "TripDataError",
    "TripFileNotFoundError",
    "TripMonth",
    "build_features",
    "build_pipeline",
    "build_profile",
    "drift_report",
    "evaluate",
    "load_model",
    "load_trips",
    "merge_reports",
    "open_trips",
    "psi",
    "read_metadata",
    "read_profile",
    "read_trips",
    "resolve_month",
    "save_model",
    "train_model",
]
