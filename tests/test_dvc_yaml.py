"""dvc.yaml is generated from the registry (itr dvc-yaml) and is current; its stages are consistent."""
from pathlib import Path

import pytest
import yaml

from itr import layout, papers
from itr.cli import main
from itr.papers.dvcfile import dvc_stages

ROOT = Path(__file__).resolve().parents[1]


def test_committed_dvc_yaml_is_what_the_registry_generates(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    assert main(["dvc-yaml", "--check"]) == 0
    stale = tmp_path / "dvc.yaml"
    stale.write_text((ROOT / "dvc.yaml").read_text().replace("rerank", "rerankk"))
    assert main(["dvc-yaml", "--check", "--out", str(stale)]) == 1


def _paths(entries):
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries]


@pytest.mark.parametrize("dataset", ["shapes", "coco"])
def test_every_stage_reads_real_keys_and_writes_disjoint_outputs(dataset):
    params = yaml.safe_load((ROOT / "params.yaml").read_text()) | {"dataset": dataset}
    stages = dvc_stages(params)
    stages_plans = {name: papers.plan(name, params) for name in papers.PAPERS}
    # eccv: every paper's models under the extended ground truth: the generated one, or ECCV Caption's on COCO
    assert list(stages) == ["data", "features", *papers.PAPERS, "eccv"]
    written = []
    for name, stage in stages.items():
        for key in stage["params"]:
            node = params
            for part in key.split("."):
                assert part in node, f"stage {name} lists params key {key!r}, which params.yaml lacks"
                node = node[part]
        written += _paths(stage["outs"]) + _paths(stage.get("metrics", [])) + _paths(stage.get("plots", []))
    assert len(written) == len(set(written)), sorted(w for w in written if written.count(w) > 1)  # one writer each
    for a in written:  # DVC refuses overlapping outputs
        assert not any(b != a and b.startswith(a + "/") for b in written), a
    # TGDT's tables show RFRS's BE and SEP+COOP cells and its benchmark times RFRS's models: RFRS's stage writes them
    borrowed = [d for d in stages["tgdt"]["deps"] if d.startswith(("results/metrics/", "models/"))]
    assert len(borrowed) == 6 and all("/rfrs/" in d for d in borrowed), borrowed
    if dataset == "shapes":  # CUSA's Tables 12-13: its stage runs and writes the soft-label cost benchmark
        assert "benchmarks/softlabel_cost.py" in stages["cusa"]["deps"]
        assert layout.SOFTLABEL_COST.format(variant="cusa") in _paths(stages["cusa"]["outs"])
    if dataset == "shapes":  # eccv reads the metrics folders the paper stages write, whatever cells a config plans
        folders = [d for d in stages["eccv"]["deps"] if d.startswith("results/metrics/")]
        assert {f.split("/")[2] for f in folders} >= {"rfrs", "tgdt", "aladin", "cusa"}
        outs = {name: _paths(stages[name]["outs"]) for name in papers.PAPERS}
        for f in folders:
            assert sum(f in o_list for o_list in outs.values()) == 1, f
        tiny = yaml.safe_load((ROOT / ".test" / "params.yaml").read_text())
        assert dvc_stages(tiny)["eccv"]["deps"] == stages["eccv"]["deps"]  # dvc.yaml serves the CI config too
    for name in papers.PAPERS:
        mine = set(_paths(stages[name]["outs"]) + _paths(stages[name]["metrics"]))
        for target in papers.load(name).targets:
            if target.name not in stages_plans[name].unavailable:
                assert set(layout.table_files(name, target.name, params, target.png)) <= mine, target.name
