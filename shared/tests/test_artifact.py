"""Saving and loading the model artifact: round trip, checksums, versions, damaged files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sklearn

from duration_core import (
    ChecksumMismatchError,
    IncompatibleModelError,
    ModelArtifactError,
    load_model,
    read_metadata,
    save_model,
)
from duration_core.datasets import file_sha256
from duration_core.training import TrainingResult


@pytest.fixture
def artifact(course_result: TrainingResult, tmp_path: Path) -> Path:
    path = tmp_path / "models" / "linear.zip"
    save_model(course_result.pipeline, path, course_result.metadata())
    return path


def rewrite(path: Path, *, metadata=None, pipeline: bytes | None = None) -> None:
    """Replace members of an artifact in place, as a tamperer or an old version would."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    if metadata is not None:
        members["metadata.json"] = json.dumps(metadata).encode()
    if pipeline is not None:
        members["pipeline.pkl"] = pipeline
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_round_trip_predicts_the_same(course_result: TrainingResult, artifact: Path) -> None:
    loaded = load_model(artifact)
    rides = course_result.val.rides.head(200)
    np.testing.assert_array_equal(
        loaded.pipeline.predict(rides), course_result.pipeline.predict(rides)
    )
    assert loaded.sha256 == file_sha256(artifact)
    assert loaded.version == loaded.sha256[:12]


def test_metadata_records_data_metrics_and_versions(artifact: Path) -> None:
    meta = read_metadata(artifact)
    assert meta["model"] == "linear"
    assert meta["train_rows"] == 73_908
    assert meta["val_rows"] == 61_921
    assert meta["metrics"]["val_rmse"] == pytest.approx(7.7587, abs=1e-3)
    assert meta["train"][0]["source"] == "green:2021-01"
    assert meta["train"][0]["sha256"].startswith("b8e2c9496c5e")
    assert meta["train"][0]["filter_rows_read"] == 76_518
    assert meta["val"]["sha256"].startswith("fd43c7afa200")
    assert meta["versions"]["scikit-learn"] == sklearn.__version__
    assert meta["ride_fields"] == ["PULocationID", "DOLocationID", "trip_distance"]
    assert meta["created_at"].endswith("+00:00")


def test_expected_sha256_prefix_is_checked(artifact: Path) -> None:
    digest = file_sha256(artifact)
    assert load_model(artifact, expected_sha256=digest[:12]).sha256 == digest
    with pytest.raises(ChecksumMismatchError, match="does not match the expected 000000000000"):
        load_model(artifact, expected_sha256="0" * 12)


def test_tampered_pipeline_is_refused_before_unpickling(artifact: Path) -> None:
    rewrite(artifact, pipeline=b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(ChecksumMismatchError, match="damaged or was altered"):
        load_model(artifact)


def test_other_scikit_learn_version_names_both(artifact: Path) -> None:
    meta = read_metadata(artifact)
    meta["versions"]["scikit-learn"] = "1.0.2"
    rewrite(artifact, metadata=meta)
    installed = sklearn.__version__
    with pytest.raises(
        IncompatibleModelError, match=rf"saved with scikit-learn 1\.0\.2, but {installed}"
    ):
        load_model(artifact)
    loaded = load_model(artifact, allow_version_mismatch=True)  # the caller's explicit choice
    assert loaded.metadata["versions"]["scikit-learn"] == "1.0.2"


def test_missing_artifact(tmp_path: Path) -> None:
    with pytest.raises(ModelArtifactError, match=r"model file not found: .*absent\.zip"):
        load_model(tmp_path / "absent.zip")


def test_a_plain_pickle_is_not_an_artifact(tmp_path: Path) -> None:
    path = tmp_path / "lin_reg.bin"
    path.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ModelArtifactError, match=r"lin_reg\.bin is not a duration-core model"):
        load_model(path)


def test_truncated_artifact_is_refused(artifact: Path) -> None:
    artifact.write_bytes(artifact.read_bytes()[:500])
    with pytest.raises(ModelArtifactError):
        load_model(artifact)


def test_zip_without_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ModelArtifactError, match=r"has no metadata\.json"):
        load_model(path)


def test_failed_save_keeps_the_previous_artifact(
    course_result: TrainingResult, artifact: Path
) -> None:
    before = artifact.read_bytes()
    with pytest.raises(ModelArtifactError, match="not JSON-serialisable"):
        save_model(course_result.pipeline, artifact, {"bad": object()})
    assert artifact.read_bytes() == before
    assert sorted(p.name for p in artifact.parent.iterdir()) == ["linear.zip"]
