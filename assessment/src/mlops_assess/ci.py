"""CI/CD jobs of every system the assessor knows, in one shape: :class:`CIJob`.

Read: GitHub Actions (``.github/workflows/*.yml``; jobs that call a local reusable workflow
take its steps), GitLab CI (``.gitlab-ci.yml``), Azure Pipelines (``azure-pipelines.yml``,
``.azure-pipelines/*.yml``), Jenkins (``Jenkinsfile``, read by pattern: it is Groovy), AWS
CodeBuild (``buildspec*.yml``) and AWS CodePipeline (a pipeline declared in CloudFormation,
CDK or Terraform). Triggers are normalised to :data:`TRIGGERS`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_assess.tree import RepoFiles
from mlops_assess.yaml_lines import LINE, YamlSyntaxError, load_yaml

#: Normalised trigger names (GitHub's ``workflow_dispatch`` is ``manual``; its
#: ``repository_dispatch`` and other systems' API triggers are ``dispatch``).
TRIGGERS = frozenset(
    {"push", "pull_request", "schedule", "manual", "dispatch", "tag", "release", "workflow_call"}
)


@dataclass(frozen=True)
class Step:
    """What one step runs: shell text, or ``uses: ACTION key=value ...``; ``line`` is 1-based."""

    text: str
    line: int
    working_dir: str | None = None


@dataclass
class CIJob:
    """One job of one CI system."""

    system: str
    file: str
    name: str
    line: int
    triggers: set[str] = field(default_factory=set)
    steps: list[Step] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    environment: str | None = None
    matrix: dict[str, list[str]] = field(default_factory=dict)


def _is_workflow(path: str) -> bool:
    return path.startswith(".github/workflows/") and path.endswith((".yml", ".yaml"))


def ci_files(repo: RepoFiles) -> dict[str, str]:
    """CI files anywhere in the repository, mapped to their system's name."""
    found: dict[str, str] = {}
    for path in repo.files:
        name = path.rsplit("/", 1)[-1]
        if _is_workflow(path) or (
            "/.github/workflows/" in f"/{path}" and name.endswith((".yml", ".yaml"))
        ):
            found[path] = "GitHub Actions"
        elif name in {".gitlab-ci.yml", ".gitlab-ci.yaml"} or (
            path.startswith(".gitlab/ci/") and name.endswith((".yml", ".yaml"))
        ):
            found[path] = "GitLab CI"
        elif fnmatch.fnmatch(name, "azure-pipelines*.y*ml") or path.startswith(".azure-pipelines/"):
            found[path] = "Azure Pipelines"
        elif name == "Jenkinsfile" or name.endswith(".jenkinsfile"):
            found[path] = "Jenkins"
        elif fnmatch.fnmatch(name, "buildspec*.y*ml"):
            found[path] = "AWS CodeBuild"
    return found


def read_jobs(repo: RepoFiles) -> list[CIJob]:
    """Every CI job of the repository; unreadable or broken CI files become notes."""
    jobs: list[CIJob] = []
    workflows: dict[str, Any] = {}
    for path, system in ci_files(repo).items():
        text = repo.read_text(path)
        if text is None:
            continue
        if system == "Jenkins":
            jobs.extend(_jenkins(path, text))
            continue
        try:
            document = load_yaml(text)
        except YamlSyntaxError as exc:
            repo.note(path, str(exc))
            continue
        if not isinstance(document, dict):
            repo.note(path, f"not a {system} file: the document is not a mapping")
            continue
        if system == "GitHub Actions":
            workflows[path] = document
        else:
            jobs.extend(_guarded(repo, system, _PARSERS[system], path, document))
    for path, document in workflows.items():
        jobs.extend(_guarded(repo, "GitHub Actions", _github, path, document, workflows))
    return jobs


def _guarded(
    repo: RepoFiles, system: str, parse: Callable[..., list[CIJob]], path: str, *args: Any
) -> list[CIJob]:
    """``parse(path, *args)``, or a note when a field holds a type its schema does not allow
    (``with: foo``, ``jobs: [a, b]``): the file is valid YAML but not a valid ``system`` file."""
    try:
        return parse(path, *args)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        repo.note(path, f"not a valid {system} file: a field has an unexpected type ({exc})")
        return []


