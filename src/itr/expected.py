"""Expected scores, checked both ways (pyserini's "2CR" idea), exactly on the reference machine and within the seed
spread on any other.

A paper's ``expected_scores.yaml`` (itr.papers.expected_scores) lists, per metrics file, the scores this workflow
produced on the reference machine. A score outside its tolerance fails the check whether it is lower *or higher*: an
unexplained improvement is as suspicious as a regression. Two modes:

* **exact**: the file records the machine it was measured on (``"machine"``, itr.machine) and it has every value
  the yaml's ``reference`` gives (or the yaml names no reference: a check of runs on one machine). Tolerance: the
  file's ``tolerance``, tight, since CPU runs with the same pins and machine are bit-for-bit deterministic.
* **statistical**: any other machine, or a file that records none. Another CPU kind rounds differently from the first
  step on, so training diverges like another seed does: the tolerance is ``k * sqrt(2) * std``, with ``std`` the
  metric's seed standard deviation (the file's ``spread``, measured by ``snakemake <paper>_seeds``) and ``k`` the
  yaml's ``statistical.k`` (sqrt(2): both the reference and this run are one draw each), and never below the file's
  exact tolerance. A metric with no measured spread cannot be judged there and fails as ``NO SPREAD``.

Example:
    >>> check({"results/metrics/detector/shapes.json": {"tolerance": 0.0005, "scores": {"mAP@0.5": 0.9469}}}, root=".")
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from itr.errors import InputError


def load_expected(path: str | Path) -> dict:
    """The whole expected-scores document: ``expected`` (file -> tolerance, scores, spread), and optionally
    ``reference`` (the measuring machine's fingerprint fields) and ``statistical`` (k)."""
    return yaml.safe_load(Path(path).read_text())


def exact_mode(machine: dict | None, reference: dict | None) -> bool:
    """Whether a file measured on ``machine`` is checked exactly: no reference declared, or the machine recorded and
    agreeing with every field the reference gives."""
    if not reference:
        return True
    def same(a, b):  # a list (the ISA features) is a set: its order says nothing
        return sorted(a) == sorted(b) if isinstance(a, list) and isinstance(b, list) else a == b

    return bool(machine) and all(same(machine.get(key), value) for key, value in reference.items())


def describe(machine: dict | None) -> str:
    """A recorded machine in a few words (CPU model, ISA features, device), or why there is none."""
    if not machine:
        return "not recorded"
    return f"{machine.get('cpu', '?')} [{' '.join(machine.get('isa', []))}] {machine.get('device', '')}".strip()


def check(expected: dict, root: str | Path = ".", reference: dict | None = None, k: float | None = None) -> list[dict]:
    """One row per (file, metric): expected, got, difference, tolerance, mode and OK / FAIL / MISSING / NO SPREAD."""
    rows = []
    for rel, spec in expected.items():
        path = Path(root) / rel
        got_all = json.loads(path.read_text()) if path.exists() else None
        machine = (got_all or {}).get("machine")
        exact = exact_mode(machine, reference)
        for name, want in spec["scores"].items():
            got = None if got_all is None else got_all.get("metrics", got_all).get(name)
            std = (spec.get("spread") or {}).get(name)
            # never tighter than the same machine's own tolerance (a std of 0: every seed agreed)
            tol = spec["tolerance"] if exact else (
                None if std is None or k is None else max(spec["tolerance"], k * math.sqrt(2) * std))
            if got is None:
                status = "MISSING"
            elif tol is None:
                status = "NO SPREAD"
            else:
                status = "OK" if abs(got - want) <= tol else "FAIL"
            rows.append({"file": rel, "metric": name, "expected": want, "got": got,
                         "diff": None if got is None else round(got - want, 4),
                         "tolerance": None if tol is None else round(tol, 4),
                         "mode": "exact" if exact else "statistical", "machine": describe(machine),
                         "status": status})
    return rows


def check_files(paths, root=".", report_path=None, present=False) -> tuple[str, int]:
    """Check every expected-score file; (markdown report, number of failed or missing scores). The report is
    written to ``report_path`` only when every score is OK, so the workflow never takes a failed check as done.
    ``present``: check only the metrics files already built (after the README's quick target, say), and say how many
    were left out."""
    import pandas as pd

    from itr.atomic import write_text

    docs = [load_expected(path) for path in paths]
    if present:
        for doc in docs:
            doc["expected"] = {rel: spec for rel, spec in doc["expected"].items() if (Path(root) / rel).exists()}
    rows = [row for doc in docs for row in check(doc["expected"], root, doc.get("reference"),
                                                 (doc.get("statistical") or {}).get("k"))]
    if not rows:
        return "no expected score's metrics file is built yet", 1
    modes = pd.Series([r["mode"] for r in rows]).value_counts().to_dict()
    report = (pd.DataFrame(rows).to_markdown(index=False)
              + "\n\nmode: " + ", ".join(f"{mode} for {n} score(s)" for mode, n in sorted(modes.items()))
              + " (exact: measured on the reference machine, or no reference declared; statistical: within "
                "k * sqrt(2) * the seed std; itr.expected)"
              + ("; only the files already built (--present)" if present else ""))
    failed = sum(r["status"] != "OK" for r in rows)
    if report_path and not failed:
        write_text(report_path, report + "\n")
    return report, failed


def record_spread(expected_path: str | Path, spread: dict) -> list[str]:
    """Write each measured seed std (``spread``: what ``snakemake <paper>_seeds`` writes to results/seeds/<paper>.json)
    into the expected-scores yaml as its files' ``spread``, for the metrics the yaml expects. A file or metric the
    measurement does not cover keeps the spread it had; comments and layout stay (ruamel.yaml's round trip). Returns
    the files given a spread.

    Example:
        >>> record_spread("src/itr/papers/<paper>/expected_scores.yaml", json.load(open("results/seeds/<paper>.json")))
        ['results/metrics/detector/shapes.json', ...]
    """
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    from itr.atomic import write_text

    seeds = list(spread["seeds"])
    if len(seeds) < 2:
        raise InputError(f"a spread over {len(seeds)} seed(s) ({seeds}) has no standard deviation; measure at least "
                         "two (params seeds, snakemake <paper>_seeds)")
    rt = YAML()  # round trip: comments, key order and flow style survive
    rt.width, rt.preserve_quotes = 4096, True
    rt.indent(mapping=2, sequence=4, offset=2)
    doc = rt.load(Path(expected_path).read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("expected"), dict):
        raise InputError(f"{expected_path} has no 'expected' mapping (file -> tolerance, scores); is it an "
                         "expected-scores file (src/itr/papers/<paper>/expected_scores.yaml)?")
    done = []
    for rel, spec in doc["expected"].items():
        measured = spread["scores"].get(rel, {})
        stds = {DoubleQuotedScalarString(k): measured[k]["std"] for k in spec["scores"] if k in measured}
        if not stds:
            continue
        if isinstance(spec.get("spread"), CommentedMap):  # updated in place, in its own style: its comments stay
            merged = spec["spread"]
            for k, v in stds.items():
                merged[k] = v
        else:
            merged = CommentedMap(stds)
            merged.fa.set_flow_style()
            spec.insert(list(spec).index("tolerance") + 1 if "tolerance" in spec else len(spec), "spread", merged)
        kept = [str(k) for k in merged if k not in stds]
        spec.yaml_add_eol_comment(f"seed std, n = {len(seeds)} (seeds {seeds})"
                                  + (f"; {', '.join(kept)}: from an earlier measurement" if kept else ""), "spread")
        done.append(rel)
    if not done:
        raise InputError(f"{expected_path}: the spread ({sorted(spread['scores'])[:3]}...) covers none of the files it "
                         "expects; is it another paper's results/seeds/<paper>.json?")
    out = io.StringIO()
    rt.dump(doc, out)
    write_text(expected_path, out.getvalue())
    return done
