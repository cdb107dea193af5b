"""Retrieval metrics, with the protocol written down once.

Protocol (all tables use it):

* Text->image (``t2i``): each caption is a query; its single ground-truth image is the one it
  describes. ``t2i/R@K`` is the percentage of captions whose image is among the top K images.
* Image->text (``i2t``): each image is a query; it has several ground-truth captions (5 in
  ShapeCaptions and COCO). A query counts as a hit at K when **any** of its captions is among
  the top K captions (the VSE++/Oscar/UNITER convention, not true recall over all 5).
* ``rsum`` is the sum of the six recalls (R@1, R@5, R@10 in both directions); ``mR`` is their
  mean (Multi30k convention).
* An item that a first stage failed to shortlist is a miss: rankings are lists of retrieved
  ids, and an id that is not in the list is never counted as found.

``evaluate_rankings`` applies the protocol to position rankings over one collection (from a
faiss search, exact search or a reranked shortlist).

Names are flat strings: ``t2i/R@1`` ... ``i2t/R@10``, ``rsum``, ``mR``; values in percent.

Example:
    >>> retrieval_metrics(np.array([[7, 3]]), np.array([3]), np.array([[1, 1]]), np.array([1]), ks=(1, 2))
    {'t2i/R@1': 0.0, 't2i/R@2': 100.0, 'i2t/R@1': 100.0, 'i2t/R@2': 100.0, 'rsum': 300.0, 'mR': 75.0}
"""
from __future__ import annotations

import numpy as np


def hits_at_k(ranked: np.ndarray, relevant: np.ndarray, ks) -> dict[int, float]:
    """Share of queries (percent) with a relevant item in their first k results.

    Args:
        ranked: (Q, K) retrieved labels per query, best first (-1 or any unmatched label = filler).
        relevant: (Q,) the label that counts as relevant for each query.
    """
    ranked = np.asarray(ranked)
    relevant = np.asarray(relevant)
    if ranked.ndim != 2 or len(ranked) != len(relevant):
        raise ValueError(f"ranked must be (Q, K) with Q = len(relevant); got {ranked.shape} and {relevant.shape}")
    match = ranked == relevant[:, None]  # (Q, K)
    out = {}
    for k in ks:
        if k > ranked.shape[1]:
            raise ValueError(f"R@{k} needs at least {k} results per query; got {ranked.shape[1]}")
        out[k] = float(100.0 * match[:, :k].any(axis=1).mean())
    return out


def retrieval_metrics(t2i_ranked_images, t2i_gt_images, i2t_ranked_caption_images, i2t_query_images,
                      ks=(1, 5, 10)) -> dict[str, float]:
    """Both directions, rsum and mR.

    Args:
        t2i_ranked_images: (Q_t, K) image labels retrieved for each caption.
        t2i_gt_images: (Q_t,) the image label of each caption.
        i2t_ranked_caption_images: (Q_i, K) for each image query, the *image label of each retrieved
            caption*; a caption is relevant exactly when it belongs to the query image.
        i2t_query_images: (Q_i,) the label of each query image.
    """
    t2i = hits_at_k(t2i_ranked_images, t2i_gt_images, ks)
    i2t = hits_at_k(i2t_ranked_caption_images, i2t_query_images, ks)
    out = {f"t2i/R@{k}": v for k, v in t2i.items()}
    out.update({f"i2t/R@{k}": v for k, v in i2t.items()})
    recalls = list(t2i.values()) + list(i2t.values())
    out["rsum"] = float(sum(recalls))
    out["mR"] = float(np.mean(recalls))
    return out


