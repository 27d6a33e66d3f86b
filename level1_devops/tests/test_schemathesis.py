"""Property-based check of the app against its own OpenAPI document (schemathesis).

Bounded: at most 60 generated requests per operation. Passes when no answer is a 5xx and
every answer matches the documented status codes, content types and schemas.

The standard protocols' scoring routes (``POST /invocations``, ``POST .../infer``) have rules
JSON Schema cannot state (a tensor's shape agrees with its data, ``dataframe_split`` rows as
long as its columns, a request-level ``ride_id`` only for one ride that has none), so a
schema-valid body may rightly get a 4xx there: the "schema-valid request accepted" check is
left out for those two operations only; every other check still runs on them.

The schema is loaded at import (the OpenAPI document needs no model); the module fixture
points the settings at the trained model and runs the app's lifespan around the tests.
(``schemathesis.pytest.from_fixture`` would be neater but fails on pytest 9.2.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from duration_service import Settings, create_app

SETTINGS = Settings(max_batch_size=50)
APP = create_app(SETTINGS)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def loaded_model(model_path: Path) -> Iterator[None]:
    SETTINGS.model_path = model_path
    with TestClient(APP):  # runs the lifespan: the model is loaded while the tests run
        assert APP.state.model_state.ready, APP.state.model_state.error
        yield


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case) -> None:
    scoring = case.method == "POST" and (
        case.path == "/invocations" or case.path.endswith("/infer")
    )
    case.call_and_validate(excluded_checks=[positive_data_acceptance] if scoring else None)
