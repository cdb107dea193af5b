"""Ablations of Retrieve Fast, Rerank Smart: Figures 3 and 4, appendix Tables 9 and 10.

* Figure 3, sample efficiency: the same recipe trained on nested prefixes of the training set.
* Figure 4, parameter efficiency: full models against half-size ones that skip every other layer.
* Appendix Tables 9 and 10 (first version of the paper): in-batch hardest negatives (BHE) against
  ANCE negatives mined from the model's own index, for the BE (Table 9) and JOINT+COOP (Table 10).

Each builder reads metrics JSON files (one per cell) and a ``labels`` mapping from the workflow's
variant names to what the variant changes (training images, model size, loss), and writes the
table as md/csv/tex/json with itr.tables; the figures also get a PNG.

Example:
    >>> build_figure3(paths, Path("results/tables/rfrs_figure3"), "subset50",
    ...               labels={"rfrs_aux_sizes/n125": 125, "rfrs_aux": 250, "rfrs": 2000})
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from itr.papers.rfrs.tables import METHOD_NAMES, paper_numbers
from itr.tables import (RECALL_COLUMNS, load_cells, measured_row, plot_recalls, protocol_note, recalls,
                        test_set_name, write_recall_table)


def _by_variant(cells: list[dict], labels: dict) -> list[tuple[object, str, dict]]:
    """(label, model name, metrics file) per cell; a cell of a variant without a label is an error."""
    out = []
    for m in cells:
        if m.get("variant") not in labels:
            raise ValueError(f"metrics of variant {m.get('variant')!r} ({m['method']}) have no label; "
                             f"labels given: {sorted(labels)}")
        out.append((labels[m["variant"]], METHOD_NAMES.get(m["method"], m["method"]), m))
    return out


def build_figure3(metrics_paths: list[Path], out_stem: Path, protocol: str, note: str = "",
                       labels: dict | None = None) -> pd.DataFrame:
    """Figure 3: recall of BE, CE, SEP+COOP, JOINT+COOP against the number of training images."""
    cells = load_cells(metrics_paths, protocol)
    rows = [{"Model": model, "Training images": int(n), **measured_row(m)} for n, model, m in _by_variant(cells, labels or {})]
    df = pd.DataFrame(rows, columns=["Model", "Training images"] + RECALL_COLUMNS + ["rsum"])
    df = df.sort_values(["Model", "Training images"], kind="stable").reset_index(drop=True)
    flat = {f"{r['Model']}/{r['Training images']}": {c: round(r[c], 2) for c in RECALL_COLUMNS + ["rsum"]}
            for r in df.to_dict("records")}
    caption = ("Figure 3 of Geigle et al. (2022), sample efficiency: the same recipe trained on the first N training "
               "images (nested prefixes, 5 captions each). 'paper': MSCOCO subsets of 1k, 10k and 50k images, OSCAR "
               "(a figure without printed numbers; its text: BE-based approaches are considerably less sample-efficient "
               "than the CE, most of all at 1k images). Ours: " + protocol_note(cells) + ". " + note)
    write_recall_table(df, out_stem, caption, flat)
    plot_recalls(df, "Training images", out_stem.with_suffix(".png"), f"{test_set_name(cells[0])}: recall by training-set size",
                 "line")
    return df


def build_figure4(metrics_paths: list[Path], out_stem: Path, protocol: str, note: str = "",
                       labels: dict | None = None) -> pd.DataFrame:
    """Figure 4: full against half-size models (every other transformer layer), and the half/full ratio."""
    cells = load_cells(metrics_paths, protocol)
    rows = [{"Model": model, "Size": size, **measured_row(m)} for size, model, m in _by_variant(cells, labels or {})]
    df = pd.DataFrame(rows, columns=["Model", "Size"] + RECALL_COLUMNS + ["rsum"])
    df = df.sort_values(["Model", "Size"], kind="stable").reset_index(drop=True)
    full = df[df["Size"] == "full"].set_index("Model")["rsum"]
    df["half/full rsum"] = df.apply(lambda r: r["rsum"] / full[r["Model"]] if r["Model"] in full.index else float("nan"),
                                    axis=1)
    flat = {f"{r['Model']}/{r['Size']}": {c: round(r[c], 4 if c == "half/full rsum" else 2)
                                          for c in RECALL_COLUMNS + ["rsum", "half/full rsum"]}
            for r in df.to_dict("records")}
    caption = ("Figure 4 of Geigle et al. (2022), parameter efficiency: the full text tower (MiniLM, 6 layers) against "
               "a half-size one that keeps layers 2, 4, 6 and skips the odd-numbered ones, same training otherwise. "
               "'paper': Flickr30k, OSCAR (a figure; its text: half-size models reach about 90% of the full models' "
               "performance, and JOINT+COOP again scores highest). Ours: " + protocol_note(cells) + ". " + note)
    shown = df.drop(columns=["half/full rsum"])
    write_recall_table(shown, out_stem, caption + " half/full rsum: " + ", ".join(
        f"{r['Model']} {r['half/full rsum']:.2f}" for r in df[df['Size'] == 'half'].to_dict('records')) + ".", flat)
    plot_recalls(df, "Size", out_stem.with_suffix(".png"), f"{test_set_name(cells[0])}: full vs half-size models", "bar")
    return df


def _negatives_table(name: str, metrics_paths: list[Path], out_stem: Path, protocol: str, labels: dict,
                     caption: str) -> pd.DataFrame:
    """Loss rows: the paper's (per benchmark), then ours (one per variant)."""
    paper = paper_numbers()[name]
    cells = load_cells(metrics_paths, protocol)
    rows, flat = [], {}
    for loss, by_bench in paper["rows"].items():
        for bench, values in by_bench.items():
            rows.append({"Loss": loss, "Source": "paper", "Benchmark": paper["benchmarks"][bench], **recalls(values)})
    for loss, model, m in _by_variant(cells, labels):
        rows.append({"Loss": loss, "Source": "ours", "Benchmark": f"{test_set_name(m)} {m['split']}", **measured_row(m)})
        flat[loss] = {c: round(v, 2) for c, v in measured_row(m).items()}
    df = pd.DataFrame(rows, columns=["Loss", "Source", "Benchmark"] + RECALL_COLUMNS + ["rsum"])
    write_recall_table(df, out_stem, caption + " Ours: " + protocol_note(cells) + ".", flat)
    return df


