"""The whole DAG on the tiny .test config, driven the way users drive it: dvc repro and snakemake.

One temporary project (a git + DVC repository holding this workflow; conftest.project) is built once per session.
"""
import contextlib
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import numpy as np
import pytest
import yaml

from conftest import BIN, ROOT, headless_browser, needs_browser, open_report_entry, run

from itr import layout, papers

pytestmark = pytest.mark.integration


# columns that name a row rather than report a result ("—" there means "not applicable", say λ of the CE alone)
LABEL_COLUMNS = {"Model", "Source", "Benchmark", "Fusion", "λ", "k", "Collection", "Setting", "Training images", "Size",
                 "Loss", "Hardware", "Measure"}


def _numbers(m: dict) -> list[str]:
    """How a metrics file's headline number is written in a table's CSV (rsum, or mR for the language tables; mAP@R
    under the extended ground truth; a uni-modal head's image retrieval R@1 or caption-pair Spearman)."""
    keys = ("rsum", "mR", "ext/t2i/mAP@R", "uni/i2i/R@1", "uni/sts/spearman")
    return [f"{m['metrics'][k]:.2f}" for k in keys if k in m["metrics"]]


def test_dvc_repro_builds_every_registered_table_from_nothing(project):
    proj, first = project
    log = first.stdout + first.stderr
    assert "Using profiles profiles/ci and workflow specific profile profiles/default" in log
    # DVC rewrites the outputs it caches; each job must still run exactly once
    outputs = [line.split(":", 1)[1].strip() for line in log.splitlines() if line.startswith("    output:")]
    assert outputs and len(outputs) == len(set(outputs))
    params = yaml.safe_load((proj / "params.yaml").read_text())
    for name in papers.PAPERS:
        plan = papers.plan(name, params)
        for target in papers.load(name).targets:
            stem = proj / "results" / "tables" / f"{name}_{target.name}"
            csv = stem.with_suffix(".csv").read_text()
            rows = pd.read_csv(stem.with_suffix(".csv"), dtype=str, keep_default_na=False)
            ours = rows[rows["Source"].str.startswith("ours")] if "Source" in rows else rows
            assert len(ours), target.name
            results = ours.drop(columns=[c for c in ours.columns if c in LABEL_COLUMNS])
            blank = (results == "") | (results == "—")
            measured = results.loc[:, ~blank.all()]  # columns only the paper's rows fill (its collection sizes) aside
            assert not ((measured == "") | (measured == "—")).any().any(), f"{target.name}: an empty cell"
            assert "not run yet" not in csv and "table not built" not in csv, target.name  # claims read every table
            for cell in (f for f in plan.tables[target.name].inputs if f.startswith("results/metrics/")):
                m = json.loads((proj / cell).read_text())
                assert any(n in csv for n in _numbers(m)), f"{cell} is not in {target.name}"
            assert (proj / "logs" / "table" / f"{name}_{target.name}.log").exists()
            if target.png:
                assert stem.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    # eccv_all (DVC stage eccv): every paper's models under the extended ground truth, each cell's numbers in it
    report = (proj / f"{layout.EXTENDED_REPORT}.csv").read_text()
    cells = [c for name in papers.PAPERS for c in papers.extended_cells(papers.plan(name, params), params)]
    assert {c.split("/")[2] for c in cells} >= {"rfrs", "tgdt", "aladin", "cusa"}
    for cell in cells:
        m = json.loads((proj / cell).read_text())["metrics"]
        assert f"{m['ext/t2i/mAP@R']:.2f}" in report and f"{m['single/t2i/R@1']:.2f}" in report, cell
    # each paper's galleries: the queries its spec asks for, the truth of each among the dataset's captions
    for name in papers.PAPERS:
        for stem, spec in papers.gallery_specs(name, papers.plan(name, params), params).items():
            gallery = json.loads((proj / f"{stem}.json").read_text())
            assert gallery["methods"] == [spec["first"], spec["second"]] and len(gallery["queries"]) >= spec["n_random"]
            assert all(len(q["first"]) == spec["k"] for q in gallery["queries"]), stem
            assert (proj / f"{stem}.png").read_bytes()[:4] == b"\x89PNG", stem
    # the inference-time benchmark scores each method as its workflow cell does (the same calls, in one process)
    bench = json.loads((proj / layout.INFERENCE_BENCHMARK.format(paper="tgdt")).read_text())
    timing = papers.plan("tgdt", params).timing
    assert list(bench["methods"]) == list(timing.methods)
    for method, result in bench["methods"].items():
        cell = proj / layout.EVAL_METRICS.format(variant=timing.methods[method], method=method,
                                                 collection=layout.MAIN_DATASET, protocol=bench["protocol"])
        if method != "ce":  # the CE scores every pair only here
            assert result["metrics"] == pytest.approx(json.loads(cell.read_text())["metrics"]), method
    metrics = json.loads((proj / "results/metrics/rfrs/be/shapes/folds.json").read_text())
    assert metrics["protocol_label"] == "mean over 2 folds of 20 images" and len(metrics["per_group"]) == 2
    fold_means = {k: sum(g[k] for g in metrics["per_group"]) / 2 for k in metrics["metrics"]}
    assert fold_means == pytest.approx(metrics["metrics"])
    assert "first 20 test images" in (proj / "results/tables/rfrs_table1.md").read_text()
    for name in ("shapes_generate/shapes_sketch", "train_detector", "extract_features/shapes_sketch", "train/rfrs/ce",
                 "train/rfrs_sketch/joint", "rerank_score/rfrs/sep_coop/shapes_distractors/subset"):
        assert (proj / "logs" / f"{name}.log").exists()
    # SEP+COOP reranks with the CE: its shortlists' scores are read from the CE's scores of every pair, not computed again
    with np.load(proj / "scores/rfrs/sep_coop/shapes/subset.npz") as z:
        assert json.loads(str(z["meta"]))["scores_from"] == "scores/rfrs/ce/shapes/subset.npz"
    with np.load(proj / "scores/rfrs/sep_coop/shapes_distractors/subset.npz") as z:  # no CE row there: scored
        assert json.loads(str(z["meta"]))["scores_from"] is None and json.loads(str(z["meta"]))["cross_seconds"] is not None
    shown = run(["dvc", "metrics", "show"], proj).stdout  # the headline cells, a row each, and the detector's mAP
    assert "results/headline/rfrs/rfrs.sep_coop.shapes.subset.json" in shown and "mAP@0.5" in shown
    # the detector's loss curve (dvc plots): a row per epoch, the mean loss its log gave at the epoch's end
    history = pd.read_csv(proj / "results/train/detector/shapes.csv")
    epochs = yaml.safe_load((proj / "params.yaml").read_text())["detector"]["epochs"]
    assert list(history["epoch"]) == list(range(epochs))
    logged = [line.split()[-1] for line in (proj / "logs/train_detector.log").read_text().splitlines()
              if " epoch " in line and ": loss " in line]
    assert [f"{loss:.4f}" for loss in history["train/loss"]] == logged


