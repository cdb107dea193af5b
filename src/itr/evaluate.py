"""Evaluation of an indexed collection under a named protocol.

Protocols (the label is written into every metrics file):

* ``full``   - every test image and caption (the COCO-5k convention when the test split has 5k images).
* ``folds``  - the test images cut into ``n_folds`` contiguous folds, each searched on its own
               (its images and their captions only), metrics averaged over folds: the
               VSE++/SCAN "COCO 1k, 5-fold" convention.
* ``subset`` - the first ``subset_size`` test images and their captions only: the Oscar/VinVL
               "COCO 1k" convention (a single fixed subset, ``test_img_keys_1k.tsv``).

Search runs through the saved faiss indexes; a fold restricts the search with an id
selector instead of building new indexes, so exactly the configured index is evaluated.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from itr.config import EvalConfig
from itr.index import load_index, search
from itr.metrics import average_metrics
from itr.retrieval import evaluate_rankings


def protocol_groups(n_images: int, cfg: EvalConfig, protocol: str) -> tuple[list[np.ndarray], str]:
    """Image positions of each group the protocol scores, and a human-readable label."""
    if protocol == "full":
        return [np.arange(n_images)], f"full test set ({n_images} images)"
    if protocol == "folds":
        if n_images < cfg.n_folds:
            raise ValueError(f"{n_images} test images cannot form {cfg.n_folds} folds; lower evaluation.n_folds")
        size = n_images // cfg.n_folds
        return ([np.arange(f * size, (f + 1) * size) for f in range(cfg.n_folds)],
                f"mean over {cfg.n_folds} folds of {size} images")
    if protocol == "subset":
        m = min(cfg.subset_size, n_images)
        return [np.arange(m)], f"fixed subset: first {m} test images"
    raise ValueError(f"unknown protocol {protocol!r}; use full, folds or subset")


def to_local(positions: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Global index positions -> positions within ``members`` (sorted), -1 where not a member.

    Search returns positions in the whole index; a group is scored in its own numbering.
    """
    idx = np.clip(np.searchsorted(members, positions), 0, len(members) - 1)
    return np.where(members[idx] == positions, idx, -1)


def evaluate_collection(index_dir: Path, cfg: EvalConfig, protocol: str) -> dict:
    """Metrics of the collection indexed in ``index_dir`` (see itr.cli index build)."""
    collection = json.loads((index_dir / "collection.json").read_text())
    model_id = collection["model_id"]
    image_index, image_meta = load_index(index_dir / "images", model_id)
    caption_index, caption_meta = load_index(index_dir / "captions", model_id)
    image_vecs = np.load(index_dir / "images.vectors.npy")
    caption_vecs = np.load(index_dir / "captions.vectors.npy")
    image_ids = image_meta["ids"]
    caption_image_ids = collection["caption_image_ids"]
    pos_of = {iid: n for n, iid in enumerate(image_ids)}
    caption_image_pos = np.array([pos_of[i] for i in caption_image_ids])
    k = max(cfg.ks)
    groups, label = protocol_groups(len(image_ids), cfg, protocol)
    per_group = []
    for images in groups:
        captions = np.flatnonzero(np.isin(caption_image_pos, images))
        full = len(images) == len(image_ids)
        _, t2i = search(image_index, caption_vecs[captions], k, None if full else images)
        _, i2t = search(caption_index, image_vecs[images], k, None if full else captions)
        group_ids = [image_ids[p] for p in images]
        group_caption_ids = [caption_image_ids[c] for c in captions]
        per_group.append(evaluate_rankings(to_local(t2i, images), to_local(i2t, captions), group_caption_ids,
                                           group_ids, cfg.ks))
    return {"split": collection["split"], "protocol": protocol, "protocol_label": label,
            "n_images": int(sum(len(g) for g in groups) // len(groups)),
            "n_groups": len(groups), "index": image_meta["factory"], "model_id": model_id,
            "metrics": average_metrics(per_group),
            "per_group": per_group if len(per_group) > 1 else None}
