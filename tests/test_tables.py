import json
import re
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


def test_tables_of_a_real_dataset_name_it_and_not_shapecaptions(tmp_path):
    cell = _metrics(tmp_path / "be.json")
    cell.write_text(json.dumps({**json.loads(cell.read_text()), "dataset": "coco"}))
    df = build_table1([cell], tmp_path / "coco" / "rfrs_table1", "full")
    assert df[(df["Model"] == "BE") & (df["Source"] == "ours")].iloc[0]["Benchmark"] == "coco test"
    md = (tmp_path / "coco" / "rfrs_table1.md").read_text()
    assert "measured by this workflow on coco, protocol" in md and "ShapeCaptions" not in md
    from itr.layout import table_dataset  # what the claims' captions name

    assert table_dataset("results/tables/coco/rfrs_claims") == "coco"
    assert table_dataset("results/tables/rfrs_claims") == "shapes"


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
    with pytest.raises(papers.UnknownPaperError, match="no target 'table99'"):
        papers.builder("rfrs", "table99")
    from itr.cli import main

    assert main(["table", "rfrs", "table99", "--inputs", "x.json", "--out", "t"]) == 2  # a message, no traceback


def _cell_from_path(rel: str, n: int) -> dict:
    """A metrics file the way itr evaluate / itr rerank evaluate write it, for a path of the plan
    (results/metrics/<variant...>/<method>/<collection>/<protocol>[/k=K.json | /<fusion>_<lambda>.json])."""
    parts = rel.removeprefix("results/metrics/").removesuffix(".json").split("/")
    k = fusion = lam = None
    if parts[-1].startswith("k="):
        k, parts = int(parts[-1][2:]), parts[:-1]
    elif "_" in parts[-1] and parts[-1].rsplit("_", 1)[0] in ("add", "norm_add", "mix"):
        fusion, lam = parts[-1].rsplit("_", 1)
        lam, parts = float(lam), parts[:-1]
    variant, method, collection, protocol = "/".join(parts[:-3]), *parts[-3:]
    real = variant.split("/")[0] in ("coco", "flickr30k", "cc", "multi30k")  # a real dataset's: <dataset>/<name>
    trained_on = variant.split("/")[0] if real else "shapes_sketch" if "sketch" in variant else "shapes"
    r1 = 10.0 + n  # a different number in every cell, so each can be found in its table
    recalls = {f"{d}/R@{at}": r1 + (at - 1) * 3 + (0.25 if d == "i2t" else 0) for d in ("t2i", "i2t") for at in (1, 5, 10)}
    metrics = {**recalls, "rsum": sum(recalls.values()), "mR": sum(recalls.values()) / 6}
    return {"method": method, "protocol": protocol, "protocol_label": "fixed subset", "split": "test", "n_images": 10,
            "n_groups": 2 if protocol == "folds" else 1,
            "variant": variant, "dataset": collection, "trained_on": trained_on,
            "lang": collection.rsplit("_", 1)[1] if re.search(r"_(en|de|fr|cs)$", collection) else None,
            "distractors": (["data/flickr30k:features/flickr30k:test", "data/cc:features/cc:test"] if real else
                            ["data/shapes:features/shapes:val"]) if "distractors" in collection else None,
            "k": k, "fusion": fusion or "ce", "lambda": lam, "metrics": metrics}


def _write_cells(root: Path, plan) -> None:
    """A synthetic metrics file (_cell_from_path) for every cell the plan's tables read, under ``root``."""
    cells = sorted({f for spec in plan.tables.values() for f in spec.inputs if f.startswith("results/metrics/")})
    for n, rel in enumerate(cells):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(_cell_from_path(rel, n)))


