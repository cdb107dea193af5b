"""Numbers over several seeds: a table's cells as mean ± std (n), each claim's verdict in every seed, and the spread
of every expected score (what ``itr check-scores`` reads in its statistical mode).

A seed is one draw of the whole method (the detector, its features and every model after it; the data, the
benchmark, stays fixed). A claim that holds in some seeds and not in others is **undecided**: its verdict is noise.
Another CPU kind diverges like another seed does (its kernels round differently from the first step on), which is
why the seed spread is also the yardstick of "reproduced" on another machine (itr.expected).

Example:
    >>> spread({0: 400.0, 1: 404.0, 2: 402.0})
    {'mean': 402.0, 'std': 2.0, 'n': 3, 'values': {'0': 400.0, '1': 404.0, '2': 402.0}}
    >>> verdict([True, True, False])
    'undecided'
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path


def spread(values: dict[int, float]) -> dict:
    """Mean, sample standard deviation (n - 1; None for one value: one draw says nothing of the spread), n, and every
    seed's value."""
    xs = list(values.values())
    return {"mean": round(statistics.fmean(xs), 4), "std": round(statistics.stdev(xs), 4) if len(xs) > 1 else None,
            "n": len(xs), "values": {str(seed): v for seed, v in values.items()}}


def _std(s: dict) -> str:
    return "–" if s["std"] is None else f"{s['std']:.2f}"


def spread_table(tables: dict[int, dict]) -> dict[str, dict[str, dict]]:
    """row -> column -> spread over seeds, from each seed's flat table JSON (row -> column -> number). Every seed's
    table must have the same rows and columns: a table built from other settings is an error, never averaged in."""
    seeds = sorted(tables)
    shape = {row: list(cols) for row, cols in tables[seeds[0]].items()}  # the first seed's order
    for seed in seeds[1:]:
        other = {row: list(cols) for row, cols in tables[seed].items()}
        if {r: sorted(c) for r, c in other.items()} != {r: sorted(c) for r, c in shape.items()}:
            raise ValueError(f"seed {seed}'s table has other rows or columns than seed {seeds[0]}'s: {sorted(other)} vs "
                             f"{sorted(shape)}; build every seed's table from the same params (snakemake <paper>_seeds)")
    return {row: {col: spread({s: tables[s][row][col] for s in seeds}) for col in cols} for row, cols in shape.items()}


def verdict(holds: list[bool | None]) -> str:
    """One claim's verdict over seeds: holds or does not hold when every checked seed agrees, undecided when they
    disagree, not checked when no seed could check it."""
    checked = [h for h in holds if h is not None]
    if not checked:
        return "not checked"
    if all(checked):
        return "holds"
    return "does not hold" if not any(checked) else "undecided"


def claim_rows(checked: dict[int, list[tuple]]) -> list[dict]:
    """Each claim's verdict over seeds, from each seed's checks: (claim, holds or None, evidence, margin) where
    ``margin`` is how far the compared numbers are past the claim's threshold (> 0: holds, and 0 too for an "at or
    above" claim; None: no number)."""
    seeds = sorted(checked)
    claims = list(dict.fromkeys(c[0] for s in seeds for c in checked[s]))
    rows = []
    for claim in claims:
        by_seed = {s: next((c for c in checked[s] if c[0] == claim), None) for s in seeds}
        holds = [c[1] if c else None for c in by_seed.values()]
        margins = {s: c[3] for s, c in by_seed.items() if c and len(c) > 3 and c[3] is not None}
        m = spread(margins) if margins else None
        rows.append({"claim": claim, "verdict": verdict(holds),
                     "holds in": f"{sum(h is True for h in holds)} of {sum(h is not None for h in holds)} seeds",
                     "margin": f"{m['mean']:+.2f} ± {_std(m)}" if m else "",
                     "per seed": {str(s): {"holds": h, "evidence": c[2] if c else "", "margin": margins.get(s)}
                                  for (s, c), h in zip(by_seed.items(), holds)}})
    return rows


