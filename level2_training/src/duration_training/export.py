"""The level-2 hand-off: a registered model written as the core library's artifact.

``duration-serve --model PATH`` (level 1) serves the result, so a person releases a model by
exporting ``models:/nyc-taxi-duration@champion`` and restarting the service with it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

from duration_core import MODEL_NAME, save_model
from duration_core.artifact import library_versions
from duration_training.errors import PipelineError
from duration_training.packaging import load_pipeline
from duration_training.tracking import absolute_sqlite, resolve_tracking_uri, tracking

logger = logging.getLogger(__name__)


def export_model(
    model_uri: str,
    out: str | Path,
    *,
    tracking_uri: str | None = None,
    experiment: str = MODEL_NAME,
) -> dict[str, Any]:
    """Load ``model_uri`` (``models:/name@alias`` or ``models:/name/version``) and save it as
    a ``duration-core`` artifact at ``out``; return a summary (version, run id, sha256).

    The pipeline is written by the same scikit-learn that trained it, or not at all: an
    export under another version would hide a version change from the service's check.

    Raises:
        TrackingUnavailableError: The tracking server cannot be reached.
        PipelineError: The URI does not resolve, or the model was trained under another
            scikit-learn version, or is not a pipeline.
    """
    store = absolute_sqlite(resolve_tracking_uri(tracking_uri))
    if store.startswith("sqlite:///") and not Path(store.removeprefix("sqlite:///")).is_file():
        raise PipelineError(
            f"there is no MLflow store at {store}: run duration-pipeline run here first, or "
            "pass --tracking-uri",
            step="export",
        )
    if not model_uri.startswith("models:/") or (
        "@" not in model_uri and "/" not in model_uri.removeprefix("models:/")
    ):
        raise PipelineError(
            f"{model_uri!r} is not a registry URI: use models:/NAME@ALIAS or models:/NAME/VERSION",
            step="export",
        )
    with tracking(tracking_uri, experiment):
        return _export(model_uri, Path(out))


def _export(model_uri: str, out: Path) -> dict[str, Any]:
    client = MlflowClient()
    try:
        version = _resolve_version(client, model_uri)
        info = mlflow.models.get_model_info(model_uri)
        pipeline = load_pipeline(model_uri)
    except MlflowException as exc:
        raise PipelineError(f"cannot load {model_uri}: {exc.message}", step="export") from None
    trained_with = info.flavors.get("sklearn", {}).get("sklearn_version")
    installed = library_versions()["scikit-learn"]
    if trained_with and trained_with != installed:
        raise PipelineError(
            f"{model_uri} was trained with scikit-learn {trained_with}, but {installed} is "
            "installed; export it where the training version is installed",
            step="export",
        )
    if not isinstance(pipeline, Pipeline):
        raise PipelineError(f"{model_uri} is not a scikit-learn Pipeline", step="export")
    run = client.get_run(version.run_id) if version and version.run_id else None
    metadata: dict[str, Any] = {
        "model_uri": model_uri,
        "registered_model": version.name if version else None,
        "registered_version": str(version.version) if version else None,
        "run_id": version.run_id if version else None,
        "model": (run.data.tags.get("best_model") if run else None) or "unknown",
        "metrics": dict(run.data.metrics) if run else {},
        "git_commit": run.data.tags.get("git_commit") if run else None,
    }
    digest = save_model(pipeline, out, metadata)
    logger.info("exported %s (v%s) to %s", model_uri, metadata["registered_version"], out)
    return {**metadata, "model_path": str(Path(out).resolve()), "sha256": digest}


def _resolve_version(client: MlflowClient, model_uri: str):  # type: ignore[no-untyped-def]  # an MLflow ModelVersion
    """The ModelVersion a ``models:/`` URI names (alias or number), else None."""
    if not model_uri.startswith("models:/"):
        return None
    name, _, ref = model_uri.removeprefix("models:/").partition("@")
    if ref:
        return client.get_model_version_by_alias(name, ref)
    name, _, number = name.partition("/")
    return client.get_model_version(name, number) if number else None
