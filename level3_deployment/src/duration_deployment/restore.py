"""What a router deploys when it starts: the registry's aliases, and the last table if they
still name its versions.

Pure functions of the aliases and the last history entry, so the rule is tested without a
registry; :meth:`DeploymentManager.start
<duration_deployment.manager.DeploymentManager.start>` carries the plan out.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from duration_deployment.errors import DeploymentError
from duration_deployment.registry import DeployedModel
from duration_deployment.routing import CHALLENGER, CHAMPION, RoutingTable, Variant

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wanted:
    """One variant to deploy at start-up.

    Attributes:
        name: Variant name.
        version: Registered model version.
        weight: Share of live traffic before normalisation (0 for a shadow).
        shadow: Whether it is a shadow variant.
    """

    name: str
    version: str
    weight: float
    shadow: bool = False


@dataclass(frozen=True)
class StartPlan:
    """The variants to deploy, and the saved ones left out.

    Attributes:
        variants: What to deploy, champion first.
        restored: The last table is restored whole (its weights and shadows).
        dropped: Variants of the last table not restored, because the aliases changed.
    """

    variants: tuple[Wanted, ...]
    restored: bool
    dropped: tuple[str, ...] = ()


def plan_start(
    champion: str,
    challenger: str | None,
    last_event: dict[str, Any] | None,
    challenger_weight: float,
) -> StartPlan:
    """The start-up deployment for the registry's ``champion`` and ``challenger`` versions.

    The last table of the history (``last_event["table_after"]``) is restored whole when its
    champion and live challenger are exactly these versions; otherwise the champion takes
    ``1 - challenger_weight`` and the challenger ``challenger_weight`` (all the traffic to the
    champion without a challenger). A challenger equal to the champion (level 2 leaves both
    aliases on a first version) is no challenger.
    """
    saved: dict[str, Any] = (last_event or {}).get("table_after", {})
    saved_challenger = saved.get(CHALLENGER, {})
    saved_live_challenger = (
        saved_challenger.get("model_version") if not saved_challenger.get("shadow") else None
    )
    # Both aliases on one version match a table with that version in both slots, or with the
    # champion alone (level 2's first version).
    challenger_matches = saved_live_challenger == challenger or (
        challenger == champion and saved_live_challenger is None
    )
    if challenger == champion:
        challenger = None
    if saved.get(CHAMPION, {}).get("model_version") == champion and challenger_matches:
        wanted = tuple(
            Wanted(name, e["model_version"], float(e["weight"]), bool(e["shadow"]))
            for name, e in saved.items()
        )
        return StartPlan(wanted, restored=True)
    share = challenger_weight if challenger is not None else 0.0
    variants = [Wanted(CHAMPION, champion, 1.0 - share)]
    if challenger is not None:
        variants.append(Wanted(CHALLENGER, challenger, share))
    dropped = tuple(sorted(set(saved) - {CHAMPION, CHALLENGER}))
    return StartPlan(tuple(variants), restored=False, dropped=dropped)


async def load_variants(
    wanted: Iterable[Wanted],
    load: Callable[[str], Awaitable[DeployedModel]],
    *,
    skip_failed: bool = True,
) -> list[Variant]:
    """The variants of ``wanted``, each version loaded by ``load(version)``.

    Raises:
        DeploymentError: A version failed to load and ``skip_failed`` is false (with it, the
            failure is logged and the variant left out).
    """
    variants = []
    for entry in wanted:
        try:
            model = await load(entry.version)
        except DeploymentError as exc:
            if not skip_failed:
                raise
            logger.error("start-up: cannot deploy v%s as %s: %s", entry.version, entry.name, exc)
            continue
        variants.append(Variant(entry.name, model, entry.weight, entry.shadow))
    return variants


def normalised(variants: list[Variant], revision: int = 0) -> RoutingTable | None:
    """A table of ``variants`` whose live weights sum to exactly 1 (the history rounds them
    to 6 decimals), or None when no live variant has traffic."""
    live_total = sum(v.weight for v in variants if not v.shadow)
    if live_total <= 0:
        return None
    return RoutingTable(
        tuple(v if v.shadow else replace(v, weight=v.weight / live_total) for v in variants),
        revision=revision,
    )
