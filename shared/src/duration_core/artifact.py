"""Saving and loading a fitted pipeline with its metadata, as one checked file.

An artifact is a zip file holding two or three members:

- ``metadata.json``: what the model is and where it came from (training and validation data
  with their sha256 and row counts, metrics, library versions, creation time) and the sha256 of
  the pickled pipeline (``pipeline_sha256``) and of the profile (``profile_sha256``, when there
  is one);
- ``pipeline.pkl``: the pickled scikit-learn pipeline;
- ``profile.json`` (optional): the :class:`~duration_core.profile.ReferenceProfile` of the
  training data, which drift monitoring compares live rides with. Artifacts saved without one
  (all those from before it existed) load with ``profile=None``.

Loading reads the metadata first, refuses a pipeline pickled under another scikit-learn version
(unpickling across versions is unsupported: scikit-learn "Model persistence" docs) unless the
caller allows it, and checks the pickle's and the profile's sha256 against the metadata before
using them. Unpickling runs code: load only artifacts you or your pipeline made.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import platform
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from sklearn.pipeline import Pipeline

from duration_core._io import atomic_write
from duration_core.datasets import file_sha256
from duration_core.errors import (
    ChecksumMismatchError,
    IncompatibleModelError,
    ModelArtifactError,
    ProfileError,
)
from duration_core.profile import ReferenceProfile

logger = logging.getLogger(__name__)

ARTIFACT_FORMAT = "duration-core-model/1"
_METADATA = "metadata.json"
_PIPELINE = "pipeline.pkl"
_PROFILE = "profile.json"
_VERSIONED = ("duration-core", "scikit-learn", "pandas", "numpy", "pyarrow", "scipy")


@dataclass(frozen=True)
class LoadedModel:
    """A pipeline read back from an artifact.

    Attributes:
        pipeline: The fitted pipeline; ``predict`` takes raw rides, returns minutes ``(n,)``.
        metadata: The artifact's ``metadata.json``.
        path: The artifact file.
        sha256: Hex sha256 of the whole artifact file.
        profile: The training data's reference profile, or None for an artifact saved
            without one.
    """

    pipeline: Pipeline
    metadata: dict[str, Any]
    path: Path
    sha256: str
    profile: ReferenceProfile | None = None

    @property
    def version(self) -> str:
        """Short model version: the first 12 hex digits of the artifact's sha256."""
        return self.sha256[:12]


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape a pickled pipeline, and Python's."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def save_model(
    pipeline: Pipeline,
    path: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
    *,
    profile: ReferenceProfile | None = None,
) -> str:
    """Write ``pipeline`` and ``metadata`` to ``path`` atomically; return the file's sha256.

    ``metadata`` is extended with the format, creation time (UTC), library versions and the
    pickle's sha256. The file is written beside ``path`` and renamed into place, so a reader
    never sees half an artifact and a failed save leaves an older artifact untouched.

    Args:
        pipeline: The fitted pipeline.
        path: The artifact file to write.
        metadata: Provenance (e.g. :meth:`duration_core.training.TrainingResult.metadata`).
        profile: The training data's reference profile; when given it is stored as
            ``profile.json`` and its sha256 recorded in the metadata as ``profile_sha256``.

    Raises:
        ModelArtifactError: ``pipeline`` is not a Pipeline, ``profile`` is not a
            ReferenceProfile, ``metadata`` is not JSON-serialisable, ``path`` is a folder or a
            file that is not a model artifact (a training file, say: it is never overwritten),
            or the file cannot be written.
    """
    if not isinstance(pipeline, Pipeline):
        raise ModelArtifactError(
            f"can only save a scikit-learn Pipeline, not {type(pipeline).__name__}"
        )
    if profile is not None and not isinstance(profile, ReferenceProfile):
        raise ModelArtifactError(
            f"profile must be a ReferenceProfile or None, not {type(profile).__name__}"
        )
    target = Path(path)
    if str(path).strip() == "" or target.is_dir():
        raise ModelArtifactError(f"model path {str(path)!r} is a folder, not a file name")
    if target.exists():
        try:
            read_metadata(target)
        except ModelArtifactError:
            raise ModelArtifactError(
                f"refusing to overwrite {target}: it is not a duration-core model artifact"
            ) from None
    payload = pickle.dumps(pipeline, protocol=pickle.HIGHEST_PROTOCOL)
    full = {
        **(metadata or {}),
        "format": ARTIFACT_FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "pipeline_sha256": hashlib.sha256(payload).hexdigest(),
    }
    full.pop("profile_sha256", None)  # only an actual profile member may be recorded
    profile_bytes = None
    if profile is not None:
        profile_bytes = profile.to_json().encode()
        full["profile_sha256"] = hashlib.sha256(profile_bytes).hexdigest()
    try:
        text = json.dumps(full, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ModelArtifactError(f"model metadata is not JSON-serialisable: {exc}") from None
    try:
        with (
            atomic_write(target) as (raw, _),
            zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf,
        ):
            zf.writestr(_METADATA, text)
            zf.writestr(_PIPELINE, payload)
            if profile_bytes is not None:
                zf.writestr(_PROFILE, profile_bytes)
    except OSError as exc:
        raise ModelArtifactError(f"cannot write {target}: {exc.strerror or exc}") from None
    digest = file_sha256(target)
    logger.info("saved model %s (sha256 %s)", target, digest[:12])
    return digest


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The artifact's metadata, without unpickling anything.

    Raises:
        ModelArtifactError: The file is missing, not an artifact, or its metadata is unreadable.
    """
    path = Path(path)
    with _open(_read_bytes(path), path) as zf:
        return _metadata(zf, path)


def load_model(
    path: str | os.PathLike[str],
    *,
    expected_sha256: str | None = None,
    allow_version_mismatch: bool = False,
) -> LoadedModel:
    """Read an artifact written by :func:`save_model` and check it.

    Args:
        path: The artifact file.
        expected_sha256: When given, the whole file's sha256 must start with it (a full digest
            or a prefix of at least 12 hex digits, as printed by ``duration-train``).
        allow_version_mismatch: Load a pipeline pickled under another scikit-learn version
            (logged as a warning). Predictions may differ or fail; for experiments only.

    Raises:
        ModelArtifactError: Missing file, not an artifact, damaged zip or unreadable pickle.
        ChecksumMismatchError: The pickle's or the profile's sha256 differs from the one
            recorded in the metadata, a profile is present that the metadata does not record,
            or the file's sha256 differs from ``expected_sha256``.
        IncompatibleModelError: Saved under another scikit-learn version (both are named).
    """
    path = Path(path)
    data = _read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None:
        expected = expected_sha256.lower()
        if len(expected) < 12 or not digest.startswith(expected):
            raise ChecksumMismatchError(
                f"{path}: sha256 {digest} does not match the expected {expected}"
            )
    with _open(data, path) as zf:
        meta = _metadata(zf, path)
        saved = meta["versions"].get("scikit-learn", "unknown")
        installed = library_versions()["scikit-learn"]
        if saved != installed:
            message = (
                f"{path} was saved with scikit-learn {saved}, but {installed} is installed; "
                "retrain the model, or install the same version"
            )
            if not allow_version_mismatch:
                raise IncompatibleModelError(message)
            logger.warning("%s (loading anyway, as allowed)", message)
        try:
            payload = zf.read(_PIPELINE)
        except KeyError:
            raise ModelArtifactError(f"{path} has no {_PIPELINE}: not a model artifact") from None
        except Exception as exc:  # zlib.error, NotImplementedError, RuntimeError, ...
            raise ModelArtifactError(
                f"{path} is damaged: cannot read the pipeline ({exc})"
            ) from None
        profile = _profile(zf, meta, path)
    actual = hashlib.sha256(payload).hexdigest()
    if actual != meta.get("pipeline_sha256"):
        raise ChecksumMismatchError(
            f"{path}: the pipeline's sha256 {actual[:12]} differs from the recorded "
            f"{str(meta.get('pipeline_sha256'))[:12]}: the artifact is damaged or was altered"
        )
    try:
        pipeline = pickle.loads(payload)  # noqa: S301 (checked above; trusted artifacts only)
    except Exception as exc:  # unpickling can raise almost anything
        raise ModelArtifactError(f"{path}: cannot unpickle the pipeline: {exc}") from None
    if not isinstance(pipeline, Pipeline):
        raise ModelArtifactError(f"{path}: holds a {type(pipeline).__name__}, not a Pipeline")
    return LoadedModel(pipeline=pipeline, metadata=meta, path=path, sha256=digest, profile=profile)


def read_profile(path: str | os.PathLike[str]) -> ReferenceProfile | None:
    """The artifact's reference profile (None if it has none), without unpickling anything.

    Raises:
        ModelArtifactError: The file is missing, not an artifact, or its profile is unreadable.
        ChecksumMismatchError: The profile's sha256 differs from the one in the metadata.
    """
    path = Path(path)
    with _open(_read_bytes(path), path) as zf:
        return _profile(zf, _metadata(zf, path), path)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelArtifactError(f"model file not found: {path}") from None
    except OSError as exc:
        raise ModelArtifactError(f"cannot read model file {path}: {exc.strerror}") from None


def _open(data: bytes, path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ModelArtifactError(
            f"{path} is not a duration-core model artifact (not a zip file)"
        ) from None


def _metadata(zf: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(zf.read(_METADATA))
    except KeyError:
        raise ModelArtifactError(f"{path} has no {_METADATA}: not a model artifact") from None
    except Exception as exc:  # bad JSON, zlib.error, an unsupported or encrypted member
        raise ModelArtifactError(f"{path} is damaged: unreadable {_METADATA} ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != ARTIFACT_FORMAT:
        raise ModelArtifactError(f"{path}: unknown artifact format (expected {ARTIFACT_FORMAT})")
    if not isinstance(meta.get("versions"), dict) or not isinstance(
        meta.get("pipeline_sha256"), str
    ):
        raise ModelArtifactError(f"{path}: {_METADATA} lacks its versions or pipeline_sha256")
    if "profile_sha256" in meta and not isinstance(meta["profile_sha256"], str):
        raise ModelArtifactError(f"{path}: {_METADATA} holds a profile_sha256 that is no digest")
    return meta


def _profile(zf: zipfile.ZipFile, meta: dict[str, Any], path: Path) -> ReferenceProfile | None:
    """The checked ``profile.json``, or None when the metadata records none and there is none."""
    recorded = meta.get("profile_sha256")
    if recorded is None:
        if _PROFILE in zf.namelist():
            raise ChecksumMismatchError(
                f"{path} holds a {_PROFILE} that its metadata does not record: "
                "the artifact was altered"
            )
        return None
    try:
        raw = zf.read(_PROFILE)
    except KeyError:
        raise ModelArtifactError(
            f"{path} has no {_PROFILE}, although its metadata records one"
        ) from None
    except Exception as exc:  # zlib.error, NotImplementedError, RuntimeError, ...
        raise ModelArtifactError(f"{path} is damaged: cannot read {_PROFILE} ({exc})") from None
    actual = hashlib.sha256(raw).hexdigest()
    if actual != recorded:
        raise ChecksumMismatchError(
            f"{path}: the profile's sha256 {actual[:12]} differs from the recorded "
            f"{recorded[:12]}: the artifact is damaged or was altered"
        )
    try:
        return ReferenceProfile.from_json(raw, where=f"{path} {_PROFILE}")
    except ProfileError as exc:
        raise ModelArtifactError(str(exc)) from None
