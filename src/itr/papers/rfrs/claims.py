"""The paper's claims, checked against our tables: each one holds or does not hold on ShapeCaptions.

A claim reads the flat JSON of the table that shows it (``results/tables/rfrs_table<n>.json``) and
compares numbers with a fixed tolerance: "A matches B" holds when A is at most ``TOLERANCE``
points below B; "A lags B" holds when A is more than ``TOLERANCE`` points below B. Recall is
summarised as the mean of the two directions (``R@1`` = mean of t2i/R@1 and i2t/R@1). Nothing is
tuned per claim, and a claim whose table is missing is reported as not checked, never as holding.

Example:
    >>> tables = {n: json.load(open(f"results/tables/rfrs_table{n}.json")) for n in "12356789"}
    >>> [row["verdict"] for row in check_claims(tables)]
"""
from __future__ import annotations

import json
import re
from pathlib import Path

TOLERANCE = 1.0  # recall points


def _r(row: dict, k: int) -> float:
    return (row[f"t2i/R@{k}"] + row[f"i2t/R@{k}"]) / 2


def _margin(a: float, b: float) -> float:
    """How far ``a`` is past "matches ``b``" (at most TOLERANCE below it), in points: >= 0 when it matches."""
    return a - (b - TOLERANCE)


def _matches(a: float, b: float) -> bool:
    return _margin(a, b) >= 0


def _claims_table1(t: dict) -> list[tuple[str, bool, str, float]]:
    """Table 1's claims, each with its margin: how far the compared R@1 (or R@10) is past the claim's threshold, in
    points (> 0: holds), so that a verdict over seeds can say how close it is (itr.seeds)."""
    be, ce, sep, joint = t["BE"], t["CE"], t["SEP+COOP"], t["JOINT+COOP"]
    jbe, jce = t["JOINT+BE"], t["JOINT+CE"]
    fmt = lambda name, row, k=1: f"{name} {_r(row, k):.1f}"

    def matches(a, b, k=1):  # margin of "row a matches or beats row b" at R@k
        return _margin(_r(a, k), _r(b, k))

    lags = (_r(ce, 1) - TOLERANCE) - _r(be, 1)  # margin of "BE lags CE": > 0 when more than TOLERANCE below
    joint_both = min(matches(jbe, be), matches(jce, ce))
    return [
        ("A bi-encoder lags the cross-encoder at R@1", lags > 0, f"R@1: {fmt('BE', be)} vs {fmt('CE', ce)}", lags),
        ("... but not at R@10", matches(be, ce, 10) >= 0, f"R@10: {fmt('BE', be, 10)} vs {fmt('CE', ce, 10)}",
         matches(be, ce, 10)),
        ("SEP+COOP (BE top-k reranked by a separate CE) matches or beats the CE", matches(sep, ce) >= 0,
         f"R@1: {fmt('SEP+COOP', sep)} vs {fmt('CE', ce)}", matches(sep, ce)),
        ("JOINT+COOP matches or beats the CE", matches(joint, ce) >= 0,
         f"R@1: {fmt('JOINT+COOP', joint)} vs {fmt('CE', ce)}", matches(joint, ce)),
        ("JOINT+COOP matches or beats SEP+COOP (one model instead of two)", matches(joint, sep) >= 0,
         f"R@1: {fmt('JOINT+COOP', joint)} vs {fmt('SEP+COOP', sep)}", matches(joint, sep)),
        ("One joint model does both jobs: JOINT+BE matches the BE and JOINT+CE matches the CE", joint_both >= 0,
         f"R@1: {fmt('JOINT+BE', jbe)} vs {fmt('BE', be)}; {fmt('JOINT+CE', jce)} vs {fmt('CE', ce)}", joint_both),
    ]


def headline_claims(table: dict) -> list[tuple[str, bool, str, float]]:
    """The claims of the headline table (Table 1) from its flat JSON, with margins: checked in every seed by
    ``snakemake rfrs_seeds`` (itr.seeds)."""
    return _claims_table1(table)


def _claims_table8(t: dict) -> list[tuple[str, bool, str]]:
    out = []
    for model in ("SEP+COOP", "JOINT+COOP"):
        by_k = {int(key.split("k=")[1]): _r(row, 1) for key, row in t.items() if key.startswith(model + "/")}
        if 20 not in by_k:
            out.append((f"{model}: k = 20 is within {TOLERANCE:g} R@1 point of the best k", None,
                        f"k = 20 not measured (rerank.ks = {sorted(by_k)})"))
            continue
        best = max(by_k, key=by_k.get)
        out.append((f"{model}: k = 20 is within {TOLERANCE:g} R@1 point of the best k", _matches(by_k[20], by_k[best]),
                    "R@1 by k: " + ", ".join(f"{k}: {v:.1f}" for k, v in sorted(by_k.items()))))
    return out


