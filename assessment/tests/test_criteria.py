"""Every criterion of a maturity level, on small repositories written by the test.

For each criterion there is a repository that has its evidence (met) and the same repository
without the key evidence (not met). Then the ways evidence is reached: each CI system, the
forms of a GitHub workflow (``on:`` unquoted, tox expansion, matrix values, ``paths`` filters,
``working-directory``, local reusable workflows), monorepo reach, local dependencies, the
``same_file`` criteria and the cumulative level.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mlops_assess.assess import CriterionResult, assess
from mlops_assess.catalogue import load_catalogue

Check = Callable[[Path, str], CriterionResult]
Files = dict[str, str]


def scheduled_workflow(command: str) -> str:
    """A GitHub workflow on a monthly schedule whose one step runs ``command``."""
    return f"""
        on:
          schedule:
            - cron: "0 3 1 * *"
        jobs:
          train:
            runs-on: ubuntu-latest
            steps:
              - run: {command}
    """


PUSH_PYTEST = """
    on: [push, pull_request]
    jobs:
      test:
        runs-on: ubuntu-latest
        steps:
          - run: pytest
"""

# criterion id -> (files that meet it, the same files without the key evidence)
CASES: dict[str, tuple[Files, Files]] = {
    # -- level 1 ---------------------------------------------------------------------------
    "ci-tests": (
        {".github/workflows/ci.yml": PUSH_PYTEST},
        {".github/workflows/ci.yml": PUSH_PYTEST.replace("pytest", "echo hello")},
    ),
    "automated-release": (
        {
            ".github/workflows/release.yml": """
                on:
                  push:
                    tags: ["v*"]
                jobs:
                  dists:
                    runs-on: ubuntu-latest
                    steps:
                      - run: python -m build
                      - run: twine upload dist/*
            """
        },
        {
            ".github/workflows/release.yml": """
                on:
                  pull_request:
                jobs:
                  dists:
                    runs-on: ubuntu-latest
                    steps:
                      - run: python -m build
            """
        },
    ),
    "unit-tests": (
        {"tests/test_model.py": "def test_fits():\n    assert 1 + 1 == 2\n"},
        {"tests/helpers.py": "def make_frame():\n    return None\n"},
    ),
    "model-integration-test": (
        {
            "src/svc/app.py": """
                from fastapi import FastAPI
                app = FastAPI()

                @app.post("/predict")
                def predict(ride: dict) -> dict:
                    return {"duration": model.predict([ride])[0]}
            """,
            "tests/test_app.py": """
                from fastapi.testclient import TestClient
                from svc.app import app

                def test_predict():
                    assert TestClient(app).post("/predict", json={}).status_code == 200
            """,
        },
        {
            "src/svc/app.py": "def predict(ride):\n    return model.predict([ride])[0]\n",
            "tests/test_app.py": """
                from fastapi.testclient import TestClient

                def test_predict():
                    assert TestClient
            """,
        },
    ),
    "versioned-scoring-code": (
        {
            "pyproject.toml": '[project]\nname = "svc"\nversion = "0.1.0"\n',
            "src/svc/score.py": "def score(model, rows):\n    return model.predict(rows)\n",
        },
        {  # the same prediction, but only in a notebook
            "pyproject.toml": '[project]\nname = "svc"\nversion = "0.1.0"\n',
            "score.ipynb": (
                '{"cells": [{"cell_type": "code", "id": "c1", "execution_count": null, '
                '"metadata": {}, "outputs": [], "source": "y = model.predict(rows)"}], '
                '"metadata": {}, '
                '"nbformat": 4, "nbformat_minor": 5}'
            ),
        },
    ),
    "pinned-dependencies": (
        {
            "pyproject.toml": """
                [project]
                name = "svc"
                version = "0.1.0"
                dependencies = ["numpy>=1.26", "pandas>=2.1", "scikit-learn==1.5.0"]
            """
        },
        {
            "pyproject.toml": """
                [project]
                name = "svc"
                version = "0.1.0"
                dependencies = ["numpy", "pandas", "scikit-learn>=1.5"]
            """
        },
    ),
    # -- level 2 ---------------------------------------------------------------------------
    "experiment-tracking": (
        {
            "train.py": """
                import mlflow as m

                with m.start_run():
                    m.log_metric("rmse", 5.2)
            """
        },
        {"train.py": "import mlflow\n\nprint(mlflow.__version__)\n"},
    ),
    "model-registry": (
        {
            "train.py": """
                import mlflow

                mlflow.sklearn.log_model(model, "model", registered_model_name="duration")
            """
        },
        {"train.py": 'import mlflow\n\nmlflow.sklearn.log_model(model, "model")\n'},
    ),
    "unattended-training": (
        {
            "pipeline.py": """
                from prefect import flow

                @flow
                def training():
                    model.fit(X, y)
            """
        },
        {"pipeline.py": "def training():\n    model.fit(X, y)\n"},
    ),
    "data-and-code-versioned-with-model": (
        {
            "dvc.yaml": "stages:\n  train:\n    cmd: python train.py\n",
            "train.py": 'import mlflow\n\nmlflow.set_tag("git_commit", commit)\n',
        },
        {"dvc.yaml": "stages:\n  train:\n    cmd: python train.py\n", "train.py": "x = 1\n"},
    ),
    "data-validation": (
        {"train.py": "import pandera as pa\n\nschema = pa.DataFrameSchema({})\n"},
        {"train.py": "import pandas as pd\n\nframe = pd.DataFrame({})\n"},
    ),
    # -- level 3 ---------------------------------------------------------------------------
    "cd-from-registry": (
        {
            ".github/workflows/deploy.yml": """
                on: workflow_dispatch
                jobs:
                  deploy:
                    runs-on: ubuntu-latest
                    environment: production
                    steps:
                      - run: kubectl apply -f k8s/
            """,
            "serve.py": 'MODEL_URI = "models:/duration@champion"\n',
        },
        {"serve.py": 'MODEL_URI = "models:/duration@champion"\n'},
    ),
    "ab-or-canary": (
        {"router.py": "def route(request, canary_weight=0.1):\n    return canary_weight\n"},
        {"router.py": "def route(request, weight=0.1):\n    return weight\n"},
    ),
    "test-per-model-release": (
        {"deploy.py": "def smoke_test(model):\n    return model is not None\n"},
        {"deploy.py": "def load(model):\n    return model\n"},
    ),
    "prediction-traceability": (
        {
            "prediction_log.py": """
                def write(frame, model_version, run_id):
                    frame["model_version"] = model_version
                    frame["run_id"] = run_id
                    frame.to_parquet("predictions.parquet")
            """
        },
        {
            "prediction_log.py": """
                def write(frame, model_version):
                    frame["model_version"] = model_version
                    frame.to_parquet("predictions.parquet")
            """
        },
    ),
    "model-monitoring": (
        {"monitor.py": "from scipy.stats import ks_2samp\n\nresult = ks_2samp(a, b)\n"},
        {"monitor.py": "from scipy.stats import ttest_ind\n\nresult = ttest_ind(a, b)\n"},
    ),
    # -- level 4 ---------------------------------------------------------------------------
    "retraining-trigger": (
        {
            "loop.py": """
                def check(drift_score, threshold):
                    if drift_score > threshold:
                        trigger_retraining()
            """
        },
        {
            "loop.py": """
                def check(drift_score, threshold):
                    if drift_score > threshold:
                        send_email()
            """
        },
    ),
    "policy-promotion": (
        {
            "promote.py": """
                def decide(client, sequential_test):
                    if sequential_test.done:
                        client.set_registered_model_alias("duration", "champion", "2")
            """
        },
        {
            "promote.py": """
                def decide(client):
                    client.set_registered_model_alias("duration", "champion", "2")
            """
        },
    ),
    "central-model-metrics": (
        {
            "monitoring/alerts.yml": """
                groups:
                  - name: duration
                    rules:
                      - alert: HighLatency
                        expr: histogram_quantile(0.99, rate(latency_bucket[5m])) > 1
            """
        },
        {"monitoring/alerts.yml": "name: duration\nthreshold: 1\n"},
    ),
}


def test_every_leveled_criterion_has_a_case() -> None:
    leveled = {c.id for c in load_catalogue().criteria if c.level is not None}
    assert set(CASES) == leveled


@pytest.mark.parametrize("criterion_id", sorted(CASES))
def test_criterion_met_with_its_evidence(
    make_repo: Callable[..., Path], check: Check, criterion_id: str
) -> None:
    root = make_repo(CASES[criterion_id][0])
    result = check(root, criterion_id)
    assert result.met, result.missing
    assert all(e.line >= 1 for e in result.evidence)
    assert all((root / e.path).is_file() for e in result.evidence)


@pytest.mark.parametrize("criterion_id", sorted(CASES))
def test_criterion_not_met_without_the_key_evidence(
    make_repo: Callable[..., Path], check: Check, criterion_id: str
) -> None:
    root = make_repo(CASES[criterion_id][1])
    result = check(root, criterion_id)
    assert not result.met, [e.location for e in result.evidence]
    assert result.missing


# -- alternative evidence for the same criteria ----------------------------------------------
@pytest.mark.parametrize(
    ("criterion_id", "files"),
    [
        pytest.param("pinned-dependencies", {"uv.lock": "version = 1\n"}, id="lock-file"),
        pytest.param(
            "pinned-dependencies",
            {"requirements.txt": "numpy==1.26.4\npandas>=2\n"},
            id="requirements",
        ),
        pytest.param(
            "model-integration-test",
            {
                "Dockerfile": 'CMD ["uvicorn", "svc.app:app"]\n',
                "tests/test_http.py": "import httpx\n\ndef test_up():\n    assert httpx\n",
            },
            id="dockerfile-server",
        ),
        pytest.param(
            "model-registry",
            {"train.py": "import mlflow\n\nmlflow.register_model(uri, 'duration')\n"},
            id="register-model",
        ),
        pytest.param(
            "data-and-code-versioned-with-model",
            {
                "train.py": """
                    import mlflow

                    mlflow.log_input(dataset)
                    mlflow.pyfunc.log_model("m", python_model=p, code_paths=["src"])
                """
            },
            id="log-input-code-paths",
        ),
        pytest.param(
            "data-validation",
            {"checks.py": "def validate_data(frame):\n    return frame\n"},
            id="own-validation",
        ),
        pytest.param(
            "ab-or-canary",
            {"k8s/rollout.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\n"},
            id="argo-rollout",
        ),
        pytest.param(
            "test-per-model-release",
            {"gate.py": "import mlflow\n\nmlflow.evaluate(model_uri, data)\n"},
            id="mlflow-evaluate",
        ),
        pytest.param(
            "central-model-metrics",
            {"obs.py": "from opentelemetry.exporter.otlp import OTLPMetricExporter\n"},
            id="otel-exporter",
        ),
        pytest.param(
            "unattended-training",
            {
                "train.py": "model.fit(X, y)\n",
                ".github/workflows/train.yml": scheduled_workflow("python -m svc train"),
            },
            id="scheduled-workflow",
        ),
        pytest.param(
            "unattended-training",
            {
                "jobs/train_model.py": "model.fit(X, y)\n",
                ".github/workflows/train.yml": scheduled_workflow(
                    "python jobs/train_model.py --month 2024-01"
                ),
            },
            id="scheduled-training-script",
        ),
    ],
)
def test_alternative_evidence(
    make_repo: Callable[..., Path], check: Check, criterion_id: str, files: Files
) -> None:
    result = check(make_repo(files), criterion_id)
    assert result.met, result.missing


def test_alias_resolution_names_the_real_call(make_repo: Callable[..., Path], check: Check) -> None:
    result = check(make_repo(CASES["experiment-tracking"][0]), "experiment-tracking")
    assert {e.detail for e in result.evidence} == {"calls mlflow.start_run"}
    assert result.evidence[0].location == "train.py:3"


def test_unattended_training_needs_a_schedule_not_a_push(
    make_repo: Callable[..., Path], check: Check
) -> None:
    workflow = PUSH_PYTEST.replace("pytest", "python -m svc train")
    result = check(
        make_repo({"train.py": "model.fit(X, y)\n", ".github/workflows/t.yml": workflow}),
        "unattended-training",
    )
    assert not result.met
    assert result.missing == [
        "an orchestrator or a scheduled/dispatched CI job starts that training"
    ]


# -- GitHub Actions --------------------------------------------------------------------------
def _workflow(on: str, steps: str, extra: str = "") -> str:
    return (
        f"on:{on.rstrip()}\njobs:\n  test:\n    runs-on: ubuntu-latest\n{extra}    steps:\n{steps}"
    )


def test_github_unquoted_on_with_mapping_triggers(
    make_repo: Callable[..., Path], check: Check
) -> None:
    workflow = _workflow(
        "\n  push:\n    branches: [main]\n  pull_request:\n", "      - run: pytest\n"
    )
    result = check(make_repo({".github/workflows/ci.yml": workflow}), "ci-tests")
    assert result.met
    assert "pull_request, push" in result.evidence[0].detail
    assert result.evidence[0].location == ".github/workflows/ci.yml:9"


def test_github_tox_env_expanded_through_tox_ini(
    make_repo: Callable[..., Path], check: Check
) -> None:
    files = {
        ".github/workflows/ci.yml": _workflow(" [push]\n", "      - run: tox -e unit\n"),
        "tox.ini": "[tox]\nenv_list = unit\n\n[testenv:unit]\ncommands =\n"
        "    pytest {tox_root}/svc_a {posargs}\n",
        "svc_a/tests/test_a.py": "def test_a():\n    assert True\n",
    }
    root = make_repo(files)
    result = check(root / "svc_a", "ci-tests")
    assert result.met, result.missing
    assert "tox env unit, tox.ini" in result.evidence[0].detail
    # Without tox.ini the job only says `tox -e unit`: nothing names svc_a or pytest.
    (root / "tox.ini").unlink()
    assert not check(root / "svc_a", "ci-tests").met


def test_github_matrix_values_are_substituted(make_repo: Callable[..., Path], check: Check) -> None:
    def files(values: str) -> Files:
        strategy = f"    strategy:\n      matrix:\n        env: [{values}]\n"
        workflow = _workflow(" push\n", "      - run: pytest ${{ matrix.env }}\n", strategy)
        return {
            ".github/workflows/ci.yml": workflow,
            "svc_a/app.py": "x = 1\n",
            "svc_b/app.py": "x = 1\n",
        }

    both = make_repo(files("svc_a, svc_b"), name="both")
    assert check(both / "svc_a", "ci-tests").met
    assert check(both / "svc_b", "ci-tests").met
    only_b = make_repo(files("svc_b"), name="only_b")
    assert not check(only_b / "svc_a", "ci-tests").met
    assert check(only_b / "svc_b", "ci-tests").met


def test_github_paths_filter_reaches_the_folder(
    make_repo: Callable[..., Path], check: Check
) -> None:
    def files(path: str) -> Files:
        on = f"\n  push:\n    paths: ['{path}/**']\n"
        return {
            ".github/workflows/ci.yml": _workflow(on, "      - run: pytest\n"),
            "svc_a/app.py": "x = 1\n",
            "svc_b/app.py": "x = 1\n",
        }

    root = make_repo(files("svc_a"), name="a")
    assert check(root / "svc_a", "ci-tests").met
    assert not check(root / "svc_b", "ci-tests").met


def test_github_working_directory_reaches_the_folder(
    make_repo: Callable[..., Path], check: Check
) -> None:
    steps = "      - run: pytest\n        working-directory: ./svc_a\n"
    files = {
        ".github/workflows/ci.yml": _workflow(" [pull_request]\n", steps),
        "svc_a/app.py": "x = 1\n",
        "svc_b/app.py": "x = 1\n",
    }
    root = make_repo(files)
    assert check(root / "svc_a", "ci-tests").met
    assert not check(root / "svc_b", "ci-tests").met


def test_github_job_defaults_working_directory_and_its_tox_ini(
    make_repo: Callable[..., Path], check: Check
) -> None:
    defaults = "    defaults:\n      run:\n        working-directory: svc_a\n"
    files = {
        ".github/workflows/ci.yml": _workflow(" [push]\n", "      - run: tox -e py\n", defaults),
        "svc_a/tox.ini": "[testenv:py]\ncommands = pytest tests\n",
    }
    result = check(make_repo(files) / "svc_a", "ci-tests")
    assert result.met
    assert "svc_a/tox.ini" in result.evidence[0].detail


def test_github_local_reusable_workflow_gives_its_steps(
    make_repo: Callable[..., Path], check: Check
) -> None:
    reusable = """
        on: workflow_call
        jobs:
          run-tests:
            runs-on: ubuntu-latest
            steps:
              - run: pytest svc_a
    """
    caller = """
        on: [push]
        jobs:
          tests:
            uses: ./.github/workflows/tests.yml
    """
    root = make_repo({".github/workflows/tests.yml": reusable, ".github/workflows/ci.yml": caller})
    result = check(root / "svc_a", "ci-tests")
    assert result.met
    assert {e.path for e in result.evidence} == {".github/workflows/ci.yml"}
    # The reusable workflow alone is only `workflow_call`: not on push or pull request.
    alone = make_repo({".github/workflows/tests.yml": reusable}, name="alone")
    assert not check(alone / "svc_a", "ci-tests").met


def test_install_only_commands_do_not_reach(make_repo: Callable[..., Path], check: Check) -> None:
    steps = "      - run: pip install -e svc_a\n      - run: pytest\n"
    root = make_repo({".github/workflows/ci.yml": _workflow(" [push]\n", steps)})
    assert not check(root / "svc_a", "ci-tests").met


def test_console_script_reaches_its_folder(make_repo: Callable[..., Path], check: Check) -> None:
    files = {
        "svc_a/pyproject.toml": '[project]\nname = "svc-a"\nversion = "1"\n'
        '[project.scripts]\nsvc-a-deploy = "svc_a.cli:main"\n',
        "svc_a/serve.py": 'URI = "models:/m@champion"\n',
        ".github/workflows/deploy.yml": _workflow(
            " workflow_dispatch\n", "      - run: svc-a-deploy deploy --alias champion\n"
        ),
    }
    result = check(make_repo(files) / "svc_a", "cd-from-registry")
    assert result.met, result.missing


# -- other CI systems ------------------------------------------------------------------------
def test_gitlab_merge_request_rules(make_repo: Callable[..., Path], check: Check) -> None:
    gitlab = """
        stages: [test]
        unit:
          stage: test
          script:
            - pip install -e .
            - pytest tests
          rules:
            - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    """
    result = check(make_repo({".gitlab-ci.yml": gitlab}), "ci-tests")
    assert result.met
    assert result.evidence[0].path == ".gitlab-ci.yml"
    assert "GitLab CI job 'unit'" in result.evidence[0].detail
    assert "pull_request" in result.evidence[0].detail


def test_gitlab_schedule_rule_makes_training_unattended(
    make_repo: Callable[..., Path], check: Check
) -> None:
    def files(rule: str) -> Files:
        gitlab = (
            "retrain:\n  script:\n    - python -m svc train\n"
            f'  rules:\n    - if: $CI_PIPELINE_SOURCE == "{rule}"\n'
        )
        return {".gitlab-ci.yml": gitlab, "svc/train.py": "model.fit(X, y)\n"}

    scheduled = check(make_repo(files("schedule"), name="s"), "unattended-training")
    assert scheduled.met
    assert any(e.path == ".gitlab-ci.yml" for e in scheduled.evidence)
    on_merge = check(make_repo(files("merge_request_event"), name="m"), "unattended-training")
    assert not on_merge.met


def test_gitlab_hidden_jobs_are_templates(make_repo: Callable[..., Path], check: Check) -> None:
    gitlab = ".tests:\n  script:\n    - pytest\n"
    assert not check(make_repo({".gitlab-ci.yml": gitlab}), "ci-tests").met


def test_azure_pipelines(make_repo: Callable[..., Path], check: Check) -> None:
    azure = """
        trigger:
          - main
        pool:
          vmImage: ubuntu-latest
        steps:
          - script: python -m pytest tests
            displayName: tests
    """
    result = check(make_repo({"azure-pipelines.yml": azure}), "ci-tests")
    assert result.met
    assert result.evidence[0].location == "azure-pipelines.yml:6"
    assert "Azure Pipelines" in result.evidence[0].detail
    manual_only = azure.replace("trigger:\n          - main", "trigger: none\n        pr: none")
    assert not check(make_repo({"azure-pipelines.yml": manual_only}, name="m"), "ci-tests").met


def test_azure_deployment_job_with_environment(
    make_repo: Callable[..., Path], check: Check
) -> None:
    azure = """
        trigger: none
        stages:
          - stage: release
            jobs:
              - deployment: model
                environment: production
                strategy:
                  runOnce:
                    deploy:
                      steps:
                        - script: helm upgrade duration chart/
    """
    files = {"azure-pipelines.yml": azure, "serve.py": 'URI = "models:/m@champion"\n'}
    result = check(make_repo(files), "cd-from-registry")
    assert result.met
    assert "environment production" in result.groups[0].evidence[0].detail


def test_jenkinsfile_sh_steps_and_cron(make_repo: Callable[..., Path], check: Check) -> None:
    jenkins = """
        pipeline {
            agent any
            triggers { cron('H 2 1 * *') }
            stages {
                stage('test') { steps { sh 'pytest tests' } }
                stage('retrain') { steps { sh "python -m svc train" } }
            }
        }
    """
    files = {"Jenkinsfile": jenkins, "svc/train.py": "model.fit(X, y)\n"}
    root = make_repo(files)
    tests = check(root, "ci-tests")
    assert tests.met
    assert tests.evidence[0].location == "Jenkinsfile:5"
    assert check(root, "unattended-training").met
    without_cron = jenkins.replace("triggers { cron('H 2 1 * *') }", "")
    other = make_repo({**files, "Jenkinsfile": without_cron}, name="no_cron")
    assert check(other, "ci-tests").met
    assert not check(other, "unattended-training").met


def test_codebuild_buildspec(make_repo: Callable[..., Path], check: Check) -> None:
    buildspec = """
        version: 0.2
        phases:
          build:
            commands:
              - pytest
              - docker build -t duration .
    """
    root = make_repo({"buildspec.yml": buildspec})
    tests = check(root, "ci-tests")
    assert tests.met
    assert tests.evidence[0].path == "buildspec.yml"
    assert "AWS CodeBuild" in tests.evidence[0].detail
    assert check(root, "automated-release").met
    bare = make_repo({"buildspec.yml": buildspec.replace("- docker build -t duration .", "")}, "b")
    assert not check(bare, "automated-release").met


# -- monorepos and local dependencies --------------------------------------------------------
def test_monorepo_root_job_reaches_only_the_folder_it_names(
    make_repo: Callable[..., Path], check: Check
) -> None:
    files = {
        ".github/workflows/ci.yml": _workflow(" [push]\n", "      - run: pytest svc_a\n"),
        "svc_a/tests/test_a.py": "def test_a():\n    assert True\n",
        "svc_b/tests/test_b.py": "def test_b():\n    assert True\n",
    }
    root = make_repo(files)
    assert check(root / "svc_a", "ci-tests").met
    not_reached = check(root / "svc_b", "ci-tests")
    assert not not_reached.met
    assert not_reached.evidence == []
    # Each folder's own tests are its own.
    assert [e.path for e in check(root / "svc_b", "unit-tests").evidence] == [
        "svc_b/tests/test_b.py"
    ]
    assert check(root, "ci-tests").met  # the whole repository


def test_a_folder_with_a_similar_name_is_not_reached(
    make_repo: Callable[..., Path], check: Check
) -> None:
    files = {
        ".github/workflows/ci.yml": _workflow(" [push]\n", "      - run: pytest svc_ab/tests\n"),
        "svc_a/x.py": "x = 1\n",
        "svc_ab/x.py": "x = 1\n",
    }
    root = make_repo(files)
    assert check(root / "svc_ab", "ci-tests").met
    assert not check(root / "svc_a", "ci-tests").met


LIB = {
    "lib_a/pyproject.toml": '[project]\nname = "Lib_A"\nversion = "1.0"\n',
    "lib_a/src/lib_a/tracking.py": "import mlflow\n\ndef log(v):\n    mlflow.log_metric('m', v)\n",
    "lib_a/tests/test_tracking.py": "import mlflow\n\ndef test_x():\n    mlflow.autolog()\n",
}


def test_local_dependency_source_is_inherited_with_via(
    make_repo: Callable[..., Path], check: Check
) -> None:
    app = {
        "app_b/pyproject.toml": '[project]\nname = "app-b"\nversion = "1.0"\n'
        'dependencies = ["lib-a>=1.0"]\n',
        "app_b/src/app_b/main.py": "from lib_a.tracking import log\n",
    }
    root = make_repo({**LIB, **app})
    result = check(root / "app_b", "experiment-tracking")
    assert result.met
    assert [(e.path, e.via) for e in result.evidence] == [
        ("lib_a/src/lib_a/tracking.py", "lib-a (lib_a/)")  # its tests are not inherited
    ]
    assessment = assess(root / "app_b")
    assert assessment.dependency_folders == {"lib_a": "lib-a"}


def test_without_the_dependency_nothing_is_inherited(
    make_repo: Callable[..., Path], check: Check
) -> None:
    app = {
        "app_b/pyproject.toml": '[project]\nname = "app-b"\nversion = "1.0"\n'
        'dependencies = ["numpy>=1"]\n',
        "app_b/src/app_b/main.py": "x = 1\n",
    }
    root = make_repo({**LIB, **app})
    assert not check(root / "app_b", "experiment-tracking").met


def test_transitive_local_dependencies(make_repo: Callable[..., Path], check: Check) -> None:
    files = {
        **LIB,
        "mid/pyproject.toml": '[project]\nname = "mid"\nversion = "1"\ndependencies = ["lib-a"]\n',
        "top/pyproject.toml": '[project]\nname = "top"\nversion = "1"\ndependencies = ["mid>=1"]\n',
    }
    root = make_repo(files)
    assert assess(root / "top").dependency_folders == {"mid": "mid", "lib_a": "lib-a"}
    assert check(root / "top", "experiment-tracking").met


def test_monitoring_must_be_the_folders_own(make_repo: Callable[..., Path], check: Check) -> None:
    files = {
        "lib_a/pyproject.toml": '[project]\nname = "lib-a"\nversion = "1.0"\n',
        "lib_a/src/lib_a/drift.py": "from scipy.stats import ks_2samp\n\nks_2samp(a, b)\n",
        "app_b/pyproject.toml": '[project]\nname = "app-b"\nversion = "1.0"\n'
        'dependencies = ["lib-a>=1.0"]\n',
    }
    root = make_repo(files)
    assert check(root / "lib_a", "model-monitoring").met
    assert not check(root / "app_b", "model-monitoring").met  # deps = false


# -- same_file criteria ----------------------------------------------------------------------
SPLIT: dict[str, tuple[Files, Files]] = {
    "prediction-traceability": (
        {
            "svc/log.py": "def write(frame, model_version, run_id):\n"
            "    frame.to_parquet('p.parquet')\n"
        },
        {
            "svc/version.py": "def tag(frame, model_version, run_id):\n    return frame\n",
            "svc/log.py": "def write(frame):\n    frame.to_parquet('p.parquet')\n",
        },
    ),
    "retraining-trigger": (
        {"svc/loop.py": "def loop(drift):\n    if drift:\n        start_training()\n"},
        {
            "svc/monitor.py": "def measure(drift):\n    return drift\n",
            "svc/train.py": "def start_training():\n    return 1\n",
        },
    ),
    "policy-promotion": (
        {"svc/promote.py": "def run(client, msprt):\n    client.promote(msprt)\n"},
        {
            "svc/stats.py": "def msprt(a, b):\n    return a > b\n",
            "svc/promote.py": "def run(client):\n    client.promote()\n",
        },
    ),
}


@pytest.mark.parametrize("criterion_id", sorted(SPLIT))
def test_same_file_criteria_need_one_module(
    make_repo: Callable[..., Path], check: Check, criterion_id: str
) -> None:
    assert load_catalogue().get(criterion_id).same_file
    together, split = SPLIT[criterion_id]
    met = check(make_repo(together, name="together"), criterion_id)
    assert met.met, met.missing
    assert len({e.path for e in met.evidence}) == 1
    not_met = check(make_repo(split, name="split"), criterion_id)
    assert not not_met.met
    assert all(not g.evidence for g in not_met.groups)  # no common module: no evidence kept


# -- the cumulative level --------------------------------------------------------------------
LEVEL2 = {
    "pyproject.toml": """
        [project]
        name = "svc"
        version = "0.1.0"
        dependencies = ["mlflow>=2.10", "fastapi>=0.110", "scikit-learn>=1.4", "prefect>=2"]
    """,
    "src/svc/app.py": """
        from fastapi import FastAPI
        app = FastAPI()

        @app.post("/predict")
        def predict(ride: dict) -> dict:
            return {"duration": model.predict([ride])[0]}
    """,
    "src/svc/validation.py": "def validate_data(frame):\n    return frame\n",
    "src/svc/train.py": """
        import mlflow
        from prefect import flow
        from svc.validation import validate_data

        @flow
        def train(frame, commit):
            validate_data(frame)
            with mlflow.start_run():
                mlflow.log_input(dataset)
                mlflow.set_tag("git_commit", commit)
                model.fit(X, y)
                mlflow.log_metric("rmse", 5.0)
                mlflow.sklearn.log_model(model, "model", registered_model_name="svc")
    """,
    "tests/test_app.py": """
        from fastapi.testclient import TestClient
        from svc.app import app

        def test_predict():
            assert TestClient(app).post("/predict", json={}).status_code == 200
    """,
    ".github/workflows/ci.yml": PUSH_PYTEST,
    ".github/workflows/release.yml": """
        on:
          push:
            tags: ["v*"]
        jobs:
          build:
            runs-on: ubuntu-latest
            steps:
              - run: python -m build
    """,
}


def test_a_repository_meeting_levels_1_and_2_is_level_2(make_repo: Callable[..., Path]) -> None:
    assessment = assess(make_repo(LEVEL2))
    assert assessment.level == 2, [r.criterion.id for r in assessment.to_next_level]
    assert {r.criterion.id for r in assessment.to_next_level} == {
        c.id for c in load_catalogue().criteria if c.level == 3
    }


def test_level_is_cumulative(make_repo: Callable[..., Path]) -> None:
    unpinned = LEVEL2["pyproject.toml"].replace(">=2.10", "").replace(">=0.110", "")
    unpinned = unpinned.replace(">=1.4", "").replace(">=2", "")
    assessment = assess(make_repo({**LEVEL2, "pyproject.toml": unpinned}))
    assert all(r.met for r in assessment.at_level(2))
    assert [r.criterion.id for r in assessment.at_level(1) if not r.met] == ["pinned-dependencies"]
    assert assessment.level == 0
    assert [r.criterion.id for r in assessment.to_next_level] == ["pinned-dependencies"]


def test_an_empty_repository_is_level_0(make_repo: Callable[..., Path]) -> None:
    assessment = assess(make_repo({}))
    assert assessment.level == 0
    assert assessment.files == 0
    assert not any(r.met for r in assessment.results if r.criterion.level)
    assert assessment.ml_test_score_final == 0


def test_a_verdict_named_promote_is_not_a_promotion(
    make_repo: Callable[..., Path], check: Check
) -> None:
    # Level 3's A/B analysis names the verdict PROMOTE next to its always-valid test; a person
    # still promotes: that is not promotion by policy.
    root = make_repo(
        {
            "ab.py": """
                ALWAYS_VALID = "always valid"
                PROMOTE = "promote"

                def verdict(p_value):
                    return PROMOTE if p_value < 0.05 else None
            """
        }
    )
    assert not check(root, "policy-promotion").met


def test_every_part_of_a_criterion_shows_in_the_first_items(
    make_repo: Callable[..., Path], check: Check
) -> None:
    files: Files = {f"train_{i}.py": "model.fit(X, y)\n" for i in range(5)}
    files[".github/workflows/train.yml"] = scheduled_workflow("python train_0.py")
    result = check(make_repo(files), "unattended-training")
    assert result.met
    # Five files train, one scheduled job starts them: the job is second, not sixth.
    assert [e.path for e in result.evidence[:2]] == ["train_0.py", ".github/workflows/train.yml"]
