import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from itr.cli import main
from itr.expected import check


def _setup(tmp_path, got):
    (tmp_path / "m.json").write_text(json.dumps({"metrics": {"rsum": got}}))
    return {"m.json": {"tolerance": 0.05, "scores": {"rsum": 400.0}}}


def test_scores_are_checked_both_ways(tmp_path):
    assert check(_setup(tmp_path, 400.04), tmp_path)[0]["status"] == "OK"
    assert check(_setup(tmp_path, 399.9), tmp_path)[0]["status"] == "FAIL"  # worse
    assert check(_setup(tmp_path, 400.1), tmp_path)[0]["status"] == "FAIL"  # better is suspicious too
    assert check({"absent.json": {"tolerance": 1, "scores": {"rsum": 1}}}, tmp_path)[0]["status"] == "MISSING"


def test_cli_exits_nonzero_and_writes_nothing_on_failure(tmp_path):
    import yaml

    (tmp_path / "expected.yaml").write_text(yaml.safe_dump({"expected": _setup(tmp_path, 390.0)}))
    out = tmp_path / "report.md"
    assert main(["check-scores", "--expected", str(tmp_path / "expected.yaml"), "--root", str(tmp_path),
                 "--out", str(out)]) == 1
    assert not out.exists()


@pytest.mark.integration  # a Snakemake DAG over the default params (about 4 s)
def test_snakemake_check_scores_checks_what_is_built_and_at_least_the_quick_target(tmp_path):
    """After the README's quick target, `snakemake check_scores` must not build every paper's models first; a metrics
    file built later joins its inputs (and so reruns the check)."""
    for name in ("Snakefile", "workflow", "profiles", "params.yaml", "src", "benchmarks"):
        (tmp_path / name).symlink_to(ROOT / name)

    def dry_run() -> str:
        out = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "check_scores"], cwd=tmp_path,
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    stats = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal", dry_run(), re.S).group(1)
    jobs = {line.split()[0]: int(line.split()[1]) for line in stats.splitlines()}
    assert jobs == {"shapes_generate": 1, "train_detector": 1, "extract_features": 1, "train": 1, "build_index": 1,
                    "evaluate": 1, "check_scores": 1}
    later = "results/metrics/tgdt/tgdt_g/shapes/full.json"  # another paper's expected file, as if built
    (tmp_path / later).parent.mkdir(parents=True)
    (tmp_path / later).write_text("{}")
    check_job = dry_run().split("rule check_scores:")[1]
    assert later in check_job.split("output:")[0]
