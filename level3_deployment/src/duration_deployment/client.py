"""The HTTP client of the router's API, used by ``duration-deploy`` and the replay."""

from __future__ import annotations

import getpass
import os
import socket
from typing import Any

import httpx


class CallError(Exception):
    """The router refused a call or could not be reached."""


def actor() -> str:
    """Who is calling, for the history: ``$GITHUB_ACTOR (GitHub Actions)`` or ``user@host``."""
    if os.environ.get("GITHUB_ACTOR"):
        run = os.environ.get("GITHUB_RUN_ID", "?")
        return f"{os.environ['GITHUB_ACTOR']} (GitHub Actions run {run})"
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"[:100]


class RouterClient:
    """A thin httpx client of the router's API.

    Args:
        url: The router's base URL (``http://127.0.0.1:8100``).
        token: The control token, sent as ``Authorization: Bearer``; None for open routes.
        timeout: Seconds per call, for the client made here.
        http: An ``httpx.Client`` to use instead (tests pass one with a mock transport or an
            ASGI app; its base URL must be the router's); the router's headers are added to
            it, and it is not closed here.

    Raises:
        CallError: From every call, on a refusal (with the router's ``detail``) or when the
            router cannot be reached.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float = 120.0,
        http: httpx.Client | None = None,
    ) -> None:
        headers = {"X-Actor": actor()}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        self._owned = http is None
        if http is None:
            http = httpx.Client(base_url=self.url, timeout=timeout)
        http.headers.update(headers)
        self.http = http

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; the JSON answer (or text for HTML)."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CallError(f"cannot reach the router at {self.url}: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text[:300]
            if response.status_code in (401, 403):
                detail += " (duration-deploy sends $DURATION_ROUTER_TOKEN: export it in this shell)"
            raise CallError(f"{method} {path}: HTTP {response.status_code}: {detail}")
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def close(self) -> None:
        """Close the connection pool, if this client made it (an injected one is the
        caller's)."""
        if self._owned:
            self.http.close()

    def __enter__(self) -> RouterClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