def test_distractors_only_ever_lower_recall(project):
    """Table 5: the same queries among 64 never-relevant images and their captions. With exact search an extra
    item can only push a relevant one down, so no recall may rise; and the cells must say what was searched."""
    proj, _ = project
    cell = lambda method, collection: json.loads(
        (proj / f"results/metrics/rfrs/{method}/{collection}/subset.json").read_text())
    for method in ("be", "sep_coop", "joint_coop"):
        alone, among = cell(method, "shapes"), cell(method, "shapes_distractors")
        assert "searched among 64 distractor images" in among["protocol_label"], method
        assert alone["n_images"] == among["n_images"] == 20
        if method == "be":
            assert all(among["metrics"][k] <= alone["metrics"][k] for k in alone["metrics"]), method
            assert among["metrics"]["rsum"] < alone["metrics"]["rsum"]  # 64 distractors vs 20 images do bite
    table = (proj / "results/tables/rfrs_table5.md").read_text()
    assert "| ShapeCaptions test + distractors from 2 splits | JOINT+COOP" in table


def test_zero_shot_table_crosses_the_domains(project):
    proj, _ = project
    sketch = json.loads((proj / "results/metrics/rfrs_sketch/ce/shapes/subset10.json").read_text())
    assert (sketch["trained_on"], sketch["dataset"], sketch["n_images"]) == ("shapes_sketch", "shapes", 10)
    table = (proj / "results/tables/rfrs_table6.md").read_text()
    for setting in ("train shapes, test shapes_sketch (zero-shot)", "train shapes_sketch, test shapes (zero-shot)",
                    "train shapes_sketch, test shapes_sketch (in-domain)"):
        assert f"| {setting}" in table, setting
    assert "Auxiliary budget: trained on the first 60 training images" in table


