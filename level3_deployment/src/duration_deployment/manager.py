"""Deployment: the one call, and every change to the routing table after it.

Each change runs under one lock: the slow part (download, verify, load, smoke test) happens in
a worker thread before the lock is taken, the MLflow aliases move next (so a registry that is
down leaves everything as it was: 503), then the new table replaces the old one in a single
assignment and the change is written to the history. Earlier tables, with the models they hold
and the aliases before the change, are kept for :meth:`DeploymentManager.rollback`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any, cast

import anyio.to_thread
from sqlalchemy.exc import SQLAlchemyError

from duration_deployment.aliases import ALIASED, AliasSync
from duration_deployment.config import RouterSettings
from duration_deployment.errors import ConflictError, DeploymentError, RegistryUnavailableError
from duration_deployment.guardrails import Guardrails, Trip
from duration_deployment.history import (
    TABLE_ACTIONS,
    Action,
    last_different_table,
    tripped_before,
)
from duration_deployment.metrics import RouterMetrics
from duration_deployment.model_cache import ModelCache
from duration_deployment.prediction_log import PredictionLog, note_detail
from duration_deployment.registry import DeployedModel, Registry
from duration_deployment.restore import Wanted, load_variants, normalised, plan_start
from duration_deployment.routing import (
    CHALLENGER,
    CHAMPION,
    RoutingTable,
    Variant,
    check_weight,
)
from duration_deployment.schemas import ControlResult, DeploymentsState
from duration_service.model_state import PredictionBatcher

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Saved:
    """A table before a change, and the aliases then (what :meth:`rollback` restores)."""

    table: RoutingTable
    aliases: dict[str, str | None]
    action: str


class DeploymentManager:
    """Owns the routing table, the loaded models and their batchers.

    Args:
        settings: Router settings (smoke-test limits, history depth, challenger weight).
        registry: The MLflow registry.
        log: The prediction log (history entries go there).
        metrics: The router's metrics.
    """

    def __init__(
        self,
        settings: RouterSettings,
        registry: Registry,
        log: PredictionLog,
        metrics: RouterMetrics,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.log = log
        self.metrics = metrics
        self.table = RoutingTable()
        self.guardrails = Guardrails(
            window=settings.guardrail_window,
            min_predictions=settings.guardrail_min_predictions,
            max_error_rate=settings.guardrail_max_error_rate,
            max_p99_ms=settings.guardrail_max_p99_ms,
            p99_ratio=settings.guardrail_p99_ratio,
        )
        self.models = ModelCache(registry, settings)
        self._lock = asyncio.Lock()
        self.alias_sync = AliasSync(registry, self._lock)
        self._saved: list[_Saved] = []
        self._start_revision: int | None = None  # the table deployed at start-up
        #: Why start-up deployed nothing (the registry down or refusing), for ``/ready``.
        self.start_problem: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def aliases(self) -> dict[str, str]:
        """``{alias: version}`` as the router last set (or read) them."""
        return self.alias_sync.current

    def batcher(self, model: DeployedModel) -> PredictionBatcher:
        """The micro-batcher of ``model`` (see :meth:`ModelCache.batcher`)."""
        return self.models.batcher(model)

    # -- the calls ----------------------------------------------------------------------------

    async def deploy(
        self,
        model_uri: str,
        *,
        variant: str = CHALLENGER,
        weight: float | None = None,
        shadow: bool = False,
        actor: str = "api",
    ) -> ControlResult:
        """Deploy ``model_uri`` as ``variant`` at ``weight`` (or as a shadow): the one call.

        ``champion`` and ``challenger`` variants also move their MLflow alias, so a restart
        deploys the same versions.

        Raises:
            DeploymentError: 422 for a bad URI, an unverifiable download or a failed smoke test;
                404 for a version or alias the registry does not have; 409 when the table
                cannot take it; 503 when the registry is down.
        """
        if shadow and variant == CHAMPION:
            raise ConflictError("the champion answers requests: it cannot be a shadow variant")
        if shadow:
            weight = 0.0
        else:
            weight = check_weight(self.settings.challenger_weight if weight is None else weight)
        self.registry.parse(model_uri)  # refuse a bad URI before any work
        shadows = [v for v in self.table.shadows if v.name != variant]
        if shadow and len(shadows) >= self.settings.max_shadows:
            raise ConflictError(
                f"{len(shadows)} shadow variants are deployed, the most allowed "
                f"(DURATION_ROUTER_MAX_SHADOWS={self.settings.max_shadows}): remove one first"
            )
        model = await anyio.to_thread.run_sync(self.models.load, model_uri)
        async with self._lock:
            before = self.table.get(variant)
            table = self.table.with_variant(Variant(variant, model, weight, shadow))
            aliases: dict[str, str | None] = {}
            if variant in ALIASED:  # a shadow challenger is not the challenger of the alias
                aliases = {variant: None if shadow else model.version}
            placed = cast(Variant, table.get(variant))  # with_variant put it there
            share = "shadow" if shadow else f"{placed.weight:.0%} of traffic"
            return await self._commit(
                table,
                action=Action.DEPLOY,
                actor=actor,
                variant=variant,
                model=model,
                previous=before.model.version if before else None,
                detail=f"{model.uri} ({model.model_kind}) as {variant}, {share}",
                aliases=aliases,
            )

    async def set_weight(self, variant: str, weight: float, *, actor: str = "api") -> ControlResult:
        """Give ``variant`` the share ``weight`` of live traffic; the others share the rest."""
        check_weight(weight)
        async with self._lock:
            table = self.table.with_weight(variant, weight)
            current = self.table.get(variant)
            return await self._commit(
                table,
                action=Action.WEIGHT,
                actor=actor,
                variant=variant,
                model=current.model if current else None,
                previous=current.model.version if current else None,
                detail=f"{variant} weight {current.weight if current else 0:.0%} -> {weight:.0%}",
                aliases={},
            )

    async def remove(self, variant: str, *, actor: str = "api", action: Action = Action.REMOVE,
                     detail: str | None = None) -> ControlResult:  # fmt: skip
        """Take ``variant`` out of the table; its alias (champion/challenger) is deleted."""
        async with self._lock:
            return await self._remove_locked(variant, actor=actor, action=action, detail=detail)

    async def _remove_locked(
        self, variant: str, *, actor: str, action: Action, detail: str | None
    ) -> ControlResult:
        current = self.table.get(variant)
        if variant == CHAMPION and action == Action.REMOVE:
            raise ConflictError(
                "the champion cannot be removed: promote another variant first (a router "
                "without a champion would deploy nothing at its next start)"
            )
        table = self.table.without(variant)
        aliases: dict[str, str | None] = {variant: None} if variant in ALIASED else {}
        return await self._commit(
            table,
            action=action,
            actor=actor,
            variant=variant,
            model=None,
            previous=current.model.version if current else None,
            detail=detail or f"{variant} removed",
            aliases=aliases,
        )

    async def promote(self, variant: str = CHALLENGER, *, actor: str = "api") -> ControlResult:
        """``variant`` becomes the champion with all the live traffic; MLflow's ``champion``
        alias moves to its version and ``challenger`` is deleted."""
        async with self._lock:
            candidate = self.table.get(variant)
            if candidate is None:
                names = ", ".join(v.name for v in self.table.variants) or "none"
                raise ConflictError(f"no variant {variant!r} to promote (deployed: {names})")
            if variant == CHAMPION:
                raise ConflictError("champion is already the champion")
            old = self.table.get(CHAMPION)
            table = self.table.promoted(variant)
            version = candidate.model.version
            return await self._commit(
                table,
                action=Action.PROMOTE,
                actor=actor,
                variant=CHAMPION,
                model=candidate.model,
                previous=old.model.version if old else None,
                detail=f"{variant} v{version} promoted to champion"
                + (f", replacing v{old.model.version}" if old else ""),
                aliases={CHAMPION: version, CHALLENGER: None},
            )

    async def rollback(self, *, actor: str = "api") -> ControlResult:
        """Restore the table before the last change, with its MLflow aliases.

        Right after a restart (no change made since), the table of the newest history entry
        that differs from the current one is rebuilt from the registry instead.

        Raises:
            ConflictError: Nothing to roll back to.
        """
        async with self._lock:
            if not self._saved:
                restored = None
                if self.table.revision == self._start_revision:
                    restored = await self._from_history()
                if restored is None:
                    raise ConflictError(
                        "nothing to roll back: no earlier table since the router started"
                    )
                self._saved.append(restored)
            saved = self._saved[-1]
            if not saved.table.live:
                raise ConflictError(
                    "nothing to roll back to: the table before the last change had no live "
                    "variant (deploy one instead)"
                )
            current = self.table.summary()
            before = saved.table.summary()
            changed = [n for n in set(current) | set(before) if current.get(n) != before.get(n)]
            result = await self._commit(
                replace(saved.table),
                action=Action.ROLLBACK,
                actor=actor,
                variant=", ".join(sorted(changed)) or None,
                model=None,
                previous=None,
                detail=f"undid the last {saved.action}: restored revision {saved.table.revision}",
                aliases=saved.aliases,
                save=False,
            )
            self._saved.pop()
            return result

    async def note(
        self,
        kind: str,
        summary: str,
        data: dict[str, Any],
        *,
        actor: str = "api",
        variant: str | None = None,
        model_version: str | None = None,
    ) -> dict[str, Any]:
        """Write a note into the history (a decision of level 4's loop, an operator's
        remark): the table, its revision and the aliases are recorded as they are.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: The log database is unavailable.
        """
        async with self._lock:  # the table and revision the note records are current
            entry: dict[str, Any] = {
                "action": str(Action.NOTE),
                "actor": actor,
                "detail": note_detail(kind, summary, data),
                "revision": self.table.revision,
                "table_after": self.table.summary(),
                "aliases_after": dict(self.aliases),
                "variant": variant,
                "model_version": model_version,
                "previous_version": None,
            }
            return await anyio.to_thread.run_sync(lambda: self.log.add_event(**entry))

    async def guardrail_rollback(self, trip: Trip) -> None:
        """Take a tripped variant out of the table (if it still holds that version)."""
        async with self._lock:
            current = self.table.get(trip.variant)
            if current is None or current.model.version != trip.model_version:
                return
            if current.name == CHAMPION or (not current.shadow and len(self.table.live) == 1):
                return
            self.metrics.guardrail_rollbacks.labels(trip.variant, trip.reason).inc()
            logger.warning(
                "guardrail: rolling back %s v%s: %s", trip.variant, trip.model_version, trip.message
            )
            try:
                await self._remove_locked(
                    trip.variant,
                    actor="guardrail",
                    action=Action.GUARDRAIL_ROLLBACK,
                    detail=f"{trip.variant} v{trip.model_version} rolled back: {trip.message}",
                )
            except RegistryUnavailableError:
                # Stop the traffic even if the alias cannot be deleted now.
                logger.error(
                    "guardrail: registry down, removing %s without moving aliases", trip.variant
                )
                await self._commit(
                    self.table.without(trip.variant),
                    action=Action.GUARDRAIL_ROLLBACK,
                    actor="guardrail",
                    variant=trip.variant,
                    model=None,
                    previous=trip.model_version,
                    detail=f"{trip.variant} v{trip.model_version} rolled back: {trip.message} "
                    "(the registry was down: alias not deleted)",
                    aliases={},
                )

    def observe(self, variant: Variant, *, error: bool, latency_ms: float | None) -> None:
        """Feed the guardrails (non-champion variants); a trip schedules the rollback."""
        if not self.settings.guardrails:
            return
        if variant.name == CHAMPION:
            self.guardrails.observe_champion(latency_ms)
            return
        trip = self.guardrails.observe(
            variant.name, variant.model.version, error=error, latency_ms=latency_ms
        )
        if trip is not None:
            task = asyncio.get_running_loop().create_task(self.guardrail_rollback(trip))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- start-up -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Deploy what the registry's aliases name: ``champion``, then ``challenger``
        (:func:`~duration_deployment.restore.plan_start` says with which weights and shadows).

        A challenger that a guardrail rolled back while the registry was down loses its alias
        first. A registry that is down leaves the table empty (logged).
        """
        try:
            aliases = await anyio.to_thread.run_sync(self.registry.aliases)
        except DeploymentError as exc:
            logger.error("start-up: nothing deployed: %s", exc)
            self.start_problem = f"nothing deployed at start-up: {exc}"
            return
        self.alias_sync.current = dict(aliases)
        champion, challenger = aliases.get(CHAMPION), aliases.get(CHALLENGER)
        if champion is None:
            logger.warning(
                "start-up: %s has no champion alias in the registry %s: nothing deployed "
                "(run duration-pipeline there, or POST /deployments)",
                self.registry.model_name,
                self.registry.uri,
            )
            return
        events = await anyio.to_thread.run_sync(self._table_history)
        if challenger is not None and tripped_before(events, challenger):
            # A guardrail removed it while the registry was down, so the alias stayed behind.
            logger.warning("start-up: challenger v%s was rolled back by a guardrail", challenger)
            try:
                no_challenger: dict[str, str | None] = {CHALLENGER: None}
                await anyio.to_thread.run_sync(self.registry.set_aliases, no_challenger)
                self.alias_sync.current.pop(CHALLENGER, None)
            except DeploymentError as exc:
                logger.error("start-up: cannot delete the challenger alias: %s", exc)
            challenger = None
        last = await anyio.to_thread.run_sync(self.log.last_event, TABLE_ACTIONS)
        plan = plan_start(champion, challenger, last, self.settings.challenger_weight)
        if plan.dropped:
            logger.warning(
                "start-up: the registry's aliases differ from the last table: not restoring %s",
                ", ".join(plan.dropped),
            )
        variants = await load_variants(plan.variants, self._load_version)
        table = normalised(variants)
        if table is None:
            return
        async with self._lock:
            # Revisions go on from the history, so they never repeat across restarts.
            self.table = RoutingTable(revision=int((last or {}).get("revision", 0)))
            await self._commit(
                table,
                action=Action.START,
                actor="router",
                variant=None,
                model=None,
                previous=None,
                detail="deployed from the registry aliases: "
                + ", ".join(f"{v.name} v{v.model.version}" for v in table.variants),
                aliases={},
                save=False,
            )
            self._start_revision = self.table.revision

    async def _from_history(self) -> _Saved | None:
        """The newest table of the history that differs from the current one, its versions
        loaded again (the router restarted since), or None."""
        events = await anyio.to_thread.run_sync(self._table_history)
        target = last_different_table(events, self.table.summary())
        if target is None:
            return None
        wanted = [
            Wanted(name, e["model_version"], float(e["weight"]), bool(e["shadow"]))
            for name, e in target["table_after"].items()
        ]
        variants = await load_variants(wanted, self._load_version, skip_failed=False)
        table = normalised(variants, revision=int(target["revision"]))
        if table is None:
            return None
        aliases = {a: target["aliases_after"].get(a) for a in ALIASED}
        return _Saved(table, aliases, f"{events[-1]['action']} (from the history)")

    def _table_history(self) -> list[dict[str, Any]]:
        """The last 1,000 changes of the table (notes left out)."""
        return self.log.history(1000, actions=TABLE_ACTIONS)

    async def _load_version(self, version: str) -> DeployedModel:
        uri = f"models:/{self.registry.model_name}/{version}"
        return await anyio.to_thread.run_sync(self.models.load, uri)

    async def aclose(self) -> None:
        """Stop background work (the alias repair, guardrail rollbacks in flight)."""
        self.alias_sync.aclose()
        for task in self._tasks:
            if not task.done():
                task.cancel()

    # -- internals ----------------------------------------------------------------------------

    async def _commit(
        self,
        table: RoutingTable,
        *,
        action: Action,
        actor: str,
        variant: str | None,
        model: DeployedModel | None,
        previous: str | None,
        detail: str,
        aliases: dict[str, str | None],
        save: bool = True,
    ) -> ControlResult:
        """Move the aliases, swap the table in, record the change. Caller holds the lock.

        Raises:
            DeploymentError: The registry refused the aliases; nothing changed.
        """
        before_aliases = self.alias_sync.snapshot()
        await self.alias_sync.move(aliases)
        if save:
            self._saved.append(_Saved(self.table, before_aliases, action))
            del self._saved[: -self.settings.history_depth]
        # The history entry first, then the swap: whoever sees the new table (GET
        # /deployments, a report) also finds the entry that explains it.
        after = replace(table, revision=self.table.revision + 1)
        event: dict[str, Any] = {
            "action": str(action),
            "actor": actor,
            "detail": detail,
            "revision": after.revision,
            "table_after": after.summary(),
            "aliases_after": dict(self.aliases),
            "variant": variant,
            "model_version": model.version if model else None,
            "previous_version": previous,
        }
        try:
            entry = await anyio.to_thread.run_sync(lambda: self.log.add_event(**event))
        except SQLAlchemyError as exc:
            # The change goes ahead (aliases and table agree); only its history entry is lost.
            logger.error("could not write the history entry of %s: %s", action, exc)
            entry = {**event, "id": None, "history_error": str(exc).splitlines()[0][:300]}
        self._swap(after, action=action)
        logger.info("%s by %s: %s", action, actor, detail)
        return ControlResult(table=self.table.describe(), aliases=dict(self.aliases), event=entry)

    def _swap(self, table: RoutingTable, *, action: Action) -> None:
        """Make ``table`` the routing table (revision: the current one + 1)."""
        revision = self.table.revision + 1
        old = self.table
        self.table = replace(table, revision=revision)  # the one assignment requests see
        self.metrics.show_table(self.table)
        kept = {(v.name, v.model.version) for v in self.table.variants}
        for variant in old.variants:
            if (variant.name, variant.model.version) not in kept:
                self.guardrails.forget(variant.name, variant.model.version)
        logger.debug("table revision %d after %s", revision, action)

    def state(self, history: int = 50) -> DeploymentsState:
        """The table, the aliases and the last ``history`` changes (``GET /deployments``).

        Raises:
            sqlalchemy.exc.SQLAlchemyError: The log database is unavailable.
        """
        return DeploymentsState(
            table=self.table.describe(),
            aliases=dict(self.aliases),
            registry=self.registry.uri,
            model_name=self.registry.model_name,
            rollback_available=bool(self._saved),
            history=self.log.history(history, actions=TABLE_ACTIONS),
        )
