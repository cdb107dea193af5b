"""Evaluation of an indexed collection under a named protocol (itr.protocols).

Search runs through the saved faiss indexes; a fold restricts the search with an id
selector instead of building new indexes, so exactly the configured index is evaluated.

A collection may hold *distractors* (``itr index build --distractors``, Table 5 of Geigle et
al.): images and captions from elsewhere, indexed after the test split. They belong to every
group's search space but are never queries and never relevant.
"""
from __future__ import annotations

from pathlib import Path

from itr.config import EvalConfig
from itr.index import IndexedCollection, pin_search_threads
from itr.metrics import average_metrics, evaluate_rankings
from itr.protocols import distractor_label, protocol_groups


def evaluate_collection(index_dir: Path, cfg: EvalConfig, protocol: str) -> dict:
    """Metrics of the collection indexed in ``index_dir`` (itr.index.save_collection), the same whatever the
    thread count (itr.index.pin_search_threads)."""
    pin_search_threads()
    c = IndexedCollection(index_dir)
    groups, label = protocol_groups(c.n_targets, cfg, protocol, c.first_images)
    per_group = []
    for group in groups:
        _, t2i, _, i2t = c.first_stage(group, max(cfg.ks))
        images = c.members(group)
        group_ids = [c.image_ids[p] for p in images]
        group_caption_ids = [c.caption_image_ids[r] for r in c.group_captions(images)]
        per_group.append(evaluate_rankings(t2i, i2t, group_caption_ids, group_ids, cfg.ks))
    return {"split": c.split, "protocol": protocol, "protocol_label": label + distractor_label(len(c.image_ids) - c.n_targets),
            "n_images": int(sum(len(g) for g in groups) // len(groups)),
            "n_groups": len(groups), "index": c.factory, "model_id": c.model_id,
            "distractors": c.distractor_sources or None, "lang": c.lang,
            "metrics": average_metrics(per_group),
            "per_group": per_group if len(per_group) > 1 else None}