def test_multilingual_tables_search_one_language_at_a_time(project):
    proj, _ = project
    de = json.loads((proj / "results/metrics/rfrs_aux/be/shapes_multi_de/subset10.json").read_text())
    en = json.loads((proj / "results/metrics/rfrs_aux/be/shapes_multi_en/subset10.json").read_text())
    assert (de["lang"], en["lang"]) == ("de", "en") and de["metrics"] != en["metrics"]
    # the English captions and the images of shapes_multi are those of shapes; an auxiliary index holds
    # only the first auxiliary.protocol images (subset10) and their captions
    index_en = json.loads((proj / "indexes/rfrs_aux/be/shapes_multi_en/collection.json").read_text())
    index_plain = json.loads((proj / "indexes/rfrs/be/shapes/collection.json").read_text())
    first10 = list(dict.fromkeys(index_plain["caption_image_ids"]))[:10]
    assert index_en["first_images"] == 10 and index_plain["first_images"] is None
    assert index_en["caption_image_ids"] == [i for i in index_plain["caption_image_ids"] if i in first10]
    history = (proj / "results/train/rfrs_multi/be.csv").read_text().splitlines()
    assert history[1].split(",")[1] == "4"  # multilingual.steps_per_epoch: 4 steps, not a pass over 4 languages
    for n, last in (("2", "mean"), ("7", "avg")):
        table = (proj / f"results/tables/rfrs_table{n}.md").read_text()
        assert table.splitlines()[0].rstrip().endswith(f"{last} |") and "| SEP+COOP   | ours" in table, n


def test_ablations_train_what_they_say_and_build_figures(project):
    proj, _ = project
    from itr.checkpoint import load_checkpoint

    half = load_checkpoint(proj / "models/rfrs_aux_half/ce.pt")["architecture"]["bert_config"]["num_hidden_layers"]
    full = load_checkpoint(proj / "models/rfrs_aux/ce.pt")["architecture"]["bert_config"]["num_hidden_layers"]
    assert 2 * half == full
    ance = (proj / "results/train/rfrs_aux_ance/joint.csv").read_text().splitlines()[0].split(",")
    assert {"train_loss/be", "train_loss/be_ance", "train_loss/ce"} <= set(ance)
    sizes = json.loads((proj / "results/tables/rfrs_figure3.json").read_text())
    assert {"BE/30", "BE/60", "BE/120", "JOINT+COOP/30"} <= set(sizes)  # ablations.sample_sizes, auxiliary, all
    for name in ("figure3", "figure4"):
        assert (proj / f"results/tables/rfrs_{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert "| T_BHE + T_ANCE + E_ANCE | ours" in (proj / "results/tables/rfrs_appendix10.md").read_text()
    claims = (proj / "results/tables/rfrs_claims.md").read_text()
    assert "rfrs_figure4.md" in claims and "rfrs_appendix9.md" in claims


def test_running_again_does_nothing(project):
    proj, _ = project
    dry = run(["snakemake", "-n", "all"], proj)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    status = run(["dvc", "status"], proj).stdout
    assert "up to date" in status.lower(), status


@pytest.mark.slow
def test_a_dvc_remote_restores_every_output_on_a_fresh_clone_and_nothing_reruns(project, tmp_path):
    """README "Sharing results through a DVC remote": push from the built project, then on a fresh clone pull,
    record the pulled files as up to date in the DAG's order, and nothing is left to do, for DVC or Snakemake."""
    lab = tmp_path / "lab"  # the built project as a researcher's checkout, with the repository's .gitignore
    shutil.copytree(project[0], lab, symlinks=True)
    shutil.copy(ROOT / ".gitignore", lab / ".gitignore")
    run(f"dvc remote add -q -d lab {tmp_path / 'remote'} && git add -A && git commit -qm built && dvc push -q", lab)
    run(f"git clone -q {lab} {tmp_path / 'fresh'}", tmp_path)
    fresh = tmp_path / "fresh"
    assert not (fresh / "models").exists() and not (fresh / "results").exists()  # git carries no artifact
    run(["dvc", "pull", "-q"], fresh)
    assert "up to date" in run(["dvc", "status"], fresh).stdout.lower()
    for f in ("results/tables/rfrs_table1.md", "results/metrics/detector/shapes.json", "models/rfrs/be.pt"):
        assert (fresh / f).read_bytes() == (lab / f).read_bytes(), f
    run(["snakemake", "--touch", "all"], fresh)  # DVC restores files in no order: their mtimes say nothing
    dry = run(["snakemake", "-n", "all"], fresh)
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]


