#!/usr/bin/env bash
# The shell behind the composite action (action.yml) and the reusable workflow
# (.github/workflows/assess.yml): one copy of the logic, run by both and by
# assessment/tests/test_workflows.py. Every input arrives in the environment, never pasted into
# a script.
#
#   assess.sh install   make a venv in $RUNNER_TEMP with mlops-assess from this script's own
#                       folder (assessment/, at the ref the action or workflow was called at)
#                       ASSESS_PYTHON    the Python to make the venv with (default python3)
#                       writes: bin=DIR  (the venv's scripts: mlops-assess, python)
#   assess.sh run       assess ASSESS_PATH: the markdown report appended to the job summary,
#                       the level to the step outputs, SARIF to ASSESS_SARIF_FILE when it is set
#                       ASSESS_BIN        the folder with mlops-assess and python (default: PATH)
#                       ASSESS_PATH       the repository or folder to assess (default .)
#                       ASSESS_FAIL_BELOW checked here (0-4) so a bad value fails before the work
#                       ASSESS_SARIF_FILE where to write SARIF 2.1.0 (default: not written)
#                       writes: level=N, level-name=..., sarif-file=FILE (when written)
#   assess.sh enforce   exit 1 with an ::error:: when ASSESS_LEVEL is below ASSESS_FAIL_BELOW
#                       (a separate step, so the summary, the outputs and the SARIF are already
#                       saved when it fails)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
    echo "::error title=mlops-assess::$*"
    exit 2
}

need_file() {  # a GitHub file command (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY) must be set
    [ -n "${!1:-}" ] || die "$1 is not set: this script runs as a GitHub Actions step"
}

threshold=
read_fail_below() {  # sets $threshold (not echoed: die must reach the log, not a $(...))
    threshold=${ASSESS_FAIL_BELOW:-0}
    [[ $threshold =~ ^[0-4]$ ]] || die "fail-below must be a level from 0 to 4, not '$threshold'"
}

cmd_install() {
    need_file GITHUB_OUTPUT
    local python=${ASSESS_PYTHON:-python3}
    local venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/mlops-assess-venv"
    "$python" -m venv --clear "$venv"
    local bin="$venv/bin"
    [ -d "$venv/Scripts" ] && bin="$venv/Scripts"  # Windows runners
    "$bin/python" -m pip install --disable-pip-version-check --quiet "$here/.."
    "$bin/mlops-assess" --version
    echo "bin=$bin" >> "$GITHUB_OUTPUT"
}

cmd_run() {
    need_file GITHUB_OUTPUT
    need_file GITHUB_STEP_SUMMARY
    read_fail_below
    local path=${ASSESS_PATH:-.}
    local sarif_file=${ASSESS_SARIF_FILE:-}
    # One line each: both are echoed into workflow commands and step outputs.
    [[ $path != *[$'\n\r']* ]] || die "path must be one line"
    [[ $sarif_file != *[$'\n\r']* ]] || die "sarif-file must be one line"
    local assess=mlops-assess python=python3
    if [ -n "${ASSESS_BIN:-}" ]; then
        assess="$ASSESS_BIN/mlops-assess"
        python="$ASSESS_BIN/python"
    fi

    local json status=0
    json=$("$assess" "$path" --format json) || status=$?
    [ "$status" -eq 0 ] || die "mlops-assess could not assess '$path' (exit status $status)"
    local level level_name
    level=$(printf '%s' "$json" | "$python" -c 'import json, sys; print(json.load(sys.stdin)["level"])')
    [[ $level =~ ^[0-4]$ ]] || die "mlops-assess gave no level for '$path'"
    level_name=$(printf '%s' "$json" | "$python" -c 'import json, sys; print(json.load(sys.stdin)["level_name"])')

    "$assess" "$path" --format markdown >> "$GITHUB_STEP_SUMMARY"
    {
        echo "level=$level"
        echo "level-name=$level_name"
    } >> "$GITHUB_OUTPUT"
    if [ -n "$sarif_file" ]; then
        mkdir -p "$(dirname "$sarif_file")"
        "$assess" "$path" --format sarif > "$sarif_file"
        echo "sarif-file=$sarif_file" >> "$GITHUB_OUTPUT"
        echo "SARIF written to $sarif_file"
    fi
    echo "::notice title=MLOps maturity::$path is at level $level ($level_name)"
}

cmd_enforce() {
    local level=${ASSESS_LEVEL:-}
    read_fail_below
    [[ $level =~ ^[0-4]$ ]] || die "no level to check (the assess step did not set one)"
    if [ "$level" -lt "$threshold" ]; then
        echo "::error title=MLOps maturity::${ASSESS_PATH:-.} is at level $level, below fail-below $threshold"
        exit 1
    fi
    echo "${ASSESS_PATH:-.} is at level $level: fail-below $threshold is met"
}

case "${1:-}" in
    install) cmd_install ;;
    run) cmd_run ;;
    enforce) cmd_enforce ;;
    *)
        echo "usage: $0 install|run|enforce (inputs in the environment; see the header)" >&2
        exit 2
        ;;
esac
