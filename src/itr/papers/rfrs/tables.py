"""Tables 1, 2 and 5-9 of Retrieve Fast, Rerank Smart: the paper's reported rows beside ours.

Each builder reads the metrics files of its cells (``itr.papers.rfrs.plan`` lists them), checks their
protocol, and writes the table with itr.tables: reported rows marked 'paper', measured rows 'ours', and a
caption that says where our numbers come from.

Example:
    >>> build_table1(paths, Path("results/tables/rfrs_table1"), "subset100")
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from itr.tables import (RECALL_COLUMNS, comparability, load_cells, measured_row, protocol_note, recalls,
                        reported_numbers, test_set_name, write_recall_table, write_table)

COLUMNS = ["Model", "Source", "Benchmark"] + RECALL_COLUMNS + ["rsum"]
METHOD_NAMES = {"ce": "CE", "be": "BE", "sep_coop": "SEP+COOP", "joint_coop": "JOINT+COOP",
                "joint_ce": "JOINT+CE", "joint_be": "JOINT+BE"}


def paper_numbers() -> dict:
    """The numbers Geigle et al. report (reported.yaml), by table."""
    return reported_numbers(__package__)


def read_metrics(paths: list[Path], protocol: str) -> dict[str, dict]:
    """Model name (CE, BE, ...) -> metrics file content."""
    return {METHOD_NAMES.get(m["method"], m["method"]): m for m in load_cells(paths, protocol)}


def _measured_on(cell: dict | None, protocol: str) -> str:
    """Table 1's caption: what our rows were measured on, how, and what of them compares with the paper's."""
    name = test_set_name(cell)
    if name == "ShapeCaptions":
        return f"ShapeCaptions (generated shapes, not COCO or Flickr30k), {protocol}; {comparability(cell)} are"
    return f"{name}, {protocol}; {comparability(cell)}"


def build_table1(metrics_paths: list[Path], out_stem: Path, protocol: str) -> pd.DataFrame:
    """Table 1 of Retrieve Fast, Rerank Smart: paper rows (COCO 5k, Flickr30k 1k) and ours (ShapeCaptions)."""
    paper = paper_numbers()["table1"]
    ours = read_metrics(metrics_paths, protocol)
    rows, flat = [], {}
    first = next(iter(ours.values()), None)
    label = first["protocol_label"] if first else protocol
    # A random ranking finds the one relevant image (or any of an image's captions, which are 1/n of
    # all captions) at rank 1 with probability 1/n: the chance level of R@1 in both directions.
    chance = f"; chance level of R@1 in either direction: {100 / first['n_images']:.2g}%" if first else ""
    for model, by_bench in paper["rows"].items():
        for bench, values in by_bench.items():
            rows.append({"Model": model, "Source": "paper", "Benchmark": paper["benchmarks"][bench],
                         **dict(zip(RECALL_COLUMNS, values)), "rsum": sum(values)})
        m = ours.get(model)
        rows.append({"Model": model, "Source": "ours" if m else "ours (not run yet)",
                     "Benchmark": f"{test_set_name(m or first)} {m['split'] if m else 'test'}",
                     **{c: (m["metrics"][c] if m else float("nan")) for c in RECALL_COLUMNS},
                     "rsum": m["metrics"]["rsum"] if m else float("nan")})
        if m:
            flat[model] = {c: round(m["metrics"][c], 2) for c in RECALL_COLUMNS + ["rsum"]}
    df = pd.DataFrame(rows, columns=COLUMNS)
    caption = (
        "Table 1 of Geigle et al. (2022), Retrieve Fast, Rerank Smart. Rows marked 'paper' are the reported "
        "OSCAR-base numbers on MSCOCO 5k and Flickr30k 1k. Rows marked 'ours' are measured by this workflow on "
        f"{_measured_on(first, f'protocol: {label}{chance}')}. All our rows rank the same queries over "
        "the same items. COOP rows rerank the first stage's top k (rerank.k) with the CE; CE rows score every pair. "
        "t2i = the paper's image retrieval, i2t = its text retrieval (a hit when any of the image's captions is in "
        "the top K).")
    write_recall_table(df, out_stem, caption, flat)
    return df


def build_table8(metrics_paths: list[Path], out_stem: Path, protocol: str) -> pd.DataFrame:
    """Table 8: SEP+COOP and JOINT+COOP reranking the first stage's top k, for each k."""
    paper = paper_numbers()["table8"]
    cells = load_cells(metrics_paths, protocol)
    ours = {(METHOD_NAMES[m["method"]], m["k"]): m for m in cells}
    rows, flat = [], {}
    for model, by_k in paper["rows"].items():
        for k, by_bench in by_k.items():
            for bench, values in by_bench.items():
                rows.append({"Model": model, "k": k, "Source": "paper", "Benchmark": paper["benchmarks"][bench],
                             **recalls(values)})
        for (name, k), m in sorted(ours.items()):
            if name == model:
                rows.append({"Model": model, "k": k, "Source": "ours", "Benchmark": f"{test_set_name(m)} {m['split']}",
                             **measured_row(m)})
                flat[f"{model}/k={k}"] = {c: round(v, 2) for c, v in measured_row(m).items()}
    df = pd.DataFrame(rows, columns=["Model", "k", "Source", "Benchmark"] + RECALL_COLUMNS + ["rsum"])
    caption = ("Table 8 of Geigle et al. (2022): the cross-encoder reranks the bi-encoder's top k; a true item outside "
               "the top k is a miss. 'paper' rows: OSCAR-base as reported; 'ours': " + protocol_note(cells) + ".")
    write_recall_table(df, out_stem, caption, flat)
    return df


