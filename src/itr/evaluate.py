"""Evaluation under a named protocol (itr.protocols): of an indexed collection (the embedding rows), and of
shortlists scored by a cross-encoder (the CE and COOP rows, itr.rerank.score_collection).

Search runs through the saved faiss indexes; a fold restricts the search with an id
selector instead of building new indexes, so exactly the configured index is evaluated.

A collection may hold *distractors* (``itr index build --distractors``, Table 5 of Geigle et
al.): images and captions from elsewhere, indexed after the test split. They belong to every
group's search space but are never queries and never relevant.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from itr import eccv
from itr.atomic import write_json
from itr.config import ConfigError, EvalConfig
from itr.index import IndexedCollection, pin_search_threads
from itr.machine import fingerprint
from itr.layout import fusion_cell, k_cell
from itr.metrics import average_metrics, evaluate_rankings, precision_metrics
from itr.protocols import EXTENDED, distractor_label, protocol_groups
from itr.shortlist import SCORE_FUSIONS, Shortlist, fuse, rerank, rerank_metrics


def evaluate_collection(index_dir: Path, cfg: EvalConfig, protocol: str, data: Path | None = None) -> dict:
    """Metrics of the collection indexed in ``index_dir`` (itr.index.save_collection), the same whatever the
    thread count (itr.index.pin_search_threads). Protocol ``extended`` judges the whole collection against the
    extended ground truth of its generated dataset ``data`` (extended_of_collection)."""
    pin_search_threads()
    c = IndexedCollection(index_dir)
    if protocol == EXTENDED:
        if data is None:
            raise ConfigError(f"protocol {EXTENDED!r} reads the dataset's caption meanings: pass its directory (--data)")
        return {"split": c.split, "protocol": protocol, "n_images": len(c.image_ids), "n_groups": 1,
                "protocol_label": f"extended ground truth: every caption true of an image is its positive, full test "
                                  f"set ({len(c.image_ids)} images)", "index": c.factory, "model_id": c.model_id,
                "distractors": None, "lang": c.lang, **extended_of_collection(c, data), "per_group": None,
                "machine": fingerprint()}
    groups, label = protocol_groups(c.n_targets, cfg, protocol, c.first_images)
    per_group = []
    for group in groups:
        _, t2i, _, i2t = c.first_stage(group, max(cfg.ks))
        images = c.members(group)
        group_ids = [c.image_ids[p] for p in images]
        group_caption_ids = [c.caption_image_ids[r] for r in c.group_captions(images)]
        per_group.append(evaluate_rankings(t2i, i2t, group_caption_ids, group_ids, cfg.ks))
    metrics = average_metrics(per_group)
    if protocol == "full" and c.n_targets == len(c.image_ids) and eccv.covers(c.image_ids, c.caption_ids):
        metrics |= eccv_of_collection(c)  # COCO's 5K test split: ECCV Caption's re-judged positives too
    return {"split": c.split, "protocol": protocol, "protocol_label": label + distractor_label(len(c.image_ids) - c.n_targets),
            "n_images": int(sum(len(g) for g in groups) // len(groups)),
            "n_groups": len(groups), "index": c.factory, "model_id": c.model_id,
            "distractors": c.distractor_sources or None, "lang": c.lang,
            "metrics": metrics, "per_group": per_group if len(per_group) > 1 else None, "machine": fingerprint()}


def eccv_of_collection(c: IndexedCollection) -> dict[str, float]:
    """ECCV Caption's metrics (itr.eccv) of a collection of COCO's 5K test split, from its indexes."""
    group = np.arange(len(c.image_ids))
    _, t2i, _, i2t = c.first_stage(group, eccv.DEPTH)  # positions; -1 = no result
    captions = c.group_captions(group)  # every caption row, in the order of the t2i queries and i2t positions
    return eccv.eccv_metrics(
        t2i={int(c.caption_ids[q]): [int(c.image_ids[p]) for p in row if p >= 0] for q, row in zip(captions, t2i)},
        i2t={int(c.image_ids[i]): [int(c.caption_ids[captions[p]]) for p in row if p >= 0] for i, row in zip(group, i2t)})


def eccv_of_shortlists(groups: list[Shortlist], ids: dict, k: int | None, fusion: str, lam: float) -> dict:
    """ECCV Caption's metrics (itr.eccv) of a re-ranked row on COCO's 5K test split: each query's first-stage top
    ``k`` re-sorted by the fused score, as the cell's recalls rank it; what the first stage missed stays missed.
    ``ids``: the COCO ids of the group's images and captions, in its numbering (the scores file's ``coco_ids``)."""
    if len(groups) != 1 or len(ids["images"]) != len(groups[0].i2t_candidates):
        raise ValueError(f"ECCV Caption's ids are for one group of {len(ids['images'])} images, the scores hold "
                         f"{len(groups)} group(s); score COCO's 5K test split under protocol full, no distractors")
    g, images, captions = groups[0], ids["images"], ids["captions"]
    t2i = rerank(g.t2i_candidates[:, :k], fuse(g.t2i_first[:, :k], g.t2i_cross[:, :k], fusion, lam))  # (Q, k)
    i2t = rerank(g.i2t_candidates[:, :k], fuse(g.i2t_first[:, :k], g.i2t_cross[:, :k], fusion, lam))  # (I, k)
    return eccv.eccv_metrics(
        t2i={captions[q]: [images[p] for p in row[:eccv.DEPTH] if p >= 0] for q, row in enumerate(t2i)},
        i2t={images[i]: [captions[p] for p in row[:eccv.DEPTH] if p >= 0] for i, row in enumerate(i2t)})


def extended_of_collection(c: IndexedCollection, data: Path) -> dict:
    """ECCV Caption's metrics (mAP@R, R-P, R@1; itr.metrics.precision_metrics) of a collection of a generated
    dataset under its extended ground truth (itr.data.truth), from rankings of the whole collection:
    ``{"metrics": {"ext/t2i/mAP@R": ..., "ext/i2t/...": ..., "single/t2i/R@1", "single/i2t/R@1"} (percent),
    "positives": {direction: {"median", "max"}}}`` (the positives per query, which set how hard mAP@R and R-P are;
    single/*: R@1 of the same rankings under the original ground truth, each caption and its own image)."""
    from itr.data.dataset import dataset_manifest, read_dataset
    from itr.data.truth import extended_positives
    from itr.models.encode import rank_exact

    if c.n_targets != len(c.image_ids) or c.first_images is not None:
        raise ConfigError(f"{c.index_dir} holds distractors or only the split's first images; the extended ground truth "
                          "judges a whole test split alone (build the index without --distractors and --first-images)")
    images, captions = read_dataset(data, c.split)
    if "meaning" not in captions.columns:
        raise ConfigError(f"{data} stores no caption meanings, so its extended ground truth is unknown: protocol "
                          f"{EXTENDED!r} needs a generated ShapeCaptions dataset (one made before meanings were stored: "
                          "snakemake --forcerun shapes_generate; on COCO, protocol full adds ECCV Caption's metrics)")
    config = dataset_manifest(data)["config"]
    meaning = captions.set_index("caption_id")["meaning"]
    scene = {r.image_id: json.loads(r.scene)["objects"] for r in images.itertuples()}
    positives = extended_positives([meaning[q] for q in c.caption_ids], [scene[i] for i in c.image_ids],
                                   config["image_size"], config["domain"])  # (captions, images)
    # whole rankings, exact whatever the index's factory
    t2i = rank_exact(c.caption_vecs, c.image_vecs, len(c.image_ids))  # (captions, images)
    i2t = rank_exact(c.image_vecs, c.caption_vecs, len(c.caption_ids))  # (images, captions)
    # the original ground truth on the same rankings: each caption's own image (single/*: how much it undercounts)
    own = np.zeros_like(positives)
    own[np.arange(len(c.caption_ids)), c.caption_image_pos] = True
    metrics, counts = {}, {}
    for direction, ranked, pos, original in (("t2i", t2i, positives, own), ("i2t", i2t, positives.T, own.T)):
        metrics |= {f"ext/{direction}/{k}": v for k, v in precision_metrics(ranked, pos).items()}
        metrics[f"single/{direction}/R@1"] = precision_metrics(ranked, original)["R@1"]
        per_query = pos.sum(axis=1)
        counts[direction] = {"median": float(np.median(per_query)), "max": int(per_query.max())}
    return {"metrics": metrics, "positives": counts}


def evaluate_scores(scores_path, k: int, ks, lambdas, eval_ks, out: str | None, names: dict,
                    variants_dir: str | None = None, fusion: str = "ce", lam: float | None = None,
                    variant_fusions=SCORE_FUSIONS) -> dict:
    """Metrics files of the shortlists scored in ``scores_path`` (itr.rerank.score_collection).

    ``out`` gets the cell reranking the top ``k`` by ``fusion`` (itr.shortlist.fuse; "ce": the second-stage
    score alone, weight ``lam`` otherwise); an all-pairs row has no first-stage score, so only "ce". With ``variants_dir`` a shortlist cell also gets one file per depth in ``ks`` (same fusion) and one per
    fusion of ``variant_fusions`` and weight in ``lambdas`` at depth ``k`` (itr.layout.k_cell, fusion_cell).
    ``names`` (method, dataset, trained_on, variant) are recorded in each file. Returns the content of the first
    file written (``out`` when given).
    """
    with np.load(scores_path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        groups = [Shortlist.from_arrays(z, f"g{n}/") for n in range(meta["n_groups"])]
    all_pairs = meta["first_stage"] is None
    if all_pairs and fusion != "ce":
        raise ConfigError(f"{scores_path} scores every pair (no first stage), so there is nothing to fuse with "
                          f"fusion {fusion!r}; use fusion 'ce' for an all-pairs row")
    if out is None and not variants_dir:
        raise ConfigError("nothing to write: give the cell's metrics file (out), its variants directory, or both")
    cells = [(out, None if all_pairs else k, fusion, lam)] if out is not None else []
    if variants_dir and not all_pairs:
        cells += [(k_cell(variants_dir, depth), depth, fusion, lam) for depth in ks]
        cells += [(fusion_cell(variants_dir, how, w), k, how, w) for how in variant_fusions for w in lambdas]
    recorded = ("split", "protocol", "protocol_label", "n_images", "n_groups", "first_stage", "reranker_model_id",
                "pairs_scored")
    written, machine = [], fingerprint()
    for path, depth, how, weight in cells:
        per_group = rerank_metrics(groups, depth, how, weight or 0.0, eval_ks)
        metrics = average_metrics(per_group)
        if "coco_ids" in meta:  # scored on COCO's 5K test split (itr.rerank.score_collection)
            metrics |= eccv_of_shortlists(groups, meta["coco_ids"], depth, how, weight or 0.0)
        written.append({**{key: meta[key] for key in recorded}, "distractors": meta.get("distractors"),
                        "lang": meta.get("lang"), **names, "k": depth, "fusion": how, "lambda": weight,
                        "metrics": metrics, "per_group": per_group if len(per_group) > 1 else None,
                        "machine": machine})
        write_json(path, written[-1])
    return written[0]