def average_metrics(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over folds (rsum of the means equals the mean of the rsums)."""
    return {k: float(np.mean([m[k] for m in per_fold])) for k in per_fold[0]}


def evaluate_rankings(t2i_positions: np.ndarray, i2t_positions: np.ndarray, caption_image_ids: list[str],
                      image_ids: list[str], ks) -> dict[str, float]:
    """Metrics from position rankings (-1 = no result) over one collection.

    t2i_positions: (Q_t, K) positions into ``image_ids`` per caption query.
    i2t_positions: (Q_i, K) positions into ``caption_image_ids`` per image query.

    The queries are the first Q_t captions and the first Q_i images of the collection; usually
    that is all of them, but a collection grown with distractors (Table 5 of Geigle et al.)
    continues past its queries with images and captions that are never relevant.
    """
    if len(t2i_positions) > len(caption_image_ids) or len(i2t_positions) > len(image_ids):
        raise ValueError(f"{len(t2i_positions)} caption / {len(i2t_positions)} image queries, but the collection "
                         f"holds only {len(caption_image_ids)} captions / {len(image_ids)} images")
    k = max(ks)  # a collection smaller than K returns fewer results: pad with "no result"
    pad = lambda a: np.pad(a, ((0, 0), (0, max(0, k - a.shape[1]))), constant_values=-1)
    t2i_positions, i2t_positions = pad(np.asarray(t2i_positions)), pad(np.asarray(i2t_positions))
    img_label = {iid: n for n, iid in enumerate(image_ids)}
    cap_labels = np.array([img_label[i] for i in caption_image_ids])  # image label of each caption
    # -1 (no result) maps to a label no query has, so a missing result is a miss.
    t2i = np.where(t2i_positions >= 0, t2i_positions, -1)
    i2t = np.where(i2t_positions >= 0, cap_labels[np.clip(i2t_positions, 0, None)], -1)
    return retrieval_metrics(t2i, cap_labels[:len(t2i)], i2t, np.arange(len(i2t)), ks)


def precision_metrics(positions: np.ndarray, positives: np.ndarray) -> dict[str, float]:
    """ECCV Caption's metrics of one direction, for queries with many positives, in percent.

    For a query with R positives: ``R@1`` is whether the first result is a positive, ``R-P`` (R-precision) the
    share of positives among the first R results, ``mAP@R`` the mean over the first R ranks of precision-at-rank
    on the ranks that hold a positive, divided by R (Musgrave et al. 2020; Chun et al. 2022). A ranking shorter
    than R (a shortlist) counts what it did not return as missed.

    Args:
        positions: (Q, K) retrieved positions per query, best first; -1 = no result.
        positives: (Q, N) bool, query q's positives among the N retrievable items; every query needs one.

    Example:
        >>> precision_metrics(np.array([[0, 2, 1]]), np.array([[True, True, False]]))   # R = 2: hit, miss
        {'R@1': 100.0, 'mAP@R': 50.0, 'R-P': 50.0}
    """
    positions, positives = np.asarray(positions), np.asarray(positives, dtype=bool)
    if positions.ndim != 2 or positives.ndim != 2 or len(positions) != len(positives):
        raise ValueError(f"positions (Q, K) and positives (Q, N) must have one row per query; got {positions.shape} "
                         f"and {positives.shape}")
    r = positives.sum(axis=1)  # (Q,)
    if (r == 0).any():
        raise ValueError(f"query {int(np.argmin(r))} has no positive; mAP@R and R-P are undefined for it")
    rows = np.arange(len(positions))[:, None]
    rel = np.where(positions >= 0, positives[rows, np.clip(positions, 0, None)], False)  # (Q, K)
    rel = np.pad(rel, ((0, 0), (0, max(0, int(r.max()) - rel.shape[1]))))[:, :int(r.max())]  # (Q, max R)
    within = np.arange(rel.shape[1])[None, :] < r[:, None]  # rank i counts while i < R
    hits = np.cumsum(rel, axis=1)  # (Q, max R)
    precision = hits / np.arange(1, rel.shape[1] + 1)[None, :]
    ap = (precision * (rel & within)).sum(axis=1) / r
    rp = hits[np.arange(len(r)), r - 1] / r
    return {"R@1": float(100 * rel[:, 0].mean()), "mAP@R": float(100 * ap.mean()), "R-P": float(100 * rp.mean())}


def average_ranks(values) -> np.ndarray:
    """1-based ranks of ``values``, ties sharing their mean rank (as Spearman's coefficient ranks)."""
    values = np.asarray(values)
    ranks = np.empty(len(values))
    ranks[np.argsort(values, kind="stable")] = np.arange(1, len(values) + 1)
    _, tie, count = np.unique(values, return_inverse=True, return_counts=True)
    return (np.bincount(tie, weights=ranks) / count)[tie]


def spearman(x, y) -> float:
    """Spearman's rank correlation of two score lists, x 100 (SentEval's STS convention).

    >>> spearman([1, 2, 3, 4], [10, 20, 40, 30])
    80.0
    """
    rx, ry = average_ranks(x), average_ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        raise ValueError("Spearman's coefficient is undefined when one list is constant")
    return float(100 * np.corrcoef(rx, ry)[0, 1])


def same_class_metrics(vectors: np.ndarray, classes) -> dict[str, float]:
    """Uni-modal retrieval (image->image, Unicom's protocol): each item queries every other, its positives are the
    others of its class; ``R@1``, ``mAP@R`` and ``R-P`` (precision_metrics) over the queries that have a positive,
    and ``queries``, their number (none: NaN metrics).

    Args:
        vectors: (N, D) unit embeddings; classes: (N,) one hashable class per item.
    """
    classes = np.asarray(classes)
    positives = classes[:, None] == classes[None, :]  # (N, N)
    np.fill_diagonal(positives, False)
    sim = np.asarray(vectors, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64).T  # (N, N)
    np.fill_diagonal(sim, -np.inf)  # a query never retrieves itself
    ranked = np.argsort(-sim, axis=1, kind="stable")[:, :-1]  # (N, N - 1), itself last and cut
    asks = positives.any(axis=1)
    if not asks.any():  # every item alone in its class: nothing to retrieve
        return {"R@1": float("nan"), "mAP@R": float("nan"), "R-P": float("nan"), "queries": 0}
    return {**precision_metrics(ranked[asks], positives[asks]), "queries": int(asks.sum())}
