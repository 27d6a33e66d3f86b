"""The MLflow model registry, as the router uses it: resolve, download, verify, load, move aliases.

Only ``models:/NAME@ALIAS`` and ``models:/NAME/VERSION`` URIs of the configured registry and
model are accepted (or a bare version number): a request can never name a file path or a URL,
so nobody can make the router load a file of their choosing. A download is checked against the
digest that level 2 tagged at registration (``model_sha256``) and against the installed
scikit-learn version before it is loaded with skops, which only builds trusted types.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import mlflow.artifacts
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.store.artifact.models_artifact_repo import REGISTERED_MODEL_META_FILE_NAME
from mlflow.tracking import MlflowClient
from mlflow.utils.yaml_utils import write_yaml

from duration_core import DurationCoreError
from duration_core.artifact import library_versions
from duration_core.profile import ReferenceProfile
from duration_deployment.errors import (
    DeploymentError,
    NotFoundError,
    RegistryRefusedError,
    RegistryUnavailableError,
)
from duration_deployment.registry_refusals import NEEDS_EDIT, NEEDS_MANAGE, NEEDS_READ, refusal
from duration_training import packaging
from duration_training.pipeline import PROFILE_ARTIFACT
from duration_training.tracking import (
    MODEL_SHA256_TAG,
    absolute_sqlite,
    model_digest,
    probe_server,
    resolve_tracking_uri,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: What a deployment may name, as a JSON-Schema (ECMA) pattern: ``models:/NAME@ALIAS``,
#: ``models:/NAME/VERSION`` (names as MLflow allows them) or a bare version number.
MODEL_URI_PATTERN = r"^(models:/[\w.\- ]{1,256}(@[\w\-]{1,255}|/[0-9]{1,9})|[0-9]{1,9})$"
_URI = re.compile(
    r"^models:/(?P<name>[\w.\- ]{1,256})(?:@(?P<alias>[\w\-]{1,255})|/(?P<version>\d{1,9}))$"
)

#: Real rides (green 2021-02, kept by the course's 1-60 minute filter) with zones 264/265
#: ("Unknown" in the TLC zone table) and a missing zone, for the smoke test.
SMOKE_RIDES: tuple[dict[str, Any], ...] = (
    {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5},
    {"PULocationID": 74, "DOLocationID": 75, "trip_distance": 0.8},
    {"PULocationID": 82, "DOLocationID": 138, "trip_distance": 5.2},
    {"PULocationID": 41, "DOLocationID": 238, "trip_distance": 2.1},
    {"PULocationID": 97, "DOLocationID": 61, "trip_distance": 3.4},
    {"PULocationID": 7, "DOLocationID": 132, "trip_distance": 13.9},
    {"PULocationID": 264, "DOLocationID": 264, "trip_distance": 0.0},
    {"PULocationID": 265, "DOLocationID": 1, "trip_distance": 17.3},
)


@dataclass(frozen=True, eq=False)
class DeployedModel:
    """A registered model version, downloaded, verified, loaded and smoke-tested.

    Attributes:
        name: Registered model name.
        version: Model version (a number, as a string).
        run_id: The MLflow run that logged it (traceability: params, data, git commit).
        requested_uri: The URI the deployment asked for (e.g. ``models:/name@challenger``).
        sha256: :func:`~duration_training.tracking.model_digest` of its files.
        pipeline: The scikit-learn pipeline; ``predict`` takes ride dicts, returns minutes.
        profile: The training data's reference profile, None when the run has none.
        model_kind: The candidate that won in its run (``linear``, ``gbm``, ...).
        sklearn_version: scikit-learn version it was saved with.
        smoke_ms: Time of the smoke test, milliseconds.
    """

    name: str
    version: str
    run_id: str | None
    requested_uri: str
    sha256: str
    pipeline: Any
    profile: ReferenceProfile | None
    model_kind: str
    sklearn_version: str
    smoke_ms: float
    loaded_at: float = field(default_factory=time.time)

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``: the immutable URI of this version."""
        return f"models:/{self.name}/{self.version}"

    def describe(self) -> dict[str, Any]:
        """JSON-able identity of the version, for the table and the history."""
        return {
            "model_uri": self.uri,
            "requested_uri": self.requested_uri,
            "model_version": self.version,
            "run_id": self.run_id,
            "model": self.model_kind,
            "sha256": self.sha256,
            "sklearn": self.sklearn_version,
            "has_profile": self.profile is not None,
        }


