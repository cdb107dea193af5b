"""CUSA's claims, checked against our tables: each one holds, does not hold, or is not checked (and why).

A claim reads the flat JSON of the tables that show it (``results/tables/cusa_<target>.json``), for every student the
tables have (student (a), region features; student (b), "pixel ViT"). The thresholds are fixed here, never tuned per
claim: "without hurting" allows ``RSUM_TOLERANCE`` rsum points (half a point per recall); "costs little" means at
most ``LITTLE`` more time per epoch than contrastive loss alone (the paper's Table 13: +4.5%).

Example:
    >>> build_claims(paths, Path("results/tables/cusa_claims"))
"""
from __future__ import annotations

from pathlib import Path

RSUM_TOLERANCE = 3.0  # rsum points
LITTLE = 0.10  # of the contrastive epoch
DISK_MODE = "cusa image=disk text=disk"
STUDENTS = {"(a)": "", "(b)": "pixel ViT, "}  # student -> the prefix of its rows' labels (itr.papers.cusa.plan.LABELS)
EXTENDED = ["i2t/mAP@R", "i2t/R-P", "i2t/R@1", "t2i/mAP@R", "t2i/R-P", "t2i/R@1"]


def _students(table: dict, suffix: str = "") -> list[str]:
    """The students whose ITC and + CUSA rows the table has."""
    return [s for s, p in STUDENTS.items() if f"{p}ITC{suffix}" in table and f"{p}+ CUSA{suffix}" in table]


def _rsum_pairs(t8: dict) -> list[tuple[str, str, float, float]]:
    """(student, test set, ITC's rsum, + CUSA's rsum) of every pair of rows Table 8 has."""
    sets = sorted({k.rsplit("/", 1)[1] for k in t8 if k.startswith("ITC/")})
    return [(s, b, t8[f"{STUDENTS[s]}ITC/{b}"]["rsum"], t8[f"{STUDENTS[s]}+ CUSA/{b}"]["rsum"])
            for s in _students(t8, f"/{sets[0]}") for b in sets] if sets else []


def _improves_rsum(t8: dict) -> tuple[bool | None, str]:
    pairs = _rsum_pairs(t8)
    if not pairs:
        return None, "Table 8 has no ITC and + CUSA rows"
    return (all(c > i for _, _, i, c in pairs),
            "; ".join(f"{s} {b}: {i:.1f} -> {c:.1f} ({c - i:+.1f})" for s, b, i, c in pairs))


def _improves_extended(t9: dict) -> tuple[bool | None, str]:
    mean = lambda row: sum(row[c] for c in EXTENDED) / len(EXTENDED)  # noqa: E731
    pairs = [(s, mean(t9[f"{STUDENTS[s]}ITC"]), mean(t9[f"{STUDENTS[s]}+ CUSA"]), t9[f"{STUDENTS[s]}ITC"],
              t9[f"{STUDENTS[s]}+ CUSA"]) for s in _students(t9)]
    if not pairs:
        return None, "Table 9 has no ITC and + CUSA rows"
    return (all(c > i for _, i, c, _, _ in pairs),
            "; ".join(f"{s}: mean of mAP@R, R-P, R@1 both ways {i:.1f} -> {c:.1f} (t2i mAP@R {ri['t2i/mAP@R']:.1f} -> "
                      f"{rc['t2i/mAP@R']:.1f}, i2t mAP@R {ri['i2t/mAP@R']:.1f} -> {rc['i2t/mAP@R']:.1f})"
                      for s, i, c, ri, rc in pairs))


