"""ALADIN's paper package: the training chain of its plan, its table builders and its claims, on hand-made inputs."""
import json

import pytest
import yaml

from itr.config import DisentangledConfig
from itr.papers import plan
from itr.papers.aladin import claims, tables
from itr.papers.aladin.plan import LABELS, MAIN
from itr.tables import RECALL_COLUMNS
from conftest import ROOT

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_the_chain_starts_from_joint_and_every_variant_trains_something_or_nothing_on_purpose():
    p = plan("aladin", PARAMS)
    init = {v: spec["init"] for v, spec in p.variants.items()}
    assert init["aladin_var/a_ft"] == init["aladin_var/t_ft"] == init["aladin_var/a"] == "models/rfrs/joint.pt"
    a_ft = "models/aladin_var/a_ft/disentangled.pt"
    assert init["aladin_var/t"] == init["aladin_var/d"] == init[MAIN] == a_ft  # the A/ft warm-up (§3.4)
    for variant, spec in p.variants.items():  # each variant's section passes the cross-key checks
        cfg = DisentangledConfig.from_dict({**PARAMS["disentangled"], **spec["overrides"], "seed": 0})
        frozen_matching = cfg.freeze_backbone and cfg.epochs > 0
        assert not frozen_matching or cfg.trains_matching, variant
    assert p.variants["aladin_var/a"]["overrides"]["epochs"] == 0
    assert p.variants["aladin_var/a_ft_notags"]["overrides"]["object_tags"] is False


def test_the_efficiency_comparison_times_a_row_of_every_registered_paper():
    from itr.papers import PAPERS

    plans = {name: plan(name, PARAMS) for name in PAPERS}
    timed = plans["aladin"].timing.methods
    for name, p in plans.items():  # a paper that lands later joins the one map of every method
        rows = {**p.embedding_rows, **p.rerank_rows}
        assert set(rows) & set(timed), f"no row of {name} ({sorted(rows)}) on aladin_comparison_efficiency"
    assert set(timed) <= set(tables.METHODS)  # and each is named in the table
    assert timed["cusa_dual"] == "cusa"  # CUSA's paper model: student (a) + CUSA


def test_figure_points_are_named_by_their_row_less_only_the_paper():
    # "student (a) + CUSA (CUSA)" was drawn as "student": the label cut at the first parenthesis
    assert tables.point_label("student (a) + CUSA (CUSA)", "CUSA") == "student (a) + CUSA"
    assert tables.point_label("BE (Retrieve Fast, Rerank Smart)", "Retrieve Fast, Rerank Smart") == "BE"
    assert tables.point_label("ALADIN A/ft. (no object tags)", "ALADIN") == "ALADIN A/ft. (no object tags)"


def _cell(path, variant, method, protocol, r1, dataset="shapes"):
    metrics = {c: r1 for c in RECALL_COLUMNS} | {"rsum": 6 * r1}
    path.write_text(json.dumps({"variant": variant, "method": method, "protocol": protocol, "dataset": dataset,
                                "protocol_label": f"{protocol} label", "split": "test", "metrics": metrics}))
    return path


def test_table1_names_rows_by_variant_and_takes_the_ce_from_the_benchmark_run(tmp_path):
    metrics, benchmarks = tmp_path / "results/metrics", tmp_path / "results/benchmarks"
    metrics.mkdir(parents=True), benchmarks.mkdir(parents=True)
    cells = [_cell(metrics / "a.json", "aladin_var/a_ft", "aladin_align", "subset", 40.0),
             _cell(metrics / "b.json", "aladin_var/a_ft", "aladin_align", "full", 20.0),
             _cell(metrics / "c.json", "rfrs", "sep_coop", "subset", 30.0)]
    ce = json.loads(_cell(tmp_path / "ce.json", None, "ce", "subset", 45.0).read_text())
    bench = benchmarks / "aladin_inference.json"
    bench.write_text(json.dumps({"protocol": "subset", "dataset": "shapes", "methods": {"ce": ce}}))
    out = tmp_path / "results/tables/aladin_table1"
    out.parent.mkdir(parents=True)
    tables.build_table1([*cells, bench], out, labels={"rows": {"aladin_var/a_ft": LABELS["a_ft"]}})
    flat = json.loads(out.with_suffix(".json").read_text())
    assert flat[f"{LABELS['a_ft']}/1K"]["t2i/R@1"] == 40.0 and flat[f"{LABELS['a_ft']}/5K"]["rsum"] == 120.0
    assert flat[f"{tables.method_name('ce')}/1K"]["i2t/R@1"] == 45.0
    assert flat[f"{tables.method_name('sep_coop')}/1K"]["rsum"] == 180.0
    _cell(metrics / "d.json", "aladin_var/a_ft", "aladin_align", "subset100", 1.0)
    with pytest.raises(ValueError, match="protocol 'subset100'"):
        tables.build_table1([metrics / "d.json"], out, labels={"rows": {}})


def _row(r1):
    return {"t2i/R@1": r1, "i2t/R@1": r1}


def test_claims_compare_the_rows_they_name():
    t2 = {f"{LABELS[n]}/{s}": _row(r) for s in ("1K", "5K") for n, r in (("t", 50), ("t_ft", 55), ("d", 52), (MAIN, 56))}
    ce, match, align = (tables.method_name(m) for m in ("ce", "aladin_match", "aladin_align"))
    fig2 = {ce: {"seconds": 100.0, "ms_per_text_query": 100.0, "t2i_rsum": 200.0},
            match: {"seconds": 1.0, "ms_per_text_query": 1.0, "t2i_rsum": 190.0},
            align: {"seconds": 5.0, "ms_per_text_query": 5.0, "t2i_rsum": 199.0}}
    t1 = {f"{LABELS['a_ft']}/1K": _row(60.0), f"{ce}/1K": _row(60.5)}
    verdicts = {c: (holds, evidence) for c, holds, evidence in claims.check_claims(
        {"table1": t1, "table2": t2, "figure2": fig2})}
    got = [holds for holds, _ in verdicts.values()]
    assert got == [True, True, True, True]
    assert "100x faster" in list(verdicts.values())[3][1] and "5.0% lower" in list(verdicts.values())[3][1]
    t2[f"{LABELS['d']}/5K"] = _row(50)  # a tie on 5K: D no longer beats T
    t2[f"{LABELS['t_ft']}/1K"] = _row(57)  # T/ft above A/ft. + D/ft. on 1K
    fig2[align]["seconds"] = 20.0  # 20% of the CE's time
    got = [holds for _, holds, _ in claims.check_claims({"table1": t1, "table2": t2, "figure2": fig2})]
    assert got == [False, False, False, True]
    assert [holds for _, holds, _ in claims.check_claims({})] == [None] * 4
