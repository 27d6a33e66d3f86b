"""The CI around mlops-assess: the composite action, the reusable workflow, and the workflows
made callable (train, deploy) or calling it (ci).

The structure is checked on the parsed YAML; the shell is run for real: each ``run:`` script of
``action.yml`` and of ``.github/workflows/assess.yml`` is taken from the file, its ``env:``
expressions filled in from the inputs of the test, and executed with bash the way the runner
does (``bash --noprofile --norc -eo pipefail FILE``), with GITHUB_OUTPUT and
GITHUB_STEP_SUMMARY in temporary files. The install step (a venv and pip from an index) is the
one step not run: the test environment's own ``mlops-assess`` stands in for it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTION = ROOT / "action.yml"
BIN = Path(sys.executable).parent
BASH = shutil.which("bash")

pytestmark = [
    pytest.mark.skipif(
        not (WORKFLOWS / "assess.yml").is_file() or not ACTION.is_file(),
        reason="needs the ladder's repository (not an sdist of mlops-assess)",
    ),
]
needs_bash = pytest.mark.skipif(BASH is None, reason="needs bash")
needs_cli = pytest.mark.skipif(
    not (BIN / "mlops-assess").exists(), reason="needs mlops-assess next to sys.executable"
)

SHA_PIN = re.compile(r"^\s*-?\s*uses:\s*([^\s@]+)@([0-9a-f]{40})\s+#\s*v\d+(\.\d+)*\s*$")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), path
    return document


def _on(workflow: Mapping[str, Any]) -> dict[str, Any]:
    """The ``on:`` table (YAML 1.1 reads the bare key ``on`` as ``True``)."""
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict)
    return on


def _workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def _all_steps(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "runs" in document:
        return list(document["runs"]["steps"])
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def _step(steps: list[dict[str, Any]], *, id: str | None = None, name: str | None = None) -> Any:
    for step in steps:
        if (id is not None and step.get("id") == id) or (
            name is not None and step.get("name") == name
        ):
            return step
    raise AssertionError(f"no step with id={id!r} name={name!r}")


ASSESS = _load(WORKFLOWS / "assess.yml") if (WORKFLOWS / "assess.yml").is_file() else {}
ACTION_DOC = _load(ACTION) if ACTION.is_file() else {}


# --- running a step's shell --------------------------------------------------------------------


@dataclass
class StepRun:
    status: int
    stdout: str
    stderr: str
    outputs: dict[str, str]


def _render(value: object, context: Mapping[str, str]) -> str:
    """Fill in ``${{ expr }}`` from ``context``: an expression the test did not give fails."""

    def one(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression not in context:
            raise AssertionError(f"the test gives no value for ${{{{ {expression} }}}}")
        return context[expression]

    return EXPRESSION.sub(one, str(value))


def _read_outputs(path: Path) -> dict[str, str]:
    outputs: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            outputs[key] = value
    return outputs


def _run_step(
    step: Mapping[str, Any],
    context: Mapping[str, str],
    *,
    cwd: Path,
    runner: Path,
    extra_env: Mapping[str, str] | None = None,
) -> StepRun:
    """Run one ``run:`` step like the runner: its env rendered, a fresh GITHUB_OUTPUT file."""
    assert BASH is not None
    script = step["run"]
    assert "${{" not in script, "inputs reach the script through env:, never pasted into it"
    runner.mkdir(parents=True, exist_ok=True)
    temp = runner / "temp"
    temp.mkdir(exist_ok=True)
    number = len(list(runner.glob("step-*.sh")))
    script_file = runner / f"step-{number}.sh"
    script_file.write_text(script, encoding="utf-8")
    output_file = runner / f"output-{number}"
    output_file.touch()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GITHUB_", "RUNNER_", "ASSESS_", "LADDER_"))
    }
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_STEP_SUMMARY": str(runner / "summary.md"),
            "GITHUB_WORKSPACE": str(cwd),
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_REPOSITORY": "example/caller",
            "GITHUB_SHA": "0" * 40,
            "RUNNER_TEMP": str(temp),
        }
    )
    env.update({key: _render(value, context) for key, value in step.get("env", {}).items()})
    env.update(extra_env or {})
    done = subprocess.run(
        [BASH, "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return StepRun(done.returncode, done.stdout, done.stderr, _read_outputs(output_file))


# --- structure ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*_workflow_files(), ACTION], ids=lambda p: p.name)
def test_every_workflow_and_the_action_parse(path: Path) -> None:
    document = _load(path)
    assert "runs" in document if path == ACTION else "jobs" in document


@pytest.mark.parametrize("path", [*_workflow_files(), ACTION], ids=lambda p: p.name)
def test_every_action_used_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    for line in path.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\s*-?\s*uses:", line) and "uses: ./" not in line:
            assert SHA_PIN.match(line), f"{path.name}: not pinned to a SHA with # vX: {line}"


@pytest.mark.parametrize("path", [*_workflow_files(), ACTION], ids=lambda p: p.name)
def test_no_input_event_or_secret_is_pasted_into_a_script(path: Path) -> None:
    for step in _all_steps(_load(path)):
        for expression in EXPRESSION.findall(step.get("run", "")):
            assert not expression.startswith(("inputs.", "github.event", "secrets.")), (
                f"{path.name}: step {step.get('name')!r} pastes ${{{{ {expression} }}}}"
            )


def test_action_is_composite_with_its_inputs_and_outputs() -> None:
    assert ACTION_DOC["runs"]["using"] == "composite"
    inputs = ACTION_DOC["inputs"]
    assert inputs["path"]["default"] == "."
    assert inputs["fail-below"]["default"] == "0"
    assert inputs["sarif-file"]["default"] == ""
    outputs = ACTION_DOC["outputs"]
    assert outputs["level"]["value"] == "${{ steps.assess.outputs.level }}"
    assert outputs["sarif-file"]["value"] == "${{ steps.assess.outputs.sarif-file }}"
    steps = ACTION_DOC["runs"]["steps"]
    assert [s.get("id") for s in steps[:3]] == ["python", "install", "assess"]
    assert steps[-1]["name"] == "Enforce fail-below", "fail-below is checked last"
    assert steps[0]["with"]["update-environment"] is False, "the job's own Python stays first"
    for step in steps:
        if "run" in step:
            assert step["shell"] == "bash"
            assert "$GITHUB_ACTION_PATH/assessment/ci/assess.sh" in step["run"]
            assert "${{" not in step["run"]


def test_reusable_workflow_inputs_and_output() -> None:
    call = _on(ASSESS)["workflow_call"]
    assert set(_on(ASSESS)) == {"workflow_call"}
    inputs = call["inputs"]
    assert (inputs["path"]["type"], inputs["path"]["default"]) == ("string", ".")
    assert (inputs["fail-below"]["type"], inputs["fail-below"]["default"]) == ("number", 0)
    assert (inputs["upload-sarif"]["type"], inputs["upload-sarif"]["default"]) == (
        "boolean",
        False,
    )
    for name in ("ladder-repository", "ladder-ref"):
        assert inputs[name]["type"] == "string"
        assert not inputs[name].get("required", False)
    assert call["outputs"]["level"]["value"] == "${{ jobs.assess.outputs.level }}"
    assert ASSESS["jobs"]["assess"]["outputs"]["level"] == "${{ steps.assess.outputs.level }}"


def test_security_events_write_only_in_the_upload_job() -> None:
    assert ASSESS["permissions"] == {"contents": "read"}
    jobs = ASSESS["jobs"]
    assert jobs["assess"]["permissions"] == {"contents": "read"}
    upload = jobs["upload-sarif"]
    assert upload["permissions"] == {"contents": "read", "security-events": "write"}
    writers = [
        (path.name, job_id)
        for path in _workflow_files()
        for job_id, job in _load(path)["jobs"].items()
        if (job.get("permissions") or {}).get("security-events") == "write"
        and "uses" not in job  # a caller grants it to assess.yml (see below), runs nothing
    ]
    assert writers == [("assess.yml", "upload-sarif")]


def test_upload_job_runs_after_a_failing_level_and_uploads_with_the_category() -> None:
    upload = ASSESS["jobs"]["upload-sarif"]
    assert upload["needs"] == "assess"
    condition = upload["if"]
    assert "!cancelled()" in condition
    assert "inputs.upload-sarif" in condition
    assert "needs.assess.outputs.sarif-artifact-id" in condition
    codeql = next(s for s in upload["steps"] if "codeql-action/upload-sarif" in s.get("uses", ""))
    assert "mlops-assess" in codeql["with"]["category"]
    download = next(s for s in upload["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"]["name"] == "${{ needs.assess.outputs.sarif-artifact }}"


def test_the_sarif_is_saved_before_fail_below_is_enforced() -> None:
    steps = ASSESS["jobs"]["assess"]["steps"]
    names = [s.get("id") or s.get("name") for s in steps]
    assert names.index("assess") < names.index("sarif-artifact") < names.index("Enforce fail-below")
    assert _step(steps, id="sarif-artifact")["if"] == "inputs.upload-sarif"
    assert ASSESS["jobs"]["assess"]["outputs"]["sarif-artifact-id"] == (
        "${{ steps.sarif-artifact.outputs.artifact-id }}"
    )


def test_every_caller_of_assess_yml_grants_what_its_jobs_ask_for() -> None:
    """GitHub refuses to start a called workflow whose jobs ask for more than the caller
    grants, even for a job its ``if`` would skip."""
    callers = [
        (path.name, job)
        for path in _workflow_files()
        for job in _load(path)["jobs"].values()
        if str(job.get("uses", "")).endswith(".github/workflows/assess.yml")
    ]
    assert callers
    for name, job in callers:
        assert job["permissions"] == {"contents": "read", "security-events": "write"}, name


@pytest.mark.parametrize(
    ("workflow", "triggers", "inputs", "secrets"),
    [
        (
            "train.yml",
            {"schedule", "workflow_dispatch"},
            {"train", "val"},
            {"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"},
        ),
        (
            "deploy.yml",
            {"workflow_dispatch", "repository_dispatch"},
            {"model_uri", "variant", "weight"},
            {"DURATION_ROUTER_URL", "DURATION_ROUTER_TOKEN"},
        ),
    ],
)
def test_train_and_deploy_are_callable_and_keep_their_triggers(
    workflow: str, triggers: set[str], inputs: set[str], secrets: set[str]
) -> None:
    path = WORKFLOWS / workflow
    on = _on(_load(path))
    assert set(on) == {*triggers, "workflow_call"}
    call = on["workflow_call"]
    assert set(call["inputs"]) == inputs == set(on["workflow_dispatch"]["inputs"])
    assert all(spec["type"] == "string" for spec in call["inputs"].values())
    assert set(call["secrets"]) == secrets
    assert not any(spec.get("required", False) for spec in call["secrets"].values())
    # A secret the jobs read but workflow_call does not declare would be empty when called.
    used = set(re.findall(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)", path.read_text(encoding="utf-8")))
    assert used - {"GITHUB_TOKEN"} == secrets


def test_ci_assesses_the_ladder_itself_at_level_4_and_all_green_needs_it() -> None:
    jobs = _load(WORKFLOWS / "ci.yml")["jobs"]
    job = jobs["assess"]
    assert job["uses"] == "./.github/workflows/assess.yml"
    assert job["with"] == {"path": ".", "fail-below": 4}
    assert "assess" in jobs["all-green"]["needs"]
    check = jobs["all-green"]["steps"][0]
    assert check["env"]["ASSESS_RESULT"] == "${{ needs.assess.result }}"


# --- the action's shell ------------------------------------------------------------------------


def _action_context(path: str, fail_below: str = "0", sarif_file: str = "") -> dict[str, str]:
    return {
        "inputs.path": path,
        "inputs.fail-below": fail_below,
        "inputs.sarif-file": sarif_file,
        "steps.install.outputs.bin": str(BIN),
    }


def _run_action(tmp_path: Path, context: dict[str, str]) -> tuple[StepRun, StepRun | None]:
    """The action's steps after the install: assess, then (when it passed) enforce."""
    steps = ACTION_DOC["runs"]["steps"]
    runner = tmp_path / "runner"
    assess = _run_step(_step(steps, id="assess"), context, cwd=ROOT, runner=runner)
    if assess.status != 0:
        return assess, None
    context = {**context, "steps.assess.outputs.level": assess.outputs.get("level", "")}
    enforce = _run_step(steps[-1], context, cwd=ROOT, runner=runner)
    return assess, enforce