# -- GitHub Actions ------------------------------------------------------------------------
def _github_triggers(on: Any) -> tuple[set[str], list[str]]:
    names: dict[str, str] = {
        "push": "push",
        "pull_request": "pull_request",
        "pull_request_target": "pull_request",
        "merge_group": "pull_request",
        "schedule": "schedule",
        "workflow_dispatch": "manual",
        "repository_dispatch": "dispatch",
        "workflow_run": "dispatch",
        "release": "release",
        "workflow_call": "workflow_call",
    }
    triggers: set[str] = set()
    paths: list[str] = []
    events: dict[str, Any]
    if isinstance(on, str):
        events = {on: None}
    elif isinstance(on, list):
        events = {str(e): None for e in on}
    elif isinstance(on, dict):
        events = {str(k): v for k, v in on.items() if k != LINE}
    else:
        events = {}
    for event, config in events.items():
        if event in names:
            triggers.add(names[event])
        if isinstance(config, dict):
            if event == "push" and config.get("tags"):
                triggers.add("tag")
                if not config.get("branches"):
                    triggers.discard("push")
            filters = config.get("paths")
            if isinstance(filters, list):
                paths.extend(str(p) for p in filters)
    return triggers, paths


def _github(path: str, document: dict[str, Any], workflows: dict[str, Any]) -> list[CIJob]:
    triggers, paths = _github_triggers(document.get("on"))
    jobs: list[CIJob] = []
    for job_id, job in (document.get("jobs") or {}).items():
        if job_id == LINE or not isinstance(job, dict):
            continue
        ci_job = CIJob(
            system="GitHub Actions",
            file=path,
            name=str(job_id),
            line=int(job.get(LINE, 1)),
            triggers=set(triggers),
            paths=list(paths),
            environment=_environment(job.get("environment")),
            matrix=_matrix(job.get("strategy")),
        )
        default_dir = ((job.get("defaults") or {}).get("run") or {}).get("working-directory")
        called = job.get("uses")
        if isinstance(called, str):
            ci_job.steps.append(Step(f"uses: {called}", ci_job.line))
            local = called.removeprefix("./")
            if local in workflows and local != path:
                for inner in _github(local, workflows[local], {}):
                    ci_job.steps.extend(inner.steps)
                    ci_job.environment = ci_job.environment or inner.environment
        for step in job.get("steps") or []:
            if not isinstance(step, dict):
                continue
            line = int(step.get(LINE, ci_job.line))
            workdir = step.get("working-directory", default_dir)
            workdir = str(workdir).removeprefix("./") if workdir else None
            if isinstance(step.get("run"), str):
                ci_job.steps.append(Step(step["run"], line, workdir))
            if isinstance(step.get("uses"), str):
                with_ = step.get("with") or {}
                args = " ".join(f"{k}={v}" for k, v in with_.items() if k != LINE)
                ci_job.steps.append(Step(f"uses: {step['uses']} {args}".strip(), line))
        jobs.append(ci_job)
    return jobs


def _environment(value: Any) -> str | None:
    if isinstance(value, dict):
        name = value.get("name")
        return str(name) if name else None
    return str(value) if value else None


def _matrix(strategy: Any) -> dict[str, list[str]]:
    if not isinstance(strategy, dict) or not isinstance(strategy.get("matrix"), dict):
        return {}
    return {
        str(k): [str(v) for v in values]
        for k, values in strategy["matrix"].items()
        if k != LINE and isinstance(values, list)
    }


# -- GitLab CI -----------------------------------------------------------------------------
_GITLAB_RESERVED = frozenset(
    {
        "stages",
        "variables",
        "include",
        "default",
        "workflow",
        "image",
        "services",
        "before_script",
        "after_script",
        "cache",
        "pages:deploy",
    }
)


def _gitlab(path: str, document: dict[str, Any]) -> list[CIJob]:
    jobs: list[CIJob] = []
    for name, job in document.items():
        if name == LINE or name in _GITLAB_RESERVED or str(name).startswith("."):
            continue
        if not isinstance(job, dict) or not any(k in job for k in ("script", "trigger", "run")):
            continue
        conditions = repr({k: job.get(k) for k in ("rules", "only", "except", "when")})
        triggers = {"push"}
        if "merge_request" in conditions:
            triggers.add("pull_request")
        if "schedule" in conditions:
            triggers.add("schedule")
        if "tags" in conditions or "CI_COMMIT_TAG" in conditions:
            triggers.add("tag")
        if "'web'" in conditions or '"web"' in conditions or job.get("when") == "manual":
            triggers.add("manual")
        if re.search(r"\b(api|trigger|pipeline)\b", conditions):
            triggers.add("dispatch")
        line = int(job.get(LINE, 1))
        ci_job = CIJob("GitLab CI", path, str(name), line, triggers)
        ci_job.environment = _environment(job.get("environment"))
        for key in ("before_script", "script", "after_script"):
            ci_job.steps.extend(Step(text, line) for text in _lines(job.get(key)))
        changes = re.findall(r"'changes': \[([^\]]*)\]", conditions)
        for group in changes:
            ci_job.paths.extend(p.strip(" '\"") for p in group.split(",") if p.strip())
        jobs.append(ci_job)
    return jobs


