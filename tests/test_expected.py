import json

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
