"""ALADIN's claims, checked against our tables: each one holds, does not hold, or is not checked (and why).

A claim reads the flat JSON of the tables that show it (``results/tables/aladin_<target>.json``). R@1 is the mean of
the two directions, as in the other papers' claims; "competes" means at most ``TOLERANCE`` R@1 points below; "a
fraction of its time" means at most ``FRACTION`` of it. Times are Figure 2's, measured in one run
(benchmarks/inference_time.py). Nothing is tuned per claim; the thresholds of the speed-up claim are the paper's words
("almost 90x", "about 7%") read as at least ``SPEEDUP`` and at most ``LOSS``.

Example:
    >>> build_claims(paths, Path("results/tables/aladin_claims"))
"""
from __future__ import annotations

from pathlib import Path

from itr.papers.aladin.plan import LABELS, MAIN
from itr.papers.aladin.tables import method_name

TOLERANCE = 1.0  # recall points
FRACTION = 0.1  # of the cross-encoder's time
SPEEDUP, LOSS = 80.0, 0.10  # "almost 90x faster", "an rsum loss of only about 7%"
CE, ALIGN, MATCH = method_name("ce"), method_name("aladin_align"), method_name("aladin_match")
MATCHING_ROWS = [LABELS[n] for n in ("t", "t_ft", "d", MAIN)]
D_BEATS_T = "Distillation (D) beats the triplet-trained matching head (T), frozen backbone, R@1 on 1K and 5K"
MAIN_IS_BEST = "A/ft. + D/ft. is the best matching-head row (R@1, 1K and 5K)"


def _r(row: dict) -> float:
    return (row["t2i/R@1"] + row["i2t/R@1"]) / 2


def _alignment_vs_ce(t1: dict, fig2: dict) -> tuple[bool | None, str]:
    a, ce = t1.get(f"{LABELS['a_ft']}/1K"), t1.get(f"{CE}/1K")
    if a is None or ce is None:
        return None, "Table 1 has no 1K row of A/ft. or the CE"
    share = fig2[ALIGN]["seconds"] / fig2[CE]["seconds"]
    return (_r(a) >= _r(ce) - TOLERANCE and share <= FRACTION,
            f"A/ft. R@1 {_r(a):.1f} in {fig2[ALIGN]['seconds']:.3g} s; CE R@1 {_r(ce):.1f} in "
            f"{fig2[CE]['seconds']:.3g} s (A/ft. takes {share:.2%} of it)")


def _sets(t2: dict, row: str) -> list[str]:
    """The benchmarks (1K, 5K) Table 2 has a ``row`` on."""
    return sorted({key.rsplit("/", 1)[1] for key in t2 if key.startswith(row + "/")})


def _d_beats_t(t2: dict) -> tuple[bool | None, str, float | None]:
    """D above T on every benchmark; margin: the smallest lead (R@1 points; > 0 holds)."""
    lead = {s: _r(t2[f"{LABELS['d']}/{s}"]) - _r(t2[f"{LABELS['t']}/{s}"]) for s in _sets(t2, LABELS["d"])}
    if not lead:
        return None, "Table 2 has no row of D", None
    return (min(lead.values()) > 0,
            "; ".join(f"{s}: D {_r(t2[LABELS['d'] + '/' + s]):.1f}, T {_r(t2[LABELS['t'] + '/' + s]):.1f}" for s in lead),
            min(lead.values()))


def _main_is_best(t2: dict) -> tuple[bool | None, str, float | None]:
    """A/ft. + D/ft. at or above every other matching-head row on every benchmark; margin: the smallest lead over the
    best other row (R@1 points; >= 0 holds: level with the best is "at or above")."""
    others = [row for row in MATCHING_ROWS if row != LABELS[MAIN]]
    lead = {s: _r(t2[f"{LABELS[MAIN]}/{s}"]) - max(_r(t2[f"{row}/{s}"]) for row in others)
            for s in _sets(t2, LABELS[MAIN])}
    if not lead:
        return None, f"Table 2 has no row of {LABELS[MAIN]}", None
    return (min(lead.values()) >= 0,
            "; ".join(s + ": " + ", ".join(f"{row.removeprefix('ALADIN ')} {_r(t2[f'{row}/{s}']):.1f}"
                                           for row in MATCHING_ROWS) for s in lead),
            min(lead.values()))


def headline_claims(table: dict) -> list[tuple[str, bool | None, str, float | None]]:
    """Table 2's claims from its flat JSON, each with its margin: what ``snakemake aladin_seeds`` checks in every seed
    (itr.seeds). Table 1's claim needs Figure 2's times, which a seed run does not measure."""
    return [(D_BEATS_T, *_d_beats_t(table)), (MAIN_IS_BEST, *_main_is_best(table))]


def _distilled_speedup(fig2: dict) -> tuple[bool, str]:
    match, ce = fig2[MATCH], fig2[CE]
    speedup = ce["ms_per_text_query"] / match["ms_per_text_query"]
    loss = (ce["t2i_rsum"] - match["t2i_rsum"]) / ce["t2i_rsum"]
    return (speedup >= SPEEDUP and loss <= LOSS,
            f"{speedup:.0f}x faster per text query ({match['ms_per_text_query']:.3g} vs {ce['ms_per_text_query']:.3g} "
            f"ms), t2i rsum {match['t2i_rsum']:.1f} vs {ce['t2i_rsum']:.1f} ({abs(loss):.1%} "
            f"{'lower' if loss >= 0 else 'higher'})")


def check_claims(tables: dict[str, dict]) -> list[tuple[str, bool | None, str]]:
    """(claim, holds or None when not checked, evidence), from the tables' flat JSON keyed by target name."""
    t1, t2, fig2 = tables.get("table1"), tables.get("table2"), tables.get("figure2")
    table2_claims = ([(claim, holds, evidence) for claim, holds, evidence, _ in headline_claims(t2)] if t2 else
                     [(claim, None, "Table 2 not built") for claim in (D_BEATS_T, MAIN_IS_BEST)])
    return [
        (f"The alignment head (A/ft.) competes with the cross-encoder (within {TOLERANCE:g} R@1 point) in at most "
         f"{FRACTION:.0%} of its time", *(_alignment_vs_ce(t1, fig2) if t1 and fig2 else
                                        (None, "Table 1 or Figure 2 not built"))),
        *table2_claims,
        (f"The distilled space is almost 90x faster than the cross-encoder (>= {SPEEDUP:g}x per text query) at a "
         f"small loss (<= {LOSS:.0%} of its t2i rsum)", *(_distilled_speedup(fig2) if fig2 else
                                                         (None, "Figure 2 not built"))),
    ]


def build_claims(paths: list[Path], out_stem: Path) -> "pd.DataFrame":
    """The claims table from the flat JSON of the tables."""
    from itr.layout import table_dataset
    from itr.tables import read_claimed_tables, test_set_name, write_claims

    tables = read_claimed_tables(paths, "aladin")
    checked_on = test_set_name({"dataset": table_dataset(out_stem)})
    caption = (f"Claims of Messina et al. (ALADIN) checked on {checked_on}. R@1 = mean of the two directions. Computed "
               "by itr.papers.aladin.claims from the tables' JSON.")
    return write_claims(check_claims(tables), out_stem, caption)