@pytest.mark.slow
def test_dvc_metrics_plots_and_an_experiment_as_the_readme_uses_them(project, tmp_path):
    """dvc metrics show: one row per headline cell, the same few columns; dvc plots show: every training curve;
    dvc exp run -S dual.theta=0.25: reruns what reads the key, and dvc exp show / metrics diff set it beside the baseline."""
    lab = tmp_path / "lab"
    shutil.copytree(project[0], lab, symlinks=True)
    shutil.copy(ROOT / ".gitignore", lab / ".gitignore")
    run("git add -A && git commit -qm built", lab)
    params = yaml.safe_load((lab / "params.yaml").read_text())
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], lab).stdout)
    (files,) = [rev["data"] for rev in shown.values()]  # the workspace
    headline = {f for name in papers.PAPERS for f in papers.headline_files(name, papers.plan(name, params), params)}
    assert set(files) == headline | {layout.DETECTOR_HEADLINE.format(dataset="shapes")}
    columns = {k for f in files.values() for k in f["data"]}
    assert columns == {"t2i/R@1", "t2i/R@5", "t2i/R@10", "i2t/R@1", "i2t/R@5", "i2t/R@10", "rsum", "mAP@0.5"}
    run(["dvc", "plots", "show", "-o", "plots"], lab)
    page = (lab / "plots" / "index.html").read_text()
    assert all(f"results/train/{v}" in page for v in ("rfrs", "tgdt", "aladin", "cusa")), "a paper's curves"
    assert "results/train/detector/shapes.csv" in page, "the detector's loss curve"
    # an experiment on TGDT's theta: it reruns only the two-stage cells, from cached scores (the README's example)
    theta = 0.25
    assert params["dual"]["theta"] != theta
    run(["dvc", "exp", "run", "-q", "-S", f"dual.theta={theta}"], lab)
    rows = json.loads(run(["dvc", "exp", "show", "--json"], lab).stdout)
    baseline = next(r for r in rows if r["rev"] != "workspace")
    (experiment,) = [e["revs"][0] for e in baseline["experiments"]]  # the run, listed under its baseline
    cell = next(f for f in headline if "tgdt.tgdt_gl" in f)
    for row, want in ((baseline, params["dual"]["theta"]), (experiment, theta)):
        assert row["data"]["params"]["params.yaml"]["data"]["dual"]["theta"] == want
        assert set(row["data"]["metrics"][cell]["data"]) >= {"t2i/R@1", "rsum"}  # its metrics beside
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], lab).stdout)  # workspace = the experiment
    assert cell in diff and not any("rfrs." in f for f in diff), diff  # TGDT-GL's cell only: nothing else read theta