def build_table9(metrics_paths: list[Path], out_stem: Path, protocol: str) -> pd.DataFrame:
    """Table 9: fusing the embedding score e and the CE score c over the top k: ADD and NORM_ADD."""
    paper = paper_numbers()["table9"]
    cells = load_cells(metrics_paths, protocol)
    ours = {(METHOD_NAMES[m["method"]], m["fusion"], m["lambda"]): m for m in cells}
    rows, flat = [], {}
    for model, by_fusion in paper["rows"].items():
        for fusion, by_lam in by_fusion.items():
            reported = {None if lam == "-" else float(lam): values for lam, values in by_lam.items()}
            measured = {lam for name, f, lam in ours if (name, f) == (model, fusion)}
            for lam in sorted(set(reported) | measured, key=lambda v: -1.0 if v is None else v):
                if lam in reported:  # the paper's λ values; ours may add others (rerank.lambdas)
                    rows.append({"Model": model, "Fusion": fusion.upper(), "λ": lam, "Source": "paper",
                                 "Benchmark": paper["benchmark"], **recalls(reported[lam])})
                m = ours.get((model, fusion, lam))
                if m:
                    rows.append({"Model": model, "Fusion": fusion.upper(), "λ": lam, "Source": "ours",
                                 "Benchmark": f"{test_set_name(m)} {m['split']}", **measured_row(m)})
                    flat[f"{model}/{fusion}" + (f"_{lam}" if lam is not None else "")] = {
                        c: round(v, 2) for c, v in measured_row(m).items()}
    df = pd.DataFrame(rows, columns=["Model", "Fusion", "λ", "Source", "Benchmark"] + RECALL_COLUMNS + ["rsum"])
    df["λ"] = df["λ"].map(lambda v: "—" if pd.isna(v) else f"{v:g}")
    k = next((m["k"] for m in cells if m["k"]), None)
    caption = ("Table 9 of Geigle et al. (2022): ranking the top k by ADD_λ(e, c) = λe + (1-λ)σ(c) or by "
               "NORM_ADD_λ (e and c 0-1 normalised within the top k) instead of the CE score c alone (CE). "
               f"k = {k}. 'paper': OSCAR-base on Flickr30k; 'ours': " + protocol_note(cells) + ".")
    write_recall_table(df, out_stem, caption, flat)
    return df


def _setting_table(paper_settings: dict, ours: dict[str, list[dict]], setting_col: str) -> tuple[pd.DataFrame, dict]:
    """Rows grouped by setting: the paper's settings (model -> six recalls), then ours (setting -> metrics files)."""
    rows, flat = [], {}
    for setting, by_model in paper_settings.items():
        rows += [{setting_col: setting, "Model": model, "Source": "paper", **recalls(values)}
                 for model, values in by_model.items()]
    for setting, cells in ours.items():
        for m in cells:
            model = METHOD_NAMES.get(m["method"], m["method"])
            rows.append({setting_col: setting, "Model": model, "Source": "ours", **measured_row(m)})
            flat[f"{setting}/{model}"] = {c: round(v, 2) for c, v in measured_row(m).items()}
    return pd.DataFrame(rows, columns=[setting_col, "Model", "Source"] + RECALL_COLUMNS + ["rsum"]), flat


def _language_table(name: str, metrics_paths: list[Path], out_stem: Path, protocol: str, summary: str,
                    caption: Callable[[dict], str]) -> pd.DataFrame:
    """mR per caption language (columns), one row per model, the paper's rows first; ``summary`` names the last
    column: 'mean' over all languages or 'avg' over the non-English ones; ``caption(cell)`` the table's caption, from
    its first cell (what the models were trained on)."""
    paper = paper_numbers()[name]
    cells = load_cells(metrics_paths, protocol)
    ours: dict[str, dict[str, float]] = {}
    for m in cells:
        ours.setdefault(METHOD_NAMES.get(m["method"], m["method"]), {})[m["lang"]] = m["metrics"]["mR"]
    langs = [c for c in paper["columns"][:-1]]
    rows = [{"Model": model, "Source": "paper", **dict(zip(paper["columns"], values))}
            for model, values in paper["rows"].items()]
    flat = {}
    for model, by_lang in ours.items():
        pooled = [by_lang[lang] for lang in langs if lang in by_lang and (summary == "mean" or lang != "en")]
        row = {"Model": model, "Source": "ours", **{lang: by_lang.get(lang, float("nan")) for lang in langs},
               summary: sum(pooled) / len(pooled) if pooled else float("nan")}
        rows.append(row)
        flat[model] = {k: round(v, 2) for k, v in row.items() if k in paper["columns"] and v == v}
    df = pd.DataFrame(rows, columns=["Model", "Source"] + paper["columns"])
    shown = df.copy()
    for c in paper["columns"]:
        shown[c] = shown[c].map(lambda v: "—" if pd.isna(v) else f"{v:.1f}")
    full_caption = caption(cells[0]) + " Ours: " + protocol_note(cells) + "; every language searches the same images."
    write_table(shown, out_stem, full_caption, flat, csv=df.to_csv(index=False, float_format="%.2f"))
    return df


