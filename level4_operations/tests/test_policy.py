"""The policy file: the bundled default is the reference, every bad value is refused with its
file and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from duration_operations.policy import Policy, PolicyError, default_policy_text, load_policy

BIN = Path(sys.executable).parent


def test_bundled_policy_is_the_models_defaults():
    assert load_policy() == Policy()
    policy = load_policy()
    assert [s.name for s in policy.rollout.stages] == ["shadow", "canary-10", "canary-50"]
    assert policy.triggers.drift.psi["PULocationID"] == 0.3
    assert policy.rollout.require_approval is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("interval_seconds = [", "not TOML"),
        ("colour = 'blue'", "colour: Extra inputs are not permitted"),
        (
            "[triggers.drift]\nwindow = 10",
            "triggers.drift.window: Input should be greater than or equal to 500",
        ),
        ("[triggers.drift.psi]\nfare = 0.2", "unknown feature(s) ['fare']"),
        ("[retraining]\nholdout_share = 1.5", "retraining.holdout_share"),
        (
            "[[rollout.stages]]\nname = 'a'\nweight = 0.5\n"
            "[[rollout.stages]]\nname = 'b'\nweight = 0.2",
            "live stages' weights must rise",
        ),
        (
            "[[rollout.stages]]\nname = 'a'\nweight = 0.5\n"
            "[[rollout.stages]]\nname = 'b'\nshadow = true",
            "shadow stages come before the live ones",
        ),
        (
            "[[rollout.stages]]\nname = 'a'\nshadow = true\nweight = 0.5",
            "a shadow stage has weight 0",
        ),
        ("[[rollout.stages]]\nname = 'a'\nweight = 1.0", "needs a weight between 0 and 1"),
        ("[limits]\nmax_retrains_per_day = 0", "limits.max_retrains_per_day"),
        ("[triggers.drift]\nwindow = 20000\nwindows = 11", "at most 200,000 predictions"),
        ("[retraining]\nrides = 150000", "retraining.rides: Input should be less than or equal"),
        ("[retraining]\ncandidates = ['nope']", "one or more of linear"),
        ("[retraining]\ncandidates = []", "one or more of linear"),
        ("[retraining]\nmonths = ['garbage']", "retraining.months"),
        ("[retraining]\nmin_rides = 30000", "min_rides 30,000 is above rides 20,000"),
        (
            "[[rollout.stages]]\nname = 'a'\nshadow = true\n"
            "[[rollout.stages]]\nname = 'b'\nshadow = true",
            "at most one shadow stage",
        ),
        ("frozen = 'yes'", "frozen: Input should be a valid boolean"),
        ("[limits]\nmax_retrains_per_day = '4'", "Input should be a valid integer"),
    ],
)
def test_bad_policies_name_the_file_and_field(tmp_path, text, message):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_missing_file_and_the_command_line(tmp_path):
    with pytest.raises(PolicyError, match="cannot read the policy"):
        load_policy(tmp_path / "nope.toml")
    printed = subprocess.run([BIN / "duration-operate", "policy"], capture_output=True, text=True)
    assert printed.returncode == 0
    assert printed.stdout == default_policy_text()
    bad = tmp_path / "bad.toml"
    bad.write_text("[gates]\nmin_improvement = 2")
    checked = subprocess.run(
        [BIN / "duration-operate", "policy", "--check", str(bad)], capture_output=True, text=True
    )
    assert checked.returncode == 1
    assert checked.stderr.startswith(f"duration-operate: {bad}: gates.min_improvement")
    assert "Traceback" not in checked.stderr