@needs_bash
@needs_cli
def test_action_on_the_repository_root(tmp_path: Path) -> None:
    sarif = tmp_path / "out" / "mlops.sarif"
    assess, enforce = _run_action(tmp_path, _action_context(".", "4", str(sarif)))
    assert assess.status == 0, assess.stdout + assess.stderr
    assert assess.outputs["level"] == "4"
    assert assess.outputs["sarif-file"] == str(sarif)
    output_text = (tmp_path / "runner" / "output-0").read_text(encoding="utf-8")
    assert "level=4\n" in output_text
    summary = (tmp_path / "runner" / "summary.md").read_text(encoding="utf-8")
    assert "## MLOps maturity of" in summary
    document = json.loads(sarif.read_text(encoding="utf-8"))
    assert document["version"] == "2.1.0"
    assert enforce is not None
    assert enforce.status == 0, enforce.stdout + enforce.stderr
    assert "fail-below 4 is met" in enforce.stdout


@needs_bash
@needs_cli
def test_action_on_level1_without_sarif(tmp_path: Path) -> None:
    assess, enforce = _run_action(tmp_path, _action_context("level1_devops"))
    assert assess.status == 0, assess.stdout + assess.stderr
    assert "level=1\n" in (tmp_path / "runner" / "output-0").read_text(encoding="utf-8")
    assert "sarif-file" not in assess.outputs
    summary = (tmp_path / "runner" / "summary.md").read_text(encoding="utf-8")
    assert "## MLOps maturity of `level1_devops`: level 1" in summary
    assert enforce is not None
    assert enforce.status == 0