def _claims_table9(t: dict) -> list[tuple[str, bool, str]]:
    out = []
    for model in ("SEP+COOP", "JOINT+COOP"):
        cells = {key.split("/", 1)[1]: _r(row, 1) for key, row in t.items() if key.startswith(model + "/")}
        if "ce" not in cells:
            continue
        fusions = {k: v for k, v in cells.items() if k != "ce"}
        best = max(fusions, key=fusions.get)
        evidence = f"R@1: CE alone {cells['ce']:.1f}; best fusion {best} {fusions[best]:.1f}"
        out.append((f"{model}: the CE score alone ranks the top k at least as well as any fusion with the BE score",
                    _matches(cells["ce"], fusions[best]), evidence))
    return out


def _claims_table3(t: dict) -> list[tuple[str, bool, str]]:
    size = max(t, key=int)
    row = t[size]
    return [(f"Retrieve and rerank answers a query at a tiny fraction (< 1 %) of the CE's cost ({int(size):,} images)",
             row["coop_p50_ms"] / 1000 < 0.01 * row["ce_seconds"],
             f"COOP p50 {row['coop_p50_ms']:.0f} ms vs CE {row['ce_seconds']:.0f} s per query")]


def _by_setting(t: dict, marker: str) -> dict[str, dict]:
    """Setting -> model -> row, for the settings of a Table 5/6 JSON whose name contains ``marker``."""
    out: dict[str, dict] = {}
    for key, row in t.items():
        setting, model = key.rsplit("/", 1)
        if marker in setting:
            out.setdefault(setting, {})[model] = row
    return out


def _claims_table5(t: dict) -> list[tuple[str, bool, str]]:
    out = []
    for setting, rows in _by_setting(t, "distractors").items():
        r1 = {model: _r(row, 1) for model, row in rows.items()}
        evidence = f"{setting}, R@1: " + ", ".join(f"{m} {v:.1f}" for m, v in r1.items())
        coop = [r1[m] for m in ("SEP+COOP", "JOINT+COOP") if m in r1]
        out.append(("Among distractors, the BE falls clearly behind both COOP rows",
                    bool(coop) and r1["BE"] < min(coop) - TOLERANCE, evidence))
        out.append(("Among distractors, JOINT+COOP remains the best-scoring variant",
                    _matches(r1["JOINT+COOP"], max(r1.values())), evidence))
    return out


def _claims_table6(t: dict) -> list[tuple[str, bool, str]]:
    settings = _by_setting(t, "zero-shot")
    fmt = lambda s: f"{s}: " + ", ".join(f"{m} {_r(row, 1):.1f}" for m, row in settings[s].items())
    evidence = "R@1 — " + "; ".join(fmt(s) for s in settings)
    return [
        ("Zero-shot, both COOP rows beat the BE in each direction",
         all(_r(rows[m], 1) > _r(rows["BE"], 1) for rows in settings.values() for m in ("SEP+COOP", "JOINT+COOP")),
         evidence),
    ] + ([  # the CE is not run where the test set has no training split (the paper's CC column has none)
        ("Zero-shot, JOINT+COOP matches or beats the CE in each direction",
         all(_matches(_r(rows["JOINT+COOP"], 1), _r(rows["CE"], 1)) for rows in settings.values() if "CE" in rows),
         evidence)] if any("CE" in rows for rows in settings.values()) else [])


def _best_within(t: dict, model: str, column: str) -> tuple[bool, str]:
    values = {m: row[column] for m, row in t.items() if column in row}
    best = max(values, key=values.get)
    return _matches(values[model], values[best]), f"{column} mR: " + ", ".join(f"{m} {v:.1f}" for m, v in values.items())


def _claims_table2(t: dict) -> list[tuple[str, bool, str]]:
    holds, evidence = _best_within(t, "SEP+COOP", "mean")
    coop = max(t[m]["mean"] for m in ("SEP+COOP", "JOINT+COOP"))
    return [("Trained on all four languages, SEP+COOP has the best mean mR", holds, evidence),
            ("Trained on all four languages, a COOP row matches or beats the CE (mean mR)",
             _matches(coop, t["CE"]["mean"]), evidence)]


def _claims_table7(t: dict) -> list[tuple[str, bool, str]]:
    holds, evidence = _best_within(t, "SEP+COOP", "avg")
    return [("Trained on English only, SEP+COOP transfers best to de, fr, cs (their mean mR)", holds, evidence)]


