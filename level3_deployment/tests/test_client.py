"""The router's HTTP client with an injected ``httpx.Client`` (a mock transport): the requests
it sends, and the one error it raises for a refusal or a router that cannot be reached."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from duration_deployment.client import CallError, RouterClient


def recording(status: int, body: object) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    transport = httpx.MockTransport(handler)
    return httpx.Client(base_url="http://router.test", transport=transport), seen


def test_a_call_sends_the_token_the_actor_and_the_body() -> None:
    http, seen = recording(201, {"event": {"action": "deploy"}})
    client = RouterClient("http://router.test/", "a-token-of-16-chars", http=http)
    answer = client.call("POST", "/deployments", json={"model_uri": "2", "variant": "challenger"})
    assert answer == {"event": {"action": "deploy"}}
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/deployments")
    assert request.headers["authorization"] == "Bearer a-token-of-16-chars"
    assert request.headers["x-actor"]
    assert json.loads(request.content) == {"model_uri": "2", "variant": "challenger"}
    assert client.url == "http://router.test"


@pytest.mark.parametrize(
    ("status", "detail", "expected"),
    [
        (409, "the champion cannot be removed", "DELETE /deployments/champion: HTTP 409: the "
         "champion cannot be removed"),
        (401, "this route needs the control token", "HTTP 401: this route needs the control "
         "token (duration-deploy sends $DURATION_ROUTER_TOKEN: export it in this shell)"),
        (503, "the model registry sqlite:///x is not reachable", "HTTP 503: the model registry"),
    ],
)  # fmt: skip
def test_a_refusal_is_one_call_error_with_the_routers_detail(
    status: int, detail: str, expected: str
) -> None:
    http, _ = recording(status, {"detail": detail, "errors": []})
    client = RouterClient("http://router.test", None, http=http)
    with pytest.raises(CallError, match=re.escape(expected)):
        client.call("DELETE", "/deployments/champion")


def test_a_router_that_cannot_be_reached_is_a_call_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.Client(base_url="http://router.test", transport=httpx.MockTransport(refuse))
    with pytest.raises(CallError, match=r"cannot reach the router at http://router.test: "):
        RouterClient("http://router.test", None, http=http).call("GET", "/ready")


def test_an_injected_client_is_left_open_and_an_own_one_closed() -> None:
    http, _ = recording(200, {})
    with RouterClient("http://router.test", None, http=http) as client:
        client.call("GET", "/ready")
    assert not http.is_closed
    with RouterClient("http://127.0.0.1:9", None) as own:
        pass
    assert own.http.is_closed
