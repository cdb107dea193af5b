"""The whole DAG on the tiny .test config, driven the way users drive it: dvc repro and snakemake.

One temporary project (a git + DVC repository holding this workflow) is built once per module.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from itr.models.tiny import make_tiny_bert

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.integration


def run(cmd, cwd, check=True):
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, shell=isinstance(cmd, str))
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    proj = tmp_path_factory.mktemp("project")
    for name in ("Snakefile", "workflow", "profiles", "dvc.yaml", ".dvcignore", "benchmarks"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, proj / name)
    params = yaml.safe_load((ROOT / ".test" / "params.yaml").read_text())
    params["text_encoder"]["path"] = str(make_tiny_bert(proj / "tiny-bert"))
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run("git init -q && git config user.email t@t && git config user.name t", proj)
    run("dvc init -q && dvc config core.analytics false && git add -A && git commit -qm init", proj)
    first = run(["dvc", "repro"], proj)
    return proj, first


def test_dvc_repro_builds_the_table_from_nothing(project):
    proj, first = project
    log = first.stdout + first.stderr
    assert "Using workflow specific profile profiles/default" in log
    # DVC rewrites the outputs it caches; each job must still run exactly once.
    for rule, n in (("train_detector", 1), ("extract_features", 1), ("train", 3), ("build_index", 2),
                    ("rerank_score", 4)):
        assert log.count(f"rule {rule}:") == n, rule
    table = (proj / "results/tables/rfrs_table1.md").read_text()
    for model in ("CE", "BE", "SEP+COOP", "JOINT+COOP", "JOINT+CE", "JOINT+BE"):
        assert f"| {model:<10} | ours " in table, model
    assert "first 20 test images" in table
    assert "| SEP+COOP   |   8 | ours" in (proj / "results/tables/rfrs_table8.md").read_text()
    assert "| JOINT+COOP | NORM_ADD | 0.9 | ours" in (proj / "results/tables/rfrs_table9.md").read_text()
    metrics = json.loads((proj / "results/metrics/rfrs/be/folds.json").read_text())
    assert metrics["protocol_label"] == "mean over 2 folds of 20 images" and len(metrics["per_group"]) == 2
    assert 0 <= metrics["metrics"]["rsum"] <= 600
    detector = json.loads((proj / "results/metrics/detector/shapes.json").read_text())
    assert 0.0 <= detector["mAP@0.5"] <= 1.0
    for name in ("shapes_generate", "train_detector", "extract_features", "train/ce", "rerank_score/sep_coop_subset",
                 "table/rfrs1"):
        assert (proj / "logs" / f"{name}.log").exists()
    shown = run(["dvc", "metrics", "show"], proj).stdout
    assert "BE.rsum" in shown or "rsum" in shown


def test_running_again_does_nothing(project):
    proj, _ = project
    assert "Nothing to be done" in run(["snakemake", "-n", "all"], proj).stdout + run(["snakemake", "-n", "all"], proj).stderr
    status = run(["dvc", "status"], proj).stdout
    assert "up to date" in status.lower(), status


def test_mlflow_has_training_and_evaluation_runs_with_curves(project):
    proj, _ = project
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{proj}/mlflow.db")
    exp = client.get_experiment_by_name("itr-test")
    names = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert {"train_detector/dataset=shapes", "train/model=be", "train/model=joint", "evaluate/method=be,protocol=full",
            "evaluate/method=sep_coop,protocol=subset"} <= set(names)
    history = client.get_metric_history(names["train/model=be"].info.run_id, "train/loss")
    assert len(history) >= 2
    joint = names["train/model=joint"].data.metrics
    assert {"train/loss/be", "train/loss/ce", "val/be/rsum", "val/ce/rsum"} <= set(joint)
    out = run([str(BIN / "itr"), "runs", "compare", "--uri", f"sqlite:///{proj}/mlflow.db",
               "--experiment", "itr-test"], proj).stdout
    assert "evaluate/method=be,protocol=full" in out


def test_evaluation_only_param_change_retrains_and_reextracts_nothing(project):
    proj, _ = project
    # evaluation.ks does not change which pairs the cross-encoder scores, so its cached scores are kept too
    watched = ["models/detector/shapes.pt", "features/shapes/manifest.json", "models/rfrs/be.pt",
               "indexes/rfrs/be/collection.json", "models/rfrs/joint.pt", "scores/rfrs/sep_coop/subset.npz",
               "scores/rfrs/ce/subset.npz"]
    before = {p: (proj / p).stat().st_mtime_ns for p in watched}
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["evaluation"]["ks"] = [1, 5, 10, 20]
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro"], proj).stdout
    for stage in ("data", "features", "models", "indexes"):
        assert f"Stage '{stage}' didn't change, skipping" in out, out
    assert "Running stage 'evaluation'" in out
    assert {p: (proj / p).stat().st_mtime_ns for p in watched} == before
    assert "t2i/R@20" in json.loads((proj / "results/metrics/rfrs/be/full.json").read_text())["metrics"]
    assert "t2i/R@20" in json.loads((proj / "results/metrics/rfrs/joint_coop/subset.json").read_text())["metrics"]
