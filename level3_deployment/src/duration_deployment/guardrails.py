"""Guardrails: roll a non-champion variant back when it fails or slows down.

Each variant other than the champion has a sliding window of its last ``window`` predictions
(failed or not, and how long they took). Once it holds ``min_predictions``, the variant trips
when the share of failures exceeds ``max_error_rate`` or the 99th percentile of latency exceeds
``max_p99_ms`` *and* is more than ``p99_ratio`` times the champion's p99 over its own window
(when the champion has enough predictions): a pause that slows every variant alike (a
deployment loading a model, a busy machine) is not the challenger's fault. The champion is never
tripped: there is nothing to fall back to.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trip:
    """Why a variant must be rolled back.

    Attributes:
        variant: The variant name.
        model_version: Its model version.
        reason: ``error_rate`` or ``p99``.
        message: One sentence with the measured value, the limit and the window.
    """

    variant: str
    model_version: str
    reason: str
    message: str


class Guardrails:
    """Sliding windows of recent predictions per (variant, model version).

    Args:
        window: Predictions kept per variant.
        min_predictions: Predictions needed before a variant can trip.
        max_error_rate: Largest acceptable share of failed predictions, 0-1.
        max_p99_ms: Largest acceptable 99th-percentile latency, milliseconds.
        p99_ratio: How many times the champion's p99 a variant's p99 must also exceed.
    """

    #: The p99 is recomputed every this many predictions (a sort of ``window`` values).
    P99_EVERY = 10

    def __init__(
        self,
        *,
        window: int,
        min_predictions: int,
        max_error_rate: float,
        max_p99_ms: float,
        p99_ratio: float = 2.0,
    ) -> None:
        self.p99_ratio = p99_ratio
        self._baseline: collections.deque[float] = collections.deque(maxlen=window)
        self.window = window
        self.min_predictions = min(min_predictions, window)
        self.max_error_rate = max_error_rate
        self.max_p99_ms = max_p99_ms
        self._latency: dict[tuple[str, str], collections.deque[float]] = {}
        self._errors: dict[tuple[str, str], collections.deque[bool]] = {}
        self._error_count: dict[tuple[str, str], int] = {}
        self._seen: dict[tuple[str, str], int] = {}
        self._tripped: set[tuple[str, str]] = set()

    def observe_champion(self, latency_ms: float | None) -> None:
        """Record one prediction of the champion: the baseline of the p99 comparison."""
        if latency_ms is not None:
            self._baseline.append(latency_ms)

    def champion_p99(self) -> float | None:
        """The champion's p99 latency over its window, None before ``min_predictions``."""
        if len(self._baseline) < self.min_predictions:
            return None
        return float(np.percentile(np.fromiter(self._baseline, dtype="float64"), 99))

    def observe(
        self, variant: str, model_version: str, *, error: bool, latency_ms: float | None
    ) -> Trip | None:
        """Record one prediction; return a :class:`Trip` the first time a limit is passed.

        ``latency_ms`` is None for a ride predicted within a batch, whose time depends on the
        batch's size: it counts for the error rate only.
        """
        key = (variant, model_version)
        if key in self._tripped:
            return None
        latency = self._latency.setdefault(key, collections.deque(maxlen=self.window))
        errors = self._errors.setdefault(key, collections.deque(maxlen=self.window))
        if len(errors) == self.window and errors[0]:
            self._error_count[key] -= 1
        errors.append(error)
        if latency_ms is not None:
            latency.append(latency_ms)
        self._error_count[key] = self._error_count.get(key, 0) + int(error)
        seen = self._seen[key] = self._seen.get(key, 0) + 1
        if len(errors) < self.min_predictions:
            return None
        rate = self._error_count[key] / len(errors)
        if rate > self.max_error_rate:
            return self._trip(
                key,
                "error_rate",
                f"error rate {rate:.1%} over the last {len(errors)} predictions is above the "
                f"limit of {self.max_error_rate:.1%}",
            )
        if (
            latency_ms is not None
            and len(latency) >= self.min_predictions
            and seen % self.P99_EVERY == 0
        ):
            p99 = float(np.percentile(np.fromiter(latency, dtype="float64"), 99))
            baseline = self.champion_p99()
            if p99 > self.max_p99_ms and (baseline is None or p99 > self.p99_ratio * baseline):
                versus = "" if baseline is None else f" (champion: {baseline:.1f} ms)"
                return self._trip(
                    key,
                    "p99",
                    f"p99 latency {p99:.1f} ms over the last {len(latency)} predictions is "
                    f"above the limit of {self.max_p99_ms:g} ms{versus}",
                )
        return None

    def _trip(self, key: tuple[str, str], reason: str, message: str) -> Trip:
        self._tripped.add(key)
        return Trip(variant=key[0], model_version=key[1], reason=reason, message=message)

    def forget(self, variant: str, model_version: str) -> None:
        """Drop the window of a variant that left the table (a redeploy starts afresh)."""
        key = (variant, model_version)
        for store in (self._latency, self._errors, self._error_count, self._seen):
            store.pop(key, None)
        self._tripped.discard(key)
