"""Fault injection on the tiny .test config (issue 13): kill -9 a job of every stage that writes state, at a
seeded random point of its run, rerun, and the stage's outputs are byte-identical to the uninterrupted run's.

Kill points are fractions of the job's own uninterrupted duration (its Snakemake benchmark file), drawn from
one seeded generator, so a failure names a reproducible point. The matrix (stage, kill time, outcome) is
written to ``fault_matrix.json`` in the project for the closing note of the issue. Afterwards the whole DAG
runs again and every metric equals the uninterrupted run's (``itr check-scores`` with zero tolerance).
"""
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import BIN, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SEED = 13

# stage -> (rule, target, the outputs compared byte for byte; a directory means every file in it)
STAGES = {
    "generate": ("shapes_generate", "data/shapes/manifest.json", ["data/shapes"]),
    "detector": ("train_detector", "models/detector/shapes.pt", ["models/detector/shapes.pt",
                                                                  "results/metrics/detector/shapes.json"]),
    "extract": ("extract_features", "features/shapes/manifest.json", ["features/shapes"]),
    "train BE": ("train", "models/rfrs/be.pt", ["models/rfrs/be.pt"]),
    "train CE": ("train", "models/rfrs/ce.pt", ["models/rfrs/ce.pt"]),
    "train JOINT": ("train", "models/rfrs/joint.pt", ["models/rfrs/joint.pt"]),
    "index": ("build_index", "indexes/rfrs/be/shapes/collection.json", ["indexes/rfrs/be/shapes"]),
    # the CE's every pair (the COOP rows on its collection and protocol read their scores from this file)
    "rerank score": ("rerank_score", "scores/rfrs/ce/shapes/subset.npz", ["scores/rfrs/ce/shapes/subset.npz"]),
    "tables": ("paper_table", "results/tables/rfrs_table1.md", ["results/tables/rfrs_table1.md",
                                                               "results/tables/rfrs_table1.csv"]),
}
# Resumable state a stage keeps outside its outputs. It is removed before the forced run, so the killed job is a
# run from scratch (with the finished state of the first build it would only republish) and the rerun resumes
# whatever the killed job left.
STATE = {"detector": ["models/detector/.state/shapes"], "extract": ["features/shapes"],
         "train BE": ["models/rfrs/.state/be"], "train CE": ["models/rfrs/.state/ce"],
         "train JOINT": ["models/rfrs/.state/joint"]}
BENCHMARKS = {"generate": "shapes_generate/shapes", "detector": "train_detector", "extract": "extract_features/shapes",
              "train BE": "train/rfrs/be", "train CE": "train/rfrs/ce", "train JOINT": "train/rfrs/joint",
              "index": "build_index/rfrs/be/shapes", "rerank score": "rerank_score/rfrs/ce/shapes/subset",
              "tables": "table/rfrs_table1"}


def _files(proj: Path, outputs) -> dict[str, bytes]:
    """The outputs' bytes; a score file's arrays only (its metadata records the seconds it took)."""
    found = {}
    for out in outputs:
        path = proj / out
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file():
                if f.suffix == ".npz":
                    with np.load(f) as z:
                        found[str(f.relative_to(proj))] = b"".join(z[k].tobytes() for k in sorted(z.files) if k != "meta")
                else:
                    found[str(f.relative_to(proj))] = f.read_bytes()
    return found


def _job(proj: Path, snakemake: subprocess.Popen, timeout: float = 120) -> int | None:
    """The pid of the itr process Snakemake started in the project (the one forced job), None if it ended first."""
    deadline = time.time() + timeout
    while time.time() < deadline and snakemake.poll() is None:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue
            if cwd == str(proj) and "/itr " in cmd and not cmd.startswith(("bash", "/bin/bash")):
                return int(proc.name)
        time.sleep(0.05)
    return None


def _duration(proj: Path, stage: str) -> float:
    return float(pd.read_csv(proj / "logs/benchmarks" / f"{BENCHMARKS[stage]}.tsv", sep="\t")["s"].iloc[-1])


def _expected_scores(proj: Path, path: Path) -> None:
    """Every metric of the uninterrupted run as an expected-scores file (itr.expected) with zero tolerance.

    The paper's own expected_scores.yaml holds the full-scale run's scores; on the tiny config this is what
    ``check_scores`` means: the numbers after the faults are the numbers before them."""
    expected = {}
    for f in sorted((proj / "results/metrics").rglob("*.json")):
        metrics = json.loads(f.read_text())
        scores = metrics.get("metrics", {"mAP@0.5": metrics.get("mAP@0.5")})
        if all(isinstance(v, float) for v in scores.values()):
            expected[str(f.relative_to(proj))] = {"tolerance": 0.0, "scores": scores}
    path.write_text(yaml.safe_dump({"expected": expected}))


def test_kill_9_at_a_seeded_point_of_every_stage_then_rerun_gives_identical_outputs(project, tmp_path):
    # On a copy of the built project: rerun jobs record their own seconds (training histories, score timings), so
    # the shared project would no longer be what dvc.lock says for the tests after this one.
    proj = tmp_path / "project"
    shutil.copytree(project[0], proj, symlinks=True)
    _expected_scores(proj, proj / "uninterrupted_scores.yaml")
    rng = np.random.default_rng(SEED)
    matrix = []
    for stage, (rule, target, outputs) in STAGES.items():
        reference = _files(proj, outputs)
        for state in STATE.get(stage, []):
            shutil.rmtree(proj / state)
        fraction = float(rng.uniform(0.05, 0.4))  # of the fixture's time, jobs two at a time: alone, one is quicker
        kill_after = fraction * _duration(proj, stage)
        smk = subprocess.Popen([str(BIN / "snakemake"), "--forcerun", rule, "--cores", "1", target], cwd=proj,
                               env=dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", PYTHONPATH=str(proj / "src"),
                                        SNAKEMAKE_PROFILE="profiles/ci"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        job = _job(proj, smk)
        started = time.time()
        time.sleep(kill_after)
        try:
            os.kill(job, signal.SIGKILL)
            killed, killed_at = True, time.time() - started
        except (ProcessLookupError, TypeError):  # the job finished first (TypeError: it ended before it was seen)
            killed, killed_at = False, None
        smk.wait(timeout=600)
        rerun = run(["snakemake", "--cores", "1", target], proj)
        resumed = "resum" in (proj / "logs" / f"{BENCHMARKS[stage]}.log").read_text()
        identical = _files(proj, outputs) == reference
        matrix.append({"stage": stage, "rule": rule, "kill_after_s": round(kill_after, 2),
                       "kill_point": round(fraction, 3), "job_killed_mid_run": killed,
                       "killed_at_s": killed_at and round(killed_at, 2), "rerun_rc": rerun.returncode,
                       "rerun_resumed_state": resumed,
                       "outputs_identical": identical})
        assert identical, f"{stage}: outputs differ after a kill at {fraction:.2f} of its run and a rerun"
    (proj / "fault_matrix.json").write_text(json.dumps(matrix, indent=2))
    print(json.dumps(matrix, indent=2))
    assert sum(m["job_killed_mid_run"] for m in matrix) >= len(STAGES) - 2, matrix  # the kills landed
    run(["snakemake", "all"], proj)
    run([str(BIN / "itr"), "check-scores", "--expected", "uninterrupted_scores.yaml"], proj)
    assert "Nothing to be done" in run(["snakemake", "-n", "all"], proj).stdout
