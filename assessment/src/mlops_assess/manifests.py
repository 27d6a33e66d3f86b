"""Packaging and dependency manifests: which distributions a folder defines and depends on.

Read: ``pyproject.toml`` (PEP 621 ``[project]`` and Poetry's ``[tool.poetry]``),
``requirements*.txt``, ``environment.yml``, ``Pipfile``, ``setup.cfg``; lock files are
recognised by name (``uv.lock``, ``poetry.lock``, ``Pipfile.lock``, ``pdm.lock``,
``conda-lock.yml``, ``requirements*.lock``, a requirements file with ``--hash``).
"""

from __future__ import annotations

import configparser
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from mlops_assess.tree import RepoFiles, file_name
from mlops_assess.yaml_lines import YamlSyntaxError, load_yaml

LOCK_FILES = frozenset(
    {"uv.lock", "poetry.lock", "Pipfile.lock", "pdm.lock", "conda-lock.yml", "pixi.lock"}
)
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Duration_Core`` -> ``duration-core``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Requirement:
    """One declared dependency: where, its normalised name, and whether a version is pinned."""

    file: str
    line: int
    name: str
    constrained: bool


@dataclass
class Distribution:
    """A distribution defined in the repository by a ``pyproject.toml``."""

    name: str
    folder: str
    manifest: str
    version: str | None
    scripts: dict[str, int] = field(default_factory=dict)  # console script -> line
    dependencies: list[str] = field(default_factory=list)  # normalised names


def _line_of(text: str, needle: str) -> int:
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else 1


def _requirements_from(file: str, text: str, specs: list[str]) -> list[Requirement]:
    out: list[Requirement] = []
    for spec in specs:
        match = _REQUIREMENT.match(spec.split(";")[0])
        if not match:
            continue
        rest = match.group(3)
        constrained = bool(re.search(r"[<>=~!]=?|\s@\s", rest)) or " @ " in spec
        out.append(Requirement(file, _line_of(text, spec), normalise(match.group(1)), constrained))
    return out


def read_pyproject(repo: RepoFiles, path: str) -> tuple[Distribution | None, list[Requirement]]:
    """The distribution a ``pyproject.toml`` defines (if any) and the dependencies it declares.

    A field of the wrong type (``project = "x"``, ``scripts = ["x"]``) is a note, not an error.
    """
    try:
        return _read_pyproject(repo, path)
    except (AttributeError, TypeError, ValueError) as exc:
        repo.note(path, f"not a valid pyproject.toml: a field has an unexpected type ({exc})")
        return None, []


def _read_pyproject(repo: RepoFiles, path: str) -> tuple[Distribution | None, list[Requirement]]:
    text = repo.read_text(path)
    if text is None:
        return None, []
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        repo.note(path, f"not TOML: {exc}")
        return None, []
    project: dict[str, Any] = data.get("project") or {}
    poetry: dict[str, Any] = (data.get("tool") or {}).get("poetry") or {}
    specs = [str(s) for s in project.get("dependencies") or []]
    for extra in (project.get("optional-dependencies") or {}).values():
        specs.extend(str(s) for s in extra or [])
    for group in (data.get("dependency-groups") or {}).values():
        specs.extend(str(s) for s in group or [] if isinstance(s, str))
    requirements = _requirements_from(path, text, specs)
    for name, version in (poetry.get("dependencies") or {}).items():
        if name.lower() != "python":
            pinned = isinstance(version, dict) or str(version).strip() not in {"*", ""}
            requirements.append(Requirement(path, _line_of(text, name), normalise(name), pinned))
    name = project.get("name") or poetry.get("name")
    if not name:
        return None, requirements
    scripts = {**(project.get("scripts") or {}), **(poetry.get("scripts") or {})}
    folder = str(PurePosixPath(path).parent).removeprefix(".")
    distribution = Distribution(
        name=normalise(str(name)),
        folder=folder,
        manifest=path,
        version=str(project.get("version") or poetry.get("version") or "") or None,
        scripts={str(s): _line_of(text, f"{s} =") for s in scripts},
        dependencies=sorted({r.name for r in requirements}),
    )
    if not distribution.version and "version" in (project.get("dynamic") or []):
        distribution.version = "dynamic"
    return distribution, requirements


def read_requirements(repo: RepoFiles, path: str) -> list[Requirement]:
    """Dependencies declared by a requirements file, ``environment.yml``, Pipfile or setup.cfg;
    a field of the wrong type (``packages = ["a"]``, ``- {pip: 5}``) is a note."""
    try:
        return _read_requirements(repo, path)
    except (AttributeError, TypeError, ValueError) as exc:
        repo.note(path, f"not a valid {file_name(path)}: a field has an unexpected type ({exc})")
        return []


def _read_requirements(repo: RepoFiles, path: str) -> list[Requirement]:
    text = repo.read_text(path)
    if text is None:
        return []
    name = file_name(path)
    if name.endswith((".yml", ".yaml")):
        try:
            document = load_yaml(text)
        except YamlSyntaxError as exc:
            repo.note(path, str(exc))
            return []
        specs: list[str] = []
        for item in (
            (document or {}).get("dependencies") or [] if isinstance(document, dict) else []
        ):
            if isinstance(item, str):
                specs.append(
                    item.replace("=", "==", 1) if re.search(r"[^<>=!~]=\d", item) else item
                )
            elif isinstance(item, dict):
                specs.extend(str(s) for s in item.get("pip") or [])
        return _requirements_from(path, text, specs)
    if name == "setup.cfg":
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(text)
        except configparser.Error as exc:
            repo.note(path, f"not an INI file: {str(exc).splitlines()[0]}")
            return []
        raw = parser.get("options", "install_requires", fallback="")
        return _requirements_from(path, text, [s for s in raw.splitlines() if s.strip()])
    if name == "Pipfile":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            repo.note(path, f"not TOML: {exc}")
            return []
        return [
            Requirement(path, _line_of(text, k), normalise(k), str(v).strip() not in {"*", ""})
            for section in ("packages", "dev-packages")
            for k, v in (data.get(section) or {}).items()
        ]
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "-"))
    ]
    return _requirements_from(path, text, lines)


def is_requirements_file(path: str) -> bool:
    """Whether ``path`` is a dependency manifest other than pyproject.toml."""
    name = file_name(path)
    return (name.startswith("requirements") and name.endswith((".txt", ".in"))) or name in {
        "environment.yml",
        "environment.yaml",
        "Pipfile",
        "setup.cfg",
    }


def is_lock_file(path: str) -> bool:
    """Whether ``path`` is a lock file by its name."""
    name = file_name(path)
    return name in LOCK_FILES or (name.startswith("requirements") and name.endswith(".lock"))
