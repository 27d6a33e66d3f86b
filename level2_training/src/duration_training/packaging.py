"""What a registered version carries so that any MLflow tool loads it outside this repository.

A version holds a pickled-by-skops scikit-learn pipeline whose first two steps are classes of
``duration_core``. ``duration_core`` is not on any package index, so the library's source
travels with the model (MLflow's ``code_paths``: MLflow puts ``<model>/code`` on ``sys.path``
before it loads), and ``requirements.txt`` names only what PyPI has: the library's own
dependencies, pinned to the versions the model was trained with, and skops. With those,
``mlflow.pyfunc.load_model``, ``mlflow models serve --env-manager uv|virtualenv`` and
``mlflow.pyfunc.spark_udf`` load it in an environment that has never seen this repository.

The signature is the services' request schema (:data:`SIGNATURE`): zone IDs as integers, the
distance as a double, one ``duration`` (minutes) out.
"""

from __future__ import annotations

import re
import shutil
import sys
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path
from typing import Any

import mlflow.sklearn
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, Schema

import duration_core

#: The distribution whose source travels with every model, and its import package.
CORE_DISTRIBUTION = "duration-core"
#: Besides the core's dependencies: MLflow saves scikit-learn models with skops.
EXTRA_REQUIREMENTS = ("skops",)
#: The data bundled with the library (months, zones) is not code; models leave it out.
_NOT_CODE = shutil.ignore_patterns("data", "__pycache__", "*.pyc")

#: Input: the raw fields of a ride as the services accept them; output: minutes.
SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec(DataType.long, "PULocationID"),
            ColSpec(DataType.long, "DOLocationID"),
            ColSpec(DataType.double, "trip_distance"),
        ]
    ),
    outputs=Schema([ColSpec(DataType.double, "duration")]),
)


def requirement_name(requirement: str) -> str:
    """``"scikit-learn>=1.6; extra == 'x'"`` -> ``"scikit-learn"``."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return match.group(0)


def model_requirements() -> list[str]:
    """``requirements.txt`` of a model: each runtime dependency of ``duration-core`` and skops,
    pinned (``==``) to the version installed here, so the model loads with what it was
    trained with. ``duration-core`` itself is not listed: its code is in the model.

    Raises:
        PackageNotFoundError: ``duration-core`` or one of its dependencies is not installed.
    """
    runtime = [r for r in requires(CORE_DISTRIBUTION) or [] if "extra ==" not in r]
    names = [requirement_name(r) for r in runtime] + list(EXTRA_REQUIREMENTS)
    pinned = []
    for name in dict.fromkeys(names):
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            raise PackageNotFoundError(
                f"{name} (a requirement of every registered model) is not installed"
            ) from None
    return pinned


def code_folder(into: Path) -> Path:
    """Copy the ``duration_core`` package (code only, not its bundled data) into ``into`` and
    return the copy's path, for ``log_model(code_paths=[...])``."""
    source = Path(duration_core.__file__).parent
    target = into / source.name
    shutil.copytree(source, target, ignore=_NOT_CODE)
    return target


def load_pipeline(model_uri: str) -> Any:
    """``mlflow.sklearn.load_model(model_uri)`` in a process that has ``duration_core``
    installed, leaving ``sys.path`` as it was.

    MLflow puts the model's ``code`` folder in front of ``sys.path`` for good; in a long-running
    process (the router loads version after version) a later ``import duration_core.x`` would
    then find an old copy first. The pipeline's classes are those of the library already
    imported here.

    Raises:
        MlflowException, OSError, skops' UntrustedTypesFoundException: as MLflow's loader.
    """
    saved = list(sys.path)
    try:
        return mlflow.sklearn.load_model(model_uri)
    finally:
        sys.path[:] = saved
