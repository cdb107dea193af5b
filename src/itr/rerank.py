"""Retrieve and rerank (COOP, Geigle et al. 2022 §3.3), score fusion, and all-pairs cross-encoding.

The first stage (a faiss index over bi-encoder embeddings) gives each query a shortlist of
``k`` candidates with their cosine scores ``e``; the cross-encoder scores every (query,
candidate) pair, ``c``; the shortlist is re-sorted by ``c`` (the paper's rows) or by a
fusion of both (its Table 9). A relevant item that is not in the shortlist is a miss:
reranking only reorders the shortlist and never brings anything in.

The CE rows of Table 1 score *every* pair of a protocol group. That is the same
computation with the shortlist "all items" and no first-stage scores, so both share
``Shortlist`` and ``rerank_metrics``.

Fusion (Table 9), per query over its k candidates:
    ADD_l(e, c)      = l * e + (1 - l) * sigmoid(c)
    NORM_ADD_l(e, c) = l * minmax(e) + (1 - l) * minmax(c)      (0-1 normalised within the shortlist)

Example:
    >>> cand = np.array([[4, 7, 9]]); e = np.array([[.9, .8, .7]]); c = np.array([[-1., 2., 0.]])
    >>> rerank(cand, fuse(e, c, "ce")).tolist()
    [[7, 9, 4]]
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from tqdm import tqdm

from itr.evaluate import IndexedCollection, to_local
from itr.features.store import FeatureStore
from itr.retrieval import CaptionSet, evaluate_rankings, image_batch, image_inputs

FUSIONS = ("ce", "add", "norm_add")


@torch.no_grad()
def score_pairs(model, captions: CaptionSet, caption_rows: np.ndarray, store: FeatureStore, image_ids: list[str],
                batch_size: int, device, desc: str = "cross-encoding pairs") -> np.ndarray:
    """Cross-encoder logits of pairs (captions[caption_rows[i]], image_ids[i]). (P,) float32."""
    model.eval()
    caption_rows = np.asarray(caption_rows)
    out = []
    for s in tqdm(range(0, len(caption_rows), batch_size), desc=desc, mininterval=10,
                  disable=len(caption_rows) <= 4 * batch_size):
        ids, mask = captions.batch(caption_rows[s:s + batch_size])
        images = image_batch(store, image_ids[s:s + batch_size], device)
        out.append(model.match_logits(ids.to(device), mask.to(device), *image_inputs(images)).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _minmax(x: np.ndarray) -> np.ndarray:
    """0-1 normalise each row over its finite entries; a row whose entries are all equal becomes 0."""
    finite = np.isfinite(x)
    lo = np.where(finite, x, np.inf).min(axis=1, keepdims=True)
    hi = np.where(finite, x, -np.inf).max(axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(finite, (x - lo) / span, np.nan)


def fuse(first: np.ndarray, cross: np.ndarray, how: str, lam: float = 0.0) -> np.ndarray:
    """Ranking score per candidate from the embedding score ``first`` and the CE logit ``cross``. (Q, k)."""
    if how == "ce":
        return cross
    if how == "add":
        return lam * first + (1.0 - lam) * _sigmoid(cross)
    if how == "norm_add":
        return lam * _minmax(first) + (1.0 - lam) * _minmax(cross)
    raise ValueError(f"unknown fusion {how!r}; use one of {FUSIONS}")


def rerank(candidates: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Candidates (Q, k) re-sorted by descending score; ties keep first-stage order; -1 (no candidate) last."""
    scores = np.where(candidates >= 0, np.nan_to_num(scores, nan=-np.inf), -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")  # (Q, k)
    return np.take_along_axis(candidates, order, axis=1)


@dataclasses.dataclass
class Shortlist:
    """One protocol group's shortlists in both directions, in the group's own numbering.

    t2i_*: (n_captions, K) image positions / scores per caption query;
    i2t_*: (n_images, K) caption positions / scores per image query. Position -1 = no candidate.
    ``caption_image``: (n_captions,) the group position of each caption's image. With distractors the
    group's captions and images continue past the queries (the first rows); see first_stage_groups.
    """
    caption_image: np.ndarray
    t2i_candidates: np.ndarray
    t2i_first: np.ndarray
    t2i_cross: np.ndarray
    i2t_candidates: np.ndarray
    i2t_first: np.ndarray
    i2t_cross: np.ndarray

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{f.name}": getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> Shortlist:
        return cls(**{f.name: np.asarray(arrays[f"{prefix}{f.name}"]) for f in dataclasses.fields(cls)})


def rerank_metrics(groups: list[Shortlist], k: int | None, how: str, lam: float, ks) -> list[dict[str, float]]:
    """Metrics per group after keeping the first-stage top ``k`` (None: the whole shortlist, as for all pairs,
    whose candidates are in collection order) and re-sorting it by the fused score."""
    out = []
    for g in groups:
        # Collection sizes (with distractors, larger than the query counts): every image has captions.
        n_images, n_captions = max(int(g.caption_image.max(initial=-1)) + 1, len(g.i2t_candidates)), len(g.caption_image)
        for name, cand, n_items in (("t2i", g.t2i_candidates, n_images), ("i2t", g.i2t_candidates, n_captions)):
            if k is not None and k > cand.shape[1] and cand.shape[1] < n_items:  # cut short, not a small collection
                raise ValueError(f"k={k}, but the stored {name} shortlists hold only {cand.shape[1]} of {n_items} "
                                 "items; score them again with a larger k_max (rerank.ks)")
        t2i = rerank(g.t2i_candidates[:, :k], fuse(g.t2i_first[:, :k], g.t2i_cross[:, :k], how, lam))
        i2t = rerank(g.i2t_candidates[:, :k], fuse(g.i2t_first[:, :k], g.i2t_cross[:, :k], how, lam))
        out.append(evaluate_rankings(t2i, i2t, list(g.caption_image), list(range(n_images)), ks))
    return out


def all_pairs(n_query_captions: int, n_query_images: int, n_captions: int, n_images: int):
    """'Shortlists' holding every item of a group, for scoring all pairs: (t2i cand, t2i first, i2t cand, i2t first)."""
    t2i = np.broadcast_to(np.arange(n_images), (n_query_captions, n_images)).copy()
    i2t = np.broadcast_to(np.arange(n_captions), (n_query_images, n_captions)).copy()
    return t2i, np.full(t2i.shape, np.nan, np.float32), i2t, np.full(i2t.shape, np.nan, np.float32)


def first_stage_groups(group_images: list[np.ndarray], caption_image_pos: np.ndarray, k: int,
                       collection: IndexedCollection | None = None,
                       distractors: np.ndarray | None = None) -> list[dict]:
    """Per protocol group: its images and captions, and the first stage's shortlists in group numbering.

    With ``collection`` (a bi-encoder index) each query keeps its top ``k``; without one, every
    item of the group is a candidate (the CE rows: all pairs) and there are no first-stage scores.
    ``distractors`` (image positions after every test image) join each group's search space but
    are never queries. Queries come first in each group's numbering (see evaluate_rankings).
    """
    out = []
    for group in group_images:
        images = group if distractors is None else np.concatenate([group, distractors])
        captions = np.flatnonzero(np.isin(caption_image_pos, images))
        n_queries = int(np.isin(caption_image_pos[captions], group).sum())  # test captions come first
        caption_image = to_local(caption_image_pos[captions], images)
        if collection is None:
            t2i_c, t2i_e, i2t_c, i2t_e = all_pairs(n_queries, len(group), len(captions), len(images))
        else:
            t2i_e, t2i_c, i2t_e, i2t_c = collection.first_stage(group, k)
        out.append({"images": images, "captions": captions, "caption_image": caption_image,
                    "t2i_candidates": t2i_c, "t2i_first": t2i_e, "i2t_candidates": i2t_c, "i2t_first": i2t_e})
    return out


def _queries(members: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The query rows of a group's members (its first rows, one per candidate list), as a column. (Q, 1)"""
    return members[:len(candidates), None]


def cross_score_groups(model, captions: CaptionSet, store: FeatureStore, image_ids: list[str],
                       groups: list[dict], batch_size: int, device) -> tuple[list[Shortlist], int]:
    """Score every (caption, image) pair on any shortlist once, and fill in both directions.

    Args:
        captions, image_ids: the whole split (caption rows and image positions index these).
        groups: per protocol group, a dict with ``images`` (global image positions), ``captions``
            (global caption rows), ``caption_image`` and the first-stage ``t2i_candidates``,
            ``t2i_first``, ``i2t_candidates``, ``i2t_first`` in group numbering. The queries are
            the first rows of ``captions`` and ``images`` (as many as the candidate arrays have rows).

    Returns:
        The shortlists with CE scores, and the number of distinct pairs that were cross-encoded.
    """
    n_img = len(image_ids)
    keys = []
    for g in groups:  # every pair as one integer: caption_row * n_img + image_position
        t2i_valid = g["t2i_candidates"] >= 0
        cap = np.broadcast_to(_queries(g["captions"], g["t2i_candidates"]), g["t2i_candidates"].shape)[t2i_valid]
        keys.append(cap * n_img + g["images"][g["t2i_candidates"][t2i_valid]])
        i2t_valid = g["i2t_candidates"] >= 0
        img = np.broadcast_to(_queries(g["images"], g["i2t_candidates"]), g["i2t_candidates"].shape)[i2t_valid]
        keys.append(g["captions"][g["i2t_candidates"][i2t_valid]] * n_img + img)
    unique = np.unique(np.concatenate(keys))  # sorted, and a pair seen in both directions is scored once
    scores = score_pairs(model, captions, unique // n_img, store, [image_ids[p] for p in unique % n_img],
                         batch_size, device)

    def lookup(caption_rows: np.ndarray, image_pos: np.ndarray, valid: np.ndarray) -> np.ndarray:
        key = caption_rows * n_img + image_pos
        found = scores[np.clip(np.searchsorted(unique, key), 0, len(unique) - 1)]
        return np.where(valid, found, np.nan).astype(np.float32)

    out = []
    for g in groups:
        t2i_c, i2t_c = g["t2i_candidates"], g["i2t_candidates"]
        t2i_cross = lookup(_queries(g["captions"], t2i_c), g["images"][np.clip(t2i_c, 0, None)], t2i_c >= 0)
        i2t_cross = lookup(g["captions"][np.clip(i2t_c, 0, None)], _queries(g["images"], i2t_c), i2t_c >= 0)
        out.append(Shortlist(g["caption_image"], t2i_c, g["t2i_first"].astype(np.float32), t2i_cross,
                             i2t_c, g["i2t_first"].astype(np.float32), i2t_cross))
    return out, len(unique)
