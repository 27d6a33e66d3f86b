"""Everything the signals look at, for one assessed folder of one repository.

The folder's own files, plus the source of the distributions it depends on that live in the
same repository (level 3 of this ladder installs level 2's pipeline: that code is part of what
level 3 ships), plus the repository's CI jobs, with what each job runs (``tox``/``make``
expanded) and whether it *reaches* the folder.

A job reaches a folder when its file lies inside it, a ``paths`` filter or ``working-directory``
points into it, or a command it runs (not one that only installs) names a path inside it or a
console script one of its distributions declares.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property

from mlops_assess.ci import CIJob, read_jobs
from mlops_assess.manifests import (
    Distribution,
    Requirement,
    is_lock_file,
    is_requirements_file,
    read_pyproject,
    read_requirements,
)
from mlops_assess.python_facts import PyFacts
from mlops_assess.runners import Makefile, ToxConfig, expand, is_install, read_makefile, read_tox
from mlops_assess.sources import parse_files
from mlops_assess.tree import RepoFiles, file_name, under

_TEST_DIRS = frozenset({"tests", "test", "testing"})
#: Folders of code that is not shipped: benchmarks, examples, documentation.
_AUXILIARY_DIRS = frozenset({"benchmarks", "benchmark", "bench", "examples", "docs", "scripts"})


@cache  # asked once per file and signal: keep it a dictionary look-up
def is_test_file(path: str) -> bool:
    """Test code by pytest's conventions: a ``tests``/``test`` folder, ``test_*.py``, conftest."""
    parts = path.split("/")
    name = parts[-1]
    return (
        any(part in _TEST_DIRS for part in parts[:-1])
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


@cache
def is_auxiliary_file(path: str) -> bool:
    """Code that is not shipped: under ``benchmarks/``, ``examples/``, ``docs/``, ``scripts/``."""
    return any(part in _AUXILIARY_DIRS for part in path.split("/")[:-1])


@dataclass(frozen=True)
class RunLine:
    """One command a job runs (after expansion) and the step it comes from."""

    job: CIJob
    text: str
    line: int
    installs_only: bool


class Index:
    """Facts of a repository, seen from the assessed folder (``repo.scope``)."""

    def __init__(self, repo: RepoFiles, workers: int | None = None) -> None:
        """``workers``: processes that may parse Python at once (``None``: one per core)."""
        self.repo = repo
        self.scope = repo.scope
        self.workers = workers
        self._selections: dict[tuple[str, bool, bool], list[tuple[str, PyFacts]]] = {}
        self._distinct: dict[str, set[str]] = {}
        self._matches: dict[tuple[str, object], frozenset[str]] = {}

    # -- files -------------------------------------------------------------------------
    @cached_property
    def own_files(self) -> list[str]:
        return self.repo.in_folder(self.scope)

    @cached_property
    def distributions(self) -> list[Distribution]:
        """Every distribution a ``pyproject.toml`` in the repository defines."""
        found = []
        for path in self.repo.files:
            if file_name(path) == "pyproject.toml":
                distribution, _ = read_pyproject(self.repo, path)
                if distribution is not None:
                    found.append(distribution)
        return found

    @cached_property
    def dependency_folders(self) -> dict[str, str]:
        """Folders of local distributions the scope depends on (transitively) -> their names."""
        local = {d.name: d for d in self.distributions}
        inside = [d for d in self.distributions if under(d.folder, self.scope)]
        wanted = [name for d in inside for name in d.dependencies]
        folders: dict[str, str] = {}
        while wanted:
            name = wanted.pop()
            dist = local.get(name)
            if dist is None or dist.folder in folders or under(dist.folder, self.scope):
                continue
            folders[dist.folder] = dist.name
            wanted.extend(dist.dependencies)
        return folders

    def via(self, path: str) -> str | None:
        """The local dependency a file comes from, or ``None`` for the scope's own files."""
        if under(path, self.scope):
            return None
        for folder, name in self.dependency_folders.items():
            if under(path, folder):
                return f"{name} ({folder}/)"
        return None

    @cached_property
    def dependency_files(self) -> list[str]:
        files: list[str] = []
        for folder in self.dependency_folders:
            files.extend(self.repo.in_folder(folder))
        return files

    # -- Python and notebooks ------------------------------------------------------------
    @cached_property
    def python(self) -> dict[str, PyFacts]:
        """Facts of the scope's Python files and notebooks, and its dependencies' source."""
        candidates = self.own_files + [f for f in self.dependency_files if not is_test_file(f)]
        paths = [p for p in candidates if p.endswith((".py", ".ipynb"))]
        facts: dict[str, PyFacts] = {}
        for parsed in parse_files(self.repo.root, paths, self.workers):
            if parsed.facts is not None:
                facts[parsed.path] = parsed.facts
            elif parsed.problem is not None:
                self.repo.note(parsed.path, parsed.problem)
        return facts

    def python_files(self, where: str, deps: bool, notebooks: bool) -> list[tuple[str, PyFacts]]:
        """The parsed files a signal looks at, in walk order.

        ``where`` is ``"source"`` (shipped code: neither tests nor benchmarks, examples, docs,
        scripts), ``"tests"`` (the scope's own tests) or ``"any"``; ``deps`` adds the local
        dependencies' source; ``notebooks`` keeps ``.ipynb`` files.
        """
        key = (where, deps, notebooks)
        if key not in self._selections:
            chosen = []
            for path, facts in self.python.items():
                if not notebooks and path.endswith(".ipynb"):
                    continue
                test = is_test_file(path)
                own = under(path, self.scope)
                if not own and not deps:
                    continue
                if (
                    (where == "source" and not test and not is_auxiliary_file(path))
                    or (where == "tests" and test and own)
                    or (where == "any" and (own or not test))
                ):
                    chosen.append((path, facts))
            self._selections[key] = chosen
        return self._selections[key]

    def matching(self, table: str, test: Callable[[str], bool], key: object) -> frozenset[str]:
        """The distinct values of one :class:`PyFacts` table, over all files, that pass ``test``.

        Signals test each distinct name once rather than once per file; ``key`` identifies
        ``test`` (the signal's pattern) for the cache.
        """
        cache_key = (table, key)
        if cache_key not in self._matches:
            if table not in self._distinct:
                values: set[str] = set()
                for facts in self.python.values():
                    values.update(getattr(facts, table))
                self._distinct[table] = values
            self._matches[cache_key] = frozenset(v for v in self._distinct[table] if test(v))
        return self._matches[cache_key]

    # -- manifests -----------------------------------------------------------------------
    @cached_property
    def requirements(self) -> list[Requirement]:
        """Dependencies declared in the scope's manifests and its local dependencies'."""
        out: list[Requirement] = []
        for path in self.own_files + self.dependency_files:
            name = file_name(path)
            if name == "pyproject.toml":
                out.extend(read_pyproject(self.repo, path)[1])
            elif is_requirements_file(path):
                out.extend(read_requirements(self.repo, path))
        return out

    @cached_property
    def lock_files(self) -> list[str]:
        own = [f for f in self.own_files if is_lock_file(f)]
        requirements = [f for f in self.own_files if is_requirements_file(f) and f.endswith(".txt")]
        for path in requirements:
            text = self.repo.read_text(path) or ""
            if "--hash=" in text:
                own.append(path)
        return own

    @cached_property
    def scripts(self) -> dict[str, set[str]]:
        """Console scripts declared by the scope's own and dependency distributions."""
        own: set[str] = set()
        deps: set[str] = set()
        for dist in self.distributions:
            if under(dist.folder, self.scope):
                own.update(dist.scripts)
            elif dist.folder in self.dependency_folders:
                deps.update(dist.scripts)
        return {"scope": own, "deps": deps}

    # -- CI ------------------------------------------------------------------------------
    @cached_property
    def jobs(self) -> list[CIJob]:
        return read_jobs(self.repo)

    def _tox(self, folder: str) -> ToxConfig | None:
        path = f"{folder}/tox.ini" if folder else "tox.ini"
        if path not in self._tox_cache:
            self._tox_cache[path] = read_tox(self.repo, path) if path in self._file_set else None
        return self._tox_cache[path]

    def _make(self, folder: str) -> Makefile | None:
        path = f"{folder}/Makefile" if folder else "Makefile"
        if path not in self._make_cache:
            self._make_cache[path] = (
                read_makefile(self.repo, path) if path in self._file_set else None
            )
        return self._make_cache[path]

    @cached_property
    def _file_set(self) -> set[str]:
        return set(self.repo.files)

    @cached_property
    def _tox_cache(self) -> dict[str, ToxConfig | None]:
        return {}

    @cached_property
    def _make_cache(self) -> dict[str, Makefile | None]:
        return {}

    @cached_property
    def run_lines(self) -> list[RunLine]:
        """Every command every job runs, matrix values substituted, tox and make expanded."""
        lines: list[RunLine] = []
        for job in self.jobs:
            for step in job.steps:
                folder = step.working_dir or ""
                for text in _substitute_matrix(step.text, job.matrix):
                    for line in text.splitlines() or [text]:
                        if not line.strip() or line.lstrip().startswith("#"):
                            continue
                        for expanded in expand(line, self._tox(folder), self._make(folder)):
                            lines.append(RunLine(job, expanded, step.line, is_install(expanded)))
        return lines

    def reaches(self, job: CIJob, *, with_dependencies: bool) -> bool:
        """Whether ``job`` reaches the scope (or, if asked, one of its local dependencies)."""
        key = (id(job), with_dependencies)
        if key not in self._reach_cache:
            self._reach_cache[key] = self._reaches(job, with_dependencies)
        return self._reach_cache[key]

    @cached_property
    def _reach_cache(self) -> dict[tuple[int, bool], bool]:
        return {}

    def _reaches(self, job: CIJob, with_dependencies: bool) -> bool:
        if not self.scope:
            return True
        folders = [self.scope, *(self.dependency_folders if with_dependencies else [])]
        if any(under(job.file, f) for f in folders):
            return True
        for pattern in job.paths:
            prefix = re.split(r"[*?\[{]", pattern.removeprefix("./"), maxsplit=1)[0].rstrip("/")
            if prefix and any(under(prefix, f) or under(f, prefix) for f in folders):
                return True
        for step in job.steps:
            if step.working_dir and any(under(step.working_dir, f) for f in folders):
                return True
        return any(
            self.names_scope(run, with_dependencies=with_dependencies)
            for run in self.run_lines
            if run.job is job
        )

    def names_scope(self, run: RunLine, *, with_dependencies: bool) -> bool:
        """Whether one command (not an install) names a path or console script of the scope."""
        if run.installs_only:
            return False
        if not self.scope:  # the whole repository: any of its distributions
            folders = [d.folder for d in self.distributions if d.folder]
            scripts = {s for d in self.distributions for s in d.scripts}
            if not folders and not scripts:
                return True
        else:
            folders = [self.scope, *(self.dependency_folders if with_dependencies else [])]
            scripts = self.scripts["scope"] | (self.scripts["deps"] if with_dependencies else set())
        return bool(_folder_pattern(tuple(folders)).search(run.text)) or _runs_script(
            run.text, scripts
        )


@cache
def _folder_pattern(folders: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(f.rstrip("/")) for f in folders)
    return re.compile(rf"(?:^|[\s\"'=:(,]|\./)(?:{alternatives})(?:/|\s|$|[\"'),])")


def _runs_script(text: str, scripts: set[str]) -> bool:
    if not scripts:
        return False
    for line in text.splitlines():
        words = line.split()
        while words and words[0] in {"uv", "run", "poetry", "pdm", "hatch", "pipx", "exec", "time"}:
            words = words[1:]
        if words and words[0] in scripts:
            return True
    return False


#: GitHub runs at most 256 jobs of one matrix; more combinations are never run.
MAX_MATRIX_COMBINATIONS = 256


def _substitute_matrix(text: str, matrix: dict[str, list[str]]) -> list[str]:
    """``text`` once per matrix combination it uses (the first 256, as GitHub runs)."""
    texts = [text]
    for key, values in matrix.items():
        pattern = re.compile(r"\$\{\{\s*matrix\." + re.escape(key) + r"\s*\}\}")
        if any(pattern.search(t) for t in texts):
            texts = [pattern.sub(value, t) for t in texts for value in values]
            del texts[MAX_MATRIX_COMBINATIONS:]
    return texts