def build_appendix9(metrics_paths: list[Path], out_stem: Path, protocol: str, note: str = "",
                         labels: dict | None = None) -> pd.DataFrame:
    """Appendix Table 9: the BE trained with in-batch hardest negatives (T_BHE), and with ANCE added."""
    return _negatives_table("appendix9", metrics_paths, out_stem, protocol, labels or {}, (
        "Appendix Table 9 of Geigle et al. (first version of the paper): bi-encoders trained with the "
        "in-batch hardest-negative triplet loss (T_BHE) and with a second triplet loss on negatives sampled from the "
        "model's own top-50 neighbours, mined again before every epoch (T_ANCE). '-' (paper only): OSCAR without "
        "training. " + note))


def build_appendix10(metrics_paths: list[Path], out_stem: Path, protocol: str, note: str = "",
                          labels: dict | None = None) -> pd.DataFrame:
    """Appendix Table 10: JOINT+COOP trained with BHE and with ANCE negatives (triplet T, cross-entropy E)."""
    return _negatives_table("appendix10", metrics_paths, out_stem, protocol, labels or {}, (
        "Appendix Table 10 of Geigle et al. (first version): JOINT+COOP trained with different negatives. T = triplet "
        "loss of the embedding part, E = cross-entropy of the cross-encoding part; BHE = in-batch hardest, ANCE = "
        "sampled from the model's mined top-50 (E_ANCE: a share of the CE's negatives, ablations.ance_p). " + note))

