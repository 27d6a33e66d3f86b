"""The router's control API, in process, on a private copy of the session's real registry.

Every app here starts like ``duration-router serve`` would: it reads the registry's aliases
and deploys ``champion`` v1 (linear) and ``challenger`` v2 (gbm, 10%), downloading them into
its own cache, verifying their digests and smoke-testing them. Tests that move aliases check
them in the registry copy with MLflow's own client.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from duration_deployment.registry import SMOKE_RIDES
from ladder_testing import free_port
from ladder_testing.programs import promtool_problems
from ladder_testing.router import (
    AUTH,
    MODEL,
    RIDE,
    TOKEN,
    metric_value,
    mlflow_client,
    registry_aliases,
    router_settings,
    running,
    table,
)

CHALLENGER_HEADER = {"X-Model-Variant": "challenger"}

#: Every control route: (method, path, JSON body).
CONTROL_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/deployments", None),
    ("POST", "/deployments", {"model_uri": "2", "variant": "challenger", "weight": 0.2}),
    ("PATCH", "/deployments/challenger", {"weight": 0.3}),
    ("DELETE", "/deployments/challenger", None),
    ("POST", "/promote", None),
    ("POST", "/rollback", None),
    ("POST", "/feedback", {"actuals": [{"ride_id": "r-1", "duration": 5.0}]}),
    ("GET", "/history", None),
    ("POST", "/history", {"kind": "remark", "summary": "hello"}),
    ("GET", "/predictions", None),
]


def predict(
    client: TestClient, ride_id: str | None = None, *, ride: dict[str, Any] = RIDE, **headers: str
) -> dict[str, Any]:
    """POST /predict of ``ride`` (with ``ride_id``), which must answer 200."""
    body = {**ride, "ride_id": ride_id} if ride_id else dict(ride)
    response = client.post("/predict", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# -- authentication ------------------------------------------------------------------------------


def test_every_control_route_needs_the_token(tmp_path: Path, registry_uri: str) -> None:
    settings = router_settings(tmp_path, registry_uri, deploy_on_start=False)
    with running(settings) as client:
        for method, path, body in CONTROL_ROUTES:
            missing = client.request(method, path, json=body)
            assert missing.status_code == 401, (method, path, missing.text)
            assert missing.headers["WWW-Authenticate"] == "Bearer"
            assert "control token" in missing.json()["detail"]

            wrong = client.request(
                method, path, json=body, headers={"Authorization": "Bearer wrong-token-000000000"}
            )
            assert wrong.status_code == 403, (method, path, wrong.text)
            assert wrong.json()["detail"] == "the bearer token is not the control token"

            basic = client.request(method, path, json=body, headers={"Authorization": TOKEN})
            assert basic.status_code == 401, (method, path)  # no "Bearer " scheme
        # Nothing was deployed or changed by the refused calls.
        assert table(client) == {"revision": 0}
        assert client.app.state.log.history() == []
        # The open routes stay open.
        assert client.get("/metrics").status_code == 200
        assert client.get("/health").status_code == 200


def test_the_token_never_appears_in_logs_or_responses(
    tmp_path: Path, registry_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = router_settings(tmp_path, registry_uri)
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings.model_dump())
    responses = []
    with running(settings) as client:
        calls: list[tuple[str, str, dict[str, Any] | None]] = [
            ("POST", "/deployments", {"model_uri": "2", "variant": "shadow-gbm", "shadow": True}),
            ("POST", "/deployments", {"model_uri": "/etc/passwd"}),
            *CONTROL_ROUTES,
            ("POST", "/rollback", None),
            ("POST", "/rollback", None),
        ]
        for method, path, body in calls:
            for headers in (AUTH, {}, {"Authorization": f"Bearer {TOKEN}x"}):
                responses.append(client.request(method, path, json=body, headers=headers))
        responses.append(client.post("/predict", json=RIDE, headers=AUTH))
        responses += [client.get(p) for p in ("/metrics", "/ab/report", "/monitoring/report")]
        responses.append(client.get("/openapi.json"))
    statuses = [r.status_code for r in responses]
    # With the token each call did its work (or was refused for its own reason)...
    assert statuses[: 3 * len(calls) : 3] == [
        201, 422, 200, 201, 200, 200, 409, 200, 200, 200, 201, 200, 200, 200,
    ]  # fmt: skip
    # ...without it, or with a wrong one, nothing happened.
    assert statuses[1 : 3 * len(calls) : 3] == [401] * len(calls)
    assert statuses[2 : 3 * len(calls) : 3] == [403] * len(calls)
    assert statuses[3 * len(calls) :] == [200] * 5
    for response in responses:
        assert TOKEN not in response.text
        assert TOKEN not in str(response.headers)
    assert "deploy by api" in caplog.text  # the log was captured, at DEBUG
    assert "table revision" in caplog.text
    assert TOKEN not in caplog.text
    for record in caplog.records:
        assert TOKEN not in record.getMessage()


# -- deploy refusals -----------------------------------------------------------------------------


#: (case, body, status, a part of the detail that names the problem)
DEPLOY_REFUSALS: list[tuple[str, dict[str, Any], int, str]] = [
    ("path", {"model_uri": "/etc/passwd"}, 422, "'/etc/passwd' is not a registry URI"),
    ("file-url", {"model_uri": "file:///x"}, 422, "'file:///x' is not a registry URI"),
    ("http-url", {"model_uri": "http://evil/x"}, 422, "'http://evil/x' is not a registry URI"),
    ("runs-uri", {"model_uri": "runs:/abc/model"}, 422, "'runs:/abc/model' is not a registry URI"),
    ("other-model", {"model_uri": "models:/other@champion"}, 404,
     "names the model 'other'; this router deploys versions of 'nyc-taxi-duration' only"),
    ("unknown-version", {"model_uri": f"models:/{MODEL}/99"}, 404,
     f"cannot resolve models:/{MODEL}/99: "),
    ("unknown-version-number", {"model_uri": "99"}, 404, "cannot resolve 99: "),
    ("unknown-alias", {"model_uri": f"models:/{MODEL}@nope"}, 404,
     f"cannot resolve models:/{MODEL}@nope: "),
    ("weight-0", {"model_uri": "2", "weight": 0}, 422,
     "weight: Input should be greater than or equal to 0.0001"),
    ("weight-1.5", {"model_uri": "2", "weight": 1.5}, 422,
     "weight: Input should be less than or equal to 1"),
    ("bad-variant", {"model_uri": "2", "variant": "bad name!"}, 422, "variant: String should"),
    ("extra-field", {"model_uri": "2", "path": "/etc/passwd"}, 422, "path: Extra inputs"),
    ("empty-uri", {"model_uri": ""}, 422, "model_uri: String should have at least 1 character"),
]  # fmt: skip


def test_deploy_refusals(router_client: TestClient) -> None:
    """Each refusal names the problem and leaves the table (and the aliases) as they were."""
    before = table(router_client)
    assert before == {"revision": 1, "champion": ("1", 0.9, False), "challenger": ("2", 0.1, False)}
    wrong = []  # every case is tried, and all the wrong ones reported together
    for case, body, status, message in DEPLOY_REFUSALS:
        response = router_client.post("/deployments", json=body, headers=AUTH)
        detail = response.json()["detail"]
        if response.status_code != status or message not in detail:
            wrong.append((case, response.status_code, detail))
        if table(router_client) != before:
            wrong.append((case, "table changed", table(router_client)))
    assert wrong == []
    assert [e["action"] for e in router_client.app.state.log.history()] == ["start"]
    assert registry_aliases(router_client.app.state.manager.registry.uri) == {
        "champion": "1", "challenger": "2"
    }  # fmt: skip


def test_weight_and_remove_refusals(router_client: TestClient, registry_uri: str) -> None:
    client = router_client
    cases = [
        ("PATCH", "/deployments/challenger", {"weight": 0}, 422, "weight: "),
        ("PATCH", "/deployments/challenger", {"weight": 1.5}, 422, "weight: "),
        ("PATCH", "/deployments/challenger", {"weight": 1.0}, 409, "would leave champion no"),
        ("PATCH", "/deployments/nope", {"weight": 0.5}, 404, "no variant named 'nope'"),
        ("DELETE", "/deployments/nope", None, 404, "no variant named 'nope'"),
        ("POST", "/promote", {"variant": "nope"}, 409, "no variant 'nope' to promote"),
        ("POST", "/promote", {"variant": "champion"}, 409, "already the champion"),
    ]
    for method, path, body, status, message in cases:
        response = client.request(method, path, json=body, headers=AUTH)
        assert response.status_code == status, (path, body, response.text)
        assert message in response.json()["detail"], response.text
    assert table(client)["revision"] == 1

    removed = client.delete("/deployments/challenger", headers=AUTH)
    assert removed.status_code == 200
    assert removed.json()["event"]["action"] == "remove"
    assert table(client) == {"revision": 2, "champion": ("1", 1.0, False)}
    assert registry_aliases(registry_uri) == {"champion": "1"}
    last = client.delete("/deployments/champion", headers=AUTH)
    assert last.status_code == 409
    assert "the champion cannot be removed: promote another variant first" in last.json()["detail"]
    alone = client.patch("/deployments/champion", json={"weight": 0.5}, headers=AUTH)
    assert alone.status_code == 409
    assert "only live variant" in alone.json()["detail"]
    assert table(client)["revision"] == 2


def test_a_live_variant_redeployed_as_a_shadow(
    router_client: TestClient, registry_uri: str
) -> None:
    client = router_client
    body = {"model_uri": "2", "variant": "challenger", "shadow": True}
    response = client.post("/deployments", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    assert table(client) == {
        "revision": 2, "champion": ("1", 1.0, False), "challenger": ("2", 0.0, True)
    }  # fmt: skip
    assert registry_aliases(registry_uri) == {"champion": "1"}  # no live challenger
    # The champion cannot become a shadow: nothing would answer.
    body = {"model_uri": "1", "variant": "champion", "shadow": True}
    response = client.post("/deployments", json=body, headers=AUTH)
    assert response.status_code == 409, response.text
    assert "the champion answers requests: it cannot be a shadow" in response.json()["detail"]
    assert table(client)["revision"] == 2
    assert registry_aliases(registry_uri) == {"champion": "1"}
    assert predict(client, "after")["variant"] == "champion"


def test_tampered_model_is_refused_and_the_table_kept(
    router_client: TestClient, registry_uri: str, tmp_path: Path
) -> None:
    client = router_client
    before = table(client)
    # 1. A downloaded file changed in the cache: its digest no longer matches the tag.
    folder = tmp_path / "cache" / MODEL / "2"
    mlmodel = folder / "MLmodel"
    mlmodel.write_text(mlmodel.read_text() + "\n# changed\n")
    body = {"model_uri": "2", "variant": "challenger", "weight": 0.5}
    response = client.post("/deployments", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "2 (v2): the downloaded files' sha256" in detail
    assert "the stored model was changed or damaged" in detail
    assert table(client) == before
    assert not folder.exists()  # the damaged download is dropped...

    again = client.post("/deployments", json=body, headers=AUTH)  # ...and fetched afresh
    assert again.status_code == 201, again.text
    assert folder.is_dir()
    after_redeploy = table(client)
    assert after_redeploy == {
        "revision": 2, "champion": ("1", 0.5, False), "challenger": ("2", 0.5, False)
    }  # fmt: skip

    # 2. The registered digest changed: the (untouched) files no longer match it.
    registry = mlflow_client(registry_uri)
    real = registry.get_model_version(MODEL, "2").tags["model_sha256"]
    registry.set_model_version_tag(MODEL, "2", "model_sha256", "f" * 64)
    response = client.post(
        "/deployments", json={"model_uri": f"models:/{MODEL}@challenger"}, headers=AUTH
    )
    assert response.status_code == 422, response.text
    assert f"differs from the registered {'f' * 12}" in response.json()["detail"]
    assert real[:12] in response.json()["detail"]  # the files still hash to the real digest
    assert table(client) == after_redeploy

    # 3. No digest at all: the download cannot be verified.
    registry.delete_model_version_tag(MODEL, "2", "model_sha256")
    response = client.post("/deployments", json={"model_uri": "2"}, headers=AUTH)
    assert response.status_code == 422
    assert "has no model_sha256 tag" in response.json()["detail"]
    assert table(client) == after_redeploy
    assert registry_aliases(registry_uri) == {"champion": "1", "challenger": "2"}


def test_failing_smoke_test_is_refused_and_the_table_kept(
    tmp_path: Path, registry_uri: str
) -> None:
    mlflow_client(registry_uri).delete_registered_model_alias(MODEL, "challenger")
    with running(router_settings(tmp_path, registry_uri)) as client:
        before = table(client)
        assert before == {"revision": 1, "champion": ("1", 1.0, False)}
        history = client.app.state.log.history()
        # Real predictions of v2 (minutes) fall outside a plausible range of 0-1 minute.
        client.app.state.manager.settings.smoke_max_minutes = 1.0
        response = client.post("/deployments", json={"model_uri": "2"}, headers=AUTH)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail.startswith("smoke test failed: ride {")
        assert "outside the plausible 0-1 min" in detail
        assert table(client) == before
        assert client.app.state.log.history() == history
        assert registry_aliases(registry_uri) == {"champion": "1"}
        assert "2" not in client.app.state.manager.models.models  # the refused model is not kept

        # The same version passes with the usual limits.
        client.app.state.manager.settings.smoke_max_minutes = 180.0
        response = client.post("/deployments", json={"model_uri": "2"}, headers=AUTH)
        assert response.status_code == 201, response.text
        assert table(client) == {
            "revision": 2, "champion": ("1", 0.9, False), "challenger": ("2", 0.1, False)
        }  # fmt: skip
        assert registry_aliases(registry_uri) == {"champion": "1", "challenger": "2"}


def test_smoke_test_at_start_up_deploys_nothing(tmp_path: Path, registry_uri: str) -> None:
    settings = router_settings(tmp_path, registry_uri, smoke_max_minutes=1.0)
    with running(settings) as client:
        assert table(client) == {"revision": 0}
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not ready"
        response = client.post("/deployments", json={"model_uri": "1"}, headers=AUTH)
        assert response.status_code == 422
        assert "smoke test failed" in response.json()["detail"]
        assert table(client) == {"revision": 0}
        no_model = client.post("/predict", json=RIDE)
        assert no_model.status_code == 503
        assert "no model is deployed" in no_model.json()["detail"]
    assert registry_aliases(registry_uri) == {"champion": "1", "challenger": "2"}


# -- registry outage -----------------------------------------------------------------------------


def test_registry_gone_after_start_up(router_client: TestClient, registry_uri: str) -> None:
    client = router_client
    before = table(client)
    Path(registry_uri.removeprefix("sqlite:///")).unlink()
    response = client.post("/deployments", json={"model_uri": "2", "weight": 0.5}, headers=AUTH)
    assert response.status_code == 503, response.text
    assert registry_uri in response.json()["detail"]
    assert "does not exist" in response.json()["detail"]
    promote = client.post("/promote", headers=AUTH)  # would move aliases: refused as well
    assert promote.status_code == 503
    assert registry_uri in promote.json()["detail"]
    assert table(client) == before
    # The loaded models keep answering.
    answers = [predict(client, f"gone-{i}") for i in range(20)]
    assert {(a["variant"], a["model_version"]) for a in answers} <= {
        ("champion", "1"),
        ("challenger", "2"),
    }
    assert predict(client, **CHALLENGER_HEADER)["model_version"] == "2"
    # A weight change needs no alias: it still works.
    patched = client.patch("/deployments/challenger", json={"weight": 0.3}, headers=AUTH)
    assert patched.status_code == 200, patched.text
    assert table(client)["challenger"] == ("2", 0.3, False)
    assert "registry_unavailable" in client.get("/metrics").text


def test_registry_server_not_listening(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Set, so the Registry's os.environ.setdefault does not leak into the other tests.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    uri = f"http://127.0.0.1:{free_port()}"
    settings = router_settings(tmp_path, uri)
    start = time.perf_counter()
    with running(settings) as client:
        assert table(client) == {"revision": 0}  # start-up deployed nothing, and said why
        response = client.post("/deployments", json={"model_uri": "2"}, headers=AUTH)
        assert response.status_code == 503, response.text
        assert f"the model registry {uri} is not reachable" in response.json()["detail"]
        promote = client.post("/promote", headers=AUTH)
        assert promote.status_code == 409  # nothing deployed: no registry call needed
    assert time.perf_counter() - start < 15


# -- promote and rollback ------------------------------------------------------------------------


def test_promote_then_rollback_moves_table_and_aliases(
    router_client: TestClient, registry_uri: str
) -> None:
    client = router_client
    assert registry_aliases(registry_uri) == {"champion": "1", "challenger": "2"}
    state = client.get("/deployments", headers=AUTH).json()
    assert state["rollback_available"] is False

    promoted = client.post("/promote", headers={**AUTH, "X-Actor": "alice"})
    assert promoted.status_code == 200, promoted.text
    body = promoted.json()
    assert body["aliases"] == {"champion": "2"}
    assert body["event"]["action"] == "promote"
    assert body["event"]["actor"] == "alice"
    assert body["event"]["detail"] == "challenger v2 promoted to champion, replacing v1"
    assert (body["event"]["model_version"], body["event"]["previous_version"]) == ("2", "1")
    assert table(client) == {"revision": 2, "champion": ("2", 1.0, False)}
    assert registry_aliases(registry_uri) == {"champion": "2"}
    assert {predict(client, f"p-{i}")["model_version"] for i in range(10)} == {"2"}

    rolled = client.post("/rollback", headers=AUTH)
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["event"]["action"] == "rollback"
    assert "undid the last promote: restored revision 1" in rolled.json()["event"]["detail"]
    assert rolled.json()["aliases"] == {"champion": "1", "challenger": "2"}
    assert table(client) == {
        "revision": 3, "champion": ("1", 0.9, False), "challenger": ("2", 0.1, False)
    }  # fmt: skip
    assert registry_aliases(registry_uri) == {"champion": "1", "challenger": "2"}
    assert predict(client, **CHALLENGER_HEADER)["model_version"] == "2"

    nothing = client.post("/rollback", headers=AUTH)
    assert nothing.status_code == 409
    assert "nothing to roll back" in nothing.json()["detail"]
    state = client.get("/deployments", headers=AUTH).json()
    assert state["rollback_available"] is False
    assert [e["action"] for e in state["history"]] == ["start", "promote", "rollback"]
    assert [e["revision"] for e in state["history"]] == [1, 2, 3]


def test_rollback_undoes_a_weight_change_and_a_removal(
    router_client: TestClient, registry_uri: str
) -> None:
    client = router_client
    assert client.patch("/deployments/challenger", json={"weight": 0.4}, headers=AUTH).is_success
    assert client.delete("/deployments/challenger", headers=AUTH).is_success
    assert registry_aliases(registry_uri) == {"champion": "1"}
    assert client.post("/rollback", headers=AUTH).status_code == 200
    assert table(client) == {
        "revision": 4, "champion": ("1", 0.6, False), "challenger": ("2", 0.4, False)
    }  # fmt: skip
    assert registry_aliases(registry_uri) == {"champion": "1", "challenger": "2"}
    assert client.post("/rollback", headers=AUTH).status_code == 200
    assert table(client)["challenger"] == ("2", 0.1, False)
    assert client.post("/rollback", headers=AUTH).status_code == 409


# -- restart -------------------------------------------------------------------------------------


def test_restart_restores_the_table(tmp_path: Path, registry_uri: str) -> None:
    settings = router_settings(tmp_path, registry_uri)
    with running(settings) as client:
        shadow = {"model_uri": "2", "variant": "shadow-gbm", "shadow": True}
        assert client.post("/deployments", json=shadow, headers=AUTH).status_code == 201
        patched = client.patch("/deployments/challenger", json={"weight": 0.3}, headers=AUTH)
        assert patched.status_code == 200, patched.text
        first = table(client)
    assert first == {
        "revision": 3,
        "champion": ("1", 0.7, False),
        "challenger": ("2", 0.3, False),
        "shadow-gbm": ("2", 0.0, True),
    }
    with running(router_settings(tmp_path, registry_uri)) as client:
        second = table(client)
        history = client.app.state.log.history()
    assert second == {**first, "revision": 4}  # revisions go on across restarts
    assert [e["action"] for e in history] == ["start", "deploy", "weight", "start"]
    assert history[-1]["table_after"] == history[-2]["table_after"]

    # Right after a restart, rollback undoes the last change made before it (from the history).
    with running(router_settings(tmp_path, registry_uri)) as client:
        rolled = client.post("/rollback", headers=AUTH)
        assert rolled.status_code == 200, rolled.text
        assert "restored revision 2" in rolled.json()["event"]["detail"]
        assert table(client) == {
            "revision": 6,
            "champion": ("1", 0.9, False),
            "challenger": ("2", 0.1, False),
            "shadow-gbm": ("2", 0.0, True),
        }
        assert registry_aliases(registry_uri) == {"champion": "1", "challenger": "2"}
        assert client.post("/rollback", headers=AUTH).status_code == 409


def test_restart_restores_other_live_variants(tmp_path: Path, registry_uri: str) -> None:
    with running(router_settings(tmp_path, registry_uri)) as client:
        canary = {"model_uri": "2", "variant": "canary", "weight": 0.2}
        assert client.post("/deployments", json=canary, headers=AUTH).status_code == 201
        first = table(client)
    assert first["canary"] == ("2", 0.2, False)
    with running(router_settings(tmp_path, registry_uri)) as client:
        assert table(client) == {**first, "revision": first["revision"] + 1}


# -- predictions ---------------------------------------------------------------------------------


def test_variant_header(router_client: TestClient) -> None:
    client = router_client
    forced = [predict(client, f"h-{i}", **CHALLENGER_HEADER) for i in range(5)]
    assert {(a["variant"], a["model_version"]) for a in forced} == {("challenger", "2")}
    champion = predict(client, "h-x", **{"X-Model-Variant": "champion"})
    assert (champion["variant"], champion["model_version"]) == ("champion", "1")
    batch = client.post(
        "/predict/batch",
        json={"rides": [{**RIDE, "ride_id": f"b-{i}"} for i in range(4)]},
        headers=CHALLENGER_HEADER,
    )
    assert batch.status_code == 200
    assert {p["model_version"] for p in batch.json()["predictions"]} == {"2"}

    unknown = client.post("/predict", json=RIDE, headers={"X-Model-Variant": "nope"})
    assert unknown.status_code == 409
    assert unknown.json()["detail"] == (
        "X-Model-Variant: no live variant named 'nope' (live: champion, challenger)"
    )
    shadow = {"model_uri": "2", "variant": "shadow-gbm", "shadow": True}
    assert client.post("/deployments", json=shadow, headers=AUTH).status_code == 201
    to_shadow = client.post("/predict", json=RIDE, headers={"X-Model-Variant": "shadow-gbm"})
    assert to_shadow.status_code == 409
    assert "no live variant named 'shadow-gbm'" in to_shadow.json()["detail"]


def test_shadow_is_logged_never_returned(router_client: TestClient) -> None:
    """200 rides (50 single requests, 3 batches of 50): none answered by the shadow, each
    predicted by it too and logged as a shadow row."""
    client = router_client
    log = client.app.state.log
    deployed = client.post(
        "/deployments",
        json={"model_uri": "2", "variant": "shadow-gbm", "shadow": True},
        headers=AUTH,
    )
    assert deployed.status_code == 201, deployed.text
    assert table(client)["shadow-gbm"] == ("2", 0.0, True)
    rides = {f"s-{i}": SMOKE_RIDES[i % 6] for i in range(200)}  # real zones, 6 kinds
    answers = [predict(client, ride_id, ride=ride) for ride_id, ride in list(rides.items())[:50]]
    for start in (50, 100, 150):
        batch = [{**rides[f"s-{i}"], "ride_id": f"s-{i}"} for i in range(start, start + 50)]
        response = client.post("/predict/batch", json={"rides": batch})
        assert response.status_code == 200, response.text
        answers += response.json()["predictions"]
    assert len(answers) == 200
    assert {a["variant"] for a in answers} <= {"champion", "challenger"}
    assert "champion" in {a["variant"] for a in answers}

    deadline = time.monotonic() + 10
    while len(shadows := log.frame(shadow=True)) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(shadows) == 200
    assert set(shadows["variant"]) == {"shadow-gbm"}
    assert set(shadows["model_version"]) == {"2"}
    assert shadows["shadow"].all()
    assert not shadows["error"].any()
    assert sorted(shadows["ride_id"]) == sorted(rides)
    live = log.frame(shadow=False)
    assert len(live) == 200
    assert not live["shadow"].any()
    assert metric_value(
        client, "duration_router_predictions_total",
        variant="shadow-gbm", model_version="2", shadow="true",
    ) == 200.0  # fmt: skip
    # The shadow predicted each ride as the gbm challenger does.
    gbm = client.app.state.manager.table.get("challenger").model.pipeline
    expected = gbm.predict([rides[r] for r in shadows["ride_id"]])
    assert list(shadows["prediction"]) == pytest.approx(list(expected))


def test_every_answer_is_logged_once(router_client: TestClient) -> None:
    client = router_client
    log = client.app.state.log
    answered: list[dict[str, Any]] = []
    for i in range(30):
        headers = CHALLENGER_HEADER if i % 3 == 0 else {}
        answered.append(predict(client, f"n-{i}" if i % 2 else None, **headers))
    batch = client.post(
        "/predict/batch", json={"rides": [{**RIDE, "ride_id": f"nb-{i}"} for i in range(20)]}
    )
    assert batch.status_code == 200
    answered += batch.json()["predictions"]
    # Refused requests are not logged.
    assert client.post("/predict", json={**RIDE, "PULocationID": 0}).status_code == 422
    assert client.post("/predict", json=RIDE, headers={"X-Model-Variant": "x"}).status_code == 409

    log.flush()
    assert log.count() == 50
    frame = log.frame(shadow=False)
    assert len(frame) == 50
    assert Counter(zip(frame["variant"], frame["model_version"], strict=True)) == Counter(
        (a["variant"], a["model_version"]) for a in answered
    )
    assert list(frame["prediction"]) == pytest.approx([a["duration"] for a in answered])
    assert frame["ride_id"].isna().sum() == 15
    assert not frame["error"].any()


def test_feedback_counts_unknown_ride_ids(router_client: TestClient) -> None:
    client = router_client
    for i in range(5):
        predict(client, f"fb-{i}")
    actuals = [{"ride_id": f"fb-{i}", "duration": 10.0 + i} for i in range(5)]
    actuals += [{"ride_id": "never-1", "duration": 3.0}, {"ride_id": "never-2", "duration": 4.0}]
    response = client.post("/feedback", json={"actuals": actuals}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "received": 7,
        "matched": 5,
        "unknown": 2,
        "unknown_examples": ["never-1", "never-2"],
    }
    frame = client.app.state.log.frame()
    assert dict(zip(frame["ride_id"], frame["actual"], strict=True)) == {
        f"fb-{i}": 10.0 + i for i in range(5)
    }
    # The last value sent for a ride wins.
    again = client.post(
        "/feedback", json={"actuals": [{"ride_id": "fb-0", "duration": 42.0}]}, headers=AUTH
    )
    assert again.json()["matched"] == 1
    assert client.app.state.log.frame()["actual"].iloc[0] == 42.0
    bad = client.post(
        "/feedback", json={"actuals": [{"ride_id": "fb-1", "duration": -1}]}, headers=AUTH
    )
    assert bad.status_code == 422


def test_metrics_per_variant(router_client: TestClient) -> None:
    client = router_client
    answers = [predict(client, f"m-{i}") for i in range(40)]
    answers += [predict(client, f"mc-{i}", **CHALLENGER_HEADER) for i in range(3)]
    by_variant = Counter(a["variant"] for a in answers)

    def predictions(variant: str, version: str) -> float | None:
        return metric_value(
            client, "duration_router_predictions_total",
            variant=variant, model_version=version, shadow="false",
        )  # fmt: skip

    assert predictions("challenger", "2") == by_variant["challenger"]
    assert predictions("champion", "1") == by_variant["champion"]
    assert by_variant["challenger"] >= 3
    weight = "duration_router_traffic_weight"
    assert metric_value(client, weight, variant="champion", model_version="1") == 0.9
    assert metric_value(client, weight, variant="challenger", model_version="2") == 0.1
    text = client.get("/metrics").text
    labels = '{model_version="2",shadow="false",variant="challenger"}'
    line = f"duration_router_predictions_total{labels} {float(by_variant['challenger'])}"
    assert line in text.splitlines()
    assert 'duration_router_traffic_weight{model_version="2",variant="challenger"} 0.1' in text

    client.patch("/deployments/challenger", json={"weight": 0.25}, headers=AUTH)
    assert metric_value(client, weight, variant="champion", model_version="1") == 0.75
    assert metric_value(client, weight, variant="challenger", model_version="2") == 0.25
    client.delete("/deployments/challenger", headers=AUTH)
    assert metric_value(client, weight, variant="champion", model_version="1") == 1.0
    assert metric_value(client, weight, variant="challenger", model_version="2") is None


def test_aliases_moved_by_a_failed_promote_are_put_back(
    router_client: TestClient, registry_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry fails half-way through a promote (champion moved, challenger not) and
    also refuses the immediate undo: the call answers 503 and the router keeps trying."""
    from duration_deployment import aliases as aliases_module
    from duration_deployment.errors import RegistryUnavailableError

    client = router_client
    manager = client.app.state.manager
    real = manager.registry.set_aliases
    calls = {"n": 0}

    def flaky(wanted: dict[str, str | None]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            real({"champion": wanted["champion"]})
            raise RegistryUnavailableError("the model registry went away")
        if calls["n"] == 2:
            raise RegistryUnavailableError("the model registry went away")
        real(wanted)

    monkeypatch.setattr(manager.registry, "set_aliases", flaky)
    monkeypatch.setattr(aliases_module, "ALIAS_REPAIR_SECONDS", 0.1)
    before = table(client)
    answer = client.post("/promote", headers=AUTH)
    assert answer.status_code == 503
    assert "the router puts them back (champion=v1, challenger=v2)" in answer.json()["detail"]
    assert table(client) == before
    deadline = time.monotonic() + 10
    while registry_aliases(registry_uri) != {"champion": "1", "challenger": "2"}:
        assert time.monotonic() < deadline, registry_aliases(registry_uri)
        time.sleep(0.1)
    assert calls["n"] >= 3


def test_metrics_pass_promtool(router_client: TestClient) -> None:
    """Prometheus' own linter accepts the router's exposition with every series present:
    per-variant predictions and errors, weights, the log writer, level 1's HTTP metrics."""
    client = router_client
    for i in range(20):
        assert client.post("/predict", json={**RIDE, "ride_id": f"p-{i}"}).status_code == 200
    assert client.post("/predict", json={}).status_code == 422
    shadow = {"model_uri": "2", "variant": "shadow-gbm", "shadow": True}
    assert client.post("/deployments", json=shadow, headers=AUTH).status_code == 201
    assert client.post("/predict", json=RIDE).status_code == 200
    text = client.get("/metrics").text
    for name in (
        "duration_router_predicted_trip_duration_seconds_bucket",
        "duration_router_predictions_total",
        "duration_router_traffic_weight",
        "duration_router_log_rows_written_total",
        "duration_http_requests_total",
    ):
        assert name in text, name
    assert promtool_problems(text) == ""
