"""Every rule a profile names exists (issue 13, finding 4: the SLURM profile named `train_be`, which does not,
so `train` fell back to the CPU partition and a 60-minute limit)."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted([*ROOT.glob("profiles/*/config.yaml"), *ROOT.glob("workflow/profiles/*/config.yaml")])
PER_RULE = ("set-resources", "set-threads")


@pytest.fixture(scope="module")
def rules() -> set[str]:
    out = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--list-rules"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return {line.strip() for line in out.splitlines() if line.strip() and " " not in line.strip()}


def test_the_rule_list_is_real(rules):
    assert {"train", "train_detector", "extract_features", "build_index", "rerank_score"} <= rules


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_profiles_name_only_existing_rules(profile, rules):
    config = yaml.safe_load(profile.read_text()) or {}
    named = {rule for key in PER_RULE for rule in (config.get(key) or {})}
    assert named <= rules, f"{profile} names rules that do not exist: {sorted(named - rules)}"


def test_the_slurm_profile_sends_training_to_the_gpu_partition():
    config = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    for rule in ("train", "train_detector", "extract_features"):
        assert config["set-resources"][rule]["slurm_partition"] == "gpu", rule
        # finding 4: training fell back to the default resources, whose runtime (minutes) is far too short
        assert config["set-resources"][rule]["runtime"] > config["default-resources"]["runtime"], rule
