"""Connecting to MLflow: the embedded SQLite default, or a tracking server that must answer."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from duration_training.errors import TrackingUnavailableError

logger = logging.getLogger(__name__)

#: Embedded default: a SQLite file in the working folder, artifacts beside it.
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
LOCAL_ARTIFACTS = "mlartifacts"


def resolve_tracking_uri(uri: str | None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else :data:`DEFAULT_TRACKING_URI`."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def connect(uri: str | None, experiment: str) -> tuple[str, str]:
    """Point MLflow at ``uri`` and make sure ``experiment`` exists; return (uri, experiment id).

    A remote server is probed first (``GET /health``, 5 s), and MLflow's own HTTP retries are
    turned off, so a server that is down fails in seconds with its address in the message
    instead of minutes of retries. With a local SQLite or file store, a new experiment keeps
    its artifacts in ``./mlartifacts``.

    Raises:
        TrackingUnavailableError: The server does not answer, or the store cannot be opened.
    """
    from_environment = not uri and bool(os.environ.get("MLFLOW_TRACKING_URI"))
    uri = absolute_sqlite(resolve_tracking_uri(uri))
    # The registration step reads the model back; no progress bar for a local copy.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    hint = (
        "unset MLFLOW_TRACKING_URI to use the embedded sqlite:///mlflow.db"
        if from_environment
        else "or leave out --tracking-uri to use the embedded sqlite:///mlflow.db"
    )
    if uri.startswith("sqlite:"):
        path = uri.removeprefix("sqlite:///")
        if uri in ("sqlite://", "sqlite:///:memory:") or path == ":memory:":
            raise TrackingUnavailableError(
                f"{uri} is an in-memory store: every run and model would vanish on exit"
            )
        if not Path(path).parent.is_dir():
            raise TrackingUnavailableError(
                f"cannot use the MLflow store {uri}: the folder {Path(path).parent} does not exist"
            )
    if uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        problem = probe_server(uri, timeout=5)
        if problem is not None:
            start = "" if problem.startswith("answered") else "start it, "
            raise TrackingUnavailableError(f"MLflow tracking server {uri} {problem}; {start}{hint}")
    mlflow.set_tracking_uri(uri)
    try:
        found = mlflow.get_experiment_by_name(experiment)
        if found is not None:
            return uri, found.experiment_id
        location = None
        if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
            location = (Path.cwd() / LOCAL_ARTIFACTS).resolve().as_uri()
        return uri, mlflow.create_experiment(experiment, artifact_location=location)
    except ImportError as exc:  # e.g. postgresql:// without its driver
        raise TrackingUnavailableError(
            f"cannot use the MLflow store {uri}: {exc} (install the database driver)"
        ) from None
    except Exception as exc:  # MlflowException, sqlalchemy errors: not a database, locked, ...
        message = getattr(exc, "message", None) or str(exc).splitlines()[0]
        raise TrackingUnavailableError(f"cannot use the MLflow store {uri}: {message}") from None


def probe_server(uri: str, *, timeout: float) -> str | None:
    """``GET uri/health`` of an MLflow server: None when it answers 200, else what went wrong
    (``answered HTTP 502 on /health``, ``is not reachable (Connection refused)``)."""
    probe = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(probe, timeout=timeout) as response:  # noqa: S310 (http(s))
            response.read()
    except urllib.error.HTTPError as exc:
        return f"answered HTTP {exc.code} on /health"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"is not reachable ({getattr(exc, 'reason', exc)})"
    return None


@contextmanager
def tracking(uri: str | None, experiment: str) -> Iterator[tuple[str, str]]:
    """:func:`connect` for the duration of a block, leaving ``MLFLOW_TRACKING_URI`` as it was.

    ``mlflow.set_tracking_uri`` exports the URI to the environment; without restoring it, a
    second pipeline in the same process (another working folder, say) would silently track to
    the first one's store.
    """
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield connect(uri, experiment)
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def absolute_sqlite(uri: str) -> str:
    """``sqlite:///mlflow.db`` -> ``sqlite:////abs/path/mlflow.db`` (relative to the working
    folder now), so the URI recorded and cached by MLflow names one file, wherever it is used."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((Path.cwd() / uri.removeprefix(prefix)).resolve())
    return uri


def git_commit() -> str:
    """The checked-out commit (with ``-dirty`` for uncommitted changes), or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 (git from PATH, fixed arguments)
            capture_output=True, text=True, check=True, timeout=5,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            capture_output=True, text=True, check=True, timeout=5,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version that ``alias`` points to, or None (no such alias or model yet)."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


#: Model-version tag holding :func:`model_digest` of the registered model's files, written at
#: registration; level 3 refuses to deploy a download whose digest differs.
MODEL_SHA256_TAG = "model_sha256"


def model_digest(folder: str | os.PathLike[str]) -> str:
    """sha256 of a model folder: of each file's relative path and sha256, in path order.

    Any added, removed, renamed or changed file changes the digest; where the folder lives
    does not.

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"not a model folder: {root}")
    outer = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        inner = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                inner.update(chunk)
        outer.update(f"{path.relative_to(root).as_posix()}\0{inner.hexdigest()}\n".encode())
    return outer.hexdigest()
