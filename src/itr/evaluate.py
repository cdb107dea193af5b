"""Evaluation of an indexed collection under a named protocol.

Protocols (the label is written into every metrics file):

* ``full``   - every test image and caption (the COCO-5k convention when the test split has 5k images).
* ``folds``  - the test images cut into ``n_folds`` contiguous folds, each searched on its own
               (its images and their captions only), metrics averaged over folds: the
               VSE++/SCAN "COCO 1k, 5-fold" convention.
* ``subset`` - the first ``subset_size`` test images and their captions only: the Oscar/VinVL
               "COCO 1k" convention (a single fixed subset, ``test_img_keys_1k.tsv``).
               ``subset<N>`` (say ``subset100``) takes the first N instead.

Search runs through the saved faiss indexes; a fold restricts the search with an id
selector instead of building new indexes, so exactly the configured index is evaluated.

A collection may hold *distractors* (``itr index build --distractors``, Table 5 of Geigle et
al.): images and captions from elsewhere, indexed after the test split. They belong to every
group's search space but are never queries and never relevant; the protocol groups are formed
over the test images alone.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from itr.config import EvalConfig
from itr.index import load_index, search
from itr.metrics import average_metrics, evaluate_rankings


def protocol_groups(n_images: int, cfg: EvalConfig, protocol: str, first_images: int | None = None
                    ) -> tuple[list[np.ndarray], str]:
    """Image positions of each group the protocol scores, and a human-readable label.

    ``first_images``: the collection holds only the split's first N images (``--first-images``), so
    only ``subset<M>`` with M <= N measures what its name says; anything else is refused.
    """
    subset_size = cfg.subset_images(protocol)
    if first_images is not None:
        if subset_size is None or subset_size > first_images:
            raise ValueError(f"protocol {protocol!r} needs more of the test split than this collection holds (its first "
                             f"{first_images} images, built with --first-images {first_images}); use subset<M> with "
                             f"M <= {first_images}, or rebuild the index without --first-images")
    if protocol == "full":
        return [np.arange(n_images)], f"full test set ({n_images} images)"
    if protocol == "folds":
        if n_images < cfg.n_folds:
            raise ValueError(f"{n_images} test images cannot form {cfg.n_folds} folds; lower evaluation.n_folds")
        size = n_images // cfg.n_folds
        return ([np.arange(f * size, (f + 1) * size) for f in range(cfg.n_folds)],
                f"mean over {cfg.n_folds} folds of {size} images")
    if subset_size is not None:
        m = min(subset_size, n_images)
        return [np.arange(m)], f"fixed subset: first {m} test images"
    raise ValueError(f"unknown protocol {protocol!r}; use full, folds, subset (evaluation.subset_size images) "
                     "or subset<N> (the first N)")


def to_local(positions: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Global index positions -> positions within ``members`` (sorted), -1 where not a member.

    Search returns positions in the whole index; a group is scored in its own numbering.
    """
    idx = np.clip(np.searchsorted(members, positions), 0, len(members) - 1)
    return np.where(members[idx] == positions, idx, -1)


class IndexedCollection:
    """A test collection as saved by ``itr index build``: both faiss indexes and the query vectors."""

    def __init__(self, index_dir: Path):
        collection = json.loads((Path(index_dir) / "collection.json").read_text())
        self.split, self.model_id = collection["split"], collection["model_id"]
        self.image_index, image_meta = load_index(Path(index_dir) / "images", self.model_id)
        self.caption_index, _ = load_index(Path(index_dir) / "captions", self.model_id)
        self.factory = image_meta["factory"]
        self.image_vecs = np.load(Path(index_dir) / "images.vectors.npy")
        self.caption_vecs = np.load(Path(index_dir) / "captions.vectors.npy")
        self.image_ids: list[str] = image_meta["ids"]
        self.caption_image_ids: list[str] = collection["caption_image_ids"]
        pos_of = {iid: n for n, iid in enumerate(self.image_ids)}
        self.caption_image_pos = np.array([pos_of[i] for i in self.caption_image_ids])  # (N_captions,)
        # Test images come first, distractors (if any) after them, and likewise their captions.
        self.n_targets = collection.get("n_targets", len(self.image_ids))
        self.distractor_sources = collection.get("distractors", [])
        self.lang = collection.get("lang")  # captions of one language only (None: all the split has)
        self.first_images = collection.get("first_images")  # only the split's first N images (None: all)

    def group_captions(self, images: np.ndarray) -> np.ndarray:
        """Caption rows (sorted) whose image is among the given image positions."""
        return np.flatnonzero(np.isin(self.caption_image_pos, images))

    def members(self, group: np.ndarray) -> np.ndarray:
        """A protocol group's search space: its test images, then every distractor. Sorted."""
        return np.concatenate([group, np.arange(self.n_targets, len(self.image_ids))])

    def first_stage(self, group: np.ndarray, k: int):
        """Search restricted to one protocol group, both directions, in the group's own numbering.

        Queries are the group's test images and their captions; the search space adds the
        distractors. Returns (t2i_scores, t2i_positions, i2t_scores, i2t_positions):
        (n_query_captions, k) and (len(group), k); positions index ``members(group)`` /
        ``group_captions(members(group))``, -1 = no result.
        """
        images = self.members(group)
        captions = self.group_captions(images)
        queries = captions[:len(self.group_captions(group))]  # the test captions come first
        full = len(images) == len(self.image_ids)
        t2i_s, t2i = search(self.image_index, self.caption_vecs[queries], k, None if full else images)
        i2t_s, i2t = search(self.caption_index, self.image_vecs[group], k, None if full else captions)
        return t2i_s, to_local(t2i, images), i2t_s, to_local(i2t, captions)


def evaluate_collection(index_dir: Path, cfg: EvalConfig, protocol: str) -> dict:
    """Metrics of the collection indexed in ``index_dir`` (see itr.cli index build)."""
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


def distractor_label(n_distractors: int) -> str:
    """What a protocol label adds for a collection grown with distractors (nothing without any)."""
    return f", searched among {n_distractors} distractor images and their captions" if n_distractors else ""
