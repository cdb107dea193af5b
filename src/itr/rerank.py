"""Retrieve and rerank (COOP, Geigle et al. 2022 §3.3): cross-encoding the first stage's shortlists.

The first stage (a faiss index over bi-encoder embeddings) gives each query a shortlist of
``k`` candidates with their cosine scores ``e``; ``cross_score_groups`` has the cross-encoder
score every (query, candidate) pair once, ``c``, and stores both as ``Shortlist``s. Re-sorting
and fusing them into metrics is itr.shortlist (numpy only, so evaluating a cell needs no torch).

The CE rows of Table 1 score *every* pair of a protocol group. That is the same
computation with the shortlist "all items" and no first-stage scores (``first_stage_groups``
without a collection).
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from itr import eccv
from itr.features.store import FeatureStore
from itr.index import IndexedCollection, pin_search_threads, to_local
from itr.models.encode import CaptionSet, score_pairs
from itr.shortlist import Shortlist, all_pairs


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


def _pair_keys(groups: list[dict], n_img: int) -> np.ndarray:
    """Every (caption, image) pair on any shortlist of the groups as one integer, caption_row * n_img +
    image_position: sorted, and a pair on shortlists of both directions once."""
    keys = []
    for g in groups:
        t2i_valid = g["t2i_candidates"] >= 0
        cap = np.broadcast_to(_queries(g["captions"], g["t2i_candidates"]), g["t2i_candidates"].shape)[t2i_valid]
        keys.append(cap * n_img + g["images"][g["t2i_candidates"][t2i_valid]])
        i2t_valid = g["i2t_candidates"] >= 0
        img = np.broadcast_to(_queries(g["images"], g["i2t_candidates"]), g["i2t_candidates"].shape)[i2t_valid]
        keys.append(g["captions"][g["i2t_candidates"][i2t_valid]] * n_img + img)
    return np.unique(np.concatenate(keys))


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
    unique = _pair_keys(groups, n_img)
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
        out.append(_shortlist(g, t2i_cross, i2t_cross))
    return out, len(unique)


def _shortlist(g: dict, t2i_cross: np.ndarray, i2t_cross: np.ndarray) -> Shortlist:
    return Shortlist(g["caption_image"], g["t2i_candidates"], g["t2i_first"].astype(np.float32), t2i_cross,
                     g["i2t_candidates"], g["i2t_first"].astype(np.float32), i2t_cross)


def shortlists_from_all_pairs(every_pair: list[Shortlist], groups: list[dict], n_img: int) -> tuple[list[Shortlist], int]:
    """The shortlists' second-stage scores read from the same reranker's scores of every pair of the same groups.

    A shortlist (COOP) row reranks a subset of the pairs its reranker's all-pairs row scores on the same collection
    and protocol; where a table builds that row anyway, scoring the
    shortlists again would repeat the most expensive step. ``every_pair``: that row's Shortlists (candidates: every
    item of the group, in group order), one per group of ``groups`` (as for cross_score_groups). Returns the
    shortlists and the number of distinct pairs on them (what scoring them would have cross-encoded).

    >>> from itr.shortlist import all_pairs
    >>> t2i_c, t2i_e, i2t_c, i2t_e = all_pairs(2, 2, 2, 2)
    >>> ap = Shortlist(np.array([0, 1]), t2i_c, t2i_e, np.array([[5., 1.], [2., 6.]], np.float32), i2t_c, i2t_e,
    ...                np.array([[5., 2.], [1., 6.]], np.float32))
    >>> g = {"images": np.arange(2), "captions": np.arange(2), "caption_image": np.array([0, 1]),
    ...      "t2i_candidates": np.array([[1], [1]]), "t2i_first": np.zeros((2, 1)),
    ...      "i2t_candidates": np.array([[0], [0]]), "i2t_first": np.zeros((2, 1))}
    >>> shortlists, n = shortlists_from_all_pairs([ap], [g], 2)
    >>> shortlists[0].t2i_cross.tolist(), shortlists[0].i2t_cross.tolist(), n
    ([[1.0], [6.0]], [[5.0], [1.0]], 3)
    """
    from itr.config import ConfigError

    if len(every_pair) != len(groups):
        raise ConfigError(f"the all-pairs scores have {len(every_pair)} protocol groups, the shortlists {len(groups)}")
    out = []
    for n, (ap, g) in enumerate(zip(every_pair, groups)):
        if not (_every_item(ap.t2i_candidates, len(g["images"])) and _every_item(ap.i2t_candidates, len(g["captions"]))
                and np.array_equal(ap.caption_image, g["caption_image"])):
            raise ConfigError(f"group {n} of the all-pairs scores holds other captions or images than the shortlists'")
        t2i_c, i2t_c = g["t2i_candidates"], g["i2t_candidates"]  # (Q_t, k), (Q_i, k) in group numbering
        t2i_cross = np.take_along_axis(ap.t2i_cross[:len(t2i_c)], np.clip(t2i_c, 0, None), axis=1)
        i2t_cross = np.take_along_axis(ap.i2t_cross[:len(i2t_c)], np.clip(i2t_c, 0, None), axis=1)
        out.append(_shortlist(g, np.where(t2i_c >= 0, t2i_cross, np.nan).astype(np.float32),
                              np.where(i2t_c >= 0, i2t_cross, np.nan).astype(np.float32)))
    return out, len(_pair_keys(groups, n_img))


def _every_item(candidates: np.ndarray, n: int) -> bool:
    """Whether each query's candidates are all n items of its group, in group order (an all-pairs row's)."""
    return candidates.shape[1] == n and bool((candidates == np.arange(n)).all())


def score_collection(reranker_path, first_stage: str | None, target, distractors, lang: str | None,
                     first_images: int | None, cfg, eval_cfg, protocol: str, out, device="cpu", log=print,
                     pair_scores: str | None = None) -> None:
    """Cross-encoder scores of a collection's shortlists under a protocol, saved as one ``.npz``.

    With ``first_stage`` (a bi-encoder's index directory) each query keeps the index's top max(k, ks);
    without, every pair of each protocol group is scored (the CE rows). ``cfg`` is a RerankConfig,
    ``eval_cfg`` an EvalConfig (its group definitions). itr.shortlist turns the file into metrics.
    ``pair_scores``: the same reranker's all-pairs file of the same collection and protocol; the shortlists'
    scores are read from it (shortlists_from_all_pairs) and the reranker is not run.
    """
    import json
    import time

    from itr.atomic import save_npz
    from itr.collection import read_collection
    from itr.config import ConfigError
    from itr.manifest import file_digest
    from itr.protocols import distractor_label, protocol_groups

    if pair_scores and not first_stage:
        raise ConfigError("--pair-scores gives the scores of a first stage's shortlists; pass --first-stage too "
                          "(without one, every pair is scored: that is the all-pairs file itself)")
    if pair_scores:  # the collection alone: no model to load
        images, caps, _, n_targets = read_collection(target, list(distractors), lang, first_images)
        image_ids, caption_image_ids, caption_ids = list(images["image_id"]), list(caps["image_id"]), list(caps["caption_id"])
    else:
        c = _reranker_on_collection(reranker_path, target, distractors, lang, first_images, device)
        image_ids, caption_image_ids, caption_ids, n_targets = c.image_ids, c.captions.image_ids, c.captions.caption_ids, c.n_targets
    pos_of = {iid: n for n, iid in enumerate(image_ids)}
    caption_image_pos = np.array([pos_of[i] for i in caption_image_ids])
    pin_search_threads()
    collection, k_max = None, max((cfg.k, *cfg.ks))
    if first_stage:
        collection = IndexedCollection(first_stage)
        collection.require(image_ids, caption_image_ids, f"the {target.split} split of {target.data} with "
                           f"distractors {[d.spec for d in distractors]}")
    groups, label = protocol_groups(n_targets, eval_cfg, protocol, first_images)
    smallest = min(len(g) for g in groups)
    if collection and k_max > smallest:  # faiss would silently return shorter shortlists
        raise ConfigError(f"shortlists of depth {k_max} (the largest of rerank.k and rerank.ks) exceed the {smallest} "
                          f"test images of a {protocol} group; lower rerank.k / rerank.ks or use a larger protocol")
    candidates = first_stage_groups(groups, caption_image_pos, k_max, collection,
                                    np.arange(n_targets, len(image_ids)))
    meta = {"split": target.split, "protocol": protocol,
            "protocol_label": label + distractor_label(len(image_ids) - n_targets), "n_groups": len(groups),
            "distractors": [d.spec for d in distractors] or None, "lang": lang,
            "n_images": int(sum(len(g) for g in groups) // len(groups)), "k_max": k_max if collection else None,
            "first_stage": ({"index": collection.factory, "model_id": collection.model_id} if collection else None),
            "reranker_model_id": file_digest(reranker_path), "precision": cfg.precision}
    t0 = time.time()
    if pair_scores:
        shortlists, n_pairs = shortlists_from_all_pairs(_all_pairs_of(pair_scores, meta), candidates, len(image_ids))
        seconds, how = None, f"read from {pair_scores}"
    else:
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            shortlists, n_pairs = cross_score_groups(c.model, c.captions, c.store, c.image_ids, candidates,
                                                     cfg.batch_size, device)
        seconds = round(time.time() - t0, 1)
        how = f"cross-encoded in {seconds:.0f} s ({n_pairs / max(seconds, 1e-9):.0f} pairs/s)"
    meta |= {"pairs_scored": int(n_pairs), "cross_seconds": seconds, "scores_from": pair_scores}
    if protocol == "full" and n_targets == len(image_ids) and eccv.covers(image_ids, caption_ids):
        group = candidates[0]  # COCO's 5K test split: ECCV Caption judges the re-ranked lists too (itr.evaluate)
        meta["coco_ids"] = {"images": [int(image_ids[p]) for p in group["images"]],
                            "captions": [int(caption_ids[r]) for r in group["captions"]]}
    arrays = {}
    for n, shortlist in enumerate(shortlists):
        arrays.update(shortlist.to_arrays(f"g{n}/"))
    save_npz(out, meta=np.array(json.dumps(meta)), **arrays)
    log(f"{n_pairs} pairs {how}")


def _reranker_on_collection(reranker_path, target, distractors, lang, first_images, device):
    """The reranker on the collection (itr.models.encode.load_on_collection); an error if it cannot rerank."""
    from itr.checkpoint import CheckpointError
    from itr.models.encode import load_on_collection

    c = load_on_collection(reranker_path, target, distractors, lang, first_images, device)
    if not (c.checkpoint["architecture"].get("match_head") or getattr(c.model, "late_interaction", False)):
        raise CheckpointError(f"{reranker_path} is a {c.checkpoint.get('method', 'bi-encoder')} checkpoint without a "
                              "match head or token sets, so it cannot rerank; pass a CE, JOINT or dual-transformer "
                              "model as --reranker")
    return c


# What an all-pairs file must share with the shortlists whose scores it gives (score_collection's meta keys).
SAME_SCORING = ("split", "protocol", "n_groups", "n_images", "distractors", "lang", "reranker_model_id", "precision")


def _all_pairs_of(path, meta: dict) -> list[Shortlist]:
    """The all-pairs file's Shortlists, after checking that it scored these groups with this reranker."""
    import json

    from itr.config import ConfigError

    with np.load(path, allow_pickle=False) as z:
        theirs = json.loads(str(z["meta"]))
        groups = [Shortlist.from_arrays(z, f"g{n}/") for n in range(theirs["n_groups"])]
    if theirs["first_stage"] is not None:
        raise ConfigError(f"{path} holds a first stage's shortlists, not every pair; --pair-scores takes an "
                          "all-pairs file (itr rerank score without --first-stage)")
    differ = {k: (theirs.get(k), meta[k]) for k in SAME_SCORING if theirs.get(k) != meta[k]}
    if differ:
        raise ConfigError(f"{path} was scored otherwise than these shortlists would be ({differ}: its value, then "
                          "this job's); rebuild it (snakemake " + str(path) + ") or score the shortlists without --pair-scores")
    return groups
