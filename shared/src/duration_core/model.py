"""The trip-duration model: ONE scikit-learn pipeline from raw rides to minutes.

Steps:

1. ``features``: :class:`~duration_core.features.RideFeatures` builds ``PU_DO`` and
   ``trip_distance`` from raw ride records.
2. ``encode``: a sparse one-hot encoding of ``PU_DO`` (categories sorted as strings, unknown
   pairs encoded as all zeros) followed by ``trip_distance`` as is. The columns come out in the
   order the course's ``DictVectorizer`` gives them, so the fit is the course's fit.
3. ``regressor``: ``LinearRegression`` (the course's baseline), ``Lasso`` or ``Ridge``.

``pipeline.predict(rides)`` takes a DataFrame or a list of ride dicts and returns minutes,
shape ``(n,)``. A zone pair never seen in training is still predicted: its one-hot row is zero,
so the prediction is the intercept plus the distance term.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from duration_core.features import RideFeatures

#: Regressors by name, with the course's settings (Lasso alpha 0.01: 02-experiment-tracking).
REGRESSORS: dict[str, Callable[..., RegressorMixin]] = {
    "linear": LinearRegression,
    "lasso": lambda **params: Lasso(**{"alpha": 0.01, **params}),
    "ridge": lambda **params: Ridge(**{"alpha": 1.0, **params}),
}


def build_encoder() -> ColumnTransformer:
    """Sparse one-hot of ``PU_DO`` then ``trip_distance``: shape ``(n, n_pairs + 1)``."""
    return ColumnTransformer(
        [
            ("PU_DO", OneHotEncoder(handle_unknown="ignore"), ["PU_DO"]),
            ("trip_distance", "passthrough", ["trip_distance"]),
        ],
        sparse_threshold=1.0,
        verbose_feature_names_out=False,
    )


def build_pipeline(model: str = "linear", **params: Any) -> Pipeline:
    """A fresh, unfitted trip-duration pipeline.

    Args:
        model: A key of :data:`REGRESSORS`: ``linear``, ``lasso`` or ``ridge``.
        **params: Passed to the regressor (e.g. ``alpha=0.1``).

    Raises:
        ValueError: ``model`` is not a known regressor.
    """
    try:
        make_regressor = REGRESSORS[model]
    except KeyError:
        raise ValueError(
            f"unknown model {model!r}: expected one of {', '.join(REGRESSORS)}"
        ) from None
    return Pipeline(
        [
            ("features", RideFeatures()),
            ("encode", build_encoder()),
            ("regressor", make_regressor(**params)),
        ]
    )
