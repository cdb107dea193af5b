"""TGDT's claims, checked against our tables: each one holds, does not hold, or is not checked (and why).

A claim reads the flat JSON of the tables that show it (``results/tables/tgdt_<target>.json``). Recall is the mean
of the two directions at R@1, as in Retrieve Fast, Rerank Smart's claims; "near the best" means at most
``TOLERANCE`` points below the best value of its sweep; "beats" means strictly above; "a fraction of its time" means
at most ``FRACTION`` of it (the paper: hundreds of minutes against dozens of seconds). Times are Table IV's,
measured in one run (benchmarks/inference_time.py). Nothing is tuned per claim.

Example:
    >>> build_claims(paths, Path("results/tables/tgdt_claims"), labels={"k": 100, "theta": 0.5, "slack": 0.3})
"""
from __future__ import annotations

from pathlib import Path

TOLERANCE = 1.0  # recall points
FRACTION = 0.1  # of the cross-encoder's time


def _r(row: dict) -> float:
    return (row["t2i/R@1"] + row["i2t/R@1"]) / 2


def _gl_beats_g_and_l(tables: dict) -> tuple[bool | None, str]:
    found = [(name, t) for name, t in tables.items() if name in ("table1", "table2", "table3")]
    if not found:
        return None, "Tables I-III not built"
    holds = all(_r(t["TGDT-GL"]) > max(_r(t["TGDT-G"]), _r(t["TGDT-L"])) for _, t in found)
    return holds, "; ".join(f"{name}: GL {_r(t['TGDT-GL']):.1f}, G {_r(t['TGDT-G']):.1f}, L {_r(t['TGDT-L']):.1f}"
                            for name, t in found)


def _two_stage_vs_l(t4: dict) -> tuple[bool, str]:
    gl, local = t4["TGDT-GL"], t4["TGDT-L"]
    return (gl["seconds"] < local["seconds"] and _r(gl) >= _r(local),
            f"GL {gl['seconds']:.3g} s, R@1 {_r(gl):.1f}; L {local['seconds']:.3g} s, R@1 {_r(local):.1f}")


def _gl_vs_ce(t4: dict) -> tuple[bool, str]:
    gl, ce = t4["TGDT-GL"], next(row for name, row in t4.items() if name.startswith("CE"))
    return (_r(gl) >= _r(ce) - TOLERANCE and gl["seconds"] <= FRACTION * ce["seconds"],
            f"GL R@1 {_r(gl):.1f} in {gl['seconds']:.3g} s; CE R@1 {_r(ce):.1f} in {ce['seconds']:.3g} s "
            f"(GL takes {gl['seconds'] / ce['seconds']:.2%} of it)")


def _sweep(t: dict, prefix: str) -> dict[float, float]:
    """{value: R@1} of the rows whose flat key starts with ``prefix`` (e.g. 'theta=', 'K=', 'TGDT-G/sigma=')."""
    return {float(k[len(prefix):]): _r(row) for k, row in t.items() if k.startswith(prefix)}


def _near_best(by_value: dict[float, float], value: float, name: str) -> tuple[bool | None, str]:
    evidence = f"R@1 by {name}: " + ", ".join(f"{v:g}: {r:.1f}" for v, r in sorted(by_value.items()))
    if value not in by_value:
        return None, f"{name} = {value:g} not measured; " + evidence
    return by_value[value] >= max(by_value.values()) - TOLERANCE, evidence


def headline_claims(table: dict) -> list[tuple[str, bool, str, float]]:
    """Table I's claim from its flat JSON, with its margin (R@1 points of TGDT-GL above the better of G and L; > 0
    holds): what ``snakemake tgdt_seeds`` checks in every seed (itr.seeds)."""
    gl, g, local = _r(table["TGDT-GL"]), _r(table["TGDT-G"]), _r(table["TGDT-L"])
    margin = gl - max(g, local)
    return [("TGDT-GL beats TGDT-G and TGDT-L (R@1, Table I)", margin > 0,
             f"GL {gl:.1f}, G {g:.1f}, L {local:.1f}", margin)]


