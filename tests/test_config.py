import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from itr.cli import main
from itr.config import BEConfig, ConfigError, parse_section
from itr.params import load_params, validate_params

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_shipped_params_and_test_params_are_valid():
    load_params(ROOT / "params.yaml")
    load_params(ROOT / ".test" / "params.yaml")


def test_unknown_nested_key_is_named_with_a_suggestion():
    bad = yaml.safe_load(yaml.safe_dump(PARAMS))
    bad["be"]["marign"] = 0.2
    with pytest.raises(ConfigError, match=r"unknown key 'be.marign'. Did you mean 'margin'\?"):
        validate_params(bad)


def test_unknown_top_level_key_and_wrong_type():
    bad = dict(PARAMS, sed=1)
    bad["detector"] = dict(PARAMS["detector"], epochs="many")
    with pytest.raises(ConfigError) as err:
        validate_params(bad)
    assert "unknown key 'sed'" in str(err.value) and "'detector.epochs'" in str(err.value)


def test_a_list_of_numbers_from_snakemakes_config_gets_the_configfile_fix():
    """`snakemake rfrs_seeds --config 'seeds=[0,1,2,3,4]'` hands the list's items over as strings."""
    with pytest.raises(ConfigError) as err:
        validate_params(dict(PARAMS, seeds=["0", "1", "2"]))
    assert "'seeds.0': '0' is not of type 'integer'" in str(err.value) and "--configfile" in str(err.value)
    with pytest.raises(ConfigError) as err:  # a word where a number belongs is a plain mistake: no hint
        validate_params(dict(PARAMS, seeds=["zero"]))
    assert "--configfile" not in str(err.value)


def test_sections_reject_unknown_keys_too():
    with pytest.raises(ConfigError, match="unknown keys \\['lr_rate'\\]"):
        parse_section(BEConfig, '{"lr_rate": 1}')
    full = {**PARAMS["be"], "seed": 0, "margin": 0.3}
    assert parse_section(BEConfig, json.dumps(full)).margin == 0.3


def test_cli_check_exits_2_naming_the_key(tmp_path, capsys):
    bad = yaml.safe_load(yaml.safe_dump(PARAMS))
    bad["evaluation"]["kss"] = [1]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert main(["params", "check", str(path)]) == 2
    assert "unknown key 'evaluation.kss'" in capsys.readouterr().err


def test_snakemake_fails_fast_on_a_misspelled_key(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(PARAMS))
    bad["shapes"]["n_trian"] = 5
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--configfile", str(path),
                           "--replace-workflow-config", "all"], cwd=ROOT, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "unknown key 'shapes.n_trian'" in log
    # "fast": while the rules are parsed, before Snakemake builds the DAG (let alone runs a job)
    assert "Building DAG of jobs" not in log


@pytest.mark.integration  # snakemake --lint parses the whole workflow (~6 s)
def test_workflow_is_lint_clean():
    proc = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--lint"], cwd=ROOT,
                          capture_output=True, text=True)
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr, proc.stdout
