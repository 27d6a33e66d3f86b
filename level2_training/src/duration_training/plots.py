"""Evaluation plots logged with each candidate: predicted vs actual, residuals by distance."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display on a CI runner

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

DISTANCE_BINS = (0, 1, 2, 3, 5, 8, 12, 20, np.inf)


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, title: str) -> Figure:
    """Hexbin of predicted against actual duration (minutes), with the diagonal."""
    fig, ax = plt.subplots(figsize=(6, 5))
    hb = ax.hexbin(actual, predicted, gridsize=60, bins="log", cmap="viridis", mincnt=1)
    ax.plot([0, 60], [0, 60], color="red", linewidth=1, label="perfect prediction")
    ax.set(xlabel="actual duration (min)", ylabel="predicted duration (min)", title=title)
    ax.legend(loc="upper left")
    fig.colorbar(hb, ax=ax, label="rides (log scale)")
    fig.tight_layout()
    return fig


def residuals_by_distance(
    distance: np.ndarray, actual: np.ndarray, predicted: np.ndarray, title: str
) -> Figure:
    """Box plot of residuals (predicted - actual, minutes) per trip-distance band (miles)."""
    bands = pd.cut(distance, DISTANCE_BINS, right=False)
    residual = pd.Series(predicted - actual)
    groups = [(str(b), residual[bands == b].to_numpy()) for b in bands.categories]
    groups = [(label, values) for label, values in groups if len(values)]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.boxplot([v for _, v in groups], showfliers=False)
    ax.set_xticks(range(1, len(groups) + 1), [label for label, _ in groups], rotation=30)
    ax.axhline(0, color="red", linewidth=1)
    ax.set(xlabel="trip distance (miles)", ylabel="residual (min)", title=title)
    fig.tight_layout()
    return fig
