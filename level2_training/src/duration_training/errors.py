"""Errors of the training pipeline; each stops it with a message naming what failed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from duration_core import DurationCoreError

if TYPE_CHECKING:
    from duration_training.validation import ValidationReport


class PipelineError(DurationCoreError):
    """The pipeline stopped; ``step`` names the step that failed."""

    def __init__(self, message: str, *, step: str) -> None:
        super().__init__(message)
        self.step = step


class DataValidationError(PipelineError):
    """A data check failed; ``report`` holds every check's outcome."""

    def __init__(self, message: str, *, report: ValidationReport) -> None:
        super().__init__(message, step="validate")
        self.report = report


class TrackingUnavailableError(PipelineError):
    """The MLflow tracking server cannot be reached."""

    def __init__(self, message: str) -> None:
        super().__init__(message, step="connect")
