"""The trip-duration model: ONE scikit-learn pipeline from raw rides to minutes.

Steps:

1. ``features``: :class:`~duration_core.features.RideFeatures` builds ``PU_DO`` and
   ``trip_distance`` from raw ride records.
2. ``encode``: :class:`~duration_core.encoding.RideVectorizer`, a sparse one-hot encoding of
   ``PU_DO`` (pairs sorted as strings; a pair not seen in training gets no one-hot entry)
   followed by ``trip_distance``: the very matrix of the course's ``DictVectorizer``, so the
   fit is the course's fit, at a per-request cost a web service can afford.
3. ``regressor``: ``LinearRegression`` (the course's baseline), ``Lasso`` or ``Ridge``.

``pipeline.predict(rides)`` takes a DataFrame or a list of ride dicts and returns minutes,
shape ``(n,)``. A zone pair never seen in training is still predicted: its one-hot row is zero,
so the prediction is the intercept plus the distance term.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import RegressorMixin
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.pipeline import Pipeline

from duration_core.encoding import RideVectorizer
from duration_core.features import RideFeatures

#: Regressors by name, with the course's settings (Lasso alpha 0.01: 02-experiment-tracking).
REGRESSORS: dict[str, Callable[..., RegressorMixin]] = {
    "linear": LinearRegression,
    "lasso": lambda **params: Lasso(**{"alpha": 0.01, **params}),
    "ridge": lambda **params: Ridge(**{"alpha": 1.0, **params}),
}


def build_pipeline(model: str = "linear", **params: Any) -> Pipeline:
    """A fresh, unfitted trip-duration pipeline.

    Args:
        model: A key of :data:`REGRESSORS`: ``linear``, ``lasso`` or ``ridge``.
        **params: Passed to the regressor (e.g. ``alpha=0.1``).

    Raises:
        ValueError: ``model`` is not a known regressor, or a parameter is not one of its own.
    """
    try:
        make_regressor = REGRESSORS[model]
    except KeyError:
        raise ValueError(
            f"unknown model {model!r}: expected one of {', '.join(REGRESSORS)}"
        ) from None
    try:
        regressor = make_regressor(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameter for model {model!r}: {exc}") from None
    return Pipeline(
        [
            ("features", RideFeatures()),
            ("encode", RideVectorizer()),
            ("regressor", regressor),
        ]
    )