def score_spread(files: dict[int, dict[str, Path]]) -> dict[str, dict[str, dict]]:
    """Every metric of every expected-score file over seeds: file (as params seed's run names it) -> metric ->
    spread. ``files``: seed -> that file -> the seed run's copy of it."""
    seeds = sorted(files)
    out: dict[str, dict[str, dict]] = {}
    for name in files[seeds[0]] if seeds else []:
        metrics = {s: json.loads(Path(files[s][name]).read_text()) for s in seeds}
        metrics = {s: m.get("metrics", m) for s, m in metrics.items()}
        numeric = [k for k, v in metrics[seeds[0]].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for s in seeds:  # a metric one seed lacks would drop out of the spread unnoticed
            lacking = [k for k in numeric if not isinstance(metrics[s].get(k), (int, float))]
            if lacking:
                raise ValueError(f"{files[s][name]} (seed {s}) has no number for {lacking}, which seed {seeds[0]}'s "
                                 f"{name} has; rebuild it (snakemake <paper>_seeds)")
        out[name] = {k: spread({s: float(metrics[s][k]) for s in seeds}) for k in numeric}
    return out


def write_spread_table(spreads: dict, out_stem: Path, caption: str) -> None:
    """A table of mean ± std (n) cells; its csv keeps every seed's value (one line per row and seed, then the mean
    and std lines), its json the spreads themselves."""
    import pandas as pd

    from itr.tables import write_table

    columns = list(dict.fromkeys(col for cols in spreads.values() for col in cols))
    shown = pd.DataFrame([{"Model": row, **{c: f"{s['mean']:.2f} ± {_std(s)} ({s['n']})" for c, s in cols.items()}}
                          for row, cols in spreads.items()], columns=["Model", *columns])
    seeds = list(next(iter(next(iter(spreads.values())).values()))["values"])
    long = pd.DataFrame([{"Model": row, "seed": key, **{c: (s["values"][key] if key in seeds else s[key])
                                                          for c, s in cols.items()}}
                         for row, cols in spreads.items() for key in [*seeds, "mean", "std"]],
                        columns=["Model", "seed", *columns])
    write_table(shown, out_stem, caption, spreads, csv=long.to_csv(index=False, float_format="%.4f"))


def write_claim_rows(rows: list[dict], out_stem: Path, caption: str) -> None:
    """The claims table over seeds; its json keeps every seed's verdict, evidence and margin."""
    import pandas as pd

    from itr.tables import write_table

    shown = pd.DataFrame([{k: r[k] for k in ("claim", "verdict", "holds in", "margin")} for r in rows],
                         columns=["claim", "verdict", "holds in", "margin"])
    flat = {r["claim"]: {k: r[k] for k in ("verdict", "holds in", "margin", "per seed")} for r in rows}
    write_table(shown, out_stem, caption, flat, csv=shown.to_csv(index=False))


def build_seed_report(tables: dict[int, Path], scores: dict[int, dict[str, Path]], check_claims, name: str,
                      out_table: Path, out_claims: Path | None, out_spread: Path) -> dict:
    """Everything ``snakemake <paper>_seeds`` writes: the headline table over seeds (``tables``: seed -> its flat
    JSON), the claims' verdicts over seeds (``check_claims``: one table's JSON -> (claim, holds, evidence, margin)
    rows; None: the paper declares none) and the expected scores' spread (``scores``: seed -> file -> its copy)."""
    from itr.atomic import write_json

    seeds = sorted(tables)
    per_seed = {s: json.loads(Path(tables[s]).read_text()) for s in seeds}
    where = f"seeds {', '.join(map(str, seeds))} (n = {len(seeds)})"
    write_spread_table(spread_table(per_seed), Path(out_table),
                       f"{name} over {where}: mean ± sample std (n) of each cell; the csv and json keep every seed's "
                       "value. Each seed trains the whole chain (detector, features, models) on the same data.")
    if out_claims is not None:
        write_claim_rows(claim_rows({s: check_claims(per_seed[s]) for s in seeds}), Path(out_claims),
                         f"The claims of {name}, checked in each of {where}: 'undecided' when the seeds disagree. "
                         "margin: mean ± std over seeds of how far the compared numbers are past the claim's "
                         "threshold (points; > 0 holds, and 0 for an 'at or above' claim).")
    result = {"seeds": seeds, "scores": score_spread(scores)}
    write_json(out_spread, result)
    return result
