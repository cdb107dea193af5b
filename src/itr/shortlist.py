"""Shortlists, score fusion and the metrics of a reranked shortlist (Geigle et al. 2022 §3.3, Table 9).

A ``Shortlist`` holds, per protocol group and direction, each query's first-stage candidates
with their embedding scores ``e`` and cross-encoder logits ``c``. Reranking re-sorts the
shortlist by ``c`` (the paper's rows) or by a fusion of both (its Table 9). A relevant item
that is not in the shortlist is a miss: reranking only reorders the shortlist and never brings
anything in.

Fusion, per query over its k candidates:
    ADD_l(e, c)      = l * e + (1 - l) * sigmoid(c)
    NORM_ADD_l(e, c) = l * minmax(e) + (1 - l) * minmax(c)      (0-1 normalised within the shortlist)
    MIX_l(e, c)      = l * e + (1 - l) * c          (a second stage that is a similarity, not a logit: Liu et al.
                                                     2023, S_gl = (1 - theta) S_g + theta S_l, so l = 1 - theta)

``miss="released"`` scores a query whose shortlist holds no relevant item as a hit at rank 1, as the released
evaluator of Liu et al. (2023) does; it exists to measure how much that inflates the recalls, never as our metric.

Example:
    >>> cand = np.array([[4, 7, 9]]); e = np.array([[.9, .8, .7]]); c = np.array([[-1., 2., 0.]])
    >>> rerank(cand, fuse(e, c, "ce")).tolist()
    [[7, 9, 4]]
"""
from __future__ import annotations

import dataclasses

import numpy as np

from itr.config import ConfigError
from itr.metrics import evaluate_rankings

FUSIONS = ("ce", "add", "norm_add", "mix")
SCORE_FUSIONS = ("add", "norm_add")  # the fusions of a CE logit with the first-stage score (Geigle et al., Table 9)
MISS_RULES = ("miss", "released")


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
    """Ranking score per candidate from the embedding score ``first`` and the second-stage score ``cross``. (Q, k)."""
    if how == "ce":
        return cross
    if how == "add":
        return lam * first + (1.0 - lam) * _sigmoid(cross)
    if how == "norm_add":
        return lam * _minmax(first) + (1.0 - lam) * _minmax(cross)
    if how == "mix":
        return lam * first + (1.0 - lam) * cross
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


def released_miss_as_hit(t2i: np.ndarray, i2t: np.ndarray, caption_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rankings the released evaluator of Liu et al. (2023) scores: a query none of whose relevant items is on
    its shortlist gets rank 0 (``tmp_inss=[0]``, ``ranks[...] = 0``), i.e. a hit at rank 1. Returns copies (Q, k)."""
    t2i, i2t = t2i.copy(), i2t.copy()
    t2i_missed = ~(t2i == caption_image[:len(t2i), None]).any(axis=1)  # (Q_t,)
    t2i[t2i_missed, 0] = caption_image[:len(t2i)][t2i_missed]
    owner = np.where(i2t >= 0, caption_image[np.clip(i2t, 0, None)], -1)  # (Q_i, k): image of each candidate
    i2t_missed = ~(owner == np.arange(len(i2t))[:, None]).any(axis=1)
    first_caption = {img: n for n, img in reversed(list(enumerate(caption_image)))}  # image -> its first caption
    i2t[i2t_missed, 0] = [first_caption[q] for q in np.flatnonzero(i2t_missed)]
    return t2i, i2t


def rerank_metrics(groups: list[Shortlist], k: int | None, how: str, lam: float, ks,
                   miss: str = "miss") -> list[dict[str, float]]:
    """Metrics per group after keeping the first-stage top ``k`` (None: the whole shortlist, as for all pairs,
    whose candidates are in collection order) and re-sorting it by the fused score. ``miss``: MISS_RULES."""
    if miss not in MISS_RULES:
        raise ValueError(f"miss={miss!r}; choose one of {MISS_RULES}")
    out = []
    for g in groups:
        # Collection sizes (with distractors, larger than the query counts): every image has captions.
        n_images, n_captions = max(int(g.caption_image.max(initial=-1)) + 1, len(g.i2t_candidates)), len(g.caption_image)
        for name, cand, n_items in (("t2i", g.t2i_candidates, n_images), ("i2t", g.i2t_candidates, n_captions)):
            if k is not None and k > cand.shape[1]:
                if cand.shape[1] < n_items:  # scored too shallow
                    raise ConfigError(f"k={k}, but the stored {name} shortlists hold only {cand.shape[1]} of {n_items} "
                                      "items; score them again with a larger k_max (rerank.ks)")
                raise ConfigError(f"k={k} exceeds the {n_items} items a {name} query can rank in this group; a "
                                  "shortlist that deep is no shortlist: lower rerank.k / rerank.ks")
        t2i = rerank(g.t2i_candidates[:, :k], fuse(g.t2i_first[:, :k], g.t2i_cross[:, :k], how, lam))
        i2t = rerank(g.i2t_candidates[:, :k], fuse(g.i2t_first[:, :k], g.i2t_cross[:, :k], how, lam))
        if miss == "released":
            t2i, i2t = released_miss_as_hit(t2i, i2t, g.caption_image)
        out.append(evaluate_rankings(t2i, i2t, list(g.caption_image), list(range(n_images)), ks))
    return out


def all_pairs(n_query_captions: int, n_query_images: int, n_captions: int, n_images: int):
    """'Shortlists' holding every item of a group, for scoring all pairs: (t2i cand, t2i first, i2t cand, i2t first)."""
    t2i = np.broadcast_to(np.arange(n_images), (n_query_captions, n_images)).copy()
    i2t = np.broadcast_to(np.arange(n_captions), (n_query_images, n_captions)).copy()
    return t2i, np.full(t2i.shape, np.nan, np.float32), i2t, np.full(i2t.shape, np.nan, np.float32)

