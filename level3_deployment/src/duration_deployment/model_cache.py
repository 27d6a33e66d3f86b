"""Loaded model versions and their micro-batchers, one of each per registered version.

Loading is the slow half of a deployment (download, digest check, skops load, smoke test), so
a version is loaded once and reused by every variant and every later deployment of it.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from duration_deployment.config import RouterSettings
from duration_deployment.registry import DeployedModel, Registry, load_pipeline, smoke_test
from duration_service.model_state import PredictionBatcher

logger = logging.getLogger(__name__)


class ModelCache:
    """Resolve, download, verify, load and smoke-test versions of the router's model.

    Args:
        registry: The MLflow registry the versions come from.
        settings: The smoke test's limits (``smoke_max_seconds``, ``smoke_min_minutes``,
            ``smoke_max_minutes``).
    """

    def __init__(self, registry: Registry, settings: RouterSettings) -> None:
        self.registry = registry
        self.settings = settings
        self.models: dict[str, DeployedModel] = {}  # by version number
        self.batchers: dict[tuple[str, str, int], PredictionBatcher] = {}

    def load(self, model_uri: str) -> DeployedModel:
        """The version ``model_uri`` names, loaded and smoke-tested (blocking: run it in a
        worker thread). A version already loaded with the same digest is reused.

        Raises:
            DeploymentError: Bad URI, unverifiable download, failed load or smoke test
                (nothing is cached then).
            RegistryUnavailableError: The registry is down.
        """
        version, folder, digest, sklearn_version, profile = self.registry.fetch(model_uri)
        number = str(version.version)
        cached = self.models.get(number)
        if cached is not None and cached.sha256 == digest:
            # A profile that failed to download before may be there now.
            if cached.profile is None and profile is not None:
                cached = self.models[number] = replace(cached, profile=profile)
            return replace(cached, requested_uri=model_uri)
        pipeline = load_pipeline(folder)
        s = self.settings
        smoke_ms = smoke_test(
            pipeline,
            max_seconds=s.smoke_max_seconds,
            min_minutes=s.smoke_min_minutes,
            max_minutes=s.smoke_max_minutes,
        )
        model = DeployedModel(
            name=self.registry.model_name,
            version=number,
            run_id=version.run_id,
            requested_uri=model_uri,
            sha256=digest,
            pipeline=pipeline,
            profile=profile,
            model_kind=self.registry.run_tag(version.run_id, "best_model") or "unknown",
            sklearn_version=sklearn_version,
            smoke_ms=smoke_ms,
        )
        self.models[number] = model
        logger.info(
            "loaded %s (v%s, %s), smoke test %.1f ms", model_uri, number, model.model_kind, smoke_ms
        )
        return model

    def batcher(self, model: DeployedModel) -> PredictionBatcher:
        """The micro-batcher of ``model``: one per loaded version, so two variants of the same
        version share their batches (a pipeline call has a fixed cost of about 1 ms)."""
        key = (model.version, model.sha256, id(model.pipeline))
        found = self.batchers.get(key)
        if found is None:
            found = self.batchers[key] = PredictionBatcher(model)
        return found
