"""The routing table: which variants are deployed, and which one answers a given ride.

A ride id is hashed into one of :data:`BUCKETS` buckets; each live variant owns a contiguous
range of buckets in proportion to its weight. So the same ride id goes to the same variant for
as long as the weights stay the same (sticky assignment), whatever the process or the restart,
and a ride without an id gets a random bucket. Shadow variants own no buckets: they receive a
copy of every ride and their predictions are logged, never returned.

A table is immutable; a change builds a new one, and the app swaps the reference in one
assignment, so a request sees either the old table or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field, replace
from typing import Any

from duration_deployment.errors import ConflictError, DeploymentError, NotFoundError
from duration_deployment.registry import DeployedModel

#: Traffic resolution: weights are honoured to 1/10,000 (0.01%).
BUCKETS = 10_000
#: Smallest traffic share: one bucket (a smaller one would be live with no traffic).
MIN_WEIGHT = 1 / BUCKETS
#: A name of a variant: letters, digits, ``-`` and ``_`` (it becomes a metrics label).
VARIANT_NAME = r"^[A-Za-z][A-Za-z0-9_\-]{0,39}$"
CHAMPION, CHALLENGER = "champion", "challenger"
#: Header that forces a live variant for a request (tests, debugging, a canary by hand).
VARIANT_HEADER = "X-Model-Variant"


def bucket(ride_id: str) -> int:
    """The bucket (0 to ``BUCKETS - 1``) of a ride id: BLAKE2b of its UTF-8 bytes.

    A keyless cryptographic hash, not Python's ``hash()``, which is salted per process: the
    assignment must survive restarts and be the same on every replica.
    """
    digest = hashlib.blake2b(ride_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True)
class Variant:
    """One deployed model version under a name.

    Attributes:
        name: ``champion``, ``challenger`` or any other name.
        model: The loaded version.
        weight: Share of the live traffic, 0-1 (0 for a shadow).
        shadow: Receives a copy of the traffic; its predictions are never returned.
    """

    name: str
    model: DeployedModel
    weight: float
    shadow: bool = False

    def describe(self) -> dict[str, Any]:
        """JSON-able view for ``GET /deployments``."""
        return {
            "variant": self.name,
            "weight": round(self.weight, 6),
            "shadow": self.shadow,
            **self.model.describe(),
        }


@dataclass(frozen=True)
class RoutingTable:
    """The deployed variants, ordered champion first, then by name.

    Attributes:
        variants: Every variant, live and shadow.
        revision: Increases by one with every change (0: nothing deployed yet).
    """

    variants: tuple[Variant, ...] = ()
    revision: int = 0
    # Derived from ``variants`` in __post_init__ (a change builds a new table).
    _live: tuple[Variant, ...] = field(default=(), init=False, repr=False, compare=False)
    _shadows: tuple[Variant, ...] = field(default=(), init=False, repr=False, compare=False)
    _edges: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        live = [v for v in self.variants if not v.shadow]
        total = sum(v.weight for v in live)
        if live and abs(total - 1.0) > 1e-6:
            raise ValueError(f"live weights sum to {total}, not 1")
        ordered = sorted(self.variants, key=lambda v: (v.name != CHAMPION, v.name))
        object.__setattr__(self, "variants", tuple(ordered))
        # Bucket boundaries: variant i owns [edges[i-1], edges[i]).
        edges, running = [], 0.0
        for variant in (v for v in ordered if not v.shadow):
            running += variant.weight
            edges.append(round(running * BUCKETS))
        object.__setattr__(self, "_live", tuple(v for v in ordered if not v.shadow))
        object.__setattr__(self, "_edges", tuple(edges))
        object.__setattr__(self, "_shadows", tuple(v for v in ordered if v.shadow))

    @property
    def live(self) -> tuple[Variant, ...]:
        """Variants that answer requests."""
        return self._live

    @property
    def shadows(self) -> tuple[Variant, ...]:
        """Variants that receive copies of the traffic."""
        return self._shadows

    def get(self, name: str) -> Variant | None:
        """The variant called ``name``, or None."""
        return next((v for v in self.variants if v.name == name), None)

    def choose(self, ride_id: str | None, rng: random.Random | None = None) -> Variant:
        """The live variant that answers ``ride_id`` (a random bucket when it is None).

        Raises:
            LookupError: Nothing is deployed.
        """
        if not self._live:
            raise LookupError("no model is deployed")
        slot = bucket(ride_id) if ride_id is not None else (rng or random).randrange(BUCKETS)
        for variant, edge in zip(self._live, self._edges, strict=True):
            if slot < edge:
                return variant
        return self._live[-1]

    def describe(self) -> dict[str, Any]:
        """JSON-able view: revision and variants."""
        return {"revision": self.revision, "variants": [v.describe() for v in self.variants]}

    def summary(self) -> dict[str, Any]:
        """``{variant: {version, weight, shadow}}``: what the history records of a table."""
        return {
            v.name: {
                "model_version": v.model.version,
                "weight": round(v.weight, 6),
                "shadow": v.shadow,
            }
            for v in self.variants
        }

    # -- changes: each returns a new table ----------------------------------------------------

    def with_variant(self, variant: Variant) -> RoutingTable:
        """Add or replace ``variant``; the other live variants share ``1 - weight`` in their
        current proportions. The first live variant always takes all the traffic.

        Raises:
            ConflictError: A weight of 1 beside other live variants, or the last live variant
                replaced by a shadow.
        """
        others = [v for v in self.variants if v.name != variant.name]
        if variant.shadow:
            replaced = self.get(variant.name)
            if replaced is not None and not replaced.shadow:
                # A live variant turned shadow leaves the split: the others share its traffic.
                others = list(self.without(variant.name).variants)
            return RoutingTable((*others, replace(variant, weight=0.0)), self.revision + 1)
        live_others = [v for v in others if not v.shadow]
        if not live_others:
            variant = replace(variant, weight=1.0)
        elif variant.weight >= 1.0:
            raise ConflictError(
                f"weight 1 for {variant.name!r} would leave "
                f"{', '.join(v.name for v in live_others)} no traffic: remove them, or promote"
            )
        rescaled = _rescale(live_others, 1.0 - variant.weight)
        shadows = [v for v in others if v.shadow]
        return RoutingTable((*rescaled, *shadows, variant), self.revision + 1)

    def with_weight(self, name: str, weight: float) -> RoutingTable:
        """Give ``name`` the share ``weight``; the others share the rest as before.

        Raises:
            NotFoundError / ConflictError: No such variant, a shadow, or the only live one
                set below 1.
        """
        variant = self._require(name)
        if variant.shadow:
            raise ConflictError(f"{name!r} is a shadow variant: it takes no share of traffic")
        if len(self.live) == 1 and weight < 1.0:
            raise ConflictError(
                f"{name!r} is the only live variant: it takes all the traffic (deploy another)"
            )
        return self.with_variant(replace(variant, weight=weight))

    def without(self, name: str) -> RoutingTable:
        """Remove ``name``; the other live variants share its traffic in proportion.

        Raises:
            NotFoundError / ConflictError: No such variant, or it is the last live one.
        """
        variant = self._require(name)
        others = [v for v in self.variants if v.name != name]
        live_others = [v for v in others if not v.shadow]
        if not variant.shadow and not live_others:
            raise ConflictError(f"{name!r} is the last live variant: deploy another first")
        if not variant.shadow:
            others = [*_rescale(live_others, 1.0), *(v for v in others if v.shadow)]
        return RoutingTable(tuple(others), self.revision + 1)

    def promoted(self, name: str) -> RoutingTable:
        """``name`` becomes ``champion`` with all the traffic; other live variants leave,
        shadows stay."""
        variant = self._require(name)
        shadows = [v for v in self.shadows if v.name != name]
        champion = replace(variant, name=CHAMPION, weight=1.0, shadow=False)
        return RoutingTable((champion, *shadows), self.revision + 1)

    def _require(self, name: str) -> Variant:
        variant = self.get(name)
        if variant is None:
            names = ", ".join(v.name for v in self.variants) or "none"
            raise NotFoundError(f"no variant named {name!r} is deployed (deployed: {names})")
        return variant


def _rescale(variants: list[Variant], total: float) -> list[Variant]:
    """Scale the weights of ``variants`` so they sum to ``total`` (equal shares if all 0)."""
    if not variants:
        return []
    current = sum(v.weight for v in variants)
    if current <= 0:
        return [replace(v, weight=total / len(variants)) for v in variants]
    return [replace(v, weight=v.weight * total / current) for v in variants]


def check_weight(weight: float) -> float:
    """A traffic share must lie in (0, 1].

    Raises:
        DeploymentError: It does not.
    """
    if not MIN_WEIGHT <= weight <= 1.0:  # also refuses NaN
        raise DeploymentError(
            f"weight {weight!r} must be a share of traffic from {MIN_WEIGHT} (one bucket of "
            f"{BUCKETS:,}) to 1"
        )
    return weight