@pytest.mark.slow
def test_rfrs_seeds_trains_the_whole_chain_again_per_seed_and_reports_the_spread(project, tmp_path):
    """snakemake rfrs_seeds on the built project (.test seeds: 0 and 1): seed 1 trains its own detector and models
    (other numbers than seed 0's), seed 0 is the built project's, and the table, claims and spread are over both;
    params seed's own build stays up to date."""
    lab = tmp_path / "lab"
    shutil.copytree(project[0], lab, symlinks=True)
    run(["snakemake", "rfrs_seeds"], lab)
    detectors = [json.loads((lab / f).read_text())["mAP@0.5"] for f in (
        "results/metrics/detector/shapes.json", "results/metrics/seed1/detector/shapes.json")]
    assert detectors[0] != detectors[1]  # the seed reached the detector
    spread = json.loads((lab / "results/seeds/rfrs.json").read_text())
    assert spread["seeds"] == [0, 1]
    assert spread["scores"]["results/metrics/detector/shapes.json"]["mAP@0.5"]["values"] == {"0": detectors[0],
                                                                                          "1": detectors[1]}
    table = json.loads((lab / "results/tables/seeds/rfrs_table1.json").read_text())
    own = [json.loads((lab / f).read_text()) for f in ("results/tables/rfrs_table1.json",
                                                       "results/tables/seed1/rfrs_table1.json")]
    assert table["BE"]["rsum"]["values"] == {"0": own[0]["BE"]["rsum"], "1": own[1]["BE"]["rsum"]}
    claims = json.loads((lab / "results/tables/seeds/rfrs_claims.json").read_text())
    assert len(claims) == 6 and all(c["holds in"].endswith("of 2 seeds") for c in claims.values())
    dry = run(["snakemake", "-n", "all"], lab)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_mlflow_has_training_and_evaluation_runs_with_curves(project):
    proj, _ = project
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{proj}/mlflow.db")
    exp = client.get_experiment_by_name("itr-test")  # the training jobs' runs
    names = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert {"train_detector/dataset=shapes", "train/rfrs/be", "train/rfrs/joint", "train/rfrs_sketch/ce"} <= set(names)
    history = client.get_metric_history(names["train/rfrs/be"].info.run_id, "train/loss")
    assert len(history) >= 2
    joint = names["train/rfrs/joint"].data.metrics
    assert {"train/loss/be", "train/loss/ce", "val/be/rsum", "val/ce/rsum"} <= set(joint)
    # evaluation cells: one experiment per paper, mirrored by one job per paper (rule track_cells), a run per file
    rfrs = client.get_experiment_by_name("itr-test/rfrs")
    cells = {r.info.run_name: r for r in client.search_runs([rfrs.experiment_id], "tags.source = 'metrics file'")}
    assert {"rfrs/be/shapes/full", "rfrs/sep_coop/shapes/subset", "rfrs_sketch/joint_coop/shapes/subset10"} <= set(cells)
    tracked = json.loads((proj / layout.TRACKED_CELLS.format(paper="rfrs")).read_text())
    assert cells["rfrs/be/shapes/full"].info.run_id == tracked["cells"]["rfrs/be/shapes/full"]
    assert cells["rfrs/be/shapes/full"].data.metrics["rsum"] == pytest.approx(
        json.loads((proj / "results/metrics/rfrs/be/shapes/full.json").read_text())["metrics"]["rsum"])
    tags = cells["rfrs/sep_coop/shapes/subset"].data.tags
    assert tags["paper"] == "rfrs" and tags["table:table1"] == "true" and tags["git_commit"] and tags["params_hash"]
    artifacts = {a.path for d in ("tables", "figures") for a in client.list_artifacts(tracked["tables"], d)}
    assert {"tables/rfrs_table1.md", "tables/rfrs_table1.csv", "figures/rfrs_figure3.png"} <= artifacts
    out = run([str(BIN / "itr"), "runs", "compare", "--uri", f"sqlite:///{proj}/mlflow.db",
               "--experiment", "itr-test", "--paper", "rfrs", "--table", "table1"], proj).stdout
    shown = {line.split("|")[1].strip() for line in out.splitlines()[2:]}
    table1 = papers.plan("rfrs", yaml.safe_load((proj / "params.yaml").read_text())).tables["table1"].inputs
    assert shown == {c.removeprefix("results/metrics/").removesuffix(".json") for c in table1}
    out = run([str(BIN / "itr"), "runs", "compare", "--uri", f"sqlite:///{proj}/mlflow.db",
               "--experiment", "itr-test", "--name", "train/rfrs/%"], proj).stdout
    assert {"train/rfrs/be", "train/rfrs/ce"} <= {line.split("|")[1].strip() for line in out.splitlines()[2:]}


