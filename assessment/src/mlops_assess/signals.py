"""Find the evidence for one catalogue signal in an :class:`~mlops_assess.index.Index`.

Each finder returns :class:`Evidence` items (at most :data:`MAX_EVIDENCE` per signal, the first
ones in walk order) and, through :func:`unreadable_for`, the files whose problems could hide
evidence of that kind.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from mlops_assess.catalogue import (
    CallSignal,
    CISignal,
    DecoratorSignal,
    DependencySignal,
    FileSignal,
    ImportSignal,
    KeywordSignal,
    NameSignal,
    PinsSignal,
    RouteSignal,
    Signal,
    StringSignal,
    TestsSignal,
    TextSignal,
)
from mlops_assess.ci import ci_files
from mlops_assess.index import Index, RunLine, is_test_file
from mlops_assess.manifests import is_requirements_file
from mlops_assess.python_facts import Loc, PyFacts
from mlops_assess.tree import Note, file_name, under

MAX_EVIDENCE = 5


@dataclass(frozen=True)
class Evidence:
    """Where a signal was found: ``path`` (repository-relative), 1-based ``line``, what."""

    path: str
    line: int
    detail: str
    cell: int | None = None
    via: str | None = None
    automated: bool = False

    @property
    def location(self) -> str:
        """``file:line`` (``file:cell N:line`` in a notebook)."""
        if self.cell is not None:
            return f"{self.path}:cell {self.cell}:{self.line}"
        return f"{self.path}:{self.line}"


def find(signal: Signal, index: Index, limit: int | None = MAX_EVIDENCE) -> list[Evidence]:
    """Evidence for ``signal``: the first ``limit`` items (all with ``None``; empty if none)."""
    found: list[Evidence] = []
    for item in _FINDERS[signal.kind](signal, index):  # type: ignore[operator]
        found.append(item)
        if limit is not None and len(found) >= limit:
            break
    return found


# -- Python --------------------------------------------------------------------------------
@cache
def _glob_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def _python_files(
    index: Index, where: str, deps: bool = True, notebooks: bool = True
) -> list[tuple[str, PyFacts]]:
    return index.python_files(where, deps, notebooks)


def _first_hits(
    index: Index,
    signal: ImportSignal | CallSignal | DecoratorSignal | NameSignal | StringSignal,
    table: str,
    matched: frozenset[str],
) -> Iterator[tuple[str, str, Loc]]:
    """Each file's first value (in source order) of ``table`` that is in ``matched``."""
    if not matched:
        return
    for path, facts in _python_files(index, signal.in_, signal.deps, signal.notebooks):
        values: dict[str, Loc] = getattr(facts, table)
        if values.keys().isdisjoint(matched):  # walks the smaller of the two
            continue
        value = next(v for v in values if v in matched)
        yield path, value, values[value]


def _evidence(index: Index, path: str, loc: Loc, detail: str) -> Evidence:
    return Evidence(
        path, loc[0], detail, cell=loc[1], via=index.via(path), automated=is_test_file(path)
    )


def _imports(signal: ImportSignal, index: Index) -> Iterator[Evidence]:
    prefixes = tuple(signal.modules)
    dotted = tuple(p + "." for p in prefixes)
    matched = index.matching(
        "imports", lambda m: m in prefixes or m.startswith(dotted), ("import", prefixes)
    )
    for path, module, loc in _first_hits(index, signal, "imports", matched):
        yield _evidence(index, path, loc, f"imports {module}")


def _calls(signal: CallSignal | DecoratorSignal, index: Index) -> Iterator[Evidence]:
    regex = _glob_regex(tuple(signal.names))
    verb = "calls " if signal.kind == "call" else "decorated with @"
    table = "calls" if signal.kind == "call" else "decorators"
    matched = index.matching(table, lambda n: regex.fullmatch(n) is not None, regex.pattern)
    for path, name, loc in _first_hits(index, signal, table, matched):
        yield _evidence(index, path, loc, f"{verb}{name}")


def _keywords(signal: KeywordSignal, index: Index) -> Iterator[Evidence]:
    for path, facts in _python_files(index, signal.in_, signal.deps, signal.notebooks):
        for name in signal.names:
            if name in facts.keywords:
                yield _evidence(index, path, facts.keywords[name], f"passes {name}=")
                break


def _patterns(signal: NameSignal | StringSignal, index: Index) -> Iterator[Evidence]:
    regex = re.compile(signal.pattern)
    what = "names" if signal.kind == "name" else "says"
    table = "names" if signal.kind == "name" else "strings"
    matched = index.matching(table, lambda v: regex.search(v) is not None, signal.pattern)
    for path, value, loc in _first_hits(index, signal, table, matched):
        shown = value if len(value) <= 60 else value[:57] + "..."
        yield _evidence(index, path, loc, f"{what} {shown!r}")


def _routes(signal: RouteSignal, index: Index) -> Iterator[Evidence]:
    for path, facts in _python_files(index, signal.in_, signal.deps, signal.notebooks):
        if facts.routes:
            route, loc = next(iter(facts.routes.items()))
            more = f" (+{len(facts.routes) - 1} more)" if len(facts.routes) > 1 else ""
            yield _evidence(index, path, loc, f"web route {route}{more}")


