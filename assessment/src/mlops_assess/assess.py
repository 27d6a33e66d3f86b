"""Assess a folder: every criterion met or not with its evidence, the level, the next rung.

The level is cumulative (Microsoft's model): the highest level L such that every criterion of
levels 1..L is met; level 0 is what remains. The ML Test Score estimate (Breck et al., IEEE Big
Data 2017) credits a test when a met criterion maps to it: one point when its evidence shows it
running automatically (a CI job or a test), half a point when it only exists in the code; the
score is the lowest of the four sections. Static evidence only: a test that exists is not a
test that is good.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from mlops_assess.catalogue import LEVEL_NAMES, Catalogue, Criterion, load_catalogue
from mlops_assess.index import Index
from mlops_assess.signals import MAX_EVIDENCE, Evidence, find, unreadable_for
from mlops_assess.tree import Note, walk

SECTIONS = {"data": "Data", "model": "Model", "infra": "Infrastructure", "monitor": "Monitoring"}


@dataclass(frozen=True)
class GroupResult:
    """One part of a criterion: met when ``evidence`` is not empty."""

    describe: str
    evidence: list[Evidence]

    @property
    def met(self) -> bool:
        return bool(self.evidence)


@dataclass(frozen=True)
class CriterionResult:
    """A criterion's verdict on the assessed folder."""

    criterion: Criterion
    groups: list[GroupResult]
    unreadable: list[Note]

    @property
    def met(self) -> bool:
        return all(group.met for group in self.groups)

    @property
    def evidence(self) -> list[Evidence]:
        """Every part's evidence, interleaved (the first item of each part, then the second
        of each, ...): a report that shows only the first few still shows every part."""
        interleaved = itertools.zip_longest(*(group.evidence for group in self.groups))
        return [item for row in interleaved for item in row if item is not None]

    @property
    def missing(self) -> list[str]:
        """What is missing, one line per unmet part."""
        return [group.describe for group in self.groups if not group.met]

    @property
    def automated(self) -> bool:
        """Whether the evidence shows it running automatically (a CI job or a test file)."""
        return any(item.automated for item in self.evidence)


@dataclass(frozen=True)
class SectionScore:
    """ML Test Score estimate of one section: points out of 7 and the tests credited."""

    section: str
    points: float
    credited: dict[str, float]


@dataclass(frozen=True)
class Assessment:
    """The result of assessing one folder."""

    path: str
    root: str
    scope: str
    level: int
    results: list[CriterionResult]
    ml_test_score: list[SectionScore]
    notes: list[Note]
    files: int
    ignored: int = 0  # files and folders of the repository that Git ignores, left out
    dependency_folders: dict[str, str] = field(default_factory=dict)
    entry_files: list[str] = field(default_factory=list)  # the folder's README, manifest

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]

    @property
    def next_level(self) -> int | None:
        return self.level + 1 if self.level < 4 else None

    def at_level(self, level: int) -> list[CriterionResult]:
        return [r for r in self.results if r.criterion.level == level]

    @property
    def to_next_level(self) -> list[CriterionResult]:
        """The criteria of the next level (and any below it) that are not met."""
        if self.next_level is None:
            return []
        return [
            r
            for r in self.results
            if r.criterion.level is not None and r.criterion.level <= self.next_level and not r.met
        ]

    @property
    def ml_test_score_final(self) -> float:
        return min(s.points for s in self.ml_test_score)


def evaluate(criterion: Criterion, index: Index) -> CriterionResult:
    """One criterion on one index (``same_file``: the groups' evidence from one file)."""
    limit = None if criterion.same_file else MAX_EVIDENCE
    found = [
        [item for signal in group.any_of for item in find(signal, index, limit)]
        for group in criterion.all_of
    ]
    found = [list(dict.fromkeys(items)) for items in found]  # one line per place
    if criterion.same_file:
        common = set.intersection(*({item.path for item in items} for items in found))
        found = [[item for item in items if item.path in common][:MAX_EVIDENCE] for items in found]
    groups: list[GroupResult] = []
    unreadable: list[Note] = []
    for group, evidence in zip(criterion.all_of, found, strict=True):
        if not evidence:
            for signal in group.any_of:
                unreadable.extend(n for n in unreadable_for(signal, index) if n not in unreadable)
        groups.append(GroupResult(group.describe, evidence))
    return CriterionResult(criterion, groups, unreadable)


def ladder_level(results: list[CriterionResult]) -> int:
    """The highest level whose criteria, and all those below it, are met."""
    level = 0
    for candidate in range(1, 5):
        at = [r for r in results if r.criterion.level == candidate]
        if at and all(r.met for r in at):
            level = candidate
        else:
            break
    return level


def ml_test_score(results: list[CriterionResult], catalogue: Catalogue) -> list[SectionScore]:
    """Points per section of the ML Test Score, from the met criteria's mappings."""
    credit: dict[str, float] = {}
    for result in results:
        if not result.met:
            continue
        points = 1.0 if result.automated else 0.5
        for test in result.criterion.ml_test_score:
            credit[test] = max(credit.get(test, 0.0), points)
    scores = []
    for prefix in SECTIONS:
        credited = {
            t.id: credit[t.id]
            for t in catalogue.ml_test_score
            if t.id in credit and t.id.startswith(prefix)
        }
        scores.append(SectionScore(prefix, sum(credited.values()), credited))
    return scores


def assess(
    path: Path, catalogue: Catalogue | None = None, *, workers: int | None = None
) -> Assessment:
    """Assess the folder ``path`` (never importing or running anything in it).

    ``workers`` caps the processes that parse Python at once (``None``: one per core; large
    trees only, see :mod:`mlops_assess.sources`); the result is the same for any value.

    Raises:
        NotADirectoryError: ``path`` is not a folder.
        FileNotFoundError: ``path`` does not exist.
    """
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if not path.is_dir():
        raise NotADirectoryError(f"{path}: not a folder (give the repository or a folder in it)")
    catalogue = catalogue or load_catalogue()
    repo = walk(path)
    index = Index(repo, workers)
    results = [evaluate(criterion, index) for criterion in catalogue.criteria]
    return Assessment(
        path=str(path),
        root=str(repo.root),
        scope=repo.scope,
        level=ladder_level(results),
        results=results,
        ml_test_score=ml_test_score(results, catalogue),
        notes=list(repo.notes),
        files=len(index.own_files),
        ignored=repo.ignored,
        dependency_folders=dict(index.dependency_folders),
        entry_files=[f for f in _ENTRY_FILES(repo.scope) if f in set(index.own_files)],
    )


def _ENTRY_FILES(scope: str) -> list[str]:  # noqa: N802 (a table, read like a constant)
    prefix = f"{scope}/" if scope else ""
    names = ("README.md", "README.rst", "README", "pyproject.toml", "setup.py")
    return [prefix + name for name in names]
