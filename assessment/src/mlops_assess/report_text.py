"""The assessment for people: plain text for a terminal, Markdown for a GitHub job summary or
a pull-request comment (``--format text|markdown``)."""

from __future__ import annotations

from mlops_assess.assess import SECTIONS, Assessment, CriterionResult
from mlops_assess.catalogue import LEVEL_NAMES
from mlops_assess.report_json import band

_EVIDENCE_SHOWN = 3


def _evidence_lines(result: CriterionResult, *, code: bool = False) -> list[str]:
    lines = []
    for item in result.evidence[:_EVIDENCE_SHOWN]:
        via = f" [via {item.via}]" if item.via else ""
        location = f"`{item.location}`" if code else item.location
        lines.append(f"{location}  {item.detail}{via}")
    extra = len(result.evidence) - _EVIDENCE_SHOWN
    if extra > 0:
        lines.append(f"(+{extra} more)")
    return lines


def _scope(assessment: Assessment) -> str:
    return assessment.scope or "(the whole repository)"


def text(assessment: Assessment) -> str:
    """A terminal report: the level, each criterion by level, the next rung, the estimate."""
    out = [
        f"{_scope(assessment)}: level {assessment.level} ({assessment.level_name})",
        f"  {assessment.files} files read from {assessment.root}"
        + (f" ({assessment.ignored} paths Git ignores left out)" if assessment.ignored else ""),
    ]
    if assessment.dependency_folders:
        deps = ", ".join(f"{n} ({f}/)" for f, n in assessment.dependency_folders.items())
        out.append(f"  with the local distributions it depends on: {deps}")
    for level in range(1, 5):
        out.append("")
        out.append(f"Level {level}, {LEVEL_NAMES[level]}:")
        for result in assessment.at_level(level):
            mark = "[x]" if result.met else "[ ]"
            out.append(f"  {mark} {result.criterion.id}: {result.criterion.title}")
            for line in _evidence_lines(result):
                out.append(f"        {line}")
            if not result.met:
                for missing in result.missing:
                    out.append(f"        missing: {missing}")
                for note in result.unreadable:
                    out.append(f"        evidence unreadable in {note.path}: {note.problem}")
    out.append("")
    if assessment.next_level is None:
        out.append("Every criterion of every level is met.")
    else:
        out.append(
            f"To reach level {assessment.next_level} ({LEVEL_NAMES[assessment.next_level]}):"
        )
        for result in assessment.to_next_level:
            out.append(
                f"  - {result.criterion.title} ({result.criterion.id}); "
                f"see {result.criterion.shown_in}"
            )
    out.append("")
    out.append(_score_line(assessment))
    if assessment.notes:
        out.append("")
        out.append("Files that could not be used:")
        out.extend(f"  {n.path}: {n.problem}" for n in assessment.notes)
    return "\n".join(out) + "\n"


def _score_line(assessment: Assessment) -> str:
    parts = ", ".join(f"{SECTIONS[s.section]} {s.points:g}/7" for s in assessment.ml_test_score)
    final = assessment.ml_test_score_final
    return (
        f"ML Test Score estimate (static evidence only): {parts}; final {final:g} ({band(final)})"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(assessment: Assessment) -> str:
    """A Markdown report that fits a GitHub job summary or a pull-request comment."""
    out = [
        f"## MLOps maturity of `{_cell(_scope(assessment))}`: level {assessment.level} "
        f"({assessment.level_name})",
        "",
        "| level | criterion | met | evidence |",
        "|---|---|---|---|",
    ]
    for result in [r for r in assessment.results if r.criterion.level is not None]:
        if result.met:
            shown = "<br>".join(_cell(line) for line in _evidence_lines(result, code=True))
        else:
            missing = [f"missing: {m}" for m in result.missing]
            missing += [f"unreadable: `{n.path}` ({n.problem})" for n in result.unreadable]
            shown = "<br>".join(_cell(m) for m in missing)
        mark = "yes" if result.met else "**no**"
        out.append(
            f"| {result.criterion.level} | {_cell(result.criterion.title)} "
            f"(`{result.criterion.id}`) | {mark} | {shown} |"
        )
    out.append("")
    if assessment.next_level is None:
        out.append("Every criterion of every level is met.")
    else:
        out.append(
            f"### To reach level {assessment.next_level} ({LEVEL_NAMES[assessment.next_level]})"
        )
        out.append("")
        for result in assessment.to_next_level:
            out.append(
                f"- **{_cell(result.criterion.title)}** (`{result.criterion.id}`): "
                f"{_cell(result.criterion.evidence)} See `{_cell(result.criterion.shown_in)}`."
            )
    out.append("")
    out.append(f"_{_score_line(assessment)}._")
    if assessment.notes:
        out.append("")
        out.append("<details><summary>Files that could not be used</summary>")
        out.append("")
        out.extend(f"- `{_cell(n.path)}`: {_cell(n.problem)}" for n in assessment.notes)
        out.append("")
        out.append("</details>")
    return "\n".join(out) + "\n"