@pytest.mark.parametrize("dataset", ["shapes", "coco", "multi30k"])
def test_every_table_of_the_plan_builds_and_shows_every_cell(tmp_path, dataset):
    """Each registered table built from synthetic cells of the tiny config's plan (on ShapeCaptions, and on a real
    dataset, where Tables 5 and 6 read the other real test sets and the language tables are not planned): every
    cell's number (rsum, or mR for the language tables) is in the table, and the claims read every table."""
    import yaml

    from itr import layout, papers

    params = yaml.safe_load((ROOT / ".test/params.yaml").read_text())
    params |= {"dataset": dataset, "datasets": yaml.safe_load((ROOT / "params.yaml").read_text())["datasets"]}
    params["shift"] |= {"real_test_sets": ["coco", "flickr30k", "cc"]}
    plan = papers.plan("rfrs", params)
    _write_cells(tmp_path, plan)
    for target, spec in plan.tables.items():
        if target in ("table3", "table4", "claims"):  # the latency benchmark's JSON; the other tables' JSON
            continue
        stem = tmp_path / layout.table_stem("rfrs", target, params)
        papers.builder("rfrs", target)([tmp_path / f for f in spec.inputs], stem, **spec.spec())
        csv = stem.with_suffix(".csv").read_text()
        for rel in spec.inputs:
            m = json.loads((tmp_path / rel).read_text())["metrics"]
            assert f"{m['rsum']:.2f}" in csv or f"{m['mR']:.2f}" in csv, (target, rel)
    claims = papers.plan("rfrs", params).tables["claims"].inputs
    built = [tmp_path / f for f in claims if (tmp_path / f).exists()]
    stem = tmp_path / layout.table_stem("rfrs", "claims", params)
    papers.builder("rfrs", "claims")(built, stem)
    verdicts = pd.read_csv(stem.with_suffix(".csv"))["verdict"]
    assert set(verdicts) <= {"holds", "does not hold", "not checked"}
    assert (verdicts != "not checked").sum() >= (15 if dataset == "shapes" else 8)
    shown_on = "ShapeCaptions" if dataset == "shapes" else dataset
    assert f"checked on {shown_on}." in stem.with_suffix(".md").read_text()
    claims = set(pd.read_csv(stem.with_suffix(".csv"))["claim"])
    transfer = {"Among distractors, JOINT+COOP remains the best-scoring variant",  # Tables 5 and 6
                "Zero-shot, JOINT+COOP matches or beats the CE in each direction"}
    languages = {"Trained on all four languages, SEP+COOP has the best mean mR",  # Tables 2 and 7
                 "Trained on English only, SEP+COOP transfers best to de, fr, cs (their mean mR)"}
    assert (transfer <= claims) == (dataset != "multi30k") and (languages <= claims) == (dataset != "coco")
    if dataset == "multi30k":  # Multi30k's main models (trained on every language; Table 2) and English ones (7)
        for target, trained in (("table2", "trained on its captions in every language"),
                                ("table7", "trained on the English captions of multi30k")):
            stem = tmp_path / layout.table_stem("rfrs", target, params)
            ours = pd.read_csv(stem.with_suffix(".csv")).query("Source == 'ours'")
            assert len(ours) == 4 and ours[params["multilingual"]["languages"]].notna().all().all()
            assert trained in stem.with_suffix(".md").read_text()
        assert plan.variants["multi30k/rfrs_en"]["overrides"] == {"train_languages": ["en"]}
        narrowed = papers.plan("rfrs", {**params, "be": {**params["be"], "train_languages": ["de"]}})
        assert "table2" not in narrowed.tables and "table7" in narrowed.tables  # the main BE is not every language's
        assert "{'be': ['de']}" in narrowed.unavailable["table2"]
    if dataset == "coco":  # the paper's sets: coco among flickr30k's and cc's test splits; coco's models on both
        table6 = pd.read_csv((tmp_path / layout.table_stem("rfrs", "table6", params)).with_suffix(".csv"))
        ours = table6[table6["Source"] == "ours"].groupby("Setting")["Model"].apply(list).to_dict()
        assert ours == {"train coco, test cc (zero-shot)": ["BE", "SEP+COOP", "JOINT+COOP"],  # no CE: CC has no
                        "train coco, test coco (in-domain)": ["JOINT+COOP"],                # training split
                        "train coco, test flickr30k (zero-shot)": ["CE", "BE", "SEP+COOP", "JOINT+COOP"],
                        "train flickr30k, test flickr30k (in-domain)": ["JOINT+COOP"]}
        table5 = (tmp_path / layout.table_stem("rfrs", "table5", params)).with_suffix(".md").read_text()
        assert "coco test + distractors from 2 splits" in table5 and "test of flickr30k, test of cc" in table5
        table6_md = (tmp_path / layout.table_stem("rfrs", "table6", params)).with_suffix(".md").read_text()
        assert all(f" of {s} test" in table6_md for s in ("coco", "flickr30k", "cc"))  # the protocol of every set