def smoke_test(
    pipeline: Any, *, max_seconds: float, min_minutes: float, max_minutes: float
) -> float:
    """Predict :data:`SMOKE_RIDES` (one batch, then one ride alone); return the time in ms.

    Raises:
        DeploymentError: A prediction fails, is not finite, falls outside
            ``[min_minutes, max_minutes]``, or the calls take longer than ``max_seconds``.
    """
    start = time.perf_counter()
    try:
        batch = np.asarray(pipeline.predict(list(SMOKE_RIDES)), dtype="float64")
        single = np.asarray(pipeline.predict([SMOKE_RIDES[0]]), dtype="float64")
    except Exception as exc:
        raise DeploymentError(f"smoke test failed: the model raised {exc!r}") from None
    elapsed = time.perf_counter() - start
    if batch.shape != (len(SMOKE_RIDES),) or single.shape != (1,):
        raise DeploymentError(
            f"smoke test failed: {len(SMOKE_RIDES)} rides gave predictions of shape {batch.shape}"
        )
    for ride, minutes in zip(SMOKE_RIDES, batch.tolist(), strict=True):
        if not math.isfinite(minutes) or not min_minutes <= minutes <= max_minutes:
            raise DeploymentError(
                f"smoke test failed: ride {ride} predicted {minutes!r} min, outside the "
                f"plausible {min_minutes:g}-{max_minutes:g} min"
            )
    if not math.isclose(single[0], batch[0], rel_tol=1e-9, abs_tol=1e-9):
        raise DeploymentError(
            f"smoke test failed: ride {SMOKE_RIDES[0]} predicted {batch[0]!r} min in a batch "
            f"but {single[0]!r} min alone"
        )
    if elapsed > max_seconds:
        raise DeploymentError(
            f"smoke test failed: {len(SMOKE_RIDES) + 1} predictions took {elapsed:.2f} s, over "
            f"the budget of {max_seconds:g} s"
        )
    return elapsed * 1000


