"""A paper's results in MLflow: its own experiment, its cells' runs tagged by table, its tables as artifacts.

``itr.tracking.mirror_cells`` makes one run per metrics file whose content is new; here a paper's files go to the
experiment ``<tracking.experiment>/<paper>`` (one per paper, so the MLflow UI lists a paper's runs apart), each
cell's run is tagged with the paper and every table that reads it (``table:<target> = true``), and one more run,
``tables/<paper>``, holds the paper's tables and figures as artifacts, made again only when one of them changed.
Everything else (git commit, params hash, the content digest) is the tags mirror_cells already sets.

Example:
    >>> mirror_paper(TrackingConfig(), "<paper>", {"results/metrics/<variant>/be/shapes/full.json": ["table1"]},
    ...              ["results/tables/<paper>_table1.md"])
    {'cells': {'<variant>/be/shapes/full': '3f2a...'}, 'tables': '9c1d...'}
    >>> compare_paper(TrackingConfig(), "<paper>", table="table1")  # a DataFrame: a row per cell of Table 1
"""
from __future__ import annotations

import time
from pathlib import Path

from itr.config import TrackingConfig
from itr.tracking import MIRROR_SOURCE, NoTrackingStoreError, cell_run_name, git_commit, mirror_cells, store_lock

TABLES_SOURCE = "tables"  # the ``source`` tag of a paper's table-building run


def paper_experiment(cfg: TrackingConfig, paper: str) -> TrackingConfig:
    """The tracking settings of a paper's own experiment."""
    return TrackingConfig(uri=cfg.uri, experiment=f"{cfg.experiment}/{paper}")


def table_tag(target: str) -> str:
    return f"table:{target}"


def mirror_paper(cfg: TrackingConfig, paper: str, cell_tables: dict[str, list[str]], artifacts: list[str],
                 log=print, tables_run: str | None = None) -> dict:
    """Mirror a paper's cells (path -> the tables that read it) and its table files into its experiment.
    ``tables_run``: the name of the run holding the table files (``tables/<paper>``; ``seeds/<paper>`` for its
    tables over seeds). Returns {"cells": {run name: run id}, "tables": the table-building run's id}."""
    from mlflow.tracking import MlflowClient

    from itr.manifest import content_digest, file_digest

    if not cell_tables:
        raise ValueError(f"no metrics files of {paper} to mirror")
    runs = mirror_cells(paper_experiment(cfg, paper), [Path(c) for c in cell_tables], log=log)
    digest = content_digest({str(a): file_digest(a) for a in artifacts})
    tables_run = tables_run or f"tables/{paper}"
    with store_lock(cfg.uri):
        client = MlflowClient(tracking_uri=cfg.uri)
        for path, tables in cell_tables.items():
            run_id = runs[cell_run_name(path)]
            for key, value in {"paper": paper, **{table_tag(t): "true" for t in tables}}.items():
                client.set_tag(run_id, key, value)
        exp_id = client.get_run(next(iter(runs.values()))).info.experiment_id  # the paper's, made by mirror_cells
        same = client.search_runs([exp_id], f"tags.source = '{TABLES_SOURCE}' and tags.digest = '{digest}' and "
                                            f"tags.`mlflow.runName` = '{tables_run}'", max_results=1)
        if same:
            log(f"the tables of {paper} are unchanged since run {same[0].info.run_id}")
            return {"cells": runs, "tables": same[0].info.run_id}
        run = client.create_run(exp_id, run_name=tables_run, start_time=int(time.time() * 1000),
                                tags={"source": TABLES_SOURCE, "paper": paper, "digest": digest,
                                      "git_commit": git_commit()})
        for a in artifacts:
            client.log_artifact(run.info.run_id, str(a), artifact_path="figures" if str(a).endswith(".png")
                                else "tables")
        client.set_terminated(run.info.run_id, status="FINISHED")
    log(f"logged {len(artifacts)} table and figure files of {paper} as artifacts of run {run.info.run_id}")
    return {"cells": runs, "tables": run.info.run_id}


def compare_paper(cfg: TrackingConfig, paper: str, table: str | None = None, metric_prefix: str = ""):
    """A pandas DataFrame of the paper's newest cell runs (those of ``table``, when given): one row per cell,
    its params hash and metrics, newest first."""
    import mlflow

    if cfg.uri.startswith("sqlite:///") and not Path(cfg.uri.removeprefix("sqlite:///")).exists():  # read-only
        raise NoTrackingStoreError(f"no tracking store at {cfg.uri}; build a paper target first (snakemake <paper>_all)")
    where = f"tags.source = '{MIRROR_SOURCE}'" + (f" and tags.`{table_tag(table)}` = 'true'" if table else "")
    mlflow.set_tracking_uri(cfg.uri)
    with store_lock(cfg.uri):
        df = mlflow.search_runs(experiment_names=[paper_experiment(cfg, paper).experiment], filter_string=where,
                                order_by=["attributes.start_time DESC"], output_format="pandas")
    if df.empty:
        return df
    df = df.drop_duplicates("tags.mlflow.runName")  # the newest run of each cell
    metrics = sorted(c for c in df.columns if c.startswith("metrics." + metric_prefix))
    cols = ["tags.mlflow.runName", "start_time", "tags.params_hash", "tags.git_commit"] + metrics
    return df[[c for c in cols if c in df.columns]].rename(
        columns=lambda c: "cell" if c == "tags.mlflow.runName" else c.split(".", 1)[-1])
