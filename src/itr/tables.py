"""Paper tables built with pandas from metrics JSON files (never from MLflow, never by hand).

Each table is written as Markdown, CSV, LaTeX and a flat JSON (for ``dvc metrics show``),
with a fixed column order, the paper's reported numbers beside ours, and a caption that
says where our numbers come from.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

from itr.atomic import write_text

RECALL_COLUMNS = ["t2i/R@1", "t2i/R@5", "t2i/R@10", "i2t/R@1", "i2t/R@5", "i2t/R@10"]
COLUMNS = ["Model", "Source", "Benchmark"] + RECALL_COLUMNS + ["rsum"]
METHOD_NAMES = {"ce": "CE", "be": "BE", "sep_coop": "SEP+COOP", "joint_coop": "JOINT+COOP",
                "joint_ce": "JOINT+CE", "joint_be": "JOINT+BE"}


def paper_numbers(name: str) -> dict:
    return yaml.safe_load(resources.files("itr.paper").joinpath(f"{name}.yaml").read_text())


def load_cells(paths: list[Path], protocol: str) -> list[dict]:
    """Metrics files of one table, checking that every cell was measured with the table's protocol."""
    cells = []
    for p in paths:
        m = json.loads(Path(p).read_text())
        if m["protocol"] != protocol:
            raise ValueError(f"{p} was evaluated with protocol {m['protocol']!r}, the table asks for {protocol!r}")
        cells.append(m)
    return cells


def read_metrics(paths: list[Path], protocol: str) -> dict[str, dict]:
    """Model name (CE, BE, ...) -> metrics file content."""
    return {METHOD_NAMES.get(m["method"], m["method"]): m for m in load_cells(paths, protocol)}


def _recalls(values) -> dict:
    return {**dict(zip(RECALL_COLUMNS, values)), "rsum": sum(values)}


def _ours(m: dict) -> dict:
    return {**{c: m["metrics"][c] for c in RECALL_COLUMNS}, "rsum": m["metrics"]["rsum"]}


def _protocol_note(cells: list[dict]) -> str:
    first = cells[0]
    return (f"protocol: {first['protocol_label']} of ShapeCaptions {first['split']} (generated shapes, not COCO or "
            f"Flickr30k; absolute numbers are not comparable with the paper's, only the relations between rows)")


def _write_all(df: pd.DataFrame, out_stem: Path, caption: str, flat: dict) -> None:
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    df = df.astype({c: float for c in RECALL_COLUMNS + ["rsum"]})
    shown = df.copy()
    for c in RECALL_COLUMNS + ["rsum"]:
        shown[c] = shown[c].map(lambda v: "—" if pd.isna(v) else f"{v:.1f}")
    texts = {
        ".md": f"{shown.to_markdown(index=False)}\n\n{caption}\n",
        ".csv": df.to_csv(index=False, float_format="%.2f"),
        ".tex": shown.to_latex(index=False, caption=caption, label=f"tab:{out_stem.name}", escape=True),
        ".json": json.dumps(flat, indent=2) + "\n",
    }
    for ext, text in texts.items():  # atomic: a half-written table is never taken as done
        write_text(out_stem.with_suffix(ext), text)


def build_rfrs_table1(metrics_paths: list[Path], out_stem: Path, protocol: str) -> pd.DataFrame:
    """Table 1 of Retrieve Fast, Rerank Smart: paper rows (COCO 5k, Flickr30k 1k) and ours (ShapeCaptions)."""
    paper = paper_numbers("rfrs")["table1"]
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
                     "Benchmark": f"ShapeCaptions {m['split'] if m else 'test'}",
                     **{c: (m["metrics"][c] if m else float("nan")) for c in RECALL_COLUMNS},
                     "rsum": m["metrics"]["rsum"] if m else float("nan")})
        if m:
            flat[model] = {c: round(m["metrics"][c], 2) for c in RECALL_COLUMNS + ["rsum"]}
    df = pd.DataFrame(rows, columns=COLUMNS)
    caption = (
        "Table 1 of Geigle et al. (2022), Retrieve Fast, Rerank Smart. Rows marked 'paper' are the reported "
        "OSCAR-base numbers on MSCOCO 5k and Flickr30k 1k. Rows marked 'ours' are measured by this workflow on "
        f"ShapeCaptions (generated shapes, not COCO or Flickr30k), protocol: {label}{chance}; absolute numbers are not "
        "comparable with the paper's, only the relations between rows are. All our rows rank the same queries over "
        "the same items. COOP rows rerank the first stage's top k (rerank.k) with the CE; CE rows score every pair. "
        "t2i = the paper's image retrieval, i2t = its text retrieval (a hit when any of the image's captions is in "
        "the top K).")
    _write_all(df, out_stem, caption, flat)
    return df