class Registry:
    """One MLflow registry and one registered model, shared by every call of the router.

    Every MLflow call names this registry's URI (an ``MlflowClient`` built with it, downloads
    given it): MLflow's process-global tracking URI is neither read nor set. Remote servers
    are probed (``GET /health``, 3 s) before each call and MLflow's own HTTP retries are
    turned down, so a registry that is down answers in seconds with its URI instead of minutes
    of retries. Credentials are MLflow's own (``MLFLOW_TRACKING_USERNAME`` and
    ``MLFLOW_TRACKING_PASSWORD``, or ``MLFLOW_TRACKING_TOKEN``, in the process's environment);
    a registry that refuses them answers a 503 naming the user and the permission it needs.

    Args:
        tracking_uri: MLflow URI; None for ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``.
        model_name: The registered model the router serves.
        cache_dir: Downloads go to ``cache_dir/<name>/<version>``.
        allow_version_mismatch: Load models saved under another scikit-learn version.
    """

    def __init__(
        self,
        tracking_uri: str | None,
        model_name: str,
        cache_dir: Path,
        *,
        allow_version_mismatch: bool = False,
    ) -> None:
        self.uri = absolute_sqlite(resolve_tracking_uri(tracking_uri))
        self.model_name = model_name
        self.cache_dir = Path(cache_dir)
        self.allow_version_mismatch = allow_version_mismatch
        self._locks: dict[str, threading.Lock] = {}  # one download per version at a time
        self._locks_lock = threading.Lock()
        # MLflow reads its HTTP retry and progress-bar knobs only from the environment, per
        # request; defaults only, so a value the operator exported wins.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        if self.is_remote:
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    @property
    def is_remote(self) -> bool:
        """Whether the registry is an HTTP(S) tracking server."""
        return self.uri.startswith(("http://", "https://"))

    # -- availability ------------------------------------------------------------------------

    def check_available(self) -> None:
        """Raise :class:`RegistryUnavailableError` unless the registry answers.

        An HTTP server must answer ``GET /health`` within 3 s; a SQLite store must exist.
        """
        if self.is_remote:
            problem = probe_server(self.uri, timeout=3)
            if problem is not None:
                raise RegistryUnavailableError(f"the model registry {self.uri} {problem}")
        elif self.uri.startswith("sqlite:///"):
            path = Path(self.uri.removeprefix("sqlite:///"))
            if not path.is_file():
                raise RegistryUnavailableError(
                    f"the model registry {self.uri} does not exist: run duration-pipeline first"
                )

    def _call(self, what: str, call: Callable[[], T], needs: str = NEEDS_READ) -> T:
        """Run an MLflow call; a registry that is down becomes a 503 naming its URI, one that
        refuses the credentials a 503 naming the user (:func:`.registry_refusals.refusal`)."""
        self.check_available()
        try:
            return call()
        except MlflowException as exc:
            if refused := refusal(self.uri, what, exc, needs):
                raise refused from None
            code = getattr(exc, "error_code", "")
            if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                # The URI was well formed (parse): the registry has no such version or alias.
                raise NotFoundError(f"{what}: {exc.message}") from None
            raise RegistryUnavailableError(
                f"{what}: the model registry {self.uri} failed: {exc.message}"
            ) from None
        except OSError as exc:  # requests' ConnectionError and HTTPError are OSErrors
            if refused := refusal(self.uri, what, exc, needs):
                raise refused from None
            raise RegistryUnavailableError(
                f"{what}: the model registry {self.uri} is not reachable ({exc})"
            ) from None

    # -- names and aliases -------------------------------------------------------------------

    def parse(self, model_uri: str) -> tuple[str | None, str | None]:
        """``(version, alias)`` named by ``model_uri``; exactly one of them is set.

        Raises:
            DeploymentError: Not a registry URI of :attr:`model_name` (a path, a URL, a
                ``runs:/`` URI, another model).
        """
        text = model_uri.strip()
        if text.isascii() and text.isdigit() and len(text) <= 9:
            return str(int(text)), None
        match = _URI.match(text)
        if match is None:
            raise DeploymentError(
                f"model_uri {model_uri[:200]!r} is not a registry URI: use "
                f"models:/{self.model_name}@ALIAS, models:/{self.model_name}/VERSION or a "
                "version number (files, URLs and runs:/ URIs are refused)"
            )
        if match["name"] != self.model_name:
            raise NotFoundError(
                f"model_uri {model_uri!r} names the model {match['name']!r}; this router "
                f"deploys versions of {self.model_name!r} only"
            )
        return match["version"], match["alias"]

    def resolve(self, model_uri: str) -> Any:
        """The MLflow ``ModelVersion`` that ``model_uri`` names (see :meth:`parse`)."""
        version, alias = self.parse(model_uri)
        if alias is not None:
            return self._call(
                f"cannot resolve {model_uri}",
                lambda: self.client.get_model_version_by_alias(self.model_name, alias),
            )
        return self._call(
            f"cannot resolve {model_uri}",
            lambda: self.client.get_model_version(self.model_name, str(version)),
        )

    def aliases(self) -> dict[str, str]:
        """``{alias: version}`` of the registered model; empty when it is not registered yet."""
        self.check_available()
        try:
            model = self.client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                return {}
            if refused := refusal(self.uri, "cannot read the aliases", exc, NEEDS_READ):
                raise refused from None
            raise RegistryUnavailableError(
                f"the model registry {self.uri} failed: {exc.message}"
            ) from None
        except OSError as exc:
            raise RegistryUnavailableError(
                f"the model registry {self.uri} is not reachable ({exc})"
            ) from None
        return {alias: str(version) for alias, version in (model.aliases or {}).items()}

    def set_aliases(self, wanted: dict[str, str | None]) -> None:
        """Point each alias at its version, or delete it (None), in order.

        Raises:
            RegistryRefusedError: With :attr:`~RegistryRefusedError.moved`, the aliases
                already moved.
            RegistryUnavailableError: The registry is down (an alias may or may not have moved).
        """
        moved: list[str] = []
        for alias, version in wanted.items():
            try:
                self._set_alias(alias, version)
            except RegistryRefusedError as exc:
                exc.moved = tuple(moved)
                raise
            moved.append(alias)

    def _set_alias(self, alias: str, version: str | None) -> None:
        if version is None:
            self._call(
                f"cannot delete the alias {alias}", partial(self._delete_alias, alias), NEEDS_MANAGE
            )
        else:
            self._call(
                f"cannot move the alias {alias} to v{version}",
                partial(self.client.set_registered_model_alias, self.model_name, alias, version),
                NEEDS_EDIT,
            )

    def _delete_alias(self, alias: str) -> None:
        try:
            self.client.delete_registered_model_alias(self.model_name, alias)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise

    # -- download and load -------------------------------------------------------------------

    def fetch(self, model_uri: str) -> tuple[Any, Path, str, str, ReferenceProfile | None]:
        """Resolve and download ``model_uri``; verify its digest and scikit-learn version.

        Returns:
            (ModelVersion, local folder, digest, scikit-learn version it was saved with,
            reference profile or None).

        Raises:
            DeploymentError: Unknown version or alias, no ``model_sha256`` tag, a digest that
                differs, another scikit-learn version.
            RegistryUnavailableError: The registry is down.
        """
        version = self.resolve(model_uri)
        number = str(version.version)
        expected = (version.tags or {}).get(MODEL_SHA256_TAG)
        if not expected:
            raise DeploymentError(
                f"{model_uri} (v{number}) has no {MODEL_SHA256_TAG} tag, so its download "
                "cannot be verified: register it with duration-pipeline"
            )
        with self._locks_lock:
            lock = self._locks.setdefault(number, threading.Lock())
        with lock:
            folder = self._download(number)
        digest = model_digest(folder)
        if digest != expected:
            shutil.rmtree(folder, ignore_errors=True)
            raise DeploymentError(
                f"{model_uri} (v{number}): the downloaded files' sha256 {digest[:12]} differs "
                f"from the registered {expected[:12]}; the stored model was changed or damaged"
            )
        flavor = Model.load(str(folder)).flavors.get("sklearn", {})
        saved_with = str(flavor.get("sklearn_version", "unknown"))
        installed = library_versions()["scikit-learn"]
        if saved_with != installed and not self.allow_version_mismatch:
            raise DeploymentError(
                f"{model_uri} (v{number}) was saved with scikit-learn {saved_with}, but "
                f"{installed} is installed: retrain it, or set "
                "DURATION_ROUTER_ALLOW_VERSION_MISMATCH=true"
            )
        profile = self._profile(version.run_id)
        return version, folder, digest, saved_with, profile

    def _download(self, number: str) -> Path:
        target = self.cache_dir / self.model_name / number
        if target.is_dir():
            return target
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=".download-"))
        try:
            local = self._call(
                f"cannot download v{number}",
                lambda: mlflow.artifacts.download_artifacts(
                    # The stored files' own location: MLflow 3.17 resolves a models:/ URI
                    # with the process-global registry URI, whatever URI it is given
                    # (ModelsArtifactRepository._get_model_uri_infos).
                    artifact_uri=self.client.get_model_version_download_uri(
                        self.model_name, number
                    ),
                    dst_path=str(staging),
                    tracking_uri=self.uri,
                ),
            )
            # What MLflow's own models:/ download adds beside the files: the digest that
            # level 2 tagged at registration covers it.
            write_yaml(  # type: ignore[no-untyped-call]  # MLflow's utils are not annotated
                local,
                REGISTERED_MODEL_META_FILE_NAME,
                {"model_name": self.model_name, "model_version": number},
                overwrite=True,
                ensure_yaml_extension=False,
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            Path(local).replace(target)  # complete downloads only, under their final name
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _profile(self, run_id: str | None) -> ReferenceProfile | None:
        if not run_id:
            return None
        with tempfile.TemporaryDirectory() as folder:
            try:
                path = self.client.download_artifacts(run_id, PROFILE_ARTIFACT, folder)
                return ReferenceProfile.load(path)
            except (MlflowException, OSError, DurationCoreError) as exc:
                logger.warning("run %s has no usable %s: %s", run_id, PROFILE_ARTIFACT, exc)
                return None

    def run_tag(self, run_id: str | None, key: str) -> str | None:
        """A tag of ``run_id`` (e.g. ``best_model``), None when unknown."""
        if not run_id:
            return None
        try:
            return self.client.get_run(run_id).data.tags.get(key)
        except (MlflowException, OSError):
            return None


def load_pipeline(folder: Path) -> Any:
    """Load the scikit-learn pipeline MLflow saved in ``folder`` (skops: trusted types only)."""
    try:
        return packaging.load_pipeline(str(folder))
    except Exception as exc:
        raise DeploymentError(f"cannot load the model in {folder.name}: {exc}") from None