@needs_bash
@needs_cli
def test_action_fail_below_fails_after_the_summary_and_sarif_are_written(tmp_path: Path) -> None:
    sarif = tmp_path / "mlops.sarif"
    assess, enforce = _run_action(tmp_path, _action_context("level3_deployment", "4", str(sarif)))
    assert assess.status == 0, assess.stdout + assess.stderr
    assert enforce is not None
    assert enforce.status == 1
    expected = "::error title=MLOps maturity::level3_deployment is at level 3, below fail-below 4"
    assert expected in enforce.stdout
    assert "## MLOps maturity of" in (tmp_path / "runner" / "summary.md").read_text("utf-8")
    assert json.loads(sarif.read_text(encoding="utf-8"))["version"] == "2.1.0"


@needs_bash
@needs_cli
@pytest.mark.parametrize(
    ("path", "fail_below"), [(".", "5"), (".", "two"), ("no/such/folder", "0")]
)
def test_action_bad_input_is_an_error_before_any_output(
    tmp_path: Path, path: str, fail_below: str
) -> None:
    assess, enforce = _run_action(tmp_path, _action_context(path, fail_below))
    assert assess.status == 2
    assert enforce is None
    assert "::error title=mlops-assess::" in assess.stdout
    assert assess.outputs == {}


