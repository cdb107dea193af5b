"""Tables 1-2 and Figure 2 of ALADIN, and the efficiency comparison of every method this project has.

Each results builder reads the metrics files of its cells (``itr.papers.aladin.plan`` lists them), names each row by
its variant (ALADIN's) or its method (the baselines, other papers' cells), and writes the table with itr.tables:
reported rows marked 'paper', measured rows 'ours'. Figure 2 and ``comparison_efficiency`` read one run of
benchmarks/inference_time.py (``results/benchmarks/aladin_inference.json``), which timed every method whole.

Example:
    >>> build_table2(paths, Path("results/tables/aladin_table2"), note="...", labels={"rows": {...}})
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from itr.tables import (RECALL_COLUMNS, human_seconds, measured_row, recalls, reported_numbers, save_png,
                        test_set_name, write_recall_table)

SCORES = RECALL_COLUMNS + ["rsum"]
BENCHMARK = {"subset": "1K", "full": "5K"}  # our protocol -> the paper's test set it plays (plan.PROTOCOLS)
T2I = ["t2i/R@1", "t2i/R@5", "t2i/R@10"]
# Methods of other papers, as our tables name them (the paper each comes from in brackets)
METHODS = {
    "be": ("BE", "Retrieve Fast, Rerank Smart"), "ce": ("CE, all pairs", "Retrieve Fast, Rerank Smart"),
    "sep_coop": ("SEP+COOP", "Retrieve Fast, Rerank Smart"), "joint_coop": ("JOINT+COOP", "Retrieve Fast, Rerank Smart"),
    "tgdt_g": ("TGDT-G", "TGDT"), "tgdt_l": ("TGDT-L", "TGDT"), "tgdt_gl": ("TGDT-GL", "TGDT"),
    "aladin_align": ("ALADIN A/ft., alignment over all pairs", "ALADIN"),
    "aladin_match": ("ALADIN A/ft. + D/ft., matching head", "ALADIN"),
    "aladin_match_align": ("ALADIN matching top-k, re-ranked by alignment", "ALADIN"),
    "cusa_dual": ("student (a) + CUSA", "CUSA"),
}


def method_name(method: str) -> str:
    name, paper = METHODS[method]
    return f"{name} ({paper})"


def paper_numbers() -> dict:
    """The numbers Messina et al. report (reported.yaml), by table."""
    return reported_numbers(__package__)


def rounded(row: dict) -> dict:
    return {c: round(row[c], 2) for c in SCORES}


def _paper_rows(table: str) -> list[dict]:
    """The reported rows of a table, one per test set it reports (a '-' in the paper is no row)."""
    return [{"Model": model, "Source": "paper", "Benchmark": f"COCO {test_set}", **recalls(values)}
            for model, by_set in paper_numbers()[table]["rows"].items() for test_set, values in by_set.items() if values]


def _results_table(name: str, paths, out_stem: Path, note: str, labels: dict, extra: str = "") -> pd.DataFrame:
    rows_of = labels["rows"]  # ALADIN variant -> its row label
    rows, flat = _paper_rows(name), {}
    cells = [json.loads(Path(p).read_text()) for p in paths if "results/metrics/" in str(p)]
    timed = [json.loads(Path(p).read_text()) for p in paths if "results/benchmarks/" in str(p)]
    cells += [{**bench["methods"]["ce"], "protocol": bench["protocol"], "method": "ce", "variant": None,
               "dataset": bench["dataset"]} for bench in timed]  # Table 1's CE: the benchmark run's
    for m in cells:
        if m["protocol"] not in BENCHMARK:
            raise ValueError(f"a cell of {out_stem.name} was measured with protocol {m['protocol']!r}; the table "
                             f"reads {sorted(BENCHMARK)} (1K and 5K analogues)")
        label = rows_of.get(m["variant"]) or method_name(m["method"])
        test_set = BENCHMARK[m["protocol"]]
        rows.append({"Model": label, "Source": "ours",
                     "Benchmark": f"{test_set_name(m)} {m['protocol_label']} (plays {test_set})", **measured_row(m)})
        flat[f"{label}/{test_set}"] = rounded(rows[-1])
    df = pd.DataFrame(rows, columns=["Model", "Source", "Benchmark"] + SCORES)
    caption = (f"Table {name[5:]} analogue of Messina et al. (ALADIN): 'paper' rows as reported "
               f"({paper_numbers()[name]['source']}); 'ours' on {test_set_name(cells[0] if cells else None)} test. "
               f"{extra} {note}")
    write_recall_table(df, out_stem, caption, flat)
    return df


def build_table1(paths, out_stem: Path, note: str = "", labels: dict | None = None) -> pd.DataFrame:
    """Table 1: the alignment head (every pair scored, late interaction) against entangled models."""
    return _results_table("table1", paths, out_stem, note, labels or {"rows": {}}, extra=(
        "ALADIN rows rank by the alignment head over every pair. A = the alignment head on the JOINT checkpoint "
        "unchanged; the no-tags row is A/ft. trained and tested without object tags (the ablation of "
        "disentangled.object_tags). Entangled baselines (our VinVL stand-ins) on 1K only: CE over every pair (from the "
        "Figure 2 run), SEP+COOP and JOINT+COOP (the CE re-ranking the BE's or JOINT's top rerank.k)."))


def build_table2(paths, out_stem: Path, note: str = "", labels: dict | None = None) -> pd.DataFrame:
    """Table 2: the matching head's common space (faiss search) against disentangled methods."""
    return _results_table("table2", paths, out_stem, note, labels or {"rows": {}}, extra=(
        "ALADIN rows rank by the matching head's embeddings (exact faiss search). Disentangled baselines: Retrieve "
        "Fast, Rerank Smart's BE and TGDT's global embedding (TGDT-G), on the same protocols."))


