"""MLflow mirroring of training jobs and of evaluation cells, safe under parallel Snakemake jobs.

The metrics JSON files are the source of truth; MLflow is a view for comparing runs.
Every training job opens a ``Tracker``: one MLflow run named after its rule and wildcards, with
params, tags (git commit, params hash, rule) and metrics with step histories (curves while it trains).
Evaluation cells are mirrored after they are written, a paper's at once (``mirror_cells``, rule
``track_cells``): one run per metrics file, named after its path, made only when that file's content
is new, so a rebuild adds runs for the cells that changed and none for the others.

SQLite is a single-writer database, and several processes creating its schema or writing
at once fail with "database is locked" or migration races. So every write to a
``sqlite:///`` store happens under an exclusive ``fcntl`` lock on ``<db>.lock`` (local disk
only: POSIX locks are unreliable on NFS; on a cluster point ``tracking.uri`` at an
``mlflow server``), and metrics are buffered and written in batches.

A run ends FINISHED, FAILED (an exception), or KILLED (SIGTERM or Ctrl-C, itr.jobs.Terminated). A run whose
process died without unwinding (SIGKILL, a lost node) stays RUNNING in the store; the next Tracker opened on
this host closes such runs as KILLED, recognising them by the pid and process start time they recorded.

Example:
    >>> with Tracker(TrackingConfig(), "train/model=be", params={"lr": 5e-5}) as run:
    ...     run.log({"train/loss": 0.3}, step=10)
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import time
from pathlib import Path

from itr.config import TrackingConfig, params_hash
from itr.jobs import Terminated, alive, start_time


class NoTrackingStoreError(FileNotFoundError):
    """A read-only command was pointed at a tracking store that does not exist."""


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


@contextlib.contextmanager
def store_lock(uri: str):
    """Exclusive inter-process lock for a SQLite tracking store (no-op for servers)."""
    db = _sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(str(db) + ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "not-a-git-checkout"
    except (OSError, subprocess.TimeoutExpired):
        return "git-unavailable"


def _flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = str(v)[:6000]
    return out


def metric_key(name: str) -> str:
    """MLflow metric keys may not contain '@'; keep our names readable: t2i/R@1 -> t2i/R_at_1."""
    return name.replace("@", "_at_")


def _experiment_id(client, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    return exp.experiment_id if exp else client.create_experiment(name)


class Tracker:
    """One MLflow run for one job; use as a context manager. Fails the run on exceptions."""

    def __init__(self, cfg: TrackingConfig, run_name: str, params: dict | None = None, tags: dict | None = None,
                 flush_every_s: float = 5.0):
        self.cfg, self.run_name = cfg, run_name
        self.params, self.tags = params or {}, tags or {}
        self.flush_every_s = flush_every_s
        self._buffer: list = []
        self._last_flush = time.time()
        self.run_id: str | None = None

    def __enter__(self) -> "Tracker":
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        tags = {"git_commit": git_commit(), "params_hash": params_hash(self.params), "host": socket.gethostname(),
                "pid": str(os.getpid()), "pid_start": str(start_time()), **self.tags}
        with store_lock(self.cfg.uri):
            # Creating the client creates (and migrates) a new database: that must be locked too.
            self.client = MlflowClient(tracking_uri=self.cfg.uri)
            exp_id = _experiment_id(self.client, self.cfg.experiment)
            self.close_orphans(exp_id)
            run = self.client.create_run(exp_id, run_name=self.run_name, tags=tags)
            self.run_id = run.info.run_id
            params = [Param(k, v) for k, v in _flatten(self.params).items()]
            for s in range(0, len(params), 100):
                self.client.log_batch(self.run_id, params=params[s:s + 100])
        return self

    def close_orphans(self, exp_id: str) -> list[str]:
        """End as KILLED the RUNNING runs of this host whose process is gone (call under the store lock)."""
        runs = self.client.search_runs([exp_id], "attributes.status = 'RUNNING' and tags.host = "
                                       f"'{socket.gethostname()}'", max_results=1000)
        closed = []
        for run in runs:
            pid, started = run.data.tags.get("pid"), run.data.tags.get("pid_start")
            if pid and pid.isdigit() and started not in (None, "None") and not alive(int(pid), started):
                self.client.set_terminated(run.info.run_id, status="KILLED")
                closed.append(run.info.run_id)
        return closed

    def log(self, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._buffer += [Metric(metric_key(k), float(v), now, int(step)) for k, v in metrics.items()]
        if time.time() - self._last_flush > self.flush_every_s:
            self.flush()

    def set_tags(self, tags: dict) -> None:
        with store_lock(self.cfg.uri):
            for k, v in tags.items():
                self.client.set_tag(self.run_id, k, str(v))

    def flush(self) -> None:
        if not self._buffer:
            return
        with store_lock(self.cfg.uri):
            for s in range(0, len(self._buffer), 500):
                self.client.log_batch(self.run_id, metrics=self._buffer[s:s + 500])
        self._buffer, self._last_flush = [], time.time()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.flush()
        with store_lock(self.cfg.uri):
            killed = exc_type is not None and issubclass(exc_type, (Terminated, KeyboardInterrupt))
            self.client.set_terminated(self.run_id, status="KILLED" if killed else "FAILED" if exc_type else "FINISHED")


def compare_runs(cfg: TrackingConfig, metric_prefix: str = "", max_runs: int = 100, name: str | None = None):
    """A pandas DataFrame of the newest ``max_runs`` finished runs (those whose name is LIKE ``name``, with %
    as the wildcard, when given): name, start time, key params and metrics."""
    import mlflow

    db = _sqlite_path(cfg.uri)
    if db is not None and not db.exists():  # read-only: never create a database (or its directory) here
        raise NoTrackingStoreError(f"no tracking store at {db} ({cfg.uri}); the workflow's jobs create it at "
                                   "tracking.uri in params.yaml. Check --uri, or run a target first.")
    mlflow.set_tracking_uri(cfg.uri)
    with store_lock(cfg.uri):
        df = mlflow.search_runs(experiment_names=[cfg.experiment], max_results=max_runs,
                                filter_string="attributes.status = 'FINISHED'" + (
                                    f" and attributes.run_name LIKE '{name}'" if name else ""), output_format="pandas")
    if df.empty:
        return df
    metric_cols = sorted(c for c in df.columns if c.startswith("metrics." + metric_prefix))
    cols = ["tags.mlflow.runName", "start_time", "tags.params_hash"] + metric_cols
    out = df[[c for c in cols if c in df.columns]].rename(columns=lambda c: c.split(".", 1)[-1])
    return out.sort_values("start_time", ascending=False)


MIRROR_SOURCE = "metrics file"  # the ``source`` tag of a run mirroring one


def cell_run_name(path: str | Path) -> str:
    """A metrics file's run: its path under results/metrics, without .json ('baseline/be/shapes/full')."""
    return str(path).split("results/metrics/", 1)[-1].removesuffix(".json")


