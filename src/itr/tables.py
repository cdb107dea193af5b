"""The table writer: result tables built with pandas from metrics JSON files (never from MLflow, never by hand).

Every table is written as Markdown, CSV, LaTeX, HTML (for Snakemake's report) and a flat JSON (for ``dvc
metrics show``), each file atomically. A paper's builders (``itr.papers.<paper>``) choose the rows and the caption; this module
knows no paper. It reads metrics files (one per table cell, written by ``itr evaluate`` and
``itr rerank evaluate``), checks they were measured with the table's protocol, and writes the files.

Example:
    >>> cells = load_cells([Path("results/metrics/x/be/shapes/full.json")], "full")
    >>> df = pd.DataFrame([{"Model": "BE", **measured_row(cells[0])}])
    >>> write_recall_table(df, Path("results/tables/example"), "caption", flat={})
"""
from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

from itr.atomic import replacing, write_text
from itr.layout import MAIN_DATASET, TABLE_FORMATS

RECALL_COLUMNS = ["t2i/R@1", "t2i/R@5", "t2i/R@10", "i2t/R@1", "i2t/R@5", "i2t/R@10"]


def reported_numbers(package: str) -> dict:
    """A paper's reported numbers: ``reported.yaml`` of its package (``itr.papers.<paper>``)."""
    return yaml.safe_load(resources.files(package).joinpath("reported.yaml").read_text())


def load_cells(paths: list[Path], protocol: str) -> list[dict]:
    """Metrics files of one table, checking that every cell was measured with the table's protocol."""
    cells = []
    for p in paths:
        m = json.loads(Path(p).read_text())
        if m["protocol"] != protocol:
            raise ValueError(f"{p} was evaluated with protocol {m['protocol']!r}, the table asks for {protocol!r}")
        cells.append(m)
    return cells


def recalls(values) -> dict:
    """Six reported recalls (the order of RECALL_COLUMNS) as a row, with their rsum."""
    return {**dict(zip(RECALL_COLUMNS, values)), "rsum": sum(values)}


def measured_row(cell: dict) -> dict:
    """The six recalls and rsum of one metrics file, as a row."""
    return {**{c: cell["metrics"][c] for c in RECALL_COLUMNS}, "rsum": cell["metrics"]["rsum"]}


def write_headline(cells: list[Path], outs: list[Path]) -> None:
    """Each headline cell's six recalls and rsum as a flat JSON (``dvc metrics show``/``diff``: one row per cell, the
    same seven columns for every paper)."""
    from itr.errors import InputError

    for cell, out in zip(cells, outs, strict=True):
        metrics = json.loads(Path(cell).read_text()).get("metrics", {})
        missing = [c for c in (*RECALL_COLUMNS, "rsum") if c not in metrics]
        if missing:
            raise InputError(f"{cell} has no {missing}: a headline cell is a retrieval metrics file (itr evaluate)")
        write_text(out, json.dumps({c: metrics[c] for c in (*RECALL_COLUMNS, "rsum")}, indent=1) + "\n")


def test_set_name(cell: dict | None) -> str:
    """What a cell was measured on, as a table row names it: ShapeCaptions (every generated dataset), else the
    real dataset's name (params ``datasets``)."""
    name = (cell or {}).get("dataset", MAIN_DATASET)
    return "ShapeCaptions" if name.startswith(MAIN_DATASET) else name


def comparability(cell: dict | None) -> str:
    """Why our numbers and the paper's differ, for a caption."""
    if test_set_name(cell) == "ShapeCaptions":
        return "absolute numbers are not comparable with the paper's, only the relations between rows"
    return "our towers are not the paper's pretrained models, so absolute numbers differ; the relations between rows hold"


def protocol_note(cells: list[dict]) -> str:
    """Which test images the cells were measured on, and why absolute numbers are not comparable."""
    first = cells[0]
    if test_set_name(first) != "ShapeCaptions":  # real data: a table may test on several sets (Table 6), name each
        measured = dict.fromkeys(f"{m['protocol_label']} of {test_set_name(m)} {m['split']}" for m in cells)
        return f"protocol: {'; '.join(measured)} ({comparability(first)})"
    return (f"protocol: {first['protocol_label']} of ShapeCaptions {first['split']} (generated shapes, not COCO or "
            f"Flickr30k; {comparability(first)})")