# --- the reusable workflow's shell -------------------------------------------------------------


def _resolve(
    tmp_path: Path,
    *,
    cwd: Path,
    repository: str = "",
    ref: str = "",
    job: Mapping[str, Any] | None = None,
    caller_sha: str = "0" * 40,
) -> StepRun:
    context = {
        "inputs.ladder-repository": repository,
        "inputs.ladder-ref": ref,
        "toJSON(job)": json.dumps(job if job is not None else {"status": "success"}),
    }
    step = _step(ASSESS["jobs"]["assess"]["steps"], id="ladder")
    return _run_step(
        step, context, cwd=cwd, runner=tmp_path / "runner", extra_env={"GITHUB_SHA": caller_sha}
    )


def _caller(tmp_path: Path) -> Path:
    """A repository that is not the ladder (with an action.yml and a different assessment/)."""
    caller = tmp_path / "caller"
    (caller / "assessment").mkdir(parents=True)
    (caller / "action.yml").write_text("name: other\n", encoding="utf-8")
    (caller / "assessment" / "pyproject.toml").write_text(
        '[project]\nname = "other"\n', encoding="utf-8"
    )
    return caller


@needs_bash
def test_resolve_from_the_inputs(tmp_path: Path) -> None:
    done = _resolve(tmp_path, cwd=_caller(tmp_path), repository="octo/ladder", ref="v1")
    assert done.status == 0, done.stdout
    assert done.outputs == {"source": "remote", "repository": "octo/ladder", "ref": "v1"}
    assert "found from the inputs" in done.stdout


