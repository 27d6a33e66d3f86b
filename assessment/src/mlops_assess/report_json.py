"""The assessment as one JSON object (``--format json``); the other formats read the same data.

``schema_version`` changes when a field is removed or changes meaning (adding one does not).
"""

from __future__ import annotations

from typing import Any

from mlops_assess import __version__
from mlops_assess.assess import SECTIONS, Assessment, CriterionResult
from mlops_assess.catalogue import LEVEL_NAMES, load_catalogue

SCHEMA_VERSION = 1

#: Breck et al. (2017): what a final ML Test Score means.
BANDS = (
    (0.0, "research project"),
    (1.0, "not totally untested, but serious holes in reliability are worth considering"),
    (2.0, "a first pass at basic productionisation, more investment may be needed"),
    (3.0, "reasonably tested, but more tests and procedures may be automated"),
    (5.0, "strong levels of automated testing and monitoring, appropriate for mission-critical"),
)


def band(score: float) -> str:
    """Breck et al.'s reading of a final score (exceptional above 5)."""
    if score > 5:
        return "exceptional levels of automated testing and monitoring"
    for upper, meaning in BANDS:
        if score <= upper:
            return meaning
    return BANDS[-1][1]


def criterion_dict(result: CriterionResult) -> dict[str, Any]:
    """One criterion's verdict with its evidence (``file:line``) and what is missing."""
    c = result.criterion
    return {
        "id": c.id,
        "level": c.level,
        "title": c.title,
        "met": result.met,
        "evidence": [
            {
                "location": e.location,
                "path": e.path,
                "line": e.line,
                "detail": e.detail,
                "via": e.via,
            }
            for e in result.evidence
        ],
        "missing": result.missing,
        "unreadable": [f"evidence unreadable in {n.path}: {n.problem}" for n in result.unreadable],
        "why": c.why,
        "shown_in": c.shown_in,
        "microsoft": c.microsoft or None,
        "google": c.google or None,
        "ml_test_score": c.ml_test_score,
    }


def to_dict(assessment: Assessment) -> dict[str, Any]:
    """The whole assessment (see the README's "JSON output" for the fields)."""
    catalogue = load_catalogue()
    titles = {t.id: t.title for t in catalogue.ml_test_score}
    final = assessment.ml_test_score_final
    nxt = assessment.next_level
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "mlops-assess", "version": __version__, "catalogue": catalogue.version},
        "path": assessment.path,
        "repository_root": assessment.root,
        "scope": assessment.scope or ".",
        "files": assessment.files,
        "ignored_by_git": assessment.ignored,
        "local_dependencies": assessment.dependency_folders,
        "level": assessment.level,
        "level_name": assessment.level_name,
        "criteria": [criterion_dict(r) for r in assessment.results],
        "next_level": None
        if nxt is None
        else {
            "level": nxt,
            "level_name": LEVEL_NAMES[nxt],
            "missing": [
                {"id": r.criterion.id, "title": r.criterion.title, "shown_in": r.criterion.shown_in}
                for r in assessment.to_next_level
            ],
        },
        "ml_test_score": {
            "sections": {
                SECTIONS[s.section]: {
                    "points": s.points,
                    "of": 7,
                    "credited": {
                        t: {"title": titles[t], "points": p} for t, p in s.credited.items()
                    },
                }
                for s in assessment.ml_test_score
            },
            "final": final,
            "meaning": band(final),
            "caveat": "an estimate from static evidence only: a test that exists is not a test "
            "that is good, and tests done by hand are not visible",
        },
        "notes": [{"path": n.path, "problem": n.problem} for n in assessment.notes],
    }
