"""The criteria catalogue (``catalogue.toml`` in this package), validated on load.

A criterion belongs to one of Microsoft's maturity levels 1-4 (level 0 is what remains) or,
without a level, only informs the ML Test Score estimate. It is met when every group of
``all_of`` has evidence from at least one of its signals. Signals are the kinds of static
evidence :mod:`mlops_assess.signals` knows how to find; their fields are checked here, so a
typo in the catalogue is an error naming the criterion and the field, not a silent miss.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops_assess.ci import TRIGGERS

#: Microsoft's level names
#: (learn.microsoft.com/azure/architecture/ai-ml/guide/mlops-maturity-model).
LEVEL_NAMES = {
    0: "No MLOps",
    1: "DevOps but no MLOps",
    2: "Automated training",
    3: "Automated model deployment",
    4: "Full MLOps, automated retraining",
}

Where = Literal["source", "tests", "any"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _PythonSignal(_Strict):
    """A fact of Python code: in ``source`` (not tests; local dependencies too) or ``tests``."""

    in_: Where = Field("source", alias="in")
    deps: bool = True  # whether the source of local dependencies counts
    notebooks: bool = True  # whether notebooks count
    describe: str = ""


class ImportSignal(_PythonSignal):
    kind: Literal["import"]
    modules: list[str] = Field(min_length=1)


class CallSignal(_PythonSignal):
    """Calls by resolved name: ``mlflow.log_metric``, or ``*.log_metric`` for any receiver."""

    kind: Literal["call"]
    names: list[str] = Field(min_length=1)


class KeywordSignal(_PythonSignal):
    kind: Literal["keyword"]
    names: list[str] = Field(min_length=1)


class DecoratorSignal(_PythonSignal):
    kind: Literal["decorator"]
    names: list[str] = Field(min_length=1)


class _PatternSignal(_PythonSignal):
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


class NameSignal(_PatternSignal):
    """Identifiers (functions, classes, variables, attributes) matching ``pattern``."""

    kind: Literal["name"]


class StringSignal(_PatternSignal):
    """String constants matching ``pattern``."""

    kind: Literal["string"]


class RouteSignal(_PythonSignal):
    """Web routes declared with FastAPI/Starlette/Flask decorators or ``add_*_route``."""

    kind: Literal["route"]


class TestsSignal(_Strict):
    """Test functions (``def test_*``) in the folder's own test files."""

    kind: Literal["tests"]
    describe: str = ""


class FileSignal(_Strict):
    """Files whose path or name matches one of ``globs``, in the folder (or the repository)."""

    kind: Literal["file"]
    globs: list[str] = Field(min_length=1)
    where: Literal["scope", "repository"] = "scope"
    describe: str = ""


class TextSignal(_PatternSignal):
    """Lines matching ``pattern`` in files matching ``globs`` (manifests, IaC, Dockerfiles)."""

    kind: Literal["text"]
    globs: list[str] = Field(min_length=1)
    where: Literal["scope", "repository"] = "scope"


class DependencySignal(_Strict):
    """A declared dependency (any manifest of the folder or its local dependencies)."""

    kind: Literal["dependency"]
    names: list[str] = Field(min_length=1)
    describe: str = ""


class PinsSignal(_Strict):
    """Dependencies declared with versions (a constraint on most of them) or a lock file."""

    kind: Literal["pins"]
    describe: str = ""


class CISignal(_PatternSignal):
    """A CI job that reaches the folder, has one of ``triggers`` and runs ``pattern``."""

    kind: Literal["ci"]
    pattern: str = "."
    triggers: list[str] = Field(default_factory=list)
    reach: Literal["scope", "scope+deps"] = "scope"
    environment: bool = False

    @field_validator("triggers")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - TRIGGERS)
        if unknown:
            raise ValueError(f"unknown trigger {unknown}; known: {sorted(TRIGGERS)}")
        return value


Signal = Annotated[
    ImportSignal
    | CallSignal
    | KeywordSignal
    | DecoratorSignal
    | NameSignal
    | StringSignal
    | RouteSignal
    | TestsSignal
    | FileSignal
    | TextSignal
    | DependencySignal
    | PinsSignal
    | CISignal,
    Field(discriminator="kind"),
]


class Group(_Strict):
    """One part of a criterion: met when any of its signals finds evidence."""

    describe: str
    any_of: list[Signal] = Field(min_length=1)


class Criterion(_Strict):
    """One criterion of the catalogue (see the package README for the table)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    level: int | None = Field(None, ge=1, le=4)
    title: str
    why: str
    evidence: str
    shown_in: str
    microsoft: str = ""
    google: str = ""
    ml_test_score: list[str] = Field(default_factory=list)
    same_file: bool = False
    all_of: list[Group] = Field(min_length=1)


class MLTestScoreTest(_Strict):
    """One of the 28 tests of Breck et al. (2017), e.g. ``infra-6``."""

    id: str = Field(pattern=r"^(data|model|infra|monitor)-[1-7]$")
    title: str


class Catalogue(_Strict):
    """The whole catalogue: criteria in order, and the ML Test Score's tests."""

    version: int
    criteria: list[Criterion]
    ml_test_score: list[MLTestScoreTest]

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        ids = [c.id for c in self.criteria]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"criterion ids repeated: {duplicates}")
        tests = {t.id for t in self.ml_test_score}
        if len(tests) != 28:
            raise ValueError(f"the ML Test Score has 28 tests, the catalogue lists {len(tests)}")
        for criterion in self.criteria:
            unknown = sorted(set(criterion.ml_test_score) - tests)
            if unknown:
                raise ValueError(
                    f"criterion {criterion.id}: ml_test_score: unknown ML Test Score test {unknown}"
                )
        return self

    def get(self, criterion_id: str) -> Criterion:
        """The criterion with this id.

        Raises:
            KeyError: no such criterion (the message lists the ids).
        """
        for criterion in self.criteria:
            if criterion.id == criterion_id:
                return criterion
        raise KeyError(
            f"no criterion {criterion_id!r}; ids: {', '.join(c.id for c in self.criteria)}"
        )


class CatalogueError(ValueError):
    """The catalogue file is not valid; the message names the file, criterion and field."""


def parse_catalogue(text: str, source: str = "catalogue.toml") -> Catalogue:
    """Validate a catalogue given as TOML text.

    Raises:
        CatalogueError: not TOML, or a criterion or field is wrong (each problem named).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{source}: not TOML: {exc}") from None
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = list(error["loc"])
            if len(location) >= 2 and location[0] == "criteria" and isinstance(location[1], int):
                criteria = data.get("criteria") or []
                index = location[1]
                if index < len(criteria) and isinstance(criteria[index], dict):
                    location[1] = criteria[index].get("id", index)
            where = ".".join(str(part) for part in location)
            problems.append(f"{where}: {error['msg']}" if where else error["msg"])
        raise CatalogueError(f"{source}: " + "; ".join(problems)) from None


@cache
def load_catalogue(path: Path | None = None) -> Catalogue:
    """The package's catalogue (or the one at ``path``), validated.

    Raises:
        CatalogueError: see :func:`parse_catalogue`.
    """
    if path is not None:
        return parse_catalogue(path.read_text(encoding="utf-8"), str(path))
    text = files("mlops_assess").joinpath("catalogue.toml").read_text(encoding="utf-8")
    return parse_catalogue(text)