def build_rfrs_table8(metrics_paths: list[Path], out_stem: Path, protocol: str) -> pd.DataFrame:
    """Table 8: SEP+COOP and JOINT+COOP reranking the first stage's top k, for each k."""
    paper = paper_numbers("rfrs")["table8"]
    cells = load_cells(metrics_paths, protocol)
    ours = {(METHOD_NAMES[m["method"]], m["k"]): m for m in cells}
    rows, flat = [], {}
    for model, by_k in paper["rows"].items():
        for k, by_bench in by_k.items():
            for bench, values in by_bench.items():
                rows.append({"Model": model, "k": k, "Source": "paper", "Benchmark": paper["benchmarks"][bench],
                             **_recalls(values)})
        for (name, k), m in sorted(ours.items()):
            if name == model:
                rows.append({"Model": model, "k": k, "Source": "ours", "Benchmark": f"ShapeCaptions {m['split']}",
                             **_ours(m)})
                flat[f"{model}/k={k}"] = {c: round(v, 2) for c, v in _ours(m).items()}
    df = pd.DataFrame(rows, columns=["Model", "k", "Source", "Benchmark"] + RECALL_COLUMNS + ["rsum"])
    caption = ("Table 8 of Geigle et al. (2022): the cross-encoder reranks the bi-encoder's top k; a true item outside "
               "the top k is a miss. 'paper' rows: OSCAR-base as reported; 'ours': " + _protocol_note(cells) + ".")
    _write_all(df, out_stem, caption, flat)
    return df


def build_rfrs_table9(metrics_paths: list[Path], out_stem: Path, protocol: str) -> pd.DataFrame:
    """Table 9: fusing the embedding score e and the CE score c over the top k: ADD and NORM_ADD."""
    paper = paper_numbers("rfrs")["table9"]
    cells = load_cells(metrics_paths, protocol)
    ours = {(METHOD_NAMES[m["method"]], m["fusion"], m["lambda"]): m for m in cells}
    rows, flat = [], {}
    for model, by_fusion in paper["rows"].items():
        for fusion, by_lam in by_fusion.items():
            for lam, values in by_lam.items():
                lam = None if lam == "-" else float(lam)
                rows.append({"Model": model, "Fusion": fusion.upper(), "λ": lam, "Source": "paper",
                             "Benchmark": paper["benchmark"], **_recalls(values)})
                m = ours.get((model, fusion, lam))
                if m:
                    rows.append({"Model": model, "Fusion": fusion.upper(), "λ": lam, "Source": "ours",
                                 "Benchmark": f"ShapeCaptions {m['split']}", **_ours(m)})
                    flat[f"{model}/{fusion}" + (f"_{lam}" if lam is not None else "")] = {
                        c: round(v, 2) for c, v in _ours(m).items()}
    df = pd.DataFrame(rows, columns=["Model", "Fusion", "λ", "Source", "Benchmark"] + RECALL_COLUMNS + ["rsum"])
    df["λ"] = df["λ"].map(lambda v: "—" if pd.isna(v) else f"{v:g}")
    k = next((m["k"] for m in cells if m["k"]), None)
    caption = ("Table 9 of Geigle et al. (2022): ranking the top k by ADD_λ(e, c) = λe + (1-λ)σ(c) or by "
               "NORM_ADD_λ (e and c 0-1 normalised within the top k) instead of the CE score c alone (CE). "
               f"k = {k}. 'paper': OSCAR-base on Flickr30k; 'ours': " + _protocol_note(cells) + ".")
    _write_all(df, out_stem, caption, flat)
    return df


BUILDERS = {"rfrs1": build_rfrs_table1, "rfrs8": build_rfrs_table8, "rfrs9": build_rfrs_table9}