def write_recall_table(df: pd.DataFrame, out_stem: Path, caption: str, flat: dict) -> None:
    """A recall table: one decimal (— for missing) in .md/.tex, two in .csv."""
    df = df.astype({c: float for c in RECALL_COLUMNS + ["rsum"]})
    shown = df.copy()
    for c in RECALL_COLUMNS + ["rsum"]:
        shown[c] = shown[c].map(lambda v: "—" if pd.isna(v) else f"{v:.1f}")
    write_table(shown, out_stem, caption, flat, csv=df.to_csv(index=False, float_format="%.2f"))


def write_plain_table(df: pd.DataFrame, out_stem: Path, caption: str, flat: dict) -> None:
    """A table of preformatted cells, written as it is."""
    write_table(df, out_stem, caption, flat, csv=df.to_csv(index=False))


def write_table(shown: pd.DataFrame, out_stem: Path, caption: str, flat: dict, csv: str) -> None:
    """One table as .md, .tex and .html (from ``shown``; the HTML is what Snakemake's report shows), .csv (given)
    and flat .json, each written atomically."""
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    texts = {
        ".md": f"{shown.to_markdown(index=False)}\n\n{caption}\n",
        ".csv": csv,
        ".tex": shown.to_latex(index=False, caption=caption, label=f"tab:{out_stem.name}", escape=True),
        ".json": json.dumps(flat, indent=2) + "\n",
        ".html": (f"<figure>\n<figcaption>{html.escape(caption)}</figcaption>\n"
                  f"{shown.to_html(index=False, border=0)}\n</figure>\n"),
    }
    assert sorted(texts) == sorted(f".{ext}" for ext in TABLE_FORMATS)  # the files the workflow expects
    for ext, text in texts.items():  # atomic: a half-written table is never taken as done
        write_text(out_stem.with_suffix(ext), text)


def human_seconds(s: float) -> str:
    """0.0123 -> '12.3 ms', 95 -> '1.6 min', 7200 -> '2.0 h', 7.3e7 -> '2.3 years'."""
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s * 1000:.3g} ms"


