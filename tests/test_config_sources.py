"""params.yaml, its schema and the config dataclasses describe one config (issue "Room for four papers", item 5).

params.yaml is the reference: the schema's keys are the dataclasses' fields, the dataclass defaults are
params.yaml's values, every key is required, and a stage may leave out only the keys STAGE_UNREAD lists.
"""
import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml

from itr.cli import main
from itr.config import (SCHEMA_PATH, SECTIONS, SEEDED, STAGE_UNREAD, ConfigError, EvalConfig, RerankConfig,
                        parse_section, unread_keys)

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
SCHEMA = json.loads(SCHEMA_PATH.read_text())
RULES = {p.name: p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk")}


def test_the_seeded_sections_are_those_whose_code_draws_random_numbers():
    assert SEEDED == {"shapes", "detector", "be", "ce", "joint", "dual", "disentangled", "softlabel", "benchmark"}


def _full(name: str) -> dict:
    """Section ``name`` as the workflow passes it when a stage reads every key."""
    return {**PARAMS[name], **({"seed": PARAMS["seed"]} if name in SEEDED else {})}


def test_every_section_without_a_dataclass_is_read_by_the_workflow_or_the_benchmark_only():
    assert set(SCHEMA["properties"]) - set(SECTIONS) == {"seed", "seeds", "dataset", "datasets", "benchmark", "shift",
                                                         "multilingual", "auxiliary", "ablations", "gallery"}


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_dataclass_fields_are_the_schema_keys_plus_the_injected_seed(name):
    fields = {f.name for f in dataclasses.fields(SECTIONS[name])}
    seed = {"seed"} if name in SEEDED else set()
    assert fields == set(SCHEMA["properties"][name]["properties"]) | seed


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_dataclass_defaults_are_the_values_of_params_yaml(name):
    assert SECTIONS[name]().to_dict() == _full(name)


def _objects(node, where="params"):
    """Every object schema with named properties, with its path."""
    if isinstance(node, dict):
        if "properties" in node:
            yield where, node
        for key, child in node.items():
            yield from _objects(child, where if key == "properties" else f"{where}.{key}")
    elif isinstance(node, list):
        for child in node:
            yield from _objects(child, where)


def test_schema_requires_every_key_it_allows():
    objects = dict(_objects(SCHEMA))
    assert len(objects) > len(SECTIONS)
    for where, node in objects.items():
        assert sorted(node.get("required", [])) == sorted(node["properties"]), where


def test_stage_unread_names_fields_and_rules_that_use_it():
    smk = "\n".join(RULES.values())
    assert "drop=" not in smk  # every rule's unread keys come from STAGE_UNREAD
    passes = {  # how a rule hands a section to its stage, leaving out what STAGE_UNREAD lists
        "rerank": 'rerank_section(wc, "{stage}"',  # a rerank row's settings (the plan's, or params.yaml's)
        "dual": 'section(TRAIN_METHODS[wc.model].SECTION, stage="{stage}"',  # a training method's section
    }
    for stage, sections in STAGE_UNREAD.items():
        body = re.search(rf'^(?:rule {stage}:|\s+f"{stage}_\w*\{{.*?\}}"\n)(.*?)(?=^\S|\Z)', smk, re.M | re.S)
        assert body, f"no rule {stage}"
        for name, keys in sections.items():
            assert set(keys) <= {f.name for f in dataclasses.fields(SECTIONS[name])}, (stage, name)
            used = (f'section("{name}", stage="{stage}"', passes.get(name, "-").format(stage=stage))
            assert any(u in body.group(1) for u in used), (stage, name)
    for stage in re.findall(r'stage="(\w+)"', smk) + re.findall(r'rerank_section\(wc, "(\w+)"', smk):
        assert stage in STAGE_UNREAD


def test_a_missing_key_is_an_error_naming_it_and_the_section():
    partial = {k: v for k, v in _full("rerank").items() if k not in ("k", "lambdas")}
    with pytest.raises(ConfigError, match=r"RerankConfig: params section 'rerank' lacks keys \['k', 'lambdas'\]"):
        parse_section(RerankConfig, json.dumps(partial))
    with pytest.raises(ConfigError, match=r"lacks keys \['k'\]"):  # rerank_score reads k, not lambdas
        parse_section(RerankConfig, partial, stage="rerank_score")


def test_a_stage_may_leave_out_the_keys_it_does_not_read_and_gets_params_yaml_values():
    for stage, sections in STAGE_UNREAD.items():
        for name, cls in (("rerank", RerankConfig), ("evaluation", EvalConfig), ("dual", SECTIONS["dual"])):
            given = {k: v for k, v in _full(name).items() if k not in unread_keys(stage, name)}
            assert parse_section(cls, given, stage=stage).to_dict() == _full(name), (stage, name)


def test_cli_rerank_evaluate_reads_ks_and_lambdas_only_for_the_table_8_and_9_cells(tmp_path, capsys):
    k_only = json.dumps({"k": 20})
    eval_cfg = json.dumps({k: v for k, v in PARAMS["evaluation"].items() if k != "protocols"})
    args = ["rerank", "evaluate", "--scores", str(tmp_path / "none.npz"), "--config", k_only, "--eval-config",
            eval_cfg, "--method", "sep_coop", "--out", str(tmp_path / "m.json"),
            "--dataset", "shapes", "--trained-on", "shapes", "--variant", "v"]
    assert main(args) == 2
    assert "No such file" in capsys.readouterr().err  # the config passed; the scores file is missing
    assert main(args + ["--variants-dir", str(tmp_path)]) == 2
    assert "params section 'rerank' lacks keys ['ks', 'lambdas']" in capsys.readouterr().err


def test_cli_train_reads_the_section_less_what_training_does_not_read(tmp_path, capsys):
    """The train rule leaves out STAGE_UNREAD["train"] (a dual transformer's inference keys); the CLI accepts that."""
    section = {k: v for k, v in _full("dual").items() if k not in unread_keys("train", "dual")}
    text = json.dumps(PARAMS["text_encoder"])
    args = ["train", "cmc", "--data", str(tmp_path / "none"), "--features", str(tmp_path / "none"), "--config",
            json.dumps(section), "--text-encoder", text, "--out", str(tmp_path / "m.pt"), "--history",
            str(tmp_path / "h.csv"), "--state-dir", str(tmp_path / "s")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "lacks keys" not in err and "none" in err, err  # the config passed; the feature store is missing
    del section["slack"]
    assert main(args[:7] + [json.dumps(section)] + args[8:]) == 2
    assert "params section 'dual' lacks keys ['slack']" in capsys.readouterr().err