@contextlib.contextmanager
def edited(path: Path, edit):
    """The file changed by ``edit`` (text -> text) inside the block, as it was after it."""
    text = path.read_text()
    path.write_text(edit(text))
    try:
        yield
    finally:
        path.write_text(text)


def _param_edit(section, key, value):
    def edit(text):
        params = yaml.safe_load(text)
        params[section][key] = value
        return yaml.safe_dump(params, sort_keys=False)
    return edit


def _stale_stages(proj) -> set[str]:
    out = run(["dvc", "status"], proj).stdout
    return {line[:-1] for line in out.splitlines() if line.endswith(":") and not line.startswith((" ", "\t"))}


@pytest.mark.parametrize("section,key,value,stages", [
    ("shapes", "noise", 0.1, {"data"}),
    ("features", "score_thresh", 0.3, {"features"}),
    ("rerank", "lambdas", [0.2], {"rfrs"}),
    ("dual", "theta", 0.25, {"tgdt", "aladin"}),  # ALADIN's Figure 2 times TGDT-GL, which theta weights
    ("softlabel", "alpha", 0.2, {"cusa"}),
])
def test_a_param_edit_makes_stale_only_the_stages_that_read_it(project, section, key, value, stages):
    proj, _ = project
    with edited(proj / "params.yaml", _param_edit(section, key, value)):
        assert _stale_stages(proj) == stages
    assert _stale_stages(proj) == set()


def test_a_code_edit_reruns_the_jobs_that_run_it_and_what_follows(project):
    """Editing the triplet loss reruns training and everything downstream of it, not the data or the detector."""
    proj, _ = project
    losses = proj / "src" / "itr" / "losses.py"
    with edited(losses, lambda text: text.replace("margin: float = 0.1,", "margin: float = 0.2,", 1)):
        dry = run(["snakemake", "-n", "all"], proj).stdout
        rules = {line.split()[1][:-1] for line in dry.splitlines() if line.startswith(("rule ", "localrule "))}
        assert {"train", "build_index", "rerank_score", "paper_table"} <= rules, rules
        assert not rules & {"shapes_generate", "train_detector", "extract_features"}, rules
        assert "Params have changed since last execution" in dry
    assert "Nothing to be done" in run(["snakemake", "-n", "all"], proj).stdout


@pytest.mark.slow  # a dvc repro after the edit and one back (~1 min); the param-edit and theta tests check the same in dry runs
def test_a_fusion_param_change_recomputes_cells_from_the_cached_scores(project):
    proj, _ = project
    # rerank.lambdas changes Table 9's cells only: no training, extraction, indexing or cross-encoding again,
    # and no cell that does not fuse scores
    watched = ["models/detector/shapes.pt", "features/shapes/manifest.json", "models/rfrs/be.pt",
               "indexes/rfrs/be/shapes/collection.json", "models/rfrs/joint.pt", "scores/rfrs/sep_coop/shapes/subset.npz",
               "scores/rfrs/ce/shapes/subset.npz", "models/rfrs_sketch/joint.pt",
               "scores/rfrs/joint_coop/shapes_distractors/subset.npz", "results/metrics/rfrs/be/shapes/full.json",
               "results/metrics/rfrs/joint_coop/shapes_distractors/subset.json"]
    before = {p: (proj / p).stat().st_mtime_ns for p in watched}
    with edited(proj / "params.yaml", _param_edit("rerank", "lambdas", [0.1, 0.3, 0.9])):
        out = run(["dvc", "repro"], proj).stdout
        for stage in ("data", "features"):
            assert f"Stage '{stage}' didn't change, skipping" in out, out
        assert "Running stage 'rfrs'" in out
        assert {p: (proj / p).stat().st_mtime_ns for p in watched} == before
        cell = json.loads((proj / "results/metrics/rfrs/joint_coop/shapes/subset/norm_add_0.3.json").read_text())
        assert (cell["fusion"], cell["lambda"]) == ("norm_add", 0.3)
        assert "| JOINT+COOP | NORM_ADD | 0.3 | ours" in (proj / "results/tables/rfrs_table9.md").read_text()
    run(["dvc", "repro"], proj)  # back to the module's config, for tests that run after this one
    assert "| JOINT+COOP | NORM_ADD | 0.3 | ours" not in (proj / "results/tables/rfrs_table9.md").read_text()