def _usa_unimodal(t8: dict, t10: dict, t11: dict) -> tuple[bool | None, str]:
    """+ USA's uni-modal heads beat the ITC student's embeddings (its cross-modal heads, the only ones it trained) on
    image->image mAP@R and caption-pair Spearman, and + USA's rsum stays within RSUM_TOLERANCE of ITC's."""
    need = ("ITC, cross-modal head", "+ USA, uni-modal head")
    if not all(k in t for t in (t10, t11) for k in need):
        return None, "Tables 10-11 have no ITC and + USA rows"
    i2i = (t10[need[0]]["ours mAP@R"], t10[need[1]]["ours mAP@R"])
    sts = (t11[need[0]]["ours Spearman"], t11[need[1]]["ours Spearman"])
    sets = sorted({k.rsplit("/", 1)[1] for k in t8 if k.startswith("+ USA/")})
    drops = [(b, t8[f"ITC/{b}"]["rsum"], t8[f"+ USA/{b}"]["rsum"]) for b in sets]
    holds = i2i[1] > i2i[0] and sts[1] > sts[0] and all(u >= i - RSUM_TOLERANCE for _, i, u in drops)
    return holds, (f"image->image mAP@R {i2i[0]:.1f} (ITC) -> {i2i[1]:.1f} (+ USA, uni-modal head); caption pairs "
                   f"Spearman {sts[0]:.1f} -> {sts[1]:.1f}; rsum " + ", ".join(f"{b} {i:.1f} -> {u:.1f}"
                                                                             for b, i, u in drops))


def _disk_is_cheap(t13: dict) -> tuple[bool | None, str]:
    if DISK_MODE not in t13:
        return None, "Table 13 has no row with both teachers from disk"
    disk, live = t13[DISK_MODE]["overhead_pct"], t13["cusa image=on_the_fly text=on_the_fly"]["overhead_pct"]
    evidence = f"+ CUSA from disk {disk:+.1f}% per epoch against contrastive alone; both teachers on the fly {live:+.1f}%"
    return disk <= 100 * LITTLE, evidence


def headline_claims(table: dict) -> list[tuple[str, bool | None, str, float | None]]:
    """Table 8's claim from its flat JSON, with its margin (the smallest rsum gain of + CUSA over ITC; > 0 holds):
    what ``snakemake cusa_seeds`` checks in every seed (itr.seeds)."""
    holds, evidence = _improves_rsum(table)
    gains = [c - i for _, _, i, c in _rsum_pairs(table)]
    return [("CUSA improves each student's rsum (ITC -> + CUSA, both test sets)", holds, evidence,
             min(gains) if gains else None)]


def check_claims(tables: dict[str, dict]) -> list[tuple[str, bool | None, str]]:
    """(claim, holds or None when not checked, evidence), from the tables' flat JSON keyed by target name."""
    t8, t9, t10, t11, t13 = (tables.get(t) for t in ("table8", "table9", "table10", "table11", "table13"))
    missing = lambda *names: (None, f"{', '.join(names)} not built")  # noqa: E731
    return [
        ("CUSA improves each student's rsum (ITC -> + CUSA, both test sets)",
         *(_improves_rsum(t8) if t8 else missing("Table 8"))),
        ("CUSA improves the extended (ECCV Caption) metrics of each student",
         *(_improves_extended(t9) if t9 else missing("Table 9"))),
        (f"USA gives the student uni-modal ability (image->image, caption pairs) without hurting cross-modal retrieval "
         f"(rsum within {RSUM_TOLERANCE:g})", *(_usa_unimodal(t8, t10, t11) if t8 and t10 and t11 else
                                                 missing("Table 8", "10", "11"))),
        (f"Loading the teachers' features from disk costs little training time (at most {LITTLE:.0%} per epoch)",
         *(_disk_is_cheap(t13) if t13 else missing("Table 13"))),
    ]


def build_claims(paths: list[Path], out_stem: Path) -> "pd.DataFrame":
    """The claims table from the flat JSON of the tables."""
    from itr.layout import table_dataset
    from itr.tables import read_claimed_tables, test_set_name, write_claims

    tables = read_claimed_tables(paths, "cusa")
    checked_on = test_set_name({"dataset": table_dataset(out_stem)})
    caption = (f"Claims of Huang et al. (CUSA) checked on {checked_on}. Student (a): region features; (b): pixel ViT. "
               "Computed by itr.papers.cusa.claims from the tables' JSON.")
    return write_claims(check_claims(tables), out_stem, caption)
