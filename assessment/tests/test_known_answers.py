"""Known answers: each level folder of this ladder is assessed at its own level.

The ladder is built so that ``levelN_*/`` reaches level N and no more; the whole repository
reaches the highest level it has. These tests read the real repository (found from this file),
so a change to a level folder or to the catalogue that moves a level fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops_assess.assess import Assessment, CriterionResult, assess

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (ROOT / ".git").exists() or not (ROOT / "level1_devops").is_dir(),
    reason="needs the ladder's repository (not an sdist of mlops-assess)",
)


def _result(assessment: Assessment, criterion_id: str) -> CriterionResult:
    return next(r for r in assessment.results if r.criterion.id == criterion_id)


@pytest.fixture(scope="module")
def assessed() -> dict[str, Assessment]:
    """Each level folder assessed once for the module."""
    folders = ["level0_notebook", "level1_devops", "level2_training", "level3_deployment"]
    return {folder: assess(ROOT / folder) for folder in folders}


@pytest.mark.parametrize(
    ("folder", "level"),
    [
        ("level0_notebook", 0),
        ("level1_devops", 1),
        ("level2_training", 2),
        ("level3_deployment", 3),
    ],
)
def test_each_level_folder_is_at_its_level(
    assessed: dict[str, Assessment], folder: str, level: int
) -> None:
    assessment = assessed[folder]
    unmet = [r.criterion.id for r in assessment.to_next_level]
    assert assessment.level == level, unmet
    assert assessment.scope == folder
    assert Path(assessment.root) == ROOT


@pytest.mark.parametrize(
    "level",
    [
        pytest.param(
            4,
            marks=pytest.mark.skipif(
                not (ROOT / "level4_operations").is_dir(),
                reason="level4_operations/ does not exist yet",
            ),
            id="level4_operations",
        )
    ],
)
def test_level4_folder_is_at_level4(level: int) -> None:
    assessment = assess(ROOT / "level4_operations")
    assert assessment.level == level, [r.criterion.id for r in assessment.to_next_level]


def test_whole_repository_is_at_its_highest_level() -> None:
    expected = 4 if (ROOT / "level4_operations").is_dir() else 3
    assessment = assess(ROOT)
    assert assessment.scope == ""
    assert assessment.level == expected, [r.criterion.id for r in assessment.to_next_level]


def test_level1_ci_tests_evidence_is_the_ci_workflow_reaching_level1(
    assessed: dict[str, Assessment],
) -> None:
    result = _result(assessed["level1_devops"], "ci-tests")
    assert result.met
    ci = [e for e in result.evidence if e.path == ".github/workflows/ci.yml"]
    assert ci, [e.location for e in result.evidence]
    assert any("level1_devops" in e.detail for e in ci), [e.detail for e in ci]
    assert all(e.line >= 1 and e.automated for e in ci)


def test_level3_cd_from_registry_evidence_is_the_deploy_workflow(
    assessed: dict[str, Assessment],
) -> None:
    result = _result(assessed["level3_deployment"], "cd-from-registry")
    assert result.met
    deploy_group = result.groups[0]
    assert ".github/workflows/deploy.yml" in {e.path for e in deploy_group.evidence}


def test_level2_experiment_tracking_is_in_the_pipeline(assessed: dict[str, Assessment]) -> None:
    result = _result(assessed["level2_training"], "experiment-tracking")
    assert result.met
    paths = {e.path for e in result.evidence}
    assert "level2_training/src/duration_training/pipeline.py" in paths
    assert all(e.via is None for e in result.evidence)  # its own code


def test_level3_experiment_tracking_comes_via_its_local_dependency(
    assessed: dict[str, Assessment],
) -> None:
    assessment = assessed["level3_deployment"]
    assert assessment.dependency_folders.get("level2_training") == "duration-training"
    result = _result(assessment, "experiment-tracking")
    assert result.met
    inherited = [e for e in result.evidence if e.path.startswith("level2_training/")]
    assert inherited
    assert all(e.via is not None and "duration-training" in e.via for e in inherited)


def test_level1_next_rung_is_the_unmet_level2_criteria(assessed: dict[str, Assessment]) -> None:
    assessment = assessed["level1_devops"]
    assert assessment.next_level == 2
    unmet_level2 = [r.criterion.id for r in assessment.at_level(2) if not r.met]
    assert unmet_level2  # level 1 is not level 2
    assert [r.criterion.id for r in assessment.to_next_level] == unmet_level2


def test_level0_notebook_is_not_versioned_scoring_code(assessed: dict[str, Assessment]) -> None:
    assessment = assessed["level0_notebook"]
    assert not _result(assessment, "versioned-scoring-code").met
    assert not _result(assessment, "experiment-tracking").met