def _benchmark(path: Path, timing, n_images: int) -> dict:
    """An inference-time benchmark JSON (benchmarks/inference_time.py) for a plan's timing: a different rsum and
    time for every method; the CE scores every pair of n_images images with 5 captions each."""
    methods = {}
    for n, method in enumerate(timing.methods):
        recalls = {f"{d}/R@{at}": 20.0 + n + at for d in ("t2i", "i2t") for at in (1, 5, 10)}
        pairs = 5 * n_images ** 2 if method == "ce" else 100 * n
        seconds = 400.0 if method == "ce" else 1.5 + n
        methods[method] = {"seconds": seconds, "steps": {"score": seconds - 0.5, "rank": 0.5}, "pairs_scored": pairs,
                           "cross_seconds": seconds - 0.5, "protocol_label": "fixed subset", "n_images": n_images,
                           "n_groups": 1,
                           "metrics": {**recalls, "rsum": sum(recalls.values())}}
    bench = {"protocol": timing.protocol, "protocol_label": "fixed subset", "methods": methods,
             "machine": {"cpu": "a CPU", "platform": "linux", "threads": 2, "faiss_threads": 1, "device": "cpu",
                         "torch": "2"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(bench))
    return bench


def test_every_tgdt_table_builds_and_shows_every_cell(tmp_path):
    """TGDT's tables from synthetic cells of the tiny config's plan: every cell's rsum is in its table, Table VI
    has its ten rows in the plan's order, Figure 6 tells the K cells from the theta cells, the timing tables show
    every timed method's rsum and Table V the cross-encoder's all-pairs time at its measured throughput."""
    import yaml

    from itr import layout, papers

    params = yaml.safe_load((ROOT / ".test/params.yaml").read_text())
    plan = papers.plan("tgdt", params)
    _write_cells(tmp_path, plan)
    bench_file = layout.INFERENCE_BENCHMARK.format(paper="tgdt")
    bench = _benchmark(tmp_path / bench_file, plan.timing, n_images=20)
    for target, spec in plan.tables.items():
        if target in ("evaluator", "claims"):  # score files too (tested below); the other tables' JSON
            continue
        stem = tmp_path / "results" / "tables" / f"tgdt_{target}"
        papers.builder("tgdt", target)([tmp_path / f for f in spec.inputs], stem, **spec.spec())
        csv = stem.with_suffix(".csv").read_text()
        for rel in spec.inputs:
            if rel == bench_file:
                shown = [] if target == "table5" else [m["metrics"]["rsum"] for m in bench["methods"].values()]
            else:
                shown = [json.loads((tmp_path / rel).read_text())["metrics"]["rsum"]]
            assert all(f"{rsum:.2f}" in csv for rsum in shown), (target, rel)
    table6 = pd.read_csv(tmp_path / "results/tables/tgdt_table6.csv")
    ours = table6[table6["Source"] == "ours"]
    assert list(ours["Model"]) == plan.tables["table6"].labels["rows"] and len(ours) == 10
    figure6 = pd.read_csv(tmp_path / "results/tables/tgdt_figure6.csv")
    assert list(figure6[figure6["Sweep"] == "K"]["Value"]) == params["dual"]["k_sweep"]
    assert list(figure6[figure6["Sweep"] == "theta"]["Value"]) == params["dual"]["theta_sweep"]
    for png in ("figure1", "figure6", "figure7"):
        assert (tmp_path / f"results/tables/tgdt_{png}.png").stat().st_size > 0
    # Table V: the CE at 2000 pairs / 399.5 s (5 captions per image); folds = 2 groups of 10 images x 50 captions
    # = 1,000 pairs (199.75 s), full = 10 x 50 = 500 pairs
    table5 = pd.read_csv(tmp_path / "results/tables/tgdt_table5.csv")
    estimates = list(table5["CE time (estimate)"].dropna())
    assert estimates == ["3.33 min for 1,000 pairs", "1.66 min for 500 pairs"], estimates
    papers.builder("tgdt", "claims")([tmp_path / f for f in plan.tables["claims"].inputs],
                                     tmp_path / "results/tables/tgdt_claims", **plan.tables["claims"].spec())
    claims = pd.read_csv(tmp_path / "results/tables/tgdt_claims.csv")
    assert set(claims["verdict"]) <= {"holds", "does not hold"}, claims  # every claim is checked


def test_timed_methods_run_each_row_as_its_cells_do():
    """The benchmark's spec of each timed row: TGDT-GL with the row's K, mix fusion and theta, SEP+COOP with
    rerank.k and its CE, the all-pairs rows without a first stage."""
    import yaml

    from itr import papers

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    plans = {name: papers.plan(name, params) for name in papers.PAPERS}
    specs = papers.timed_methods(plans["tgdt"].timing, plans, params["rerank"])
    assert specs["tgdt_gl"] == {"first_stage": "models/tgdt/cmc.pt", "second_stage": "models/tgdt/cmc.pt",
                                "k": params["dual"]["k"], "fusion": "mix", "lam": 1 - params["dual"]["theta"],
                                "batch_size": params["rerank"]["batch_size"], "precision": params["dual"]["precision"]}
    assert specs["sep_coop"]["k"] == params["rerank"]["k"] and specs["sep_coop"]["fusion"] == "ce"
    assert specs["ce"] == {"second_stage": "models/rfrs/ce.pt", "batch_size": params["rerank"]["batch_size"],
                           "precision": params["rerank"]["precision"]}
    assert specs["tgdt_g"] == {"first_stage": "models/tgdt/cmc.pt"}
    with pytest.raises(papers.UnknownPaperError, match="'nope'"):
        papers.timed_methods(papers.Timing("subset", {"nope": "rfrs"}), plans, params["rerank"])


def test_the_evaluator_table_shows_the_released_rule_inflating_the_recalls(tmp_path):
    """TGDT-GL's cell against its score file: caption 0's image is not on its shortlist, a miss for us, a hit at
    rank 1 for the released evaluator; the table gives both and the difference."""
    import numpy as np

    from itr.metrics import average_metrics
    from itr.papers.tgdt.tables import build_evaluator
    from itr.shortlist import Shortlist, rerank_metrics

    nan = np.full((3, 2), np.nan)
    g = Shortlist(np.array([0, 1, 2]), np.array([[1, 2], [1, 0], [2, 1]]), nan, np.array([[9.0, 9], [5, 1], [3, 1]]),
                  np.array([[0, 1], [1, 2], [2, 0]]), nan, np.array([[1.0, 0], [1, 0], [1, 0]]))
    meta = {"protocol": "subset", "n_groups": 1}
    np.savez(tmp_path / "s.npz", meta=np.array(json.dumps(meta)), **g.to_arrays("g0/"))
    ours = average_metrics(rerank_metrics([g], 2, "ce", 0.0, (1, 5, 10)))
    cell = {"protocol": "subset", "protocol_label": "first 3 images", "k": 2, "fusion": "ce", "lambda": None,
            "metrics": ours}
    (tmp_path / "c.json").write_text(json.dumps(cell))
    df = build_evaluator([tmp_path / "c.json", tmp_path / "s.npz"], tmp_path / "evaluator")
    inflation = df[df["Evaluator"] == "inflation"].iloc[0]
    assert ours["t2i/R@1"] == pytest.approx(200 / 3) and inflation["t2i/R@1"] == pytest.approx(100 / 3)
    assert inflation["i2t/R@1"] == 0.0 and inflation["rsum"] == pytest.approx(3 * 100 / 3)


def test_the_extended_report_sets_each_models_single_positive_r1_beside_the_extended_one(tmp_path):
    import json

    from itr.tables import EXTENDED_REPORT_COLUMNS, build_extended_report

    paths = {}
    for n, (paper, variant, method) in enumerate([("rfrs", "rfrs", "be"), ("cusa", "cusa", "cusa_dual")]):
        metrics = {key: 10.0 * n + i for i, key in enumerate(EXTENDED_REPORT_COLUMNS.values())}
        path = tmp_path / f"{n}.json"
        path.write_text(json.dumps({"protocol": "extended", "variant": variant, "method": method, "metrics": metrics,
                                    "positives": {"t2i": {"median": 3, "max": 9}, "i2t": {"median": 185, "max": 244}}}))
        paths[str(path)] = paper
    df = build_extended_report(list(paths), tmp_path / "eccv_all", paths)
    row = df.set_index("Method").loc["cusa_dual"]
    assert row["Paper"] == "cusa" and row["t2i R@1 single"] == 10.0 and row["t2i R@1 ext"] == 11.0  # not swapped
    assert row["i2t mAP@R"] == 15.0
    assert json.loads((tmp_path / "eccv_all.json").read_text())["rfrs/be"]["i2t R@1 ext"] == 3.0
    assert "median 185 captions per image" in (tmp_path / "eccv_all.md").read_text()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"protocol": "folds", "variant": "v", "method": "m", "metrics": {}}))
    with pytest.raises(ValueError, match=r"protocols \['folds'\]"):
        build_extended_report([str(bad)], tmp_path / "x", {str(bad): "rfrs"})