def test_a_theta_edit_reruns_only_the_two_stage_cells_and_their_tables(project):
    """TGDT's theta weighs S_l in the two-stage score: neither training, indexing nor scoring reads it. The
    inference-time benchmark times TGDT-GL whole (its ranking too), in one run with the other methods."""
    proj, _ = project
    with edited(proj / "params.yaml", _param_edit("dual", "theta", 0.25)):
        dry = run(["snakemake", "-n", "-p", "tgdt_all"], proj).stdout
    assert _rules(dry) == {"rerank_evaluate", "rerank_evaluate_variants_tgdt", "benchmark_inference_time",
                           "paper_table", "paper_figure", "track_cells", "tgdt_all", "headline_tgdt",
                           "gallery"}, dry  # the gallery shows TGDT-GL's fused ranking
    cells = {line.split("--out ")[1].split()[0] for line in dry.splitlines() if "itr rerank evaluate" in line
             and "--out " in line}
    assert cells and all("/tgdt_gl/" in c for c in cells), cells
    tables = set(re.findall(r"--out results/tables/(tgdt_\w+)", dry))
    # the tables with two-stage cells or the benchmark, and the claims, which read them
    assert tables == {"tgdt_table1", "tgdt_table2", "tgdt_table3", "tgdt_table4", "tgdt_table5", "tgdt_figure1",
                      "tgdt_figure6", "tgdt_figure7", "tgdt_evaluator", "tgdt_claims"}, tables


def _rules(dry_run: str) -> set[str]:
    return {line.split()[1][:-1] for line in dry_run.splitlines() if line.startswith(("rule ", "localrule "))}


@pytest.mark.slow  # five Snakemake runs and a retrained chain (~1.5 min): past CI's budget on an AVX2 runner
def test_a_failed_job_after_a_param_edit_leaves_no_result_up_to_date(project):
    """Issue 13, finding 2: a training job that fails after a param edit (Snakemake then deletes its model)
    used to leave the old metrics "up to date"; every job downstream names its inputs' content in its params."""
    proj, _ = project
    # Figure 3's smallest BE (.test: ablations.sample_sizes [30], auxiliary.protocol subset10): the BE with the
    # fewest jobs downstream, so rebuilding it afterwards is quick.
    target = "results/metrics/rfrs_aux_sizes/n30/be/shapes/subset10.json"
    before = (proj / target).read_bytes()
    with edited(proj / "params.yaml", _param_edit("be", "steps_per_epoch", 100_000)):  # more than a pass: fails
        failed = run(["snakemake", target], proj, check=False)
        assert failed.returncode != 0
        assert "exceeds one pass" in (proj / "logs/train/rfrs_aux_sizes/n30/be.log").read_text()
        assert not (proj / "models/rfrs_aux_sizes/n30/be.pt").exists()
        dry = run(["snakemake", "-n", target], proj).stdout
        assert "Nothing to be done" not in dry and {"train", "build_index", "evaluate"} <= _rules(dry), dry
    dry = run(["snakemake", "-n", target], proj).stdout  # the old params again: still the deleted model to rebuild
    assert {"train", "build_index", "evaluate"} <= _rules(dry), dry
    run(["snakemake", "all"], proj)
    assert (proj / target).read_bytes() == before  # the same params rebuild the same numbers
    assert "Nothing to be done" in run(["snakemake", "-n", "all"], proj).stdout


def _hint(error: Exception) -> list[str]:
    """The command a repair hint gives (the message's last clause, from 'snakemake' on)."""
    return str(error)[str(error).rindex("snakemake"):].split()


