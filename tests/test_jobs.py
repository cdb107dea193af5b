"""Jobs die with their scheduler, never share a state directory, and end their MLflow runs (issue 13, finding 3)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from itr.config import TrackingConfig
from itr.jobs import StateLockedError, Terminated, state_lock
from itr.tracking import Tracker

ITR = str(Path(sys.executable).parent / "itr")


def test_a_second_job_on_one_state_directory_fails_at_once(tmp_path):
    with state_lock(tmp_path / "state"):
        with pytest.raises(StateLockedError, match=f"state is in use by pid {os.getpid()}"):
            with state_lock(tmp_path / "state"):
                pass
    with state_lock(tmp_path / "state"):  # released on exit
        pass


def test_a_second_trainer_is_refused(tiny_pipeline, tmp_path):
    from conftest import train_be

    root, text = tiny_pipeline
    with state_lock(tmp_path / "be_state"):
        with pytest.raises(StateLockedError, match="two jobs must not resume one state"):
            train_be(tmp_path, root / "data", root / "feat", tmp_path / "be_state", text)
    assert not (tmp_path / "be.pt").exists()


def _runs(uri, experiment):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    return {r.info.run_name: r.info.status for r in client.search_runs([client.get_experiment_by_name(experiment)
                                                                          .experiment_id])}


def test_terminated_runs_end_killed_and_orphans_are_closed(tmp_path):
    uri, cfg = f"sqlite:///{tmp_path}/mlflow.db", TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="e")
    with pytest.raises(Terminated):
        with Tracker(cfg, "sigterm"):
            raise Terminated()
    # A job killed with SIGKILL cannot end its run: it stays RUNNING until the next job on this host closes it.
    code = ("import os; from itr.config import TrackingConfig; from itr.tracking import Tracker; "
            f"t = Tracker(TrackingConfig(uri={uri!r}, experiment='e'), 'sigkill').__enter__(); "
            "os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code])
    assert _runs(uri, "e") == {"sigterm": "KILLED", "sigkill": "RUNNING"}
    with Tracker(cfg, "next"):
        pass
    assert _runs(uri, "e") == {"sigterm": "KILLED", "sigkill": "KILLED", "next": "FINISHED"}


def test_a_real_sigterm_ends_a_tracked_jobs_run_killed(tmp_path):
    """The signal itself, not a raised Terminated: the handler every itr job installs turns it into KILLED."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code = ("import time; from itr.config import TrackingConfig; from itr.jobs import die_with_scheduler; "
            "from itr.tracking import Tracker; die_with_scheduler(); "
            f"t = Tracker(TrackingConfig(uri={uri!r}, experiment='e'), 'job')\n"
            "with t:\n    print('ready', flush=True); time.sleep(120)")
    job = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        lines = iter(job.stdout.readline, "")  # until "ready" or the end of its output (the job died)
        assert any(line.strip() == "ready" for line in lines), "the tracked job ended before its run started"
        job.send_signal(signal.SIGTERM)
        assert job.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        job.kill()
        job.stdout.close()
    assert _runs(uri, "e") == {"job": "KILLED"}


SLOW_SHAPES = {"captions_per_image": 5, "domain": "plain", "image_size": 64, "languages": ["en"], "max_objects": 4,
               "min_objects": 1, "n_test": 10, "n_train": 4000, "n_val": 10, "noise": 0.08, "seed": 0,
               "twin_fraction": 0.5}


def _job_pid(where: Path, timeout: float = 60) -> int:
    """The pid of the itr process running ``itr data shapes`` in directory ``where``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    cwd = os.readlink(proc / "cwd")
                except OSError:
                    continue
                if cwd == str(where) and "data shapes" in cmd and "bash" not in cmd.split()[0]:
                    return int(proc.name)
        time.sleep(0.2)
    raise AssertionError(f"no itr job started in {where}")


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


@pytest.mark.integration
@pytest.mark.parametrize("victim", ["snakemake", "wrapper"])
def test_killing_snakemake_or_the_rule_shell_kills_the_job(tmp_path, victim):
    (tmp_path / "shapes.json").write_text(json.dumps(SLOW_SHAPES))
    (tmp_path / "Snakefile").write_text(
        "from itr.jobs import mark_scheduler\n"
        "mark_scheduler()  # as workflow/Snakefile does\n"
        "rule data:\n"
        "    output: 'data/manifest.json'\n"
        f"    shell: '{ITR} data shapes --config \"$(cat shapes.json)\" --out data > job.log 2>&1'\n")
    cmd = [str(Path(sys.executable).parent / "snakemake"), "-c1", "data/manifest.json"]
    smk = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    job = _job_pid(tmp_path)
    while "render train" not in (tmp_path / "job.log").read_text():  # the job is at work
        time.sleep(0.2)
    wrapper = int(Path(f"/proc/{job}/stat").read_text().rsplit(")", 1)[1].split()[1])
    os.kill(smk.pid if victim == "snakemake" else wrapper, signal.SIGKILL)
    assert _gone(job), f"the itr job outlived its {victim}"
    smk.wait(timeout=30) if victim == "wrapper" else None
    time.sleep(3)
    assert not (tmp_path / "data" / "manifest.json").exists()  # nothing published after the kill
    # the rerun (Snakemake marks the killed job incomplete) builds the dataset the uninterrupted way
    subprocess.run(cmd + ["--rerun-incomplete", "--unlock"], cwd=tmp_path, capture_output=True)
    out = subprocess.run(cmd + ["--rerun-incomplete"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    from itr.data.dataset import dataset_manifest

    assert dataset_manifest(tmp_path / "data")["images"] == 4020
    assert not [f for f in (tmp_path / "data").rglob("*") if ".tmp" in f.name]  # the killed job's leftovers are gone


def test_a_killed_writers_temporary_files_are_removed_by_the_next_job(tmp_path):
    """SIGKILL skips itr.atomic.replacing's cleanup (the fault suite found a `train-000017.png.tmp1162` left in a
    dataset); the next job on that directory removes such files, and never a live writer's."""
    from itr.atomic import remove_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / "images").mkdir()
    stale = tmp_path / "images" / f"a.png.tmp{dead}"
    stale_npy = tmp_path / f"s.regions.npy.tmp{dead}.npy"
    live = tmp_path / f"b.png.tmp{os.getpid()}"
    for f in (stale, stale_npy, live):
        f.write_bytes(b"half")
    assert remove_stale_temporaries(tmp_path) == 2
    assert not stale.exists() and not stale_npy.exists() and live.exists()
