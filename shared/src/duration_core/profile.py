"""A reference profile of the training data, and drift measures of new rides against it.

At training time :func:`build_profile` records how the model's inputs were distributed, how its
predictions on them were distributed, and which ``PU_DO`` zone pairs it saw
(:func:`duration_core.training.train_model` does this and the artifact stores the result as
``profile.json``). Later, :func:`drift_report` compares a window of rides that reached the
model, with the model's predictions on them, to that profile.

The measure is the population stability index (PSI) of each distribution,
``sum((a - e) * ln(a / e))`` over bins, ``e`` the reference share and ``a`` the window's, read
with the usual rule of thumb (Siddiqi, *Credit Risk Scorecards*, Wiley 2006): below 0.1 no
shift, 0.1 to 0.25 a moderate shift, 0.25 or more a significant one (:data:`PSI_THRESHOLDS`).

Bins:

- ``PULocationID`` and ``DOLocationID``: one bin per zone label (``"1"`` .. ``"265"``, and
  ``"missing"`` for a null zone, as :mod:`duration_core.features` writes them). Zones the
  window has and the reference lacks share one extra bin whose reference share is
  :data:`PSI_EPSILON`.
- ``trip_distance`` (miles) and ``prediction`` (minutes): the reference's deciles (numpy's
  default ``linear`` quantiles), duplicate edges collapsed, so at most 10 bins
  ``(edge[i], edge[i + 1]]`` with the outer edges at -inf and +inf.

Besides the PSI, the report gives the share of window rides whose zone pair the model never saw
in training: the linear model predicts such a ride from the distance alone (its one-hot row is
zero, see :mod:`duration_core.model`), so a rising share means predictions made on less
information.

What these measures give on the bundled months (2021-01 to 2023-03) is in the package's
README ("Drift of the bundled months"); ``shared/tests/test_profile.py`` checks two rows.

The zone PSI needs large windows (sampling noise alone gives roughly ``(zones - 1) / rows``,
measured in the README): windows of fewer than :data:`MIN_WINDOW_ROWS` rides are compared all
the same, with a logged warning.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from duration_core._io import atomic_write
from duration_core.errors import ProfileError
from duration_core.features import build_features, zone_token

logger = logging.getLogger(__name__)

#: The model inputs profiled (the raw ride fields); the predictions are profiled too.
FEATURES = ("PULocationID", "DOLocationID", "trip_distance")
#: Name of the model's predictions (minutes) in profiles and reports.
PREDICTION = "prediction"
#: Profiled per category (zone label) ...
CATEGORICAL = ("PULocationID", "DOLocationID")
#: ... and per quantile bin.
NUMERIC = ("trip_distance", PREDICTION)
#: Every distribution a :class:`DriftReport` measures, in report order.
DRIFT_FEATURES = (*FEATURES, PREDICTION)

#: PSI bounds: "no shift" < 0.1 <= "moderate" < 0.25 <= "significant" (Siddiqi, *Credit Risk
#: Scorecards*, Wiley 2006, the usual rule of thumb).
PSI_THRESHOLDS = (0.1, 0.25)
#: The PSI levels of :func:`psi_level`, lowest first: a :class:`FeatureDrift`'s ``level`` is
#: one of them, and the last ("significant") is the one that counts as drift.
PSI_LEVELS = ("none", "moderate", "significant")
#: Floor for a share in the PSI, so an empty bin gives a large finite term, not infinity.
PSI_EPSILON = 1e-4
#: Quantile bins per numeric feature: deciles of the reference.
QUANTILE_BINS = 10
#: Default :func:`drift_report` threshold on the share of rides with an unseen zone pair; see
#: that function for the measurements behind it.
UNSEEN_PAIR_THRESHOLD = 0.15
#: Windows smaller than this get a warning: their zone PSI is mostly sampling noise.
MIN_WINDOW_ROWS = 5_000
#: ``format`` key written by :meth:`ReferenceProfile.to_dict`.
PROFILE_FORMAT = "duration-core-profile/1"

_KEYS = ("rows", "source", "categorical", "numeric", "pu_do_pairs")
_JSON_INF = {"-Infinity": -math.inf, "Infinity": math.inf}


@dataclass(frozen=True)
class ReferenceProfile:
    """Distributions of the training inputs and of the model's predictions on them, and the set
    of ``PU_DO`` pairs seen.

    Attributes:
        rows: Training rides profiled (> 0).
        source: Where they came from, e.g. ``"green:2021-01"`` or a file name.
        categorical: ``PULocationID`` and ``DOLocationID`` -> {zone label -> share of rides};
            labels ``"1"`` .. ``"265"`` and ``"missing"``, only zones that occur; shares sum
            to 1.
        numeric: ``trip_distance`` (miles) and ``prediction`` (minutes) -> ``{"edges": [...],
            "shares": [...]}``: ``k + 1`` increasing bin edges (first -inf, last +inf, inner
            ones the reference deciles with duplicates collapsed, so ``k <= 10``) and the
            reference share of each bin ``(edges[i], edges[i + 1]]``.
        pu_do_pairs: Zone pairs of the training rides, ``"43_151"`` style (as
            :func:`duration_core.features.build_features` writes ``PU_DO``); stored as a
            frozenset whatever sequence is given.

    Raises:
        ProfileError: On construction, when a field has the wrong type or shape; the message
            names the key at fault.
    """

    rows: int
    source: str
    categorical: dict[str, dict[str, float]]
    numeric: dict[str, dict[str, list[float]]]
    pu_do_pairs: frozenset[str] | tuple[str, ...]

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the fields in place once
        if not _is_int(self.rows) or self.rows <= 0:
            raise ProfileError(f"profile key 'rows' must be a positive integer, not {self.rows!r}")
        set_(self, "rows", int(self.rows))
        if not isinstance(self.source, str):
            raise ProfileError("profile key 'source' must be a string")
        set_(self, "categorical", _check_categorical(self.categorical))
        set_(self, "numeric", _check_numeric(self.numeric))
        pairs = self.pu_do_pairs
        if isinstance(pairs, str | bytes) or not isinstance(pairs, Sequence | frozenset | set):
            raise ProfileError("profile key 'pu_do_pairs' must be a list of 'PU_DO' strings")
        if not all(isinstance(p, str) for p in pairs):
            raise ProfileError("profile key 'pu_do_pairs' must hold strings such as '43_151'")
        set_(self, "pu_do_pairs", frozenset(pairs))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that :meth:`from_dict` reads back to an equal profile.

        Pairs become a sorted list; the infinite outer bin edges become the strings
        ``"-Infinity"`` and ``"Infinity"`` (strict JSON has no infinity). A ``format`` key
        (:data:`PROFILE_FORMAT`) is added.
        """
        return {
            "format": PROFILE_FORMAT,
            "rows": self.rows,
            "source": self.source,
            "categorical": {f: dict(shares) for f, shares in self.categorical.items()},
            "numeric": {
                f: {"edges": [_edge_to_json(e) for e in b["edges"]], "shares": list(b["shares"])}
                for f, b in self.numeric.items()
            },
            "pu_do_pairs": sorted(self.pu_do_pairs),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """The profile written by :meth:`to_dict` (also after a JSON round trip).

        Raises:
            ProfileError: ``data`` is not a dict, lacks one of the keys ``rows``, ``source``,
                ``categorical``, ``numeric``, ``pu_do_pairs``, holds a wrong value under one,
                or names another ``format``; the message names the key.
        """
        if not isinstance(data, Mapping):
            raise ProfileError(f"a reference profile is a dict, not {type(data).__name__}")
        if "format" in data and data["format"] != PROFILE_FORMAT:
            raise ProfileError(
                f"profile key 'format' is {data['format']!r}, expected {PROFILE_FORMAT!r}"
            )
        for key in _KEYS:
            if key not in data:
                raise ProfileError(f"the reference profile lacks the key {key!r}")
        numeric = data["numeric"]
        if isinstance(numeric, Mapping):
            numeric = {
                f: (
                    {**b, "edges": [_edge_from_json(e, f) for e in b["edges"]]}
                    if isinstance(b, Mapping) and isinstance(b.get("edges"), list)
                    else b  # the constructor names what is wrong
                )
                for f, b in numeric.items()
            }
        pairs = data["pu_do_pairs"]
        if not isinstance(pairs, list | tuple):
            raise ProfileError("profile key 'pu_do_pairs' must be a list of 'PU_DO' strings")
        return cls(
            rows=data["rows"],
            source=data["source"],
            categorical=data["categorical"],
            numeric=numeric,
            pu_do_pairs=tuple(pairs),
        )

    def to_json(self) -> str:
        """:meth:`to_dict` as strict, compact JSON text."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes, *, where: str = "profile") -> ReferenceProfile:
        """Read :meth:`to_json` text; ``where`` (a file name) starts any error message.

        Raises:
            ProfileError: Not JSON, or not a valid profile (see :meth:`from_dict`).
        """
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{where}: not a JSON reference profile ({exc})") from None
        try:
            return cls.from_dict(data)
        except ProfileError as exc:
            raise ProfileError(f"{where}: {exc}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the profile to ``path`` as JSON, atomically (the whole file or the old one).

        Raises:
            ProfileError: ``path`` is a folder or cannot be written.
        """
        target = Path(path)
        if str(path).strip() == "" or target.is_dir():
            raise ProfileError(f"profile path {str(path)!r} is a folder, not a file name")
        try:
            with atomic_write(target) as (handle, _):
                handle.write(self.to_json().encode())
        except OSError as exc:
            raise ProfileError(f"cannot write {target}: {exc.strerror or exc}") from None
        logger.info("saved reference profile of %s rides to %s", f"{self.rows:,}", target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferenceProfile:
        """Read a profile written by :meth:`save`.

        Raises:
            ProfileError: The file is missing or unreadable, or not a valid profile.
        """
        target = Path(path)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise ProfileError(f"profile file not found: {target}") from None
        except OSError as exc:
            raise ProfileError(f"cannot read profile file {target}: {exc.strerror}") from None
        return cls.from_json(data, where=str(target))


@dataclass(frozen=True)
class FeatureDrift:
    """The PSI of one distribution and its level.

    Attributes:
        feature: A name of :data:`DRIFT_FEATURES`.
        psi: Population stability index, >= 0.
        level: ``"none"``, ``"moderate"`` or ``"significant"`` (see :func:`psi_level`).
    """

    feature: str
    psi: float
    level: str


@dataclass(frozen=True)
class DriftReport:
    """A window of rides compared with a :class:`ReferenceProfile`.

    Attributes:
        rows: Rides in the window compared.
        features: PSI per distribution: ``PULocationID``, ``DOLocationID``, ``trip_distance``,
            ``prediction`` (in that order).
        unseen_pair_share: Share (0-1) of window rides whose ``PU_DO`` pair is not in the
            profile.
        unseen_pair_threshold: The share above which the window counts as drifted.
        drifted: Some feature's level is ``"significant"``, or ``unseen_pair_share`` is above
            ``unseen_pair_threshold``.
    """

    rows: int
    features: dict[str, FeatureDrift]
    unseen_pair_share: float
    unseen_pair_threshold: float
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: the fields, with ``features`` as ``{name: {feature, psi, level}}``."""
        return {
            "rows": self.rows,
            "features": {
                name: {"feature": d.feature, "psi": d.psi, "level": d.level}
                for name, d in self.features.items()
            },
            "unseen_pair_share": self.unseen_pair_share,
            "unseen_pair_threshold": self.unseen_pair_threshold,
            "drifted": self.drifted,
        }

    def __str__(self) -> str:
        psis = ", ".join(f"{n} {d.psi:.4f} ({d.level})" for n, d in self.features.items())
        return (
            f"{'drift' if self.drifted else 'no drift'} over {self.rows:,} rides: PSI {psis}; "
            f"unseen zone pairs {self.unseen_pair_share:.2%} "
            f"(threshold {self.unseen_pair_threshold:.2%})"
        )


def psi(expected: ArrayLike, actual: ArrayLike, *, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of ``actual`` against ``expected``.

    ``sum((a - e) * ln(a / e))`` over the bins, after normalising each vector to shares and
    flooring every share at ``epsilon`` (floored shares are not renormalised), so an empty bin
    adds a large but finite term. Symmetric in its arguments, and 0 for equal distributions.

    Args:
        expected: Reference shares or counts per bin, shape ``(k,)``.
        actual: Shares or counts of the same bins, shape ``(k,)``.
        epsilon: Share floor, ``0 < epsilon < 1``; default :data:`PSI_EPSILON` (1e-4).

    Raises:
        ValueError: The vectors differ in length, are empty, hold a negative or non-finite
            value or sum to 0; or ``epsilon`` is out of range.
    """
    if not (isinstance(epsilon, int | float) and 0 < epsilon < 1):
        raise ValueError(f"epsilon must be a share between 0 and 1 (exclusive), not {epsilon!r}")
    e = _shares(expected, "expected")
    a = _shares(actual, "actual")
    if e.shape != a.shape:
        raise ValueError(f"expected has {e.size} bins but actual has {a.size}")
    e = np.maximum(e, epsilon)
    a = np.maximum(a, epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_level(value: float) -> str:
    """``"none"`` below 0.1, ``"moderate"`` below 0.25, else ``"significant"``.

    The bounds are :data:`PSI_THRESHOLDS` (Siddiqi, *Credit Risk Scorecards*, 2006).
    """
    moderate, significant = PSI_THRESHOLDS
    if value < moderate:
        return PSI_LEVELS[0]
    return PSI_LEVELS[1] if value < significant else PSI_LEVELS[2]


def unseen_pairs_drifted(share: float, threshold: float) -> bool:
    """The unseen-pair half of the drift rule: ``share`` (0-1) of a window's rides on zone
    pairs absent from the profile is above ``threshold`` (0-1; equal is not drift).

    :func:`drift_report` counts a window as drifted when this holds or some distribution's
    level is ``"significant"``; a report page uses it to say which of the two fired.
    """
    return share > threshold


def build_profile(rides: pd.DataFrame, predictions: ArrayLike, *, source: str) -> ReferenceProfile:
    """Profile the training rides and the model's predictions on them.

    Args:
        rides: ``n`` training rides with ``PULocationID``, ``DOLocationID`` (null zones are
            profiled as ``"missing"``) and ``trip_distance`` (miles); other columns are ignored.
        predictions: The model's predicted minutes for those rides, shape ``(n,)``.
        source: Where the rides came from, e.g. ``"green:2021-01"``.

    Returns:
        The profile; :func:`drift_report` compares a later window with it.

    Raises:
        ValueError: No rides; ``predictions`` is not ``(n,)`` finite numbers (a length
            mismatch names both lengths).
        InvalidRidesError: A ride field is missing or unusable (a ``ValueError`` too).
    """
    features, predicted = _window(rides, predictions, what="training set")
    categorical = {name: _zone_shares(features[name]) for name in CATEGORICAL}
    numeric = {}
    for name, values in (
        ("trip_distance", features["trip_distance"].to_numpy(dtype="float64")),
        (PREDICTION, predicted),
    ):
        edges = _quantile_edges(values)
        numeric[name] = {"edges": edges, "shares": _bin_shares(values, edges).tolist()}
    profile = ReferenceProfile(
        rows=len(features),
        source=str(source),
        categorical=categorical,
        numeric=numeric,
        pu_do_pairs=frozenset(features["PU_DO"].unique()),
    )
    logger.info(
        "profiled %s rides of %s: %s zone pairs",
        f"{profile.rows:,}",
        profile.source,
        f"{len(profile.pu_do_pairs):,}",
    )
    return profile


def drift_report(
    profile: ReferenceProfile,
    rides: pd.DataFrame,
    predictions: ArrayLike,
    *,
    unseen_pair_threshold: float = UNSEEN_PAIR_THRESHOLD,
) -> DriftReport:
    """Compare a window of rides and the model's predictions on them with ``profile``.

    Each of :data:`DRIFT_FEATURES` gets its PSI (:func:`psi`, shares floored at
    :data:`PSI_EPSILON` = 1e-4 so an empty bin gives no infinity) over the profile's bins; zones
    absent from the profile go together into one extra bin of reference share epsilon.

    The default ``unseen_pair_threshold``, 0.15, comes from the bundled green months against a
    2021-01 profile (table in the module docstring). Without drift, about 8.5 % of a month's
    rides take a zone pair unseen in one training month: 8.49 % in 2021-02 and 9.19 % in
    2021-03, as the Good-Turing estimate from 2021-01 alone predicts (8.45 %, the share of
    rides on pairs seen once). That is ordinary month-to-month variation and must not be
    flagged; 0.15, about 1.7 times that level, leaves room for window-to-window noise (the
    share's standard deviation is 0.4 points at 5,000 rides, 1.3 at 500; the largest of 20
    random 500-ride draws of 2021-02 was 10.8 %). 2023-03 is *not* caught by this test (5.04 %,
    below the 2021 months); it is flagged by its PSI: pickup zones 1.07, drop-off zones 0.67 and
    predictions 0.27 are "significant".

    Args:
        profile: The training profile (e.g. ``load_model(...).profile``).
        rides: ``n`` rides of the window, with the ride fields (see :func:`build_profile`).
        predictions: The model's predicted minutes for them, shape ``(n,)``.
        unseen_pair_threshold: Share (0-1) of rides on unseen zone pairs above which the
            window counts as drifted.

    Raises:
        ValueError: No rides in the window; ``predictions`` is not ``(n,)`` finite numbers;
            ``unseen_pair_threshold`` is not a share between 0 and 1.
        InvalidRidesError: A ride field is missing or unusable (a ``ValueError`` too).
        TypeError: ``profile`` is not a :class:`ReferenceProfile`.
    """
    if not isinstance(profile, ReferenceProfile):
        raise TypeError(f"profile must be a ReferenceProfile, not {type(profile).__name__}")
    if not (
        isinstance(unseen_pair_threshold, int | float)
        and not isinstance(unseen_pair_threshold, bool)
        and 0 <= unseen_pair_threshold <= 1
    ):
        raise ValueError(
            f"unseen_pair_threshold must be a share between 0 and 1, not {unseen_pair_threshold!r}"
        )
    features, predicted = _window(rides, predictions, what="window")
    rows = len(features)
    if rows < MIN_WINDOW_ROWS:
        logger.info(
            "a window of %s rides is small: its zone PSI is inflated by sampling noise "
            "(roughly zones / rides); %s or more rides are advised",
            f"{rows:,}",
            f"{MIN_WINDOW_ROWS:,}",
        )
    values: dict[str, float] = {}
    for name in CATEGORICAL:
        reference = profile.categorical[name]
        window = _zone_shares(features[name])
        unseen = sum(share for label, share in window.items() if label not in reference)
        values[name] = psi(
            [*reference.values(), 0.0], [*(window.get(z, 0.0) for z in reference), unseen]
        )
    for name, column in (
        ("trip_distance", features["trip_distance"].to_numpy(dtype="float64")),
        (PREDICTION, predicted),
    ):
        bins = profile.numeric[name]
        values[name] = psi(bins["shares"], _bin_shares(column, bins["edges"]))
    drift = {n: FeatureDrift(feature=n, psi=values[n], level=psi_level(values[n])) for n in values}
    drift = {n: drift[n] for n in DRIFT_FEATURES}
    unseen_share = float((~features["PU_DO"].isin(profile.pu_do_pairs)).mean())
    report = DriftReport(
        rows=rows,
        features=drift,
        unseen_pair_share=unseen_share,
        unseen_pair_threshold=float(unseen_pair_threshold),
        drifted=any(d.level == PSI_LEVELS[-1] for d in drift.values())
        or unseen_pairs_drifted(unseen_share, unseen_pair_threshold),
    )
    # The caller decides what drift means to it (a metric, an alert): the library only reports.
    logger.info("window vs the profile of %s: %s", profile.source, report)
    return report


# --- helpers ---------------------------------------------------------------------------------


def _window(
    rides: pd.DataFrame, predictions: ArrayLike, *, what: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """The ride features (with the zone IDs) and the predictions as float64 ``(n,)``."""
    if isinstance(rides, pd.DataFrame | list | tuple) and len(rides) == 0:
        raise ValueError(f"no rides in the {what}: there is nothing to profile or compare")
    features = build_features(rides, zones=True)
    try:
        predicted = np.asarray(predictions, dtype="float64")
    except (TypeError, ValueError):
        raise ValueError("predictions must be numbers of minutes") from None
    if predicted.ndim != 1:
        raise ValueError(f"predictions must have shape (n,), not {predicted.shape}")
    if len(predicted) != len(features):
        raise ValueError(
            f"{len(features):,} rides in the {what} but {len(predicted):,} predictions: "
            "give one prediction per ride"
        )
    bad = ~np.isfinite(predicted)
    if bad.any():
        raise ValueError(
            f"predictions must be finite minutes; {int(bad.sum()):,} are not "
            f"(first at row {int(np.argmax(bad))})"
        )
    return features, predicted


def _zone_shares(zones: pd.Series) -> dict[str, float]:
    """Zone label -> share of rides, zones in numeric order, ``"missing"`` last."""
    counts = zones.value_counts(dropna=False, sort=False)
    total = len(zones)
    order = sorted(counts.index, key=lambda z: (pd.isna(z), 0 if pd.isna(z) else z))
    return {zone_token(z): int(counts[z]) / total for z in order}


def _quantile_edges(values: np.ndarray) -> list[float]:
    """``[-inf, deciles without duplicates..., +inf]``."""
    inner = np.unique(np.quantile(values, np.arange(1, QUANTILE_BINS) / QUANTILE_BINS))
    return [-math.inf, *(float(e) for e in inner), math.inf]


def _bin_shares(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Share of ``values`` in each bin ``(edges[i], edges[i + 1]]``."""
    index = np.searchsorted(np.asarray(edges[1:-1], dtype="float64"), values, side="left")
    shares: np.ndarray = np.bincount(index, minlength=len(edges) - 1) / len(values)
    return shares


def _shares(values: ArrayLike, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype="float64")
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers (shares or counts per bin)") from None
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty vector of shares or counts per bin")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError(f"{name} must hold finite, non-negative shares or counts")
    total = array.sum()
    if total <= 0:
        raise ValueError(f"{name} sums to 0: there is no distribution to compare")
    shares: np.ndarray = array / total
    return shares


def _is_int(value: object) -> bool:
    return bool(isinstance(value, int | np.integer) and not isinstance(value, bool))


def _is_share(value: object) -> bool:
    return bool(
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _check_categorical(categorical: object) -> dict[str, dict[str, float]]:
    if not isinstance(categorical, Mapping):
        raise ProfileError("profile key 'categorical' must map features to {zone: share}")
    checked = {}
    for name in CATEGORICAL:
        key = f"categorical[{name!r}]"
        if name not in categorical:
            raise ProfileError(f"the reference profile lacks the key {key}")
        shares = categorical[name]
        if not isinstance(shares, Mapping) or not shares:
            raise ProfileError(f"profile key {key} must be a non-empty {{zone: share}} dict")
        for label, share in shares.items():
            if not isinstance(label, str) or not _is_share(share):
                raise ProfileError(
                    f"profile key {key} must map zone labels to shares, found {label!r}: {share!r}"
                )
        _check_sum(sum(shares.values()), key)
        checked[name] = {label: float(share) for label, share in shares.items()}
    return checked


def _check_numeric(numeric: object) -> dict[str, dict[str, list[float]]]:
    if not isinstance(numeric, Mapping):
        raise ProfileError("profile key 'numeric' must map features to {edges, shares}")
    checked = {}
    for name in NUMERIC:
        key = f"numeric[{name!r}]"
        if name not in numeric:
            raise ProfileError(f"the reference profile lacks the key {key}")
        bins = numeric[name]
        if not isinstance(bins, Mapping):
            raise ProfileError(f"profile key {key} must be a dict with 'edges' and 'shares'")
        for part in ("edges", "shares"):
            if part not in bins:
                raise ProfileError(f"the reference profile lacks the key {key}[{part!r}]")
            if not isinstance(bins[part], Sequence) or isinstance(bins[part], str):
                raise ProfileError(f"profile key {key}[{part!r}] must be a list of numbers")
        edges, shares = list(bins["edges"]), list(bins["shares"])
        if not all(isinstance(e, int | float) and not isinstance(e, bool) for e in edges) or (
            len(edges) < 2
            or edges[0] != -math.inf
            or edges[-1] != math.inf
            or any(not a < b for a, b in pairwise(edges))
        ):
            raise ProfileError(
                f"profile key {key}['edges'] must be increasing numbers from -inf to +inf"
            )
        if len(shares) != len(edges) - 1 or not all(_is_share(s) for s in shares):
            raise ProfileError(
                f"profile key {key}['shares'] must hold one non-negative share per bin "
                f"({len(edges) - 1}), found {len(shares)} values"
            )
        _check_sum(sum(shares), f"{key}['shares']")
        checked[name] = {"edges": [float(e) for e in edges], "shares": [float(s) for s in shares]}
    return checked


def _check_sum(total: float, key: str) -> None:
    if abs(total - 1.0) > 1e-6:
        raise ProfileError(f"profile key {key}: the shares sum to {total:.6g}, not 1")


def _edge_to_json(edge: float) -> float | str:
    if math.isinf(edge):
        return "Infinity" if edge > 0 else "-Infinity"
    return edge


def _edge_from_json(edge: object, feature: str) -> object:
    if isinstance(edge, str):
        if edge not in _JSON_INF:
            raise ProfileError(
                f"profile key numeric[{feature!r}]['edges'] holds {edge!r}, not a number"
            )
        return _JSON_INF[edge]
    return edge
