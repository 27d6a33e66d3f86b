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
from typing import Any

import anyio.to_thread
from sqlalchemy.exc import SQLAlchemyError

from duration_deployment.config import RouterSettings
from duration_deployment.guardrails import Guardrails, Trip
from duration_deployment.metrics import RouterMetrics
from duration_deployment.prediction_log import PredictionLog
from duration_deployment.registry import (
    ConflictError,
    DeployedModel,
    DeploymentError,
    Registry,
    RegistryUnavailableError,
    load_pipeline,
    smoke_test,
)
from duration_deployment.routing import (
    CHALLENGER,
    CHAMPION,
    RoutingTable,
    Variant,
    check_weight,
)
from duration_service.model_state import PredictionBatcher

logger = logging.getLogger(__name__)

#: Variant names whose MLflow alias follows the table (restart restores them).
ALIASED = (CHAMPION, CHALLENGER)
#: Seconds between attempts to put back aliases that a failed change left moved.
ALIAS_REPAIR_SECONDS = 5.0


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
        self.aliases: dict[str, str] = {}
        self.guardrails = Guardrails(
            window=settings.guardrail_window,
            min_predictions=settings.guardrail_min_predictions,
            max_error_rate=settings.guardrail_max_error_rate,
            max_p99_ms=settings.guardrail_max_p99_ms,
            p99_ratio=settings.guardrail_p99_ratio,
        )
        self._saved: list[_Saved] = []
        self._alias_repair: dict[str, str | None] = {}  # aliases to put back (registry down)
        self._repair_task: asyncio.Task[None] | None = None
        self._start_revision: int | None = None  # the table deployed at start-up
        self._lock = asyncio.Lock()
        self._models: dict[str, DeployedModel] = {}  # by version: one load per version
        self._batchers: dict[tuple[str, str, int], PredictionBatcher] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- models -------------------------------------------------------------------------------

    def batcher(self, model: DeployedModel) -> PredictionBatcher:
        """The micro-batcher of ``model``: one per loaded version, so two variants of the same
        version share their batches (a pipeline call has a fixed cost of about 1 ms)."""
        key = (model.version, model.sha256, id(model.pipeline))
        found = self._batchers.get(key)
        if found is None:
            found = self._batchers[key] = PredictionBatcher(model)  # type: ignore[arg-type]
        return found

    def _load(self, model_uri: str) -> DeployedModel:
        """Resolve, download, verify, load and smoke-test ``model_uri`` (blocking)."""
        version, folder, digest, sklearn_version, profile = self.registry.fetch(model_uri)
        number = str(version.version)
        cached = self._models.get(number)
        if cached is not None and cached.sha256 == digest:
            # A profile that failed to download before may be there now.
            if cached.profile is None and profile is not None:
                cached = self._models[number] = replace(cached, profile=profile)
            return replace(cached, requested_uri=model_uri)
        pipeline = load_pipeline(folder)
        s = self.settings
        smoke_ms = smoke_test(
            pipeline,
            max_seconds=s.smoke_max_seconds,
            min_minutes=s.smoke_min_minutes,
            max_minutes=s.smoke_max_minutes,
        )
        model = DeployedModel(
            name=self.registry.model_name,
            version=number,
            run_id=version.run_id,
            requested_uri=model_uri,
            sha256=digest,
            pipeline=pipeline,
            profile=profile,
            model_kind=self.registry.run_tag(version.run_id, "best_model") or "unknown",
            sklearn_version=sklearn_version,
            smoke_ms=smoke_ms,
        )
        self._models[number] = model
        logger.info(
            "loaded %s (v%s, %s), smoke test %.1f ms", model_uri, number, model.model_kind, smoke_ms
        )
        return model

    # -- the calls ----------------------------------------------------------------------------

    async def deploy(
        self,
        model_uri: str,
        *,
        variant: str = CHALLENGER,
        weight: float | None = None,
        shadow: bool = False,
        actor: str = "api",
    ) -> dict[str, Any]:
        """Deploy ``model_uri`` as ``variant`` at ``weight`` (or as a shadow): the one call.

        ``champion`` and ``challenger`` variants also move their MLflow alias, so a restart
        deploys the same versions.

        Raises:
            DeploymentError: 422 for a bad URI, an unverifiable download or a failed smoke test;
                409 when the table cannot take it; 503 when the registry is down.
        """
        if shadow and variant == CHAMPION:
            raise DeploymentError("the champion answers requests: it cannot be a shadow variant")
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
        model = await anyio.to_thread.run_sync(self._load, model_uri)
        async with self._lock:
            before = self.table.get(variant)
            table = self.table.with_variant(Variant(variant, model, weight, shadow))
            aliases: dict[str, str | None] = {}
            if variant in ALIASED:  # a shadow challenger is not the challenger of the alias
                aliases = {variant: None if shadow else model.version}
            share = "shadow" if shadow else f"{table.get(variant).weight:.0%} of traffic"  # type: ignore[union-attr]
            return await self._commit(
                table,
                action="deploy",
                actor=actor,
                variant=variant,
                model=model,
                previous=before.model.version if before else None,
                detail=f"{model.uri} ({model.model_kind}) as {variant}, {share}",
                aliases=aliases,
            )

    async def set_weight(
        self, variant: str, weight: float, *, actor: str = "api"
    ) -> dict[str, Any]:
        """Give ``variant`` the share ``weight`` of live traffic; the others share the rest."""
        check_weight(weight)
        async with self._lock:
            table = self.table.with_weight(variant, weight)
            current = self.table.get(variant)
            return await self._commit(
                table,
                action="weight",
                actor=actor,
                variant=variant,
                model=current.model if current else None,
                previous=current.model.version if current else None,
                detail=f"{variant} weight {current.weight if current else 0:.0%} -> {weight:.0%}",
                aliases={},
            )

    async def remove(self, variant: str, *, actor: str = "api", action: str = "remove",
                     detail: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Take ``variant`` out of the table; its alias (champion/challenger) is deleted."""
        async with self._lock:
            return await self._remove_locked(variant, actor=actor, action=action, detail=detail)

    async def _remove_locked(
        self, variant: str, *, actor: str, action: str, detail: str | None
    ) -> dict[str, Any]:
        current = self.table.get(variant)
        if variant == CHAMPION and action == "remove":
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

    async def promote(self, variant: str = CHALLENGER, *, actor: str = "api") -> dict[str, Any]:
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
                action="promote",
                actor=actor,
                variant=CHAMPION,
                model=candidate.model,
                previous=old.model.version if old else None,
                detail=f"{variant} v{version} promoted to champion"
                + (f", replacing v{old.model.version}" if old else ""),
                aliases={CHAMPION: version, CHALLENGER: None},
            )

    async def rollback(self, *, actor: str = "api") -> dict[str, Any]:
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
                action="rollback",
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
                    action="guardrail rollback",
                    detail=f"{trip.variant} v{trip.model_version} rolled back: {trip.message}",
                )
            except RegistryUnavailableError:
                # Stop the traffic even if the alias cannot be deleted now.
                logger.error(
                    "guardrail: registry down, removing %s without moving aliases", trip.variant
                )
                await self._commit(
                    self.table.without(trip.variant),
                    action="guardrail rollback",
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
        """Deploy what the registry's aliases name: ``champion``, then ``challenger``.

        The weights (and shadow variants) of the last table in the history are reused when
        its champion and challenger are the same versions; otherwise the challenger gets
        ``challenger_weight``. A registry that is down leaves the table empty (logged).
        """
        try:
            aliases = await anyio.to_thread.run_sync(self.registry.aliases)
        except DeploymentError as exc:
            logger.error("start-up: nothing deployed: %s", exc)
            return
        self.aliases = dict(aliases)
        champion, challenger = aliases.get(CHAMPION), aliases.get(CHALLENGER)
        if champion is None:
            logger.warning(
                "start-up: %s has no champion alias in the registry %s: nothing deployed "
                "(run duration-pipeline there, or POST /deployments)",
                self.registry.model_name,
                self.registry.uri,
            )
            return
        if challenger is not None and await anyio.to_thread.run_sync(
            self._tripped_before, challenger
        ):
            # A guardrail removed it while the registry was down, so the alias stayed behind.
            logger.warning("start-up: challenger v%s was rolled back by a guardrail", challenger)
            try:
                await anyio.to_thread.run_sync(self.registry.set_aliases, {CHALLENGER: None})
                self.aliases.pop(CHALLENGER, None)
            except DeploymentError as exc:
                logger.error("start-up: cannot delete the challenger alias: %s", exc)
            challenger = None
        last = await anyio.to_thread.run_sync(self.log.last_event)
        saved: dict[str, Any] = (last or {}).get("table_after", {})
        if challenger == champion:  # level 2 leaves both aliases on a first version
            challenger = None
        saved_challenger = saved.get(CHALLENGER, {})
        same = saved.get(CHAMPION, {}).get("model_version") == champion and (
            (saved_challenger.get("model_version") if not saved_challenger.get("shadow") else None)
            == challenger
        )
        wanted: list[tuple[str, str, float, bool]]
        if same:  # the aliases still name the last table's versions: restore it whole
            wanted = [
                (name, e["model_version"], float(e["weight"]), bool(e["shadow"]))
                for name, e in saved.items()
            ]
        else:
            share = self.settings.challenger_weight if challenger is not None else 0.0
            wanted = [(CHAMPION, champion, 1.0 - share, False)]
            if challenger is not None:
                wanted.append((CHALLENGER, challenger, share, False))
            dropped = sorted(set(saved) - {CHAMPION, CHALLENGER})
            if dropped:
                logger.warning(
                    "start-up: the registry's aliases differ from the last table: not restoring %s",
                    ", ".join(dropped),
                )
        variants: list[Variant] = []
        for name, version, weight, shadow in wanted:
            uri = f"models:/{self.registry.model_name}/{version}"
            try:
                model = await anyio.to_thread.run_sync(self._load, uri)
            except DeploymentError as exc:
                logger.error("start-up: cannot deploy %s as %s: %s", uri, name, exc)
                continue
            variants.append(Variant(name, model, weight, shadow))
        live_total = sum(v.weight for v in variants if not v.shadow)
        if live_total <= 0:
            return
        table = RoutingTable(
            tuple(v if v.shadow else replace(v, weight=v.weight / live_total) for v in variants)
        )
        if not table.variants:
            return
        async with self._lock:
            # Revisions go on from the history, so they never repeat across restarts.
            self.table = RoutingTable(revision=int((last or {}).get("revision", 0)))
            await self._commit(
                table,
                action="start",
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
        current = self.table.summary()
        events = await anyio.to_thread.run_sync(self.log.history, 1000)
        target = next((e for e in reversed(events) if e["table_after"] != current), None)
        if target is None or not target["table_after"]:
            return None
        variants = []
        for name, entry in target["table_after"].items():
            uri = f"models:/{self.registry.model_name}/{entry['model_version']}"
            model = await anyio.to_thread.run_sync(self._load, uri)
            variants.append(Variant(name, model, float(entry["weight"]), bool(entry["shadow"])))
        live_total = sum(v.weight for v in variants if not v.shadow)
        if live_total <= 0:
            return None
        # The history rounds weights to 6 decimals: make them sum to exactly 1 again.
        variants = [v if v.shadow else replace(v, weight=v.weight / live_total) for v in variants]
        table = RoutingTable(tuple(variants), revision=int(target["revision"]))
        aliases = {a: target["aliases_after"].get(a) for a in ALIASED}
        return _Saved(table, aliases, f"{events[-1]['action']} (from the history)")

    def _tripped_before(self, version: str) -> bool:
        """Whether the newest history entry about the challenger is a guardrail rollback of
        ``version`` (and not a later deployment)."""
        for event in reversed(self.log.history(1000)):
            if event["variant"] != CHALLENGER:
                continue
            if event["action"] == "guardrail rollback":
                return bool(event["previous_version"] == version)
            if event["action"] in ("deploy", "promote", "remove"):
                return False
        return False

    async def aclose(self) -> None:
        """Stop background work (the alias repair, guardrail rollbacks in flight)."""
        if self._alias_repair:
            logger.error("stopping with aliases not yet put back: %s", self._alias_repair)
        for task in [self._repair_task, *self._tasks]:
            if task is not None and not task.done():
                task.cancel()

    def _repair_aliases(self, wanted: dict[str, str | None]) -> None:
        """Keep trying to set ``wanted`` aliases (every 5 s) until the registry takes them."""
        self._alias_repair.update(wanted)
        if self._repair_task is not None and not self._repair_task.done():
            return

        async def repair() -> None:
            while self._alias_repair:
                await asyncio.sleep(ALIAS_REPAIR_SECONDS)
                async with self._lock:
                    wanted = dict(self._alias_repair)
                    try:
                        await anyio.to_thread.run_sync(self.registry.set_aliases, wanted)
                    except DeploymentError as exc:
                        logger.warning("aliases still not restored: %s", exc)
                        continue
                    self._alias_repair.clear()
                    logger.info("aliases restored: %s", wanted)

        self._repair_task = asyncio.get_running_loop().create_task(repair())

    # -- internals ----------------------------------------------------------------------------

    async def _commit(
        self,
        table: RoutingTable,
        *,
        action: str,
        actor: str,
        variant: str | None,
        model: DeployedModel | None,
        previous: str | None,
        detail: str,
        aliases: dict[str, str | None],
        save: bool = True,
    ) -> dict[str, Any]:
        """Move the aliases, swap the table in, record the change. Caller holds the lock."""
        before_aliases: dict[str, str | None] = {a: self.aliases.get(a) for a in ALIASED}
        changes = {a: v for a, v in aliases.items() if self.aliases.get(a) != v}
        if changes:
            try:
                await anyio.to_thread.run_sync(self.registry.set_aliases, changes)
            except DeploymentError as exc:
                # Put back any alias that did move, so the registry and the table agree.
                undo = {a: before_aliases.get(a) for a in changes}
                try:
                    await anyio.to_thread.run_sync(self.registry.set_aliases, undo)
                except DeploymentError:
                    logger.error("could not restore the aliases %s now: will retry", undo)
                    self._repair_aliases(undo)
                    raise type(exc)(
                        f"{exc}; some aliases may have moved: the router puts them back "
                        f"({', '.join(f'{a}=v{v}' if v else f'no {a}' for a, v in undo.items())})"
                        " as soon as the registry answers"
                    ) from None
                raise
            for alias, version in changes.items():
                self._alias_repair.pop(alias, None)  # set as wanted now: no repair to do
                if version is None:
                    self.aliases.pop(alias, None)
                else:
                    self.aliases[alias] = version
        if save:
            self._saved.append(_Saved(self.table, before_aliases, action))
            del self._saved[: -self.settings.history_depth]
        # The history entry first, then the swap: whoever sees the new table (GET
        # /deployments, a report) also finds the entry that explains it.
        after = replace(table, revision=self.table.revision + 1)
        event = {
            "action": action,
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
        await self._swap(after, action=action)
        logger.info("%s by %s: %s", action, actor, detail)
        return {"table": self.table.describe(), "aliases": dict(self.aliases), "event": entry}

    async def _swap(self, table: RoutingTable, *, action: str) -> None:
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

    def state(self, history: int = 50) -> dict[str, Any]:
        """The table, the aliases and the last ``history`` changes (``GET /deployments``)."""
        return {
            "table": self.table.describe(),
            "aliases": dict(self.aliases),
            "registry": self.registry.uri,
            "model_name": self.registry.model_name,
            "rollback_available": bool(self._saved),
            "history": self.log.history(history),
        }
