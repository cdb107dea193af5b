"""Figures of how training went: validation curves of a paper's models, and the detector's AP per class.

A table gives each model's final number; its curve says whether that number came from a run that had settled, was
still climbing, or peaked early (the checkpoint kept is the best validation epoch, marked). Each training history
(``results/train/<variant>/<model>.csv``: one row per epoch, ``epoch``, ``train_loss``, ``val/rsum`` ...) is one
panel: validation rsum and the training loss (dashed, right axis) by epoch.

Example:
    >>> plot_histories({"<variant>/be": "results/train/<variant>/be.csv"}, "results/curves/<paper>.png", "<paper>")
    >>> plot_detector("results/metrics/detector/shapes.json", "results/curves/detector/shapes.png")
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from itr.errors import InputError

VAL_METRIC = "val/rsum"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out) -> None:
    from itr.atomic import replacing

    with replacing(out) as tmp:
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")


def plot_histories(histories: dict[str, str | Path], out, title: str, columns: int = 4) -> dict[str, int]:
    """One panel per history (label -> CSV): ``val/rsum`` by epoch, the best epoch marked, and the training loss.
    Returns each history's best (kept) epoch."""
    import pandas as pd

    if not histories:
        raise InputError(f"no training histories to plot for {title}")
    plt = _pyplot()
    rows = math.ceil(len(histories) / columns)
    fig, axes = plt.subplots(rows, min(columns, len(histories)), figsize=(3.2 * min(columns, len(histories)),
                                                                           2.4 * rows), squeeze=False)
    for ax in axes.flat[len(histories):]:
        ax.axis("off")
    kept = {}
    for ax, (label, path) in zip(axes.flat, histories.items()):
        h = pd.read_csv(path)
        losses = [c for c in h.columns if c.startswith("train_loss")]  # JOINT: one per head (train_loss/be, ...)
        heads = [c for c in h.columns if c.startswith("val/") and c.endswith("/rsum") and c != VAL_METRIC]
        missing = [c for c in ("epoch", VAL_METRIC) if c not in h.columns] + ([] if losses else ["train_loss"])
        if missing:
            raise InputError(f"{path}: a training history without columns {missing}; retrain: snakemake -f {path}")
        ax.plot(h["epoch"], h[VAL_METRIC], marker="o", color="tab:blue", label=VAL_METRIC)
        for head in heads:  # the heads the selection rsum is made of (a joint model's be/ce, global/local, ...)
            ax.plot(h["epoch"], h[head], linewidth=0.8, label=head)
        best = h[VAL_METRIC].idxmax()
        kept[label] = int(h["epoch"][best])
        ax.plot(h["epoch"][best], h[VAL_METRIC][best], marker="*", markersize=12, color="tab:orange")
        ax.set_title(f"{label} (best {h[VAL_METRIC][best]:.1f})", fontsize=8)
        ax.set_xlabel("epoch", fontsize=7)
        ax.set_ylabel("validation rsum", fontsize=7, color="tab:blue")
        ax.tick_params(labelsize=6)
        if heads:
            ax.legend(fontsize=5, loc="lower right")
        loss = ax.twinx()
        for column in losses:
            loss.plot(h["epoch"], h[column], linestyle="--", color="tab:gray", linewidth=0.8)
        loss.set_ylabel("train loss", fontsize=7, color="tab:gray")
        loss.tick_params(labelsize=6)
    fig.suptitle(f"{title}: validation rsum (the kept epoch starred) and training loss, by epoch", fontsize=9)
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)
    return kept


def _read_history(path, columns: list[str]):
    """A per-epoch CSV that has ``columns``, refused by name otherwise."""
    import pandas as pd

    h = pd.read_csv(path)
    missing = [c for c in columns if c not in h.columns]
    if missing:
        raise InputError(f"{path}: a training history without columns {missing}; retrain: snakemake -f {path}")
    return h


def plot_detector(metrics_path, out, headline=None, history=None) -> None:
    """The detector's validation AP@0.5 per class, its mAP in the title (``itr detector train``'s metrics file);
    with ``history`` (its per-epoch CSV), the mean training loss by epoch in a panel on the left; with
    ``headline``, also the mAP alone as a flat JSON there (``dvc metrics show``)."""
    m = json.loads(Path(metrics_path).read_text())
    if "per_class_AP" not in m or "mAP@0.5" not in m:
        raise InputError(f"{metrics_path}: not a detector metrics file (no per_class_AP / mAP@0.5)")
    losses = _read_history(history, ["epoch", "train/loss"]) if history else None
    plt = _pyplot()
    names, ap = list(m["per_class_AP"]), list(m["per_class_AP"].values())
    width = max(6.0, 0.28 * len(names))
    if losses is None:
        fig, ax = plt.subplots(figsize=(width, 3.2))
    else:
        fig, (loss_ax, ax) = plt.subplots(1, 2, figsize=(width + 3.0, 3.2), width_ratios=[3.0, width])
        loss_ax.plot(losses["epoch"], losses["train/loss"], marker="o", color="tab:blue")
        loss_ax.set_xlabel("epoch")
        loss_ax.set_ylabel("mean training loss")
        loss_ax.set_title("training", fontsize=9)
    ax.bar(range(len(names)), ap, color="tab:green")
    ax.set_xticks(range(len(names)), names, rotation=70, ha="right", fontsize=6)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"AP@{m.get('iou_threshold', 0.5)}")
    ax.set_title(f"detector on {m.get('dataset', '?')} ({m.get('split', 'val')}, {m.get('n_val_images', '?')} images): "
                 f"mAP@0.5 = {m['mAP@0.5']:.4f}", fontsize=9)
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)
    if headline:
        from itr.atomic import write_json

        write_json(headline, {"mAP@0.5": m["mAP@0.5"]})