def _efficiency_rows(bench: dict) -> list[dict]:
    """Per timed method: image-retrieval rsum, both rsums, total seconds and the time per text query."""
    n = bench["text_queries"]
    return [{"Model": method_name(method), "Paper": METHODS[method][1], **measured_row(r),
             "t2i rsum": sum(r["metrics"][c] for c in T2I), "Seconds": r["seconds"],
             "ms per text query": 1000 * r["seconds"] / n, "Pairs scored": r["pairs_scored"]}
            for method, r in bench["methods"].items()]


def _machine(bench: dict) -> str:
    m = bench["machine"]
    return f"{m['cpu']}, {m['threads']} torch threads ({m['faiss_threads']} for faiss), {m['device']}, torch {m['torch']}"


def _efficiency(paths, out_stem: Path, protocol: str, note: str, what: str) -> tuple[pd.DataFrame, dict]:
    bench = json.loads(Path(paths[0]).read_text())
    if bench["protocol"] != protocol:
        raise ValueError(f"{paths[0]} was measured with protocol {bench['protocol']!r}, the table asks for {protocol!r}")
    rows = _efficiency_rows(bench)
    columns = ["Model", "Paper"] + SCORES + ["t2i rsum", "ms per text query", "Seconds", "Pairs scored"]
    df = pd.DataFrame(rows, columns=columns).sort_values("ms per text query", kind="stable")
    flat = {r["Model"]: {"t2i_rsum": round(r["t2i rsum"], 2), "rsum": round(r["rsum"], 2),
                         "ms_per_text_query": round(r["ms per text query"], 3), "seconds": r["Seconds"]} for r in rows}
    caption = (f"{what} Every method of every registered paper evaluated whole (model loading, encoding, search, "
               f"pair scoring; both directions) in one run on {bench['protocol_label']} of {test_set_name(bench)} test "
               f"({bench['text_queries']} text queries), on {_machine(bench)}. ms per text query = the whole "
               f"evaluation's time over its text queries (pair scores serve both directions). {note}")
    shown = df.assign(**{"ms per text query": df["ms per text query"].map(lambda v: f"{v:.3g}"),
                         "Seconds": df["Seconds"].map(human_seconds)})
    write_recall_table(shown, out_stem, caption, flat)
    return df, bench


def build_figure2(paths, out_stem: Path, protocol: str, note: str = "") -> pd.DataFrame:
    """Figure 2: image-retrieval rsum against the time per text query, one point per method."""
    reported = paper_numbers()["figure2"]
    df, bench = _efficiency(paths, out_stem, protocol, note, (
        "Figure 2 analogue of Messina et al. (ALADIN): effectiveness (t2i rsum) against efficiency (time per text "
        f"query). Paper (COCO 1K, no values printed): {reported['alignment_speedup']}; {reported['matching_speedup']}."))
    _plot(df, out_stem.with_suffix(".png"), f"{test_set_name(bench)} {bench['protocol_label']}: "
                                            "image retrieval against time per query")
    return df


def build_comparison(paths, out_stem: Path, protocol: str, note: str = "") -> pd.DataFrame:
    """Every method of every registered paper side by side: the same data, protocol and machine, one run."""
    df, _ = _efficiency(paths, out_stem, protocol, note, "Efficiency and effectiveness of every method this project "
                        "reproduces (no paper has this table).")
    return df


def point_label(model: str, paper: str) -> str:
    """A row's name on the figure: its table name without the paper it belongs to (the legend's colour says that).

        >>> point_label("student (a) + CUSA (CUSA)", "CUSA")
        'student (a) + CUSA'
    """
    return model.removesuffix(f" ({paper})")


def _plot(df: pd.DataFrame, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for paper, part in df.groupby("Paper", sort=True):
        ax.scatter(part["ms per text query"], part["t2i rsum"], label=paper)
        for _, r in part.iterrows():
            ax.annotate(point_label(r["Model"], paper), (r["ms per text query"], r["t2i rsum"]), fontsize=6,
                        xytext=(4, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("time per text query (ms, log)")
    ax.set_ylabel("image retrieval rsum (t2i R@1 + R@5 + R@10)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    save_png(fig, out)
    plt.close(fig)
