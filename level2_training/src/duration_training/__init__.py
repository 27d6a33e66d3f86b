"""duration_training: level 2 of the ladder, an automated, tracked training pipeline.

``run_pipeline`` ingests TLC months, validates them, trains candidate models as nested MLflow
runs, registers the best as ``nyc-taxi-duration`` with the alias ``challenger`` and moves
``champion`` only when the new version is better. ``duration-pipeline`` is its command line.
"""

from importlib.metadata import PackageNotFoundError, version

from duration_training.config import PipelineConfig
from duration_training.errors import DataValidationError, PipelineError, TrackingUnavailableError
from duration_training.pipeline import PipelineResult, run_pipeline

try:
    __version__ = version("duration-training")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "DataValidationError",
    "PipelineConfig",
    "PipelineError",
    "PipelineResult",
    "TrackingUnavailableError",
    "run_pipeline",
]
