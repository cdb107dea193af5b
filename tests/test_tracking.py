import multiprocessing as mp

import pytest

from itr.config import TrackingConfig
from itr.tracking import Tracker, compare_runs

N_JOBS, N_STEPS = 4, 30


def _job(uri, k):
    with Tracker(TrackingConfig(uri=uri, experiment="par"), f"job/{k}", params={"k": k, "nested": {"lr": 0.1}},
                 flush_every_s=0.0) as run:  # flush on every log call: the most contended case
        for step in range(N_STEPS):
            run.log({"train/loss": 1.0 / (step + 1), "t2i/R@1": float(k)}, step)


@pytest.mark.integration  # four processes importing MLflow (~13 s): past the unit loop's budget
def test_parallel_jobs_share_one_sqlite_store_without_losing_runs(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_job, args=(uri, k)) for k in range(N_JOBS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * N_JOBS

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("par")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.run_name for r in runs) == [f"job/{k}" for k in range(N_JOBS)]
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.params["nested.lr"] == "0.1" and "git_commit" in r.data.tags
        history = client.get_metric_history(r.info.run_id, "train/loss")
        assert sorted(m.step for m in history) == list(range(N_STEPS))
        assert r.data.metrics["t2i/R_at_1"] == float(r.data.params["k"])
    table = compare_runs(TrackingConfig(uri=uri, experiment="par"))
    assert len(table) == N_JOBS and "t2i/R_at_1" in table.columns
    only = compare_runs(TrackingConfig(uri=uri, experiment="par"), name="job/1%")
    assert list(only["mlflow.runName"]) == ["job/1"]


def test_failed_job_marks_its_run_failed(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    try:
        with Tracker(TrackingConfig(uri=uri, experiment="e"), "boom"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("e").experiment_id])
    assert run.info.status == "FAILED"


def test_mirroring_cells_makes_one_run_per_new_content(tmp_path):
    """A run per metrics file, named after its path; mirroring again adds runs only for files whose content
    changed (restored content included), and every run carries the file's params and metrics."""
    import json

    from mlflow.tracking import MlflowClient

    from itr.tracking import mirror_cells

    cfg = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="cells")
    cells = []
    for n, name in enumerate(("v/be/shapes/full", "v/sep_coop/shapes/subset/k=10")):
        path = tmp_path / "results/metrics" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"method": name.split("/")[1], "protocol": "full", "k": None,
                                    "metrics": {"t2i/R@1": 10.0 + n, "rsum": 100.0 + n}, "per_group": None}))
        cells.append(path)
    first = mirror_cells(cfg, cells, log=lambda _: None)
    assert set(first) == {"v/be/shapes/full", "v/sep_coop/shapes/subset/k=10"}
    assert mirror_cells(cfg, cells, log=lambda _: None) == first  # nothing new: the same runs
    cells[0].write_text(cells[0].read_text().replace("100.0", "99.0"))
    third = mirror_cells(cfg, cells, log=lambda _: None)
    assert third["v/be/shapes/full"] != first["v/be/shapes/full"]
    assert third["v/sep_coop/shapes/subset/k=10"] == first["v/sep_coop/shapes/subset/k=10"]
    client = MlflowClient(tracking_uri=cfg.uri)
    runs = client.search_runs([client.get_experiment_by_name("cells").experiment_id])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    latest = client.get_run(third["v/be/shapes/full"])
    assert latest.data.metrics == {"t2i/R_at_1": 10.0, "rsum": 99.0}
    assert latest.data.params == {"method": "be", "protocol": "full"} and latest.data.tags["file"] == str(cells[0])
    cells[0].write_text(cells[0].read_text().replace("99.0", "100.0"))  # back to the first content: a new run
    restored = mirror_cells(cfg, cells, log=lambda _: None)["v/be/shapes/full"]
    assert restored not in (first["v/be/shapes/full"], third["v/be/shapes/full"])


def test_a_papers_tables_over_seeds_get_their_own_run_beside_its_tables(tmp_path, monkeypatch):
    """mirror_paper's tables_run: the seeds/<paper> run holds the tables over seeds; the same files mirrored again
    find it, and tables/<paper> (same files, other run) is neither reused for it nor replaced by it."""
    import json

    from itr.mirror import compare_paper, mirror_paper

    monkeypatch.chdir(tmp_path)  # MLflow's artifact root: ./mlruns
    cfg = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="x")
    cell = tmp_path / "results/metrics/seed1/v/be/shapes/full.json"
    cell.parent.mkdir(parents=True)
    cell.write_text(json.dumps({"method": "be", "protocol": "full", "metrics": {"rsum": 400.0}}))
    table = tmp_path / "p_table1.md"
    table.write_text("| a |\n")
    quiet = {"log": lambda _: None}
    plain = mirror_paper(cfg, "p", {str(cell): ["table1"]}, [str(table)], **quiet)
    seeds = mirror_paper(cfg, "p", {str(cell): ["table1", "seeds/table1"]}, [str(table)], tables_run="seeds/p", **quiet)
    assert seeds["tables"] != plain["tables"]
    assert mirror_paper(cfg, "p", {str(cell): ["table1"]}, [str(table)], tables_run="seeds/p", **quiet)["tables"] \
        == seeds["tables"]
    assert list(compare_paper(cfg, "p", table="seeds/table1")["cell"]) == ["seed1/v/be/shapes/full"]
