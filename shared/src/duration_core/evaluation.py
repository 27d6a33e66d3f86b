"""Model evaluation: RMSE (the course's metric), MAE and R², in minutes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error


@dataclass(frozen=True)
class Metrics:
    """Errors of predicted trip durations.

    Attributes:
        rmse: Root mean squared error, minutes.
        mae: Mean absolute error, minutes.
        r2: Coefficient of determination (1 is perfect, 0 is the mean predictor).
        n: Number of rides scored.
    """

    rmse: float
    mae: float
    r2: float
    n: int

    def as_dict(self, prefix: str = "") -> dict[str, float | int]:
        """``{prefix + name: value}`` for logging and JSON."""
        return {f"{prefix}{k}": v for k, v in asdict(self).items()}


def evaluate(y_true: np.ndarray, y_pred: np.ndarray) -> Metrics:
    """Score predictions against actual durations.

    RMSE uses :func:`sklearn.metrics.root_mean_squared_error` (``squared=False`` was removed
    from ``mean_squared_error`` in scikit-learn 1.6).

    Args:
        y_true: Actual durations, shape ``(n,)``, minutes.
        y_pred: Predicted durations, shape ``(n,)``, minutes.

    Raises:
        ValueError: The shapes differ or ``n`` is 0.
    """
    y_true = np.asarray(y_true, dtype="float64")
    y_pred = np.asarray(y_pred, dtype="float64")
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"cannot score {y_pred.shape} predictions against {y_true.shape} actuals")
    return Metrics(
        rmse=float(root_mean_squared_error(y_true, y_pred)),
        mae=float(mean_absolute_error(y_true, y_pred)),
        r2=float(r2_score(y_true, y_pred)),
        n=int(y_true.size),
    )