def build_table2(metrics_paths: list[Path], out_stem: Path, protocol: str, note: str = "") -> pd.DataFrame:
    """Table 2: models trained on captions in all four languages, mR in each language."""
    def caption(cell: dict) -> str:
        ours = ("ShapeCaptions captions from per-language templates (itr.data.captions)"
                if test_set_name(cell) == "ShapeCaptions" else f"the main models of {cell['trained_on']}, trained on "
                "its captions in every language")
        return ("Table 2 of Geigle et al. (2022): multilingual retrieval, models trained on all four languages, mean "
                f"recall (mR: mean of R@1, R@5, R@10 in both directions). 'paper': M3P on Multi30k; 'ours': {ours}. "
                + note)
    return _language_table("table2", metrics_paths, out_stem, protocol, "mean", caption)


def build_table7(metrics_paths: list[Path], out_stem: Path, protocol: str, note: str = "") -> pd.DataFrame:
    """Table 7: models trained on English only, mR in each language (zero-shot for de, fr, cs)."""
    def caption(cell: dict) -> str:
        ours = ("the main English models, whose text tower is the English MiniLM: the other languages are unseen "
                "words to it" if test_set_name(cell) == "ShapeCaptions" else
                f"models of the main recipe trained on the English captions of {cell['trained_on']} (train_languages)")
        return ("Table 7 of Geigle et al. (2022): models trained on English captions only, tested in each language "
                f"(mR; avg = mean over de, fr, cs). 'paper': M3P (multilingual pre-training) on Multi30k; 'ours': "
                f"{ours}. " + note)
    return _language_table("table7", metrics_paths, out_stem, protocol, "avg", caption)


def build_table5(metrics_paths: list[Path], out_stem: Path, protocol: str) -> pd.DataFrame:
    """Table 5: the same queries searched among distractors (images and captions from elsewhere)."""
    paper = paper_numbers()["table5"]
    cells = load_cells(metrics_paths, protocol)
    ours: dict[str, list[dict]] = {}
    for m in cells:
        n = len(m.get("distractors") or [])  # a collection with distractors is named <dataset>_distractors (plan)
        setting = f"{test_set_name(m).removesuffix('_distractors')} {m['split']}" + (
            f" + distractors from {n} splits" if n else " alone")
        ours.setdefault(setting, []).append(m)
    df, flat = _setting_table(paper["settings"], ours, "Collection")
    sources = next((m["distractors"] for m in cells if m.get("distractors")), [])
    caption = ("Table 5 of Geigle et al. (2022): the standard queries searched in a larger collection whose extra "
               "images and captions are never relevant (distractors). 'paper': OSCAR-base, the underlined task's "
               "queries among three test sets (20k images). 'ours': " + protocol_note(cells) + "; distractors: "
               + (", ".join(s.split(":")[-1] + " of " + s.split(":")[0].removeprefix("data/") for s in sources)
                  or "none")
               + ". Rows 'alone' are the same queries without distractors (as in Table 1).")
    write_recall_table(df, out_stem, caption, flat)
    return df


def build_table6(metrics_paths: list[Path], out_stem: Path, protocol: str, note: str = "") -> pd.DataFrame:
    """Table 6: zero-shot transfer: models trained on one ShapeCaptions domain (or real dataset), tested on the
    other(s)."""
    paper = paper_numbers()["table6"]
    cells = load_cells(metrics_paths, protocol)
    ours: dict[str, list[dict]] = {}
    for m in cells:
        kind = "in-domain" if m["trained_on"] == m["dataset"] else "zero-shot"
        ours.setdefault(f"train {m['trained_on']}, test {m['dataset']} ({kind})", []).append(m)
    df, flat = _setting_table(paper["settings"], dict(sorted(ours.items())), "Setting")
    ours_are = ("two visual domains of ShapeCaptions (plain: flat shapes on grey noise; sketch: pastel outlined shapes "
                "on striped paper; one detector, trained on plain, extracts both)"
                if test_set_name(cells[0]) == "ShapeCaptions" else
                "trained on one dataset, tested on the others (one pretrained detector extracts every set; no CE row "
                "where the test set has no training split: CC, whose column in the paper has no CE row either)")
    caption = ("Table 6 of Geigle et al. (2022): zero-shot transfer. 'paper': OSCAR-base, trained on the other "
               f"dataset (the in-domain JOINT+COOP row is the upper bound). 'ours': {ours_are}. "
               + protocol_note(cells) + ". " + note)
    write_recall_table(df, out_stem, caption, flat)
    return df


