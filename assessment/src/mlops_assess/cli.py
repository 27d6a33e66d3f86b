"""``mlops-assess``: place a repository (or a folder of one) on the MLOps maturity ladder.

Exit status: 0; 1 when ``--fail-below`` is not met; 2 for a usage error (a path that does not
exist or is not a folder, an unknown criterion, a bad option).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from mlops_assess import __version__
from mlops_assess.assess import Assessment, assess
from mlops_assess.catalogue import LEVEL_NAMES, CatalogueError, load_catalogue
from mlops_assess.report_json import criterion_dict, to_dict
from mlops_assess.report_sarif import sarif
from mlops_assess.report_text import markdown, text

FORMATS = ("text", "json", "markdown", "sarif")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-assess",
        description="Read a repository (never run it) and place it on Microsoft's MLOps maturity "
        "levels 0-4, with the evidence for every criterion as file:line.",
        epilog="Levels: " + "; ".join(f"{k} {v}" for k, v in LEVEL_NAMES.items()),
    )
    parser.add_argument(
        "path",
        nargs="?",
        default=".",
        type=_folder_argument,
        help="the repository, or a folder of one (CI at the repository root counts when it "
        "reaches the folder); default: the current folder",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (terminal), json (one object with schema_version), markdown (a GitHub job "
        "summary or PR comment), sarif (2.1.0, for GitHub code scanning); default text",
    )
    parser.add_argument(
        "--fail-below",
        type=int,
        choices=range(0, 5),
        metavar="LEVEL",
        help="exit with status 1 when the level reached is below LEVEL (0-4)",
    )
    parser.add_argument(
        "--explain",
        metavar="ID",
        help="explain one criterion (what it asks, why, where the ladder shows it) and what was "
        "found for it in PATH",
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="processes that may parse Python at once (large trees only); default: one per core",
    )
    parser.add_argument("--version", action="version", version=f"mlops-assess {__version__}")
    return parser


def _folder_argument(value: str) -> Path:
    if not value.strip():
        raise argparse.ArgumentTypeError("an empty path is not a folder")
    return Path(value)


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _explain(assessment: Assessment, criterion_id: str) -> str:
    result = next(r for r in assessment.results if r.criterion.id == criterion_id)
    c = result.criterion
    level = f"level {c.level} ({LEVEL_NAMES[c.level]})" if c.level else "ML Test Score only"
    lines = [
        f"{c.id}: {c.title}  [{level}]",
        "",
        f"Why: {c.why}",
        f"Evidence that satisfies it: {c.evidence}",
        f"Where the ladder shows it: {c.shown_in}",
    ]
    if c.microsoft:
        lines.append(f"Microsoft: {c.microsoft}")
    if c.google:
        lines.append(f"Google: {c.google}")
    if c.ml_test_score:
        lines.append(f"ML Test Score: {', '.join(c.ml_test_score)}")
    lines.append("")
    verdict = "met" if result.met else "not met"
    lines.append(f"In {assessment.scope or assessment.path}: {verdict}")
    for group in result.groups:
        lines.append(f"  {'[x]' if group.met else '[ ]'} {group.describe}")
        for item in group.evidence:
            via = f" [via {item.via}]" if item.via else ""
            lines.append(f"        {item.location}  {item.detail}{via}")
    for note in result.unreadable:
        lines.append(f"  evidence unreadable in {note.path}: {note.problem}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (130 on Ctrl-C, 143 on SIGTERM)."""
    previous = signal.signal(signal.SIGTERM, _terminated)
    for stream in (sys.stdout, sys.stderr):  # file names need not be valid UTF-8
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        return _main(argv)
    except KeyboardInterrupt:
        sys.stderr.write("mlops-assess: interrupted\n")
        return 130
    except MemoryError:
        sys.stderr.write("mlops-assess: error: out of memory\n")
        return 3
    except Exception as exc:  # a defect: say so in one line, with an exit status of its own
        sys.stderr.write(
            f"mlops-assess: internal error ({type(exc).__name__}: {exc}); please report it "
            "with the command that caused it\n"
        )
        return 3
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminated(signum: int, _frame: object) -> None:
    # Unwind (so worker processes are stopped) instead of dying on the spot.
    sys.stderr.write("mlops-assess: terminated\n")
    raise SystemExit(128 + signum)


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        catalogue = load_catalogue()
    except CatalogueError as exc:
        sys.stderr.write(f"mlops-assess: error: {exc}\n")
        return 2
    ids = [c.id for c in catalogue.criteria]
    if args.explain is not None and args.explain not in ids:
        parser.error(f"--explain: no criterion {args.explain!r}; ids: {', '.join(ids)}")
    if args.explain is not None and args.format in {"markdown", "sarif"}:
        parser.error(f"--explain prints text or json, not {args.format}")
    try:
        assessment = assess(args.path, catalogue, workers=args.workers)
    except OSError as exc:  # no such folder, not a folder, name too long, no permission
        parser.error(f"{args.path}: {exc.strerror or exc}" if exc.strerror else str(exc))
    if args.explain is not None:
        if args.format == "json":
            result = next(r for r in assessment.results if r.criterion.id == args.explain)
            sys.stdout.write(json.dumps(criterion_dict(result), indent=2) + "\n")
        else:
            sys.stdout.write(_explain(assessment, args.explain))
    elif args.format == "json":
        sys.stdout.write(json.dumps(to_dict(assessment), indent=2) + "\n")
    elif args.format == "sarif":
        sys.stdout.write(json.dumps(sarif(assessment), indent=2) + "\n")
    elif args.format == "markdown":
        sys.stdout.write(markdown(assessment))
    else:
        sys.stdout.write(text(assessment))
    if args.fail_below is not None and assessment.level < args.fail_below:
        sys.stderr.write(
            f"mlops-assess: level {assessment.level} is below --fail-below {args.fail_below}\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