def save_png(fig, path: Path) -> None:
    """A matplotlib figure as PNG, written atomically."""
    with replacing(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def plot_recalls(rows: pd.DataFrame, x: str, out: Path, title: str, kind: str, logx: bool = True,
                 group: str = "Model") -> None:
    """R@1 in both directions against column ``x``, one series per ``group``: lines (kind='line', log x unless
    ``logx`` is False) or grouped bars (kind='bar')."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, col, name in zip(axes, ("t2i/R@1", "i2t/R@1"), ("image retrieval (t2i) R@1", "text retrieval (i2t) R@1")):
        table = rows.pivot(index=x, columns=group, values=col)
        if kind == "line":
            table.plot(ax=ax, marker="o", logx=logx)
            ax.set_xticks(list(table.index), [str(v) for v in table.index])
        else:
            table.T.plot.bar(ax=ax, rot=0)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    save_png(fig, out)
    plt.close(fig)


def read_claimed_tables(paths, paper: str) -> dict[str, dict]:
    """The flat JSON of a paper's tables (``results/tables/[<dataset>/]<paper>_<target>.json``) by target name."""
    import re

    return {re.search(rf"{paper}_(\w+)\.json$", str(p)).group(1): json.loads(Path(p).read_text()) for p in paths}


def write_claims(checked, out_stem: Path, caption: str) -> pd.DataFrame:
    """A claims table from ``checked``: (claim, holds or None when not checked, evidence), one row each, marked holds,
    does not hold or not checked; its flat JSON maps each claim to its verdict."""
    rows = [{"claim": claim, "verdict": "not checked" if holds is None else "holds" if holds else "does not hold",
             "evidence": evidence} for claim, holds, evidence in checked]
    df = pd.DataFrame(rows, columns=["claim", "verdict", "evidence"])
    write_plain_table(df, out_stem, caption, {r["claim"]: r["verdict"] for r in rows})
    return df


EXTENDED_REPORT_COLUMNS = {"t2i R@1 single": "single/t2i/R@1", "t2i R@1 ext": "ext/t2i/R@1",
                           "i2t R@1 single": "single/i2t/R@1", "i2t R@1 ext": "ext/i2t/R@1",
                           "t2i mAP@R": "ext/t2i/mAP@R", "i2t mAP@R": "ext/i2t/mAP@R",
                           "t2i R-P": "ext/t2i/R-P", "i2t R-P": "ext/i2t/R-P"}
# COCO's 5K test split (protocol full): R@1 of the COCO ground truth beside ECCV Caption's on the same rankings
ECCV_REPORT_COLUMNS = {"t2i R@1 single": "t2i/R@1", "t2i R@1 ext": "eccv/t2i/R@1",
                       "i2t R@1 single": "i2t/R@1", "i2t R@1 ext": "eccv/i2t/R@1",
                       "t2i mAP@R": "eccv/t2i/mAP@R", "i2t mAP@R": "eccv/i2t/mAP@R",
                       "t2i R-P": "eccv/t2i/R-P", "i2t R-P": "eccv/i2t/R-P"}


def build_extended_report(paths, out_stem: Path, papers: dict[str, str]) -> pd.DataFrame:
    """Every model of every paper under the extended ground truth (``paths``; ``papers``: cell path -> the paper whose
    plan has it): R@1 under the original single positive beside R@1 under the extended ground truth of the same
    rankings (the difference is what the single positive undercounts), and ECCV Caption's mAP@R and R-P. The cells
    are ShapeCaptions' protocol ``extended`` ones (itr.data.truth), or COCO's 5K protocol ``full`` ones with ECCV
    Caption's own metrics (``eccv/*``, itr.eccv), never a mix."""
    cells = {str(path): json.loads(Path(path).read_text()) for path in paths}
    protocols = {m["protocol"] for m in cells.values()}
    if not protocols <= {"extended", "full"} or len(protocols) > 1:
        raise ValueError(f"{sorted(cells)} were measured with protocols {sorted(protocols)}; the report reads "
                         "ShapeCaptions' 'extended' cells or COCO's 5K 'full' ones with ECCV Caption's metrics")
    coco = protocols == {"full"}
    columns = ECCV_REPORT_COLUMNS if coco else EXTENDED_REPORT_COLUMNS
    rows, flat = [], {}
    for path, m in cells.items():
        if coco and "eccv/t2i/R@1" not in m["metrics"]:
            raise ValueError(f"{path} has no ECCV Caption metrics (eccv/*): it was not measured on COCO's Karpathy 5K "
                             "test split under COCO ids (itr.eccv.covers); import COCO with itr data import --format "
                             "karpathy")
        values = {c: m["metrics"][key] for c, key in columns.items()}
        rows.append({"Paper": papers[path], "Variant": m["variant"], "Method": m["method"], **values})
        flat[f"{m['variant']}/{m['method']}"] = {c: round(v, 2) for c, v in values.items()}
    df = pd.DataFrame(rows, columns=["Paper", "Variant", "Method", *columns])
    shown = df.copy()
    for c in columns:
        shown[c] = shown[c].map(lambda v: f"{v:.1f}")
    write_table(shown, out_stem, _eccv_caption(next(iter(cells.values()), {})) if coco else _extended_caption(
        next(iter(cells.values()), {}).get("positives")), flat, csv=df.to_csv(index=False, float_format="%.2f"))
    return df


def _extended_caption(counts: dict | None) -> str:
    return ("Every embedding model of every paper searched on ShapeCaptions' whole test split, ranked once and "
            "judged twice: 'single' by the original ground truth (a caption's own image; an image's own captions), "
            "'ext' by the extended one (every caption true of an image is its positive: itr.data.truth, the ECCV "
            "Caption analogue), with ECCV Caption's mAP@R and R-P over the whole rankings. ext R@1 - single R@1 is "
            "what the single positive undercounts. Captions with the same text tie exactly; the exact ranking here "
            "orders them by position, so 'single' can differ from protocol full's R@1 (faiss's order) by a few "
            "tenths."
            + (f" Positives per query: median {counts['t2i']['median']:g} images per caption, median "
               f"{counts['i2t']['median']:g} captions per image." if counts else ""))


def _eccv_caption(cell: dict) -> str:
    return ("Every model of every paper on COCO's Karpathy 5K test split, ranked once and judged twice: 'single' by "
            "COCO's ground truth (all 25,000 caption queries, 5,000 image queries), 'ext' by ECCV Caption's "
            "re-judged positives (Chun et al. 2022; its 1,332 caption and 1,261 image queries, the eccv-caption "
            "package's ground truth and metric code), with its mAP@R and R-P. Re-ranked rows are judged on their "
            "shortlists as re-sorted (a first-stage miss stays missed).")
