import multiprocessing as mp

from itr.config import TrackingConfig
from itr.tracking import Tracker, compare_runs

N_JOBS, N_STEPS = 4, 30


def _job(uri, k):
    with Tracker(TrackingConfig(uri=uri, experiment="par"), f"job/{k}", params={"k": k, "nested": {"lr": 0.1}},
                 flush_every_s=0.0) as run:  # flush on every log call: the most contended case
        for step in range(N_STEPS):
            run.log({"train/loss": 1.0 / (step + 1), "t2i/R@1": float(k)}, step)


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
