"""The loop's only way to the router: its control API, through level 3's
:class:`~duration_deployment.client.RouterClient`. Nothing here touches the router's database
or the registry aliases behind its back; every change is a call the router records.

Every method raises :class:`RouterUnavailableError` when the router cannot be reached or answers
5xx (worth a retry) and :class:`RouterRefusedError` when it refuses the call (4xx: not worth one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from duration_deployment.client import CallError, RouterClient
from duration_operations.ledger import LOOP_ACTOR

CHAMPION = "champion"
CHALLENGER = "challenger"


class RouterUnavailableError(Exception):
    """The router could not be reached or failed (5xx): try again later."""


class RouterRefusedError(Exception):
    """The router refused the call (4xx); the message is the router's."""


@dataclass(frozen=True)
class Deployed:
    """One variant of the routing table."""

    variant: str
    version: str
    weight: float
    shadow: bool
    run_id: str | None


@dataclass(frozen=True)
class RouterState:
    """``GET /deployments``: the table, the registry's aliases, where the registry is."""

    revision: int
    variants: tuple[Deployed, ...]
    aliases: dict[str, str]
    registry: str
    model_name: str

    def get(self, variant: str) -> Deployed | None:
        return next((v for v in self.variants if v.variant == variant), None)


class RouterGateway:
    """Typed calls of the router's API.

    Args:
        url: The router's base URL.
        token: Its control token (``DURATION_ROUTER_TOKEN``).
        timeout: Seconds per call.
        client: A ready :class:`RouterClient` instead (tests); it is not closed here.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float = 60.0,
        client: RouterClient | None = None,
        actor: str = LOOP_ACTOR,
    ) -> None:
        self._client = client or RouterClient(url, token, timeout=timeout)
        self._client.http.headers["X-Actor"] = actor
        self.url = self._client.url

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = self._client.call(method, path, **kwargs)
        except CallError as exc:
            text = str(exc)
            status = re.search(r"HTTP (\d{3})", text)
            if status is None or int(status.group(1)) >= 500:
                raise RouterUnavailableError(text) from None
            raise RouterRefusedError(text) from None
        if not isinstance(answer, dict):
            raise RouterRefusedError(
                f"{method} {path}: {self.url} answered {str(answer)[:80]!r}, not a "
                "duration-router's JSON"
            )
        return answer

    # -- reading --------------------------------------------------------------------------------

    def state(self) -> RouterState:
        data = self._call("GET", "/deployments", params={"history": 0})
        try:
            return self._state(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise RouterRefusedError(
                f"GET /deployments: {self.url} answered JSON that is not a duration-router's "
                "routing table"
            ) from None

    @staticmethod
    def _state(data: dict[str, Any]) -> RouterState:
        variants = tuple(
            Deployed(
                variant=v["variant"],
                version=str(v["model_version"]),
                weight=float(v["weight"]),
                shadow=bool(v["shadow"]),
                run_id=v.get("run_id"),
            )
            for v in data["table"]["variants"]
        )
        return RouterState(
            revision=int(data["table"]["revision"]),
            variants=variants,
            aliases={k: str(v) for k, v in data["aliases"].items() if v is not None},
            registry=data["registry"],
            model_name=data["model_name"],
        )

    def history(
        self,
        *,
        kinds: tuple[str, ...] = (),
        actions: tuple[str, ...] = (),
        limit: int = 10_000,
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` history entries, oldest first: all of them, or the table
        changes of ``actions`` and the notes of ``kinds``."""
        params: list[tuple[str, Any]] = [("limit", limit)]
        params += [("kind", k) for k in kinds] + [("action", a) for a in actions]
        return list(self._call("GET", "/history", params=params)["entries"])

    def predictions(
        self,
        *,
        last: int,
        variant: str | None = None,
        shadow: bool | None = None,
        labelled: bool = False,
        after_id: int = 0,
    ) -> pd.DataFrame:
        """The newest ``last`` logged predictions (oldest first), columns of level 3's
        ``FRAME_COLUMNS``; ``actual`` (minutes) is NaN without feedback."""
        params: dict[str, Any] = {"last": last, "after_id": after_id, "labelled": labelled}
        if variant is not None:
            params["variant"] = variant
        if shadow is not None:
            params["shadow"] = shadow
        page = self._call("GET", "/predictions", params=params)
        frame = pd.DataFrame(page["rows"], columns=page["columns"])
        for column in ("trip_distance", "prediction", "actual", "at"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        return frame

    def ab_report(self, since: int) -> dict[str, Any]:
        """``GET /ab/report?since=``: the A/B report of the predictions after log position
        ``since`` (one stage)."""
        return dict(self._call("GET", "/ab/report", params={"since": since}))

    # -- writing --------------------------------------------------------------------------------

    def note(
        self,
        kind: str,
        summary: str,
        data: dict[str, Any],
        *,
        model_version: str | None = None,
        variant: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": kind, "summary": summary[:500], "data": data}
        if model_version is not None:
            body["model_version"] = model_version
        if variant is not None:
            body["variant"] = variant
        return dict(self._call("POST", "/history", json=body))

    def deploy(self, model_name: str, version: str, *, shadow: bool, weight: float) -> None:
        body: dict[str, Any] = {
            "model_uri": f"models:/{model_name}/{version}",
            "variant": CHALLENGER,
        }
        if shadow:
            body["shadow"] = True
        else:
            body["weight"] = weight
        self._call("POST", "/deployments", json=body)

    def set_weight(self, weight: float) -> None:
        self._call("PATCH", f"/deployments/{CHALLENGER}", json={"weight": weight})

    def promote(self) -> None:
        self._call("POST", "/promote", json={"variant": CHALLENGER})

    def remove_challenger(self) -> None:
        """Take the challenger out (the router deletes its alias); the champion stays."""
        self._call("DELETE", f"/deployments/{CHALLENGER}")