def mirror_cells(cfg: TrackingConfig, cells: list[Path], log=print) -> dict[str, str]:
    """One FINISHED run per metrics file (name: cell_run_name; params: what the file says it measured; metrics:
    its metrics), unless the newest run of that name mirrors the same content (tag ``digest``): a file edited
    and then restored gets a new run, so the newest run of a name always shows the file as it is.
    Returns {run name: run id}.

    One process and one store lock for all the cells: a cell's own job no longer imports MLflow.
    """
    import json

    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from itr.manifest import file_digest

    commit, now = git_commit(), int(time.time() * 1000)
    out, made = {}, 0
    with store_lock(cfg.uri):
        client = MlflowClient(tracking_uri=cfg.uri)
        exp_id = _experiment_id(client, cfg.experiment)
        newest, token = {}, None
        while True:  # the newest run mirroring each file: name -> (start time, digest, run id)
            page = client.search_runs([exp_id], f"tags.source = '{MIRROR_SOURCE}'", max_results=1000, page_token=token)
            for r in page:
                seen = (r.info.start_time, r.data.tags.get("digest"), r.info.run_id)
                newest[r.info.run_name] = max(newest.get(r.info.run_name, seen), seen)
            token = page.token
            if not token:
                break
        for path in cells:
            name, digest = cell_run_name(path), file_digest(path)
            if name in newest and newest[name][1] == digest:
                out[name] = newest[name][2]
                continue
            cell = json.loads(Path(path).read_text())
            run = client.create_run(exp_id, run_name=name, tags={"source": MIRROR_SOURCE, "file": str(path),
                                                                  "digest": digest, "git_commit": commit})
            params = {k: v for k, v in cell.items() if k not in ("metrics", "per_group") and v is not None}
            client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in _flatten(params).items()],
                             metrics=[Metric(metric_key(k), float(v), now, 0)
                                      for k, v in cell.get("metrics", {}).items()],
                             tags=[RunTag("params_hash", params_hash(params))])
            client.set_terminated(run.info.run_id, status="FINISHED")
            out[name], made = run.info.run_id, made + 1
    log(f"mirrored {len(cells)} metrics files to MLflow ({cfg.uri}, experiment {cfg.experiment}): {made} new runs, "
        f"{len(cells) - made} unchanged")
    return out
