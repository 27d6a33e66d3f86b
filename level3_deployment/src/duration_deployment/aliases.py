"""The registry's ``champion`` and ``challenger`` aliases, kept in step with the routing table.

The aliases are what a restarted router deploys, so a change moves them first and the table
only after the registry took them. A change the registry refuses half-way is undone at once;
when even the undo fails, the aliases to put back are retried every
:data:`ALIAS_REPAIR_SECONDS` until the registry answers.
"""

from __future__ import annotations

import asyncio
import logging

import anyio.to_thread

from duration_deployment.errors import DeploymentError, RegistryRefusedError
from duration_deployment.registry import Registry
from duration_deployment.routing import CHALLENGER, CHAMPION

logger = logging.getLogger(__name__)

#: Variant names whose MLflow alias follows the table (restart restores them).
ALIASED = (CHAMPION, CHALLENGER)
#: Seconds between attempts to put back aliases that a failed change left moved.
ALIAS_REPAIR_SECONDS = 5.0


class AliasSync:
    """The aliases as the router last set them, and their moves.

    Args:
        registry: Where the aliases live.
        lock: The lock every table change holds; the repair task takes it too, so a repair
            never interleaves with a change.
    """

    def __init__(self, registry: Registry, lock: asyncio.Lock) -> None:
        self.registry = registry
        self.current: dict[str, str] = {}  # alias -> version
        self._lock = lock
        self._repair: dict[str, str | None] = {}  # aliases to put back (registry down)
        self._task: asyncio.Task[None] | None = None

    def snapshot(self) -> dict[str, str | None]:
        """``{alias: version or None}`` of :data:`ALIASED` now (what a rollback restores)."""
        return {a: self.current.get(a) for a in ALIASED}

    async def move(self, wanted: dict[str, str | None]) -> None:
        """Point each alias at its version, or delete it (None); the caller holds the lock.

        Raises:
            DeploymentError: The registry refused; the aliases are as before (or will be put
                back: the message says which).
        """
        changes = {a: v for a, v in wanted.items() if self.current.get(a) != v}
        if not changes:
            return
        before = self.snapshot()
        try:
            await anyio.to_thread.run_sync(self.registry.set_aliases, changes)
        except DeploymentError as exc:
            if isinstance(exc, RegistryRefusedError) and not exc.moved:
                raise  # refused before any alias moved: nothing to put back
            # Put back any alias that did move, so the registry and the table agree.
            undo = {a: before.get(a) for a in changes}
            try:
                await anyio.to_thread.run_sync(self.registry.set_aliases, undo)
            except DeploymentError:
                logger.error("could not restore the aliases %s now: will retry", undo)
                self._schedule_repair(undo)
                put_back = ", ".join(f"{a}=v{v}" if v else f"no {a}" for a, v in undo.items())
                raise type(exc)(
                    f"{exc}; some aliases may have moved: the router puts them back "
                    f"({put_back}) as soon as the registry answers"
                ) from None
            raise
        for alias, version in changes.items():
            self._repair.pop(alias, None)  # set as wanted now: no repair to do
            if version is None:
                self.current.pop(alias, None)
            else:
                self.current[alias] = version

    def _schedule_repair(self, wanted: dict[str, str | None]) -> None:
        """Keep trying to set ``wanted`` aliases until the registry takes them."""
        self._repair.update(wanted)
        if self._task is not None and not self._task.done():
            return

        async def repair() -> None:
            while self._repair:
                await asyncio.sleep(ALIAS_REPAIR_SECONDS)
                async with self._lock:
                    wanted = dict(self._repair)
                    try:
                        await anyio.to_thread.run_sync(self.registry.set_aliases, wanted)
                    except DeploymentError as exc:
                        logger.warning("aliases still not restored: %s", exc)
                        continue
                    self._repair.clear()
                    logger.info("aliases restored: %s", wanted)

        self._task = asyncio.get_running_loop().create_task(repair())

    def aclose(self) -> None:
        """Stop the repair task (logged when aliases are still to be put back)."""
        if self._repair:
            logger.error("stopping with aliases not yet put back: %s", self._repair)
        if self._task is not None and not self._task.done():
            self._task.cancel()
