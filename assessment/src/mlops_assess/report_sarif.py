"""The assessment as SARIF 2.1.0 for GitHub code scanning (``--format sarif``).

One rule per criterion of a maturity level; one result per criterion that is not met, placed
on the file closest to it (its partial evidence, else the folder's README or manifest).
Schema: docs.oasis-open.org/sarif/sarif/v2.1.0 (the tests validate against it).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from mlops_assess import __version__
from mlops_assess.assess import Assessment, CriterionResult

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://learn.microsoft.com/azure/architecture/ai-ml/guide/mlops-maturity-model"


def _anchor(result: CriterionResult, assessment: Assessment) -> tuple[str, int]:
    if result.evidence:
        return result.evidence[0].path, result.evidence[0].line
    if assessment.entry_files:
        return assessment.entry_files[0], 1
    return (assessment.scope or "."), 1


def sarif(assessment: Assessment) -> dict[str, Any]:
    """A SARIF log with one run of mlops-assess."""
    leveled = [r for r in assessment.results if r.criterion.level is not None]
    rules = [
        {
            "id": r.criterion.id,
            "name": "".join(w.capitalize() for w in r.criterion.id.split("-")),
            "shortDescription": {"text": r.criterion.title},
            "fullDescription": {"text": r.criterion.why},
            "help": {
                "text": f"{r.criterion.evidence} "
                f"See {r.criterion.shown_in} in the MLOps maturity ladder.",
            },
            "properties": {
                "maturity-level": r.criterion.level,
                "tags": ["mlops", f"maturity-level-{r.criterion.level}"],
            },
        }
        for r in leveled
    ]
    index = {r.criterion.id: i for i, r in enumerate(leveled)}
    results = []
    for r in leveled:
        if r.met:
            continue
        path, line = _anchor(r, assessment)
        missing = "; ".join(r.missing)
        unreadable = "".join(
            f" Evidence unreadable in {n.path}: {n.problem}." for n in r.unreadable
        )
        blocks = (r.criterion.level or 0) <= (assessment.next_level or 0)
        results.append(
            {
                "ruleId": r.criterion.id,
                "ruleIndex": index[r.criterion.id],
                "level": "warning" if blocks else "note",
                "message": {
                    "text": f"Level {r.criterion.level} criterion not met: {r.criterion.title}. "
                    f"Missing: {missing}.{unreadable} See {r.criterion.shown_in}."
                },
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {
                                "uri": quote(path, safe="/", errors="backslashreplace"),
                                "uriBaseId": "%SRCROOT%",
                            },
                            "region": {"startLine": max(1, line)},
                        }
                    }
                ],
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mlops-assess",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"mlops-assess/{assessment.scope or '.'}/"},
                "results": results,
                "properties": {"maturity-level": assessment.level},
            }
        ],
    }