def _lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int, float))]
    return []


# -- Azure Pipelines -----------------------------------------------------------------------
def _azure(path: str, document: dict[str, Any]) -> list[CIJob]:
    triggers: set[str] = set()
    paths: list[str] = []
    trigger = document.get("trigger", "default")
    if trigger not in ("none", None, False):
        triggers.add("push")
        if isinstance(trigger, dict):
            include = (trigger.get("paths") or {}).get("include")
            if isinstance(include, list):
                paths.extend(str(p) for p in include)
            if trigger.get("tags"):
                triggers.add("tag")
    if document.get("pr") not in ("none", None, False):
        triggers.add("pull_request")
    if document.get("schedules"):
        triggers.add("schedule")
    jobs: list[CIJob] = []
    containers: list[dict[str, Any]] = []
    for stage in document.get("stages") or []:
        if isinstance(stage, dict):
            containers.extend(j for j in stage.get("jobs") or [] if isinstance(j, dict))
    containers.extend(j for j in document.get("jobs") or [] if isinstance(j, dict))
    if document.get("steps"):
        containers.append({"job": "steps", "steps": document["steps"], LINE: 1})
    for job in containers:
        name = str(job.get("job") or job.get("deployment") or "job")
        ci_job = CIJob("Azure Pipelines", path, name, int(job.get(LINE, 1)), set(triggers))
        ci_job.paths = list(paths)
        ci_job.environment = _environment(job.get("environment"))
        steps = job.get("steps") or []
        strategy = job.get("strategy")
        if isinstance(strategy, dict):  # deployment jobs: strategy.runOnce.deploy.steps
            for phase in strategy.values():
                if isinstance(phase, dict):
                    deploy = phase.get("deploy") or {}
                    steps = [*steps, *(deploy.get("steps") or [])]
        for step in steps:
            if not isinstance(step, dict):
                continue
            line = int(step.get(LINE, ci_job.line))
            workdir = step.get("workingDirectory")
            for key in ("script", "bash", "pwsh", "powershell"):
                if isinstance(step.get(key), str):
                    ci_job.steps.append(Step(step[key], line, str(workdir) if workdir else None))
            if isinstance(step.get("task"), str):
                inputs = step.get("inputs") or {}
                args = " ".join(f"{k}={v}" for k, v in inputs.items() if k != LINE)
                ci_job.steps.append(Step(f"uses: {step['task']} {args}".strip(), line))
        jobs.append(ci_job)
    return jobs


# -- AWS CodeBuild -------------------------------------------------------------------------
def _codebuild(path: str, document: dict[str, Any]) -> list[CIJob]:
    job = CIJob("AWS CodeBuild", path, "build", int(document.get(LINE, 1)), {"push"})
    for phase in (document.get("phases") or {}).values():
        if isinstance(phase, dict):
            line = int(phase.get(LINE, 1))
            job.steps.extend(Step(text, line) for text in _lines(phase.get("commands")))
    return [job]


# -- Jenkins (Groovy, read by pattern) -----------------------------------------------------
_JENKINS_SH = re.compile(
    r"""\b(?:sh|bat|powershell)\s*\(?\s*(?:script\s*:\s*)?('''|\"\"\"|'|")(.*?)\1""", re.S
)


def _jenkins(path: str, text: str) -> list[CIJob]:
    triggers = {"push"}
    if re.search(r"\b(cron|pollSCM|parameterizedCron)\s*\(", text):
        triggers.add("schedule")
    if "changeRequest" in text:
        triggers.add("pull_request")
    if "buildingTag" in text or re.search(r"\btag\s+['\"]", text):
        triggers.add("tag")
    if re.search(r"\binput\s*[({]|\bparameters\s*\{", text):
        triggers.add("manual")
    job = CIJob("Jenkins", path, "pipeline", 1, triggers)
    for match in _JENKINS_SH.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        job.steps.append(Step(match.group(2), line))
    for match in re.finditer(r"\bstage\s*\(\s*['\"]([^'\"]+)", text):
        line = text.count("\n", 0, match.start()) + 1
        job.steps.append(Step(f"stage: {match.group(1)}", line))
    env = re.search(r"\benvironment\s*\{[^}]*\bENV(?:IRONMENT)?\s*=\s*['\"]([^'\"]+)", text)
    job.environment = env.group(1) if env else None
    return [job]


_PARSERS: dict[str, Callable[[str, dict[str, Any]], list[CIJob]]] = {
    "GitLab CI": _gitlab,
    "Azure Pipelines": _azure,
    "AWS CodeBuild": _codebuild,
}