def test_on_coco_the_report_sets_cocos_r1_beside_eccv_captions_and_never_mixes(tmp_path):
    import json

    from itr.tables import ECCV_REPORT_COLUMNS, build_extended_report

    cell = tmp_path / "coco.json"
    metrics = {key: float(i) for i, key in enumerate(ECCV_REPORT_COLUMNS.values())}
    cell.write_text(json.dumps({"protocol": "full", "variant": "coco/rfrs", "method": "sep_coop", "metrics": metrics}))
    row = build_extended_report([str(cell)], tmp_path / "eccv_all", {str(cell): "rfrs"}).iloc[0]
    assert (row["t2i R@1 single"], row["t2i R@1 ext"], row["i2t R-P"]) == (0.0, 1.0, 7.0)  # t2i/R@1, eccv/t2i/R@1
    assert "ECCV Caption's re-judged positives" in (tmp_path / "eccv_all.md").read_text()
    flickr = tmp_path / "flickr.json"  # full, but no ECCV metrics: not COCO's 5K split
    flickr.write_text(json.dumps({"protocol": "full", "variant": "v", "method": "be", "metrics": {"t2i/R@1": 1.0}}))
    with pytest.raises(ValueError, match="no ECCV Caption metrics"):
        build_extended_report([str(flickr)], tmp_path / "x", {str(flickr): "rfrs"})
    shapes = tmp_path / "shapes.json"
    shapes.write_text(json.dumps({"protocol": "extended", "variant": "v", "method": "be", "metrics": {}}))
    with pytest.raises(ValueError, match="protocols"):
        build_extended_report([str(cell), str(shapes)], tmp_path / "x", {str(cell): "rfrs", str(shapes): "rfrs"})