def _claims_figure3(t: dict) -> list[tuple[str, bool, str]]:
    sizes = sorted({int(key.split("/")[1]) for key in t})
    gap = {n: _r(t[f"CE/{n}"], 1) - _r(t[f"BE/{n}"], 1) for n in sizes if f"CE/{n}" in t and f"BE/{n}" in t}
    evidence = "CE minus BE, R@1, by training images: " + ", ".join(f"{n}: {g:+.1f}" for n, g in gap.items())
    if len(gap) < 2:
        return [("BE-based retrieval is less sample-efficient than the CE", None, evidence)]
    small, large = min(gap), max(gap)
    return [("BE-based retrieval is less sample-efficient than the CE: the CE's R@1 lead over the BE is larger "
             "with the fewest training images than with the most", gap[small] > gap[large] + TOLERANCE, evidence)]


HALF_SIZE_SHARE = 0.85  # "around 90%": at least this share of the full model's rsum


def _claims_figure4(t: dict) -> list[tuple[str, bool, str]]:
    half = {key.split("/")[0]: row for key, row in t.items() if key.endswith("/half")}
    ratios = ", ".join(f"{m} {row['half/full rsum']:.2f}" for m, row in half.items())
    best = max(half, key=lambda m: _r(half[m], 1)) if half else None
    return [
        (f"Half-size models keep about 90% of the full models' performance (every half/full rsum >= {HALF_SIZE_SHARE})",
         bool(half) and all(row["half/full rsum"] >= HALF_SIZE_SHARE for row in half.values()), "half/full rsum: " + ratios),
        ("With half-size models JOINT+COOP again scores highest",
         "JOINT+COOP" in half and _matches(_r(half["JOINT+COOP"], 1), _r(half[best], 1)),
         "R@1 (half): " + ", ".join(f"{m} {_r(row, 1):.1f}" for m, row in half.items())),
    ]


def _no_gain(t: dict, base: str, name: str) -> tuple[str, bool, str]:
    others = [k for k in t if k != base]
    evidence = "R@1: " + ", ".join(f"{k} {_r(t[k], 1):.1f}" for k in t)
    return (f"{name}: ANCE negatives do not improve on in-batch hardest negatives ({base})",
            bool(others) and all(_r(t[k], 1) <= _r(t[base], 1) + TOLERANCE for k in others), evidence)


def _claims_appendix9(t: dict) -> list[tuple[str, bool, str]]:
    return [_no_gain(t, "T_BHE", "BE")]


def _claims_appendix10(t: dict) -> list[tuple[str, bool, str]]:
    return [_no_gain(t, "T_BHE + E", "JOINT+COOP")]


CHECKS = {"1": _claims_table1, "2": _claims_table2, "7": _claims_table7, "3": _claims_table3, "5": _claims_table5, "6": _claims_table6, "8": _claims_table8,
          "9": _claims_table9, "figure3": _claims_figure3, "figure4": _claims_figure4, "appendix9": _claims_appendix9,
          "appendix10": _claims_appendix10}


def table_file(key: str) -> str:
    """Claims key -> the table file that shows it: '1' -> rfrs_table1.md, 'figure3' -> rfrs_figure3.md."""
    return f"rfrs_table{key}.md" if key.isdigit() else f"rfrs_{key}.md"


def check_claims(tables: dict[str, dict]) -> list[dict]:
    """Rows of (claim, verdict, evidence, table) from the tables' flat JSON, keyed by table number."""
    rows = []
    for number, check in CHECKS.items():
        if number not in tables:
            rows.append({"claim": f"(claims of Table {number})", "verdict": "not checked",
                         "evidence": "table not built", "table": table_file(number)})
            continue
        for claim, holds, evidence, *_ in check(tables[number]):
            verdict = "not checked" if holds is None else "holds" if holds else "does not hold"
            rows.append({"claim": claim, "verdict": verdict, "evidence": evidence, "table": table_file(number)})
    return rows


def build_claims(paths: list[Path], out_stem: Path) -> "pd.DataFrame":
    """The claims table: each claim marked holds / does not hold, from the flat JSON of the tables."""
    import pandas as pd

    from itr.layout import table_dataset
    from itr.tables import test_set_name, write_plain_table

    def key(path) -> str:  # rfrs_table1.json -> '1', rfrs_figure3.json -> 'figure3'
        name = re.search(r"rfrs_(\w+)\.json$", str(path)).group(1)
        return name.removeprefix("table") if re.fullmatch(r"table\d+", name) else name

    tables = {key(p): json.loads(Path(p).read_text()) for p in paths}
    df = pd.DataFrame(check_claims(tables), columns=["claim", "verdict", "evidence", "table"])
    checked_on = test_set_name({"dataset": table_dataset(out_stem)})
    caption = (f"Claims of Geigle et al. (2022) checked on {checked_on}. R@1 / R@10 = mean of the two directions; "
               f"'matches' = at most {TOLERANCE:g} point below. Computed by itr.papers.rfrs.claims from the tables' JSON.")
    write_plain_table(df, out_stem, caption, {r["claim"]: r["verdict"] for r in df.to_dict("records")})
    return df
