"""A paper's results in MLflow, checked over MLflow's REST API on a tracking server this test starts on 127.0.0.1:
its own experiment, cell runs tagged by table, the table-building run's artifacts, and nothing new when nothing
changed."""
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from itr.config import TrackingConfig
from itr.mirror import compare_paper, mirror_paper

BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a real server: ~20 s to start


def _serve(command: list[str], cwd: Path) -> tuple[subprocess.Popen, str]:
    """Start an MLflow server command on a free port of 127.0.0.1 and wait until it answers: (process, url).
    It runs in a session of its own, so that _stop ends its uvicorn workers too (they outlive a terminated parent)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = cwd / "server.log"
    proc = subprocess.Popen([str(BIN / command[0]), *command[1:], "--host", "127.0.0.1", "--port", str(port)],
                            cwd=cwd, stdout=subprocess.DEVNULL, stderr=open(log, "w"), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return proc, url
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or busy starting up
            time.sleep(0.5)
        assert proc.poll() is None, log.read_text()[-3000:]
    _stop(proc)
    pytest.fail(f"{' '.join(command)} did not answer on {url}: {log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """End a server _serve started, and every process of its session."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    proc, url = _serve(["mlflow", "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
                        "--artifacts-destination", str(root / "artifacts"), "--workers", "1"], root)
    yield url
    _stop(proc)


def _cell(path: Path, rsum: float) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"protocol": "full", "method": "be", "metrics": {"t2i/R@1": rsum / 6, "rsum": rsum}}))
    return str(path)


def _api(url: str, endpoint: str, **body) -> dict:
    answer = requests.post(f"{url}/api/2.0/mlflow/{endpoint}", json=body, timeout=30) if body else \
        requests.get(f"{url}/api/2.0/mlflow/{endpoint}", timeout=30)
    assert answer.ok, answer.text
    return answer.json()


def test_a_papers_cells_and_tables_reach_its_own_experiment_over_rest(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = TrackingConfig(uri=server, experiment="itr")
    be = _cell(tmp_path / "results/metrics/p/be/shapes/full.json", 300.0)
    coop = _cell(tmp_path / "results/metrics/p/sep_coop/shapes/full.json", 320.0)
    (tmp_path / "p_table1.md").write_text("| row | rsum |\n")
    (tmp_path / "p_figure1.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = mirror_paper(cfg, "p", {be: ["table1"], coop: ["table1", "table2"]},
                       [str(tmp_path / "p_table1.md"), str(tmp_path / "p_figure1.png")], log=lambda *_: None)

    exp = _api(server, "experiments/get-by-name?experiment_name=itr/p")["experiment"]  # one experiment per paper
    runs = _api(server, "runs/search", experiment_ids=[exp["experiment_id"]],
                filter="tags.`table:table2` = 'true'")["runs"]
    assert [r["info"]["run_name"] for r in runs] == ["p/sep_coop/shapes/full"]  # tagged by every table reading it
    tags = {t["key"]: t["value"] for t in runs[0]["data"]["tags"]}
    assert tags["paper"] == "p" and tags["table:table1"] == "true" and {"git_commit", "params_hash"} <= set(tags)
    assert {m["key"]: m["value"] for m in runs[0]["data"]["metrics"]}["rsum"] == 320.0
    listed = {f["path"] for d in ("tables", "figures") for f in _api(
        server, f"artifacts/list?run_id={out['tables']}&path={d}").get("files", [])}
    assert listed == {"tables/p_table1.md", "figures/p_figure1.png"}  # the table-building run's artifacts

    again = mirror_paper(cfg, "p", {be: ["table1"], coop: ["table1", "table2"]},
                         [str(tmp_path / "p_table1.md"), str(tmp_path / "p_figure1.png")], log=lambda *_: None)
    assert again == out  # nothing changed: no new run
    _cell(tmp_path / "results/metrics/p/be/shapes/full.json", 310.0)
    changed = mirror_paper(cfg, "p", {be: ["table1"], coop: ["table1", "table2"]},
                           [str(tmp_path / "p_table1.md"), str(tmp_path / "p_figure1.png")], log=lambda *_: None)
    assert changed["cells"]["p/be/shapes/full"] != out["cells"]["p/be/shapes/full"]
    assert changed["cells"]["p/sep_coop/shapes/full"] == out["cells"]["p/sep_coop/shapes/full"]

    shown = compare_paper(cfg, "p", table="table1")  # itr runs compare --paper p --table table1
    assert sorted(shown["cell"]) == ["p/be/shapes/full", "p/sep_coop/shapes/full"]
    assert shown.set_index("cell").loc["p/be/shapes/full", "rsum"] == 310.0  # the newest run of each cell
    assert list(compare_paper(cfg, "p", table="table2")["cell"]) == ["p/sep_coop/shapes/full"]


def test_the_readmes_mlflow_ui_shows_the_runs_of_the_projects_store(tmp_path, monkeypatch):
    """The README's `mlflow ui` line, as written (plus a free port), on a store that tracking wrote."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    command = re.search(r"^(mlflow ui [^#\n]*?)\s+#", readme, re.M).group(1).split()
    store = command[command.index("--backend-store-uri") + 1]
    assert store == "sqlite:///mlflow.db" == TrackingConfig().uri  # the project's store, as params.yaml names it
    monkeypatch.chdir(tmp_path)
    cell = _cell(tmp_path / "results/metrics/p/be/shapes/full.json", 300.0)
    mirror_paper(TrackingConfig(uri=store, experiment="itr"), "p", {cell: ["table1"]}, [], log=lambda *_: None)
    proc, url = _serve(command, tmp_path)
    try:
        exp = _api(url, "experiments/get-by-name?experiment_name=itr/p")["experiment"]
        runs = _api(url, "runs/search", experiment_ids=[exp["experiment_id"]])["runs"]
        assert sorted(r["info"]["run_name"] for r in runs) == ["p/be/shapes/full", "tables/p"]  # the cell's, the tables'
        assert {m["key"]: m["value"] for r in runs for m in r["data"].get("metrics", [])}["rsum"] == 300.0
    finally:
        _stop(proc)