def _tests(signal: TestsSignal, index: Index) -> Iterator[Evidence]:
    for path, facts in _python_files(index, "tests"):
        if facts.tests:
            name, loc = next(iter(facts.tests.items()))
            yield Evidence(
                path,
                loc[0],
                f"{len(facts.tests)} test functions ({name}, ...)",
                cell=loc[1],
                automated=True,
            )


# -- files, text, manifests ----------------------------------------------------------------
def _candidates(index: Index, globs: list[str], where: str) -> Iterator[str]:
    regex = _glob_regex(tuple(globs))
    files = index.own_files if where == "scope" else index.repo.files
    for path in files:
        if regex.fullmatch(path) or regex.fullmatch(path.rsplit("/", 1)[-1]):
            yield path


def _files(signal: FileSignal, index: Index) -> Iterator[Evidence]:
    for path in _candidates(index, signal.globs, signal.where):
        yield Evidence(path, 1, "file present")


def _text(signal: TextSignal, index: Index) -> Iterator[Evidence]:
    regex = re.compile(signal.pattern, re.MULTILINE)
    for path in _candidates(index, signal.globs, signal.where):
        text = index.repo.read_text(path)
        if text is None:
            continue
        match = regex.search(text)
        if match:
            line = text.count("\n", 0, match.start()) + 1
            yield Evidence(path, line, f"says {match.group(0).strip()[:60]!r}")


def _dependencies(signal: DependencySignal, index: Index) -> Iterator[Evidence]:
    wanted = {name.lower() for name in signal.names}
    for requirement in index.requirements:
        if requirement.name in wanted:
            yield Evidence(
                requirement.file,
                requirement.line,
                f"depends on {requirement.name}",
                via=index.via(requirement.file),
            )


def _pins(signal: PinsSignal, index: Index) -> Iterator[Evidence]:
    for path in index.lock_files:
        yield Evidence(path, 1, "lock file")
    own = [r for r in index.requirements if under(r.file, index.scope)]
    if own:
        constrained = [r for r in own if r.constrained]
        if len(constrained) * 2 >= len(own):
            first = constrained[0]
            yield Evidence(
                first.file,
                first.line,
                f"{len(constrained)} of {len(own)} dependencies declared with versions"
                + (
                    f" across {len(files)} manifests"
                    if len(files := {r.file for r in own}) > 1
                    else ""
                ),
            )


# -- CI ------------------------------------------------------------------------------------
def _ci(signal: CISignal, index: Index) -> Iterator[Evidence]:
    regex = re.compile(signal.pattern, re.MULTILINE)
    wanted = set(signal.triggers)
    with_dependencies = signal.reach == "scope+deps"
    best: dict[int, RunLine] = {}
    for run in index.run_lines:
        job = run.job
        if wanted and not job.triggers & wanted:
            continue
        if signal.environment and not job.environment:
            continue
        if not regex.search(run.text):
            continue
        if not index.reaches(job, with_dependencies=with_dependencies):
            continue
        current = best.get(id(job))
        if current is None or (
            index.names_scope(run, with_dependencies=with_dependencies)
            and not index.names_scope(current, with_dependencies=with_dependencies)
        ):
            best[id(job)] = run
    for run in best.values():
        job = run.job
        triggers = ", ".join(sorted(job.triggers)) or "no trigger"
        shown = " ".join(run.text.split())
        shown = shown if len(shown) <= 90 else shown[:87] + "..."
        environment = f", environment {job.environment}" if job.environment else ""
        yield Evidence(
            job.file,
            run.line,
            f"{job.system} job {job.name!r} ({triggers}{environment}) runs `{shown}`",
            automated=True,
        )


_FINDERS = {
    "import": _imports,
    "call": _calls,
    "decorator": _calls,
    "keyword": _keywords,
    "name": _patterns,
    "string": _patterns,
    "route": _routes,
    "tests": _tests,
    "file": _files,
    "text": _text,
    "dependency": _dependencies,
    "pins": _pins,
    "ci": _ci,
}


def unreadable_for(signal: Signal, index: Index) -> list[Note]:
    """Notes on files whose problems could hide evidence of this signal's kind."""
    notes = index.repo.notes
    if not notes:
        return []
    if signal.kind == "ci":
        ci = set(ci_files(index.repo))
        names = {"tox.ini", "Makefile"}
        return [n for n in notes if n.path in ci or file_name(n.path) in names]
    if signal.kind in {"dependency", "pins"}:
        return [
            n
            for n in notes
            if file_name(n.path) == "pyproject.toml" or is_requirements_file(n.path)
        ]
    if signal.kind in {"file", "text"}:
        regex = _glob_regex(tuple(signal.globs))
        return [n for n in notes if regex.fullmatch(n.path) or regex.fullmatch(file_name(n.path))]
    folders = [index.scope, *index.dependency_folders]
    return [
        n
        for n in notes
        if n.path.endswith((".py", ".ipynb")) and any(under(n.path, f) for f in folders)
    ]