@needs_bash
def test_resolve_inputs_win_over_the_job_context(tmp_path: Path) -> None:
    job = {"workflow_repository": "octo/ladder", "workflow_sha": "a" * 40}
    done = _resolve(tmp_path, cwd=_caller(tmp_path), repository="fork/ladder", ref="main", job=job)
    assert done.outputs["repository"] == "fork/ladder"
    assert done.outputs["ref"] == "main"


@needs_bash
def test_resolve_from_the_job_context(tmp_path: Path) -> None:
    job = {"status": "success", "workflow_repository": "octo/ladder", "workflow_sha": "a" * 40}
    done = _resolve(tmp_path, cwd=_caller(tmp_path), job=job)
    assert done.status == 0, done.stdout
    assert done.outputs == {"source": "remote", "repository": "octo/ladder", "ref": "a" * 40}


@needs_bash
def test_resolve_the_ladder_calling_itself_uses_its_checkout(tmp_path: Path) -> None:
    job = {"workflow_repository": "example/caller", "workflow_sha": "0" * 40}
    done = _resolve(tmp_path, cwd=ROOT, job=job)
    assert done.status == 0, done.stdout
    assert done.outputs["source"] == "local"


@needs_bash
def test_resolve_local_checkout_without_job_context(tmp_path: Path) -> None:
    done = _resolve(tmp_path, cwd=ROOT, caller_sha="b" * 40)
    assert done.status == 0, done.stdout
    assert done.outputs == {"source": "local", "repository": "example/caller", "ref": "b" * 40}


@needs_bash
@pytest.mark.parametrize(
    ("repository", "ref", "message"),
    [
        ("", "", "pass the inputs ladder-repository (OWNER/REPO) and ladder-ref"),
        ("", "v1", "ladder-ref is given without ladder-repository"),
        ("octo/ladder; rm -rf /", "v1", "ladder-repository must be OWNER/REPO"),
        ("octo/ladder", "v1 --upload-pack=x", "ladder-ref must not contain spaces"),
    ],
)
def test_resolve_neither_is_a_clear_error(
    tmp_path: Path, repository: str, ref: str, message: str
) -> None:
    done = _resolve(tmp_path, cwd=_caller(tmp_path), repository=repository, ref=ref)
    assert done.status == 1
    assert "::error title=mlops-assess::" in done.stdout
    assert message in done.stdout
    assert done.outputs == {}


