"""What the loop reads from and writes to the MLflow registry: a version's facts (its run, its
validation RMSE, its training profile, the months it was trained on) and the ``operations.*``
tags that audit each decision on the version itself.

The router moves the aliases; this module never does.

Raises (every function): :class:`RegistryUnavailableError` when the tracking server cannot be
reached or fails, :class:`RegistryRecordError` when a version lacks what the loop needs.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from duration_core.profile import ReferenceProfile
from duration_training.pipeline import PROFILE_ARTIFACT

#: Prefix of the tags the loop writes on a model version.
TAG_PREFIX = "operations."
_MONTH = re.compile(r"\b(green|yellow|fhv|fhvhv):(\d{4})-(\d{2})\b")


class RegistryUnavailableError(Exception):
    """The tracking server could not be reached or failed: try again later."""


class RegistryRecordError(Exception):
    """A model version lacks a record the loop needs (its profile, its val_rmse tag)."""


@dataclass(frozen=True)
class VersionFacts:
    """A registered version as the loop sees it.

    Attributes:
        version: The version number.
        run_id: The level-2 pipeline run that registered it.
        val_rmse: Its RMSE on its validation data, minutes (the ``val_rmse`` tag).
        profile: Its training data's reference profile (the run's ``reference_profile.json``).
        months: The ``(service, year, month)`` months its training data came from, newest
            last (from the run's ``train`` parameter and the ``operations.months`` tag).
        tags: All of the version's tags.
    """

    version: str
    run_id: str
    val_rmse: float
    profile: ReferenceProfile
    months: tuple[tuple[str, int, int], ...]
    tags: dict[str, str]


def _client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def version_facts(tracking_uri: str, model_name: str, version: str) -> VersionFacts:
    """The facts of ``model_name`` version ``version``; see :class:`VersionFacts`."""
    client = _client(tracking_uri)
    try:
        mv = client.get_model_version(model_name, version)
        if not mv.run_id:
            raise RegistryRecordError(f"{model_name} v{version} was registered without a run")
        run_id: str = mv.run_id
        run = client.get_run(run_id)
        with tempfile.TemporaryDirectory() as folder:
            path = client.download_artifacts(run_id, PROFILE_ARTIFACT, folder)
            profile = ReferenceProfile.from_json(Path(path).read_bytes(), where=PROFILE_ARTIFACT)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise RegistryRecordError(
                f"{model_name} v{version}: {exc.message} (the loop needs versions registered "
                "by level 2's pipeline, with their reference_profile.json)"
            ) from None
        raise RegistryUnavailableError(
            f"the registry at {tracking_uri} failed: {exc.message}"
        ) from None
    except OSError as exc:
        raise RegistryUnavailableError(f"the registry at {tracking_uri} failed: {exc}") from None
    tags = dict(mv.tags)
    try:
        val_rmse = float(tags["val_rmse"])
    except (KeyError, ValueError):
        raise RegistryRecordError(
            f"{model_name} v{version} has no numeric val_rmse tag (level 2's decide step writes it)"
        ) from None
    text = run.data.params.get("train", "") + " " + tags.get(TAG_PREFIX + "months", "")
    months = sorted({(s, int(y), int(m)) for s, y, m in _MONTH.findall(text)}, key=lambda t: t[1:])
    return VersionFacts(
        version=version,
        run_id=run_id,
        val_rmse=val_rmse,
        profile=profile,
        months=tuple(months),
        tags=tags,
    )


def tag_version(tracking_uri: str, model_name: str, version: str, tags: dict[str, Any]) -> None:
    """Set ``operations.<key>`` tags on the version; non-string values are written as JSON."""
    client = _client(tracking_uri)
    try:
        for key, value in tags.items():
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            client.set_model_version_tag(model_name, version, TAG_PREFIX + key, text[:5000])
    except MlflowException as exc:
        raise RegistryUnavailableError(
            f"the registry at {tracking_uri} failed: {exc.message}"
        ) from None
