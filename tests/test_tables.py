import json
from pathlib import Path

import pandas as pd
import pytest

from itr.papers.rfrs.tables import COLUMNS, build_table1

ROOT = Path(__file__).resolve().parents[1]


def _metrics(path, protocol="full", rsum_scale=1.0):
    m = {f"{d}/R@{k}": v * rsum_scale for d in ("t2i", "i2t") for k, v in ((1, 40.0), (5, 70.0), (10, 80.0))}
    m["rsum"] = sum(m.values())
    path.write_text(json.dumps({"method": "be", "protocol": protocol, "protocol_label": "full test set (1000 images)",
                                "split": "test", "n_images": 1000, "metrics": m}))
    return path


def test_table1_has_paper_rows_and_ours_in_fixed_order(tmp_path):
    df = build_table1([_metrics(tmp_path / "be.json")], tmp_path / "t1", "full")
    assert list(df.columns) == COLUMNS
    be = df[df["Model"] == "BE"]
    assert list(be["Source"]) == ["paper", "paper", "ours"]
    paper_coco = be.iloc[0]
    assert paper_coco["Benchmark"] == "MSCOCO 5k" and paper_coco["t2i/R@1"] == 52.2 and paper_coco["i2t/R@10"] == 95.0
    assert be.iloc[2]["t2i/R@1"] == 40.0 and be.iloc[2]["rsum"] == 380.0
    assert df[df["Model"] == "CE"].iloc[2]["Source"] == "ours (not run yet)"
    md = (tmp_path / "t1.md").read_text()
    assert "ShapeCaptions" in md and "not COCO or Flickr30k" in md and "chance level of R@1" in md
    assert pd.read_csv(tmp_path / "t1.csv").shape == df.shape
    assert "\\begin{table}" in (tmp_path / "t1.tex").read_text()
    assert json.loads((tmp_path / "t1.json").read_text()) == {"BE": {**{c: v for c, v in be.iloc[2].items()
                                                                         if "/" in c}, "rsum": 380.0}}


def test_protocol_mismatch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="protocol 'folds'"):
        build_table1([_metrics(tmp_path / "be.json", protocol="folds")], tmp_path / "t1", "full")


def test_every_registered_target_has_a_builder_and_cells_under_both_configs():
    """The registry, the builders and the plans agree: each target builds, and each plan lists exactly the
    registered targets, whatever the config (the full-scale params.yaml and the tiny CI one)."""
    import yaml

    from itr import papers

    for name in papers.PAPERS:
        paper = papers.load(name)
        assert all(callable(papers.builder(name, t.name)) for t in paper.targets)
        for params in ("params.yaml", ".test/params.yaml"):
            plan = papers.plan(name, yaml.safe_load((ROOT / params).read_text()))
            assert sorted(plan.tables) == sorted(t.name for t in paper.targets), params
            assert all(spec.inputs for spec in plan.tables.values()), params
    with pytest.raises(KeyError, match="no target 'table99'"):
        papers.builder("rfrs", "table99")
