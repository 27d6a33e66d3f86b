"""Reading a Prometheus exposition the way a scrape sees it."""

from __future__ import annotations


def sample(text: str, name: str, /, missing: float = 0.0, **labels: str) -> float:
    """The value of the first series ``name`` whose labels include ``labels``, in the
    exposition ``text``; ``missing`` when there is none (a counter not yet incremented)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return missing
