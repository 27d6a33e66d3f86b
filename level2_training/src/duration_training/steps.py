"""The pipeline's step table: each step's time and outcome, printed at the end of a run."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class Step:
    """One step: its name, wall time (seconds), outcome (ok, failed, skipped) and a note."""

    name: str
    seconds: float = 0.0
    outcome: str = "skipped"
    note: str = ""


@dataclass
class StepTable:
    """The steps of one run, in order; steps never reached stay ``skipped``."""

    steps: list[Step] = field(default_factory=list)

    @classmethod
    def of(cls, *names: str) -> StepTable:
        """A table with the given steps, all ``skipped`` until they run."""
        return cls([Step(n) for n in names])

    @contextmanager
    def run(self, name: str) -> Iterator[Step]:
        """Time the step ``name``; it is ``failed`` if the block raises, else ``ok``."""
        step = next(s for s in self.steps if s.name == name)
        logger.info("step %s ...", name)
        start = time.perf_counter()
        try:
            yield step
        except BaseException as exc:
            step.outcome = "failed"
            text = str(exc).splitlines() or [type(exc).__name__]  # Ctrl-C has no message
            step.note = step.note or text[0][:120]
            raise
        else:
            step.outcome = "ok"
        finally:
            step.seconds = time.perf_counter() - start
            logger.info("step %s %s in %.2f s", name, step.outcome, step.seconds)

    def as_dicts(self) -> list[dict[str, object]]:
        """For JSON and MLflow."""
        return [asdict(s) for s in self.steps]

    def render(self) -> str:
        """A fixed-width table for a terminal or a workflow summary."""
        width = max(len(s.name) for s in self.steps)
        lines = [f"{'step':<{width}}  {'time':>8}  {'outcome':<8} note"]
        for s in self.steps:
            lines.append(f"{s.name:<{width}}  {s.seconds:>7.2f}s  {s.outcome:<8} {s.note}")
        lines.append(f"{'total':<{width}}  {sum(s.seconds for s in self.steps):>7.2f}s")
        return "\n".join(lines)