def test_every_repair_hint_is_a_command_that_repairs(project, monkeypatch):
    """Issue 13, finding 7: "re-run extraction" used to answer "Nothing to be done". Damage one file of each
    artifact, take the command its error names, run it, and the artifact reads again, byte-identical."""
    from itr.data.dataset import DatasetError, read_dataset
    from itr.data.images import ImageError, load_image
    from itr.features.store import FeatureStore, FeatureStoreError
    from itr.index import IndexedCollection, IndexFileError

    proj, _ = project
    monkeypatch.chdir(proj)  # paths as the workflow gives them, so the hints name workflow targets
    image = next(Path("data/shapes/images/test").glob("*.png"))
    cases = [
        (image, ImageError, lambda: load_image(image)),
        (Path("data/shapes/captions.parquet"), DatasetError, lambda: read_dataset("data/shapes")),
        (Path("features/shapes/shard-00000.regions.npy"), FeatureStoreError, lambda: FeatureStore("features/shapes")),
        (Path("indexes/rfrs/be/shapes/images.faiss"), IndexFileError,
         lambda: IndexedCollection(Path("indexes/rfrs/be/shapes"))),
    ]
    for victim, error, read in cases:
        good = victim.read_bytes()
        victim.write_bytes(good[: len(good) // 2])
        with pytest.raises(error) as caught:
            read()
        hint = _hint(caught.value)
        run(hint, proj)
        read()
        assert victim.read_bytes() == good, hint
    assert "Nothing to be done" in run(["snakemake", "-n", "all"], proj).stdout


@pytest.fixture(scope="module")
def report(project):
    proj, _ = project
    run(["snakemake", "all", "--report", "report.html"], proj)  # a target: without, 9.27's report finds no rule graph
    return proj / "report.html"


def test_the_report_has_a_category_per_paper_and_a_subcategory_per_table(project, report):
    proj, _ = project
    page = report.read_text()
    shown = json.loads(re.search(r"categories = (\{.*?\});", page).group(1))  # the report's own index of results
    expected = {name: {t.name: [f"results/tables/{name}_{t.name}.html"] + ([f"results/tables/{name}_{t.name}.png"]
                                                                           if t.png else [])
                       for t in papers.load(name).targets} for name in papers.PAPERS}
    expected["extended ground truth"] = {"eccv_all": [f"{layout.EXTENDED_REPORT}.html"]}  # every paper's models
    params = yaml.safe_load((proj / "params.yaml").read_text())
    for name in papers.PAPERS:  # each paper's galleries, one subcategory
        stems = papers.gallery_specs(name, papers.plan(name, params), params)
        if stems:
            expected[name]["galleries"] = [f"{stem}.html" for stem in stems]
        if papers.histories(papers.plan(name, params)):  # and validation curves of every model it trains
            expected[name]["training curves"] = [layout.CURVES.format(paper=name)]
    expected["detector"] = {"shapes": [layout.DETECTOR_CURVES.format(dataset="shapes")]}  # its AP per class, mAP
    assert {p: {t: sorted(files) for t, files in targets.items()} for p, targets in shown.items()} == expected


@needs_browser
def test_in_a_browser_the_report_shows_every_paper_and_a_tables_caption_and_rows(report, tmp_path):
    from selenium.webdriver.common.by import By

    with headless_browser(tmp_path / "profile") as browser:
        browser.get(report.as_uri())
        menu = open_report_entry(browser, [])  # the landing page's menu lists the result categories
        assert "RESULTS" in menu.split("\n"), menu[:300]
        for name in papers.PAPERS:  # each paper's category is one of them
            browser.find_element(By.XPATH, f"//a[normalize-space()='{name}']")
        shown = open_report_entry(browser, ["rfrs", "table1"], "results/tables/rfrs_table1.html")
        assert "Table 1 of Geigle et al. (2022)" in shown and "SEP+COOP" in shown, shown[:500]
        assert {"paper", "ours"} <= set(shown.split()), shown[:500]  # the paper's numbers beside ours
        browser.save_screenshot(str(tmp_path / "report.png"))