def check_claims(tables: dict[str, dict], labels: dict) -> list[tuple[str, bool | None, str]]:
    """(claim, holds or None when not checked, evidence), from the tables' flat JSON keyed by target name."""
    t4 = tables.get("table4")
    out = [("TGDT-GL beats TGDT-G and TGDT-L (R@1, every results table)", *_gl_beats_g_and_l(tables)),
           ("Two-stage inference (TGDT-GL) is faster than TGDT-L at equal or better quality",
            *(_two_stage_vs_l(t4) if t4 else (None, "Table IV not built")))]
    fig6 = tables.get("figure6")
    if fig6 is None:
        out += [("theta = 0.5 beats theta = 0 and theta = 1", None, "Figure 6 not built"),
                ("K near 100 is near the best K", None, "Figure 6 not built")]
    else:
        theta = _sweep(fig6, "theta=")
        ends = [theta[v] for v in (0.0, 1.0) if v in theta]
        holds = None if labels["theta"] not in theta or len(ends) < 2 else theta[labels["theta"]] > max(ends)
        out.append((f"theta = {labels['theta']:g} beats theta = 0 and theta = 1", holds,
                    "R@1 by theta: " + ", ".join(f"{v:g}: {r:.1f}" for v, r in sorted(theta.items()))))
        out.append((f"K = {labels['k']} (the paper's 100) is within {TOLERANCE:g} R@1 point of the best K",
                    *_near_best(_sweep(fig6, "K="), float(labels["k"]), "K")))
    t6 = tables.get("table6")
    if t6 is None:
        out.append(("CMC's intra-modal term helps (TGDT beats w/o CMC, for G and for L)", None, "Table VI not built"))
    else:
        pairs = [("TGDT-G", "TGDT-G w/o CMC"), ("TGDT-L", "TGDT-L w/o CMC"), ("TGDT-G w/o JGLR", "Baseline-G"),
                 ("TGDT-L w/o JGLR", "Baseline-L")]
        out.append(("CMC's intra-modal term helps (with it beats without it, jointly and separately trained, G and L)",
                    all(_r(t6[a]) > _r(t6[b]) for a, b in pairs),
                    "; ".join(f"{a} {_r(t6[a]):.1f} vs {b} {_r(t6[b]):.1f}" for a, b in pairs)))
        out.append(("Joint training (JGLR) helps (TGDT beats w/o JGLR, G and L)",
                    all(_r(t6[f"TGDT-{s}"]) > _r(t6[f"TGDT-{s} w/o JGLR"]) for s in "GL"),
                    "; ".join(f"TGDT-{s} {_r(t6[f'TGDT-{s}']):.1f} vs w/o JGLR {_r(t6[f'TGDT-{s} w/o JGLR']):.1f}"
                              for s in "GL")))
    fig5 = tables.get("figure5")
    for s in "GL":
        claim = f"sigma = {labels['slack']:g} is within {TOLERANCE:g} R@1 point of the best sigma (TGDT-{s})"
        out.append((claim, *(_near_best(_sweep(fig5, f"TGDT-{s}/sigma="), float(labels["slack"]), "sigma")
                             if fig5 else (None, "Figure 5 not built"))))
    out.append((f"TGDT-GL nears the cross-encoder (within {TOLERANCE:g} R@1 point or above) in at most "
                f"{FRACTION:.0%} of its time", *(_gl_vs_ce(t4) if t4 else (None, "Table IV not built"))))
    return out


def build_claims(paths: list[Path], out_stem: Path, labels: dict | None = None) -> "pd.DataFrame":
    """The claims table from the flat JSON of the tables (``labels``: the params' k, theta and slack)."""
    from itr.layout import table_dataset
    from itr.tables import read_claimed_tables, test_set_name, write_claims

    tables = read_claimed_tables(paths, "tgdt")
    checked_on = test_set_name({"dataset": table_dataset(out_stem)})
    caption = (f"Claims of Liu et al. (TGDT) checked on {checked_on}. R@1 = mean of the two directions; 'near the "
               f"best' = at most {TOLERANCE:g} point below it. Computed by itr.papers.tgdt.claims from the tables' JSON.")
    return write_claims(check_claims(tables, labels or {}), out_stem, caption)
