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


def read_metrics(paths: list[Path], protocol: str) -> dict[str, dict]:
    """method name -> metrics file content, checking every file uses the requested protocol."""
    out = {}
    for p in paths:
        m = json.loads(Path(p).read_text())
        if m["protocol"] != protocol:
            raise ValueError(f"{p} was evaluated with protocol {m['protocol']!r}, the table asks for {protocol!r}")
        out[METHOD_NAMES.get(m["method"], m["method"])] = m
    return out


def _write_all(df: pd.DataFrame, out_stem: Path, caption: str, flat: dict) -> None:
    out_stem.parent.mkdir(parents=True, exist_ok=True)
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
        "comparable with the paper's, only the relations between rows are. t2i = the paper's image retrieval, "
        "i2t = its text retrieval (a hit when any of the image's captions is in the top K). Rows 'not run yet' "
        "come with later issues.")
    _write_all(df, out_stem, caption, flat)
    return df
