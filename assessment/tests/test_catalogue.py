"""The catalogue: the packaged one loads, and a wrong one is an error naming what is wrong."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
from mlops_assess.catalogue import (
    LEVEL_NAMES,
    CatalogueError,
    CISignal,
    load_catalogue,
    parse_catalogue,
)
from mlops_assess.ci import TRIGGERS

TEXT = files("mlops_assess").joinpath("catalogue.toml").read_text(encoding="utf-8")


def test_packaged_catalogue_loads() -> None:
    catalogue = load_catalogue()
    assert catalogue.version == 1
    assert len(catalogue.criteria) == 23
    assert len({c.id for c in catalogue.criteria}) == 23
    assert len(catalogue.ml_test_score) == 28
    sections = {t.id.split("-")[0] for t in catalogue.ml_test_score}
    assert sections == {"data", "model", "infra", "monitor"}


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_every_level_has_criteria(level: int) -> None:
    at = [c for c in load_catalogue().criteria if c.level == level]
    assert at
    assert set(LEVEL_NAMES) == {0, 1, 2, 3, 4}


def test_level_counts() -> None:
    levels = [c.level for c in load_catalogue().criteria]
    assert [levels.count(n) for n in (1, 2, 3, 4, None)] == [6, 5, 5, 3, 4]


def test_every_criterion_is_documented_and_mapped() -> None:
    tests = {t.id for t in load_catalogue().ml_test_score}
    for criterion in load_catalogue().criteria:
        assert all([criterion.title, criterion.why, criterion.evidence, criterion.shown_in])
        assert set(criterion.ml_test_score) <= tests
        assert all(group.describe for group in criterion.all_of)


def test_ci_signals_use_known_triggers() -> None:
    for criterion in load_catalogue().criteria:
        for group in criterion.all_of:
            for signal in group.any_of:
                if isinstance(signal, CISignal):
                    assert set(signal.triggers) <= TRIGGERS


def test_get_unknown_id_lists_the_ids() -> None:
    with pytest.raises(KeyError, match="no criterion 'nope'; ids: ci-tests, "):
        load_catalogue().get("nope")


def _mutated(old: str, new: str) -> str:
    assert TEXT.count(old) == 1, old
    return TEXT.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            'any_of = [{ kind = "tests" }]',
            'any_of = [{ kind = "testz" }]',
            ["criteria.unit-tests.all_of.0.any_of.0", "'testz'", "'kind'"],
            id="unknown-signal-kind",
        ),
        pytest.param(
            'triggers = ["push", "pull_request"]',
            'triggers = ["push", "pull-request"]',
            ["criteria.ci-tests.", ".triggers", "unknown trigger ['pull-request']"],
            id="unknown-trigger",
        ),
        pytest.param(
            "pattern = '^FlowSpec$'",
            "pattern = '^(FlowSpec$'",
            ["criteria.unattended-training.", ".pattern", "not a regular expression"],
            id="bad-regex",
        ),
        pytest.param(
            'ml_test_score = ["infra-3"]\n[[criteria.all_of]]\ndescribe = "a CI job',
            'ml_test_score = ["infra-9"]\n[[criteria.all_of]]\ndescribe = "a CI job',
            ["criterion ci-tests", "ml_test_score", "unknown ML Test Score test ['infra-9']"],
            id="unknown-ml-test-score",
        ),
        pytest.param(
            'id = "unit-tests"',
            'id = "ci-tests"',
            ["criterion ids repeated", "['ci-tests']"],
            id="duplicate-id",
        ),
        pytest.param(
            'id = "unit-tests"\nlevel = 1',
            'id = "unit-tests"\nlevel = 1\ncolour = "red"',
            ["criteria.unit-tests.colour", "Extra inputs are not permitted"],
            id="extra-field",
        ),
        pytest.param(
            'any_of = [{ kind = "tests" }]',
            'any_of = [{ kind = "tests", modules = ["x"] }]',
            ["criteria.unit-tests.all_of.0.any_of.0.tests.modules", "Extra inputs"],
            id="extra-signal-field",
        ),
        pytest.param(
            'id = "unit-tests"\nlevel = 1',
            'id = "unit-tests"\nlevel = 5',
            ["criteria.unit-tests.level", "less than or equal to 4"],
            id="level-out-of-range",
        ),
        pytest.param(
            'id = "unit-tests"',
            "id = unit-tests",
            ["not TOML"],
            id="not-toml",
        ),
    ],
)
def test_parse_errors_name_the_criterion_and_field(old: str, new: str, expected: list[str]) -> None:
    with pytest.raises(CatalogueError) as raised:
        parse_catalogue(_mutated(old, new), source="my-catalogue.toml")
    message = str(raised.value)
    assert message.startswith("my-catalogue.toml: ")
    for part in expected:
        assert part in message


def test_ml_test_score_must_have_28_tests() -> None:
    text = _mutated('id = "monitor-7"', 'id = "monitor-6"')
    with pytest.raises(CatalogueError, match="28 tests, the catalogue lists 27"):
        parse_catalogue(text)


def test_the_unmodified_text_parses() -> None:
    assert parse_catalogue(TEXT) == load_catalogue()


def test_load_catalogue_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.toml"
    path.write_text(_mutated('id = "unit-tests"', 'id = "ci-tests"'), encoding="utf-8")
    with pytest.raises(CatalogueError, match=str(path)):
        load_catalogue(path)
