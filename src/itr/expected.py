"""Expected scores, checked both ways (pyserini's "2CR" idea).

A paper's ``expected_scores.yaml`` (itr.papers.expected_scores) lists, per metrics file, the scores this workflow produced on
the reference machine and a tolerance. A score outside ``expected ± tolerance`` fails the check
whether it is lower *or higher*: an unexplained improvement is as suspicious as a regression.

Example:
    >>> check({"results/metrics/detector/shapes.json": {"tolerance": 0.0005, "scores": {"mAP@0.5": 0.9469}}}, root=".")
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml


def load_expected(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())["expected"]


def check(expected: dict, root: str | Path = ".") -> list[dict]:
    """One row per (file, metric): expected, got, difference and OK / FAIL / MISSING."""
    rows = []
    for rel, spec in expected.items():
        path = Path(root) / rel
        got_all = json.loads(path.read_text()) if path.exists() else None
        for name, want in spec["scores"].items():
            got = None
            if got_all is not None:
                got = got_all.get("metrics", got_all).get(name)
            if got is None:
                status = "MISSING"
            else:
                status = "OK" if abs(got - want) <= spec["tolerance"] else "FAIL"
            rows.append({"file": rel, "metric": name, "expected": want, "got": got,
                         "diff": None if got is None else round(got - want, 4), "status": status})
    return rows


def check_files(paths, root=".", report_path=None) -> tuple[str, int]:
    """Check every expected-score file; (markdown report, number of failed or missing scores). The report is
    written to ``report_path`` only when every score is OK, so the workflow never takes a failed check as done."""
    import pandas as pd

    from itr.atomic import write_text

    rows = [row for path in paths for row in check(load_expected(path), root=root)]
    report = pd.DataFrame(rows).to_markdown(index=False)
    failed = sum(r["status"] != "OK" for r in rows)
    if report_path and not failed:
        write_text(report_path, report + "\n")
    return report, failed