@needs_bash
def test_remote_ladder_is_moved_out_of_the_assessed_tree(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    (workspace / ".mlops-ladder" / "assessment").mkdir(parents=True)
    step = _step(ASSESS["jobs"]["assess"]["steps"], id="source")
    runner = tmp_path / "runner"
    done = _run_step(step, {"steps.ladder.outputs.source": "remote"}, cwd=workspace, runner=runner)
    assert done.status == 0, done.stdout + done.stderr
    moved = runner / "temp" / "mlops-ladder"
    assert done.outputs == {"dir": str(moved)}
    assert (moved / "assessment").is_dir()
    assert not (workspace / ".mlops-ladder").exists()
    local = _run_step(step, {"steps.ladder.outputs.source": "local"}, cwd=workspace, runner=runner)
    assert local.outputs == {"dir": str(workspace)}


def _workflow_context(path: str, fail_below: int, upload: bool) -> dict[str, str]:
    return {
        "inputs.path": path,
        "inputs.fail-below": str(fail_below),
        "inputs.upload-sarif": "true" if upload else "false",
        "steps.source.outputs.dir": str(ROOT),
        "steps.install.outputs.bin": str(BIN),
    }


@needs_bash
@needs_cli
def test_workflow_assess_and_enforce(tmp_path: Path) -> None:
    steps = ASSESS["jobs"]["assess"]["steps"]
    runner = tmp_path / "runner"
    context = _workflow_context("level3_deployment", 4, upload=True)
    assess = _run_step(_step(steps, id="assess"), context, cwd=ROOT, runner=runner)
    assert assess.status == 0, assess.stdout + assess.stderr
    assert assess.outputs["level"] == "3"
    assert assess.outputs["sarif-artifact"] == "mlops-assess-sarif-level3_deployment"
    sarif = Path(assess.outputs["sarif-file"])
    assert sarif == runner / "temp" / "mlops-assess-sarif" / "results.sarif"
    assert json.loads(sarif.read_text(encoding="utf-8"))["version"] == "2.1.0"
    assert "## MLOps maturity of" in (runner / "summary.md").read_text(encoding="utf-8")

    context["steps.assess.outputs.level"] = assess.outputs["level"]
    enforce = _run_step(_step(steps, name="Enforce fail-below"), context, cwd=ROOT, runner=runner)
    assert enforce.status == 1
    expected = "::error title=MLOps maturity::level3_deployment is at level 3, below fail-below 4"
    assert expected in enforce.stdout


@needs_bash
@needs_cli
def test_workflow_without_sarif_on_a_folder(tmp_path: Path) -> None:
    steps = ASSESS["jobs"]["assess"]["steps"]
    runner = tmp_path / "runner"
    context = _workflow_context("level1_devops", 1, upload=False)
    assess = _run_step(_step(steps, id="assess"), context, cwd=ROOT, runner=runner)
    assert assess.status == 0, assess.stdout + assess.stderr
    assert assess.outputs == {"level": "1", "level-name": "DevOps but no MLOps"}
    assert not (runner / "temp" / "mlops-assess-sarif").exists()
    context["steps.assess.outputs.level"] = "1"
    enforce = _run_step(_step(steps, name="Enforce fail-below"), context, cwd=ROOT, runner=runner)
    assert enforce.status == 0, enforce.stdout


@needs_bash
@needs_cli
def test_workflow_sarif_artifact_name_per_folder(tmp_path: Path) -> None:
    steps = ASSESS["jobs"]["assess"]["steps"]
    context = _workflow_context("level3_deployment/", 0, upload=True)
    assess = _run_step(_step(steps, id="assess"), context, cwd=ROOT, runner=tmp_path / "runner")
    assert assess.status == 0, assess.stdout + assess.stderr
    assert assess.outputs["sarif-artifact"] == "mlops-assess-sarif-level3_deployment"
