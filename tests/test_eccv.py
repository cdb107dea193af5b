"""ECCV Caption's metrics (itr.eccv) on its own ground truth, and from an indexed collection of COCO's 5K test split."""
import numpy as np
import pytest
import torch

from itr import eccv
from itr.config import EvalConfig
from itr.evaluate import evaluate_collection
from itr.index import normalise, save_collection


@pytest.fixture(scope="module")
def gts():
    m = eccv._metrics()
    return m.eccv_gts, m.coco_gts


def _rank(positives_first: dict[int, list[int]], filler: list[int]) -> dict[int, list[int]]:
    """Each query's positives, then the first other items of ``filler``: DEPTH items in all."""
    out = {}
    for q, positives in positives_first.items():
        known = set(positives)
        out[q] = list(positives) + [f for f in filler[:eccv.DEPTH + len(known)] if f not in known]
    return out


def test_positives_first_score_100_and_a_one_item_shortlist_scores_one_over_r(gts):
    ecc, coco = gts
    images, captions = sorted(coco["i2t"]), sorted(int(c) for c in eccv._metrics().coco_ids)
    perfect = eccv.eccv_metrics(_rank(ecc["t2i"], images), _rank(ecc["i2t"], captions))
    assert perfect == {name: pytest.approx(100.0) for name in perfect} and len(perfect) == 6
    # each caption query ranks only its COCO image (an ECCV positive): R@1 100, but R-P = mAP@R = 1/R (the
    # ranking is padded: the R - 1 missed positives count as missed, not as a shorter list)
    shortlist = {q: coco["t2i"][q][:1] for q in ecc["t2i"]}
    got = eccv.eccv_metrics(shortlist, _rank(ecc["i2t"], captions))
    one_over_r = 100 * np.mean([1 / len(ecc["t2i"][q]) for q in ecc["t2i"]])
    assert all(coco["t2i"][q][0] in ecc["t2i"][q] for q in ecc["t2i"])
    assert got["eccv/t2i/R@1"] == pytest.approx(100.0)
    assert got["eccv/t2i/R-P"] == pytest.approx(one_over_r) and got["eccv/t2i/mAP@R"] == pytest.approx(one_over_r)
    assert got["eccv/i2t/mAP@R"] == pytest.approx(100.0)


def test_a_query_without_ranking_is_refused_naming_it(gts):
    ecc, _ = gts
    first = sorted(ecc["t2i"])[0]
    t2i = {q: [1] for q in ecc["t2i"] if q != first}
    with pytest.raises(ValueError, match=rf"\[{first}\] have no ranking.*protocol full"):
        eccv.eccv_metrics(t2i, {q: [1] for q in ecc["i2t"]})


def test_a_coco_5k_collection_gets_eccv_metrics_from_its_own_indexes(gts, tmp_path):
    _, coco = gts
    image_ids = [str(i) for i in sorted(coco["i2t"])]
    caption_ids = [str(c) for c in sorted(coco["t2i"])]
    caption_image_ids = [str(coco["t2i"][int(c)][0]) for c in caption_ids]
    rng = np.random.default_rng(0)
    image_vecs = rng.standard_normal((len(image_ids), 16)).astype(np.float32)
    pos = {iid: n for n, iid in enumerate(image_ids)}
    caption_vecs = (image_vecs[[pos[i] for i in caption_image_ids]]
                    + 1.5 * rng.standard_normal((len(caption_ids), 16))).astype(np.float32)
    image_vecs, caption_vecs = normalise(image_vecs), normalise(caption_vecs)  # as models give them
    save_collection(tmp_path / "coco", image_vecs, caption_vecs, image_ids, caption_ids, "Flat", "",
                    {"model": "m.pt", "model_id": "x", "split": "test", "caption_image_ids": caption_image_ids,
                     "factory": "Flat", "n_targets": len(image_ids), "distractors": [], "lang": None,
                     "first_images": None})
    metrics = evaluate_collection(tmp_path / "coco", EvalConfig(), "full")["metrics"]
    # the same rankings by hand (exact top DEPTH), for the ECCV queries only (the metrics read nothing else)
    caption_row = {int(c): n for n, c in enumerate(caption_ids)}
    t2i_q, i2t_q = sorted(gts[0]["t2i"]), sorted(gts[0]["i2t"])
    top_images = torch.topk(torch.from_numpy(caption_vecs[[caption_row[q] for q in t2i_q]] @ image_vecs.T),
                            eccv.DEPTH).indices.numpy()
    top_captions = torch.topk(torch.from_numpy(image_vecs[[pos[str(q)] for q in i2t_q]] @ caption_vecs.T),
                              eccv.DEPTH).indices.numpy()
    expected = eccv.eccv_metrics(
        {q: [int(image_ids[i]) for i in row] for q, row in zip(t2i_q, top_images)},
        {q: [int(caption_ids[c]) for c in row] for q, row in zip(i2t_q, top_captions)})
    assert {k: v for k, v in metrics.items() if k.startswith("eccv/")} == pytest.approx(expected)
    assert 0 < metrics["eccv/t2i/R@1"] < 100  # noisy captions: neither nothing nor everything found
    assert "eccv/t2i/R@1" not in evaluate_collection(tmp_path / "coco", EvalConfig(), "folds")["metrics"]


def test_collections_that_are_not_cocos_5k_test_split_are_not_judged(gts):
    _, coco = gts
    images, captions = [str(i) for i in coco["i2t"]], [str(c) for c in coco["t2i"]]
    assert eccv.covers(images, captions)
    assert not eccv.covers(images[1:], captions)  # an image left out
    assert not eccv.covers(images, captions[:-1])
    assert not eccv.covers(["img0", *images], captions)  # ShapeCaptions-style ids


def test_a_reranked_row_on_cocos_5k_is_judged_on_its_reranked_shortlists(gts, tmp_path):
    """evaluate_scores on a scores file of COCO's 5K test split (coco_ids in its meta, as score_collection writes
    it): ECCV Caption's metrics of the shortlists as the cell re-sorts them; a first-stage miss stays missed."""
    import json

    from itr.evaluate import evaluate_scores
    from itr.shortlist import Shortlist

    ecc, coco = gts
    images = sorted(coco["i2t"])
    captions = sorted(coco["t2i"])
    pos = {i: n for n, i in enumerate(images)}
    caption_image = np.array([pos[coco["t2i"][c][0]] for c in captions])
    rng = np.random.default_rng(0)
    k = 5
    # first stage: 4 random images, then the caption's own image last; the cross-encoder puts the own image first
    t2i = np.stack([np.append(rng.choice(len(images), k - 1, replace=False), own) for own in caption_image])
    t2i[:7, -1] = (caption_image[:7] + 1) % len(images)  # 7 captions whose own image the first stage missed
    t2i_first = np.tile(np.linspace(1.0, 0.5, k, dtype=np.float32), (len(captions), 1))
    t2i_cross = np.where(t2i == caption_image[:, None], 9.0, 0.0).astype(np.float32)
    i2t = np.stack([rng.choice(len(captions), k, replace=False) for _ in images])
    i2t_first = np.tile(np.linspace(1.0, 0.5, k, dtype=np.float32), (len(images), 1))
    g = Shortlist(caption_image, t2i, t2i_first, t2i_cross, i2t, i2t_first, np.zeros_like(i2t_first))
    meta = {"split": "test", "protocol": "full", "protocol_label": "5K", "n_images": len(images), "n_groups": 1,
            "first_stage": {"index": "Flat", "model_id": "x"}, "reranker_model_id": "y", "pairs_scored": 0,
            "coco_ids": {"images": images, "captions": captions}}
    np.savez(tmp_path / "s.npz", meta=np.array(json.dumps(meta)), **g.to_arrays("g0/"))
    names = {"method": "sep_coop", "dataset": "coco", "trained_on": "coco", "variant": "v"}
    got = evaluate_scores(tmp_path / "s.npz", k, [k], [], [1], str(tmp_path / "m.json"), names)["metrics"]
    reranked = {q: [images[p] for p in sorted(row, key=lambda p: p != own)]  # own image first where it is there
                for q, row, own in zip(captions, t2i, caption_image)}
    expected = eccv.eccv_metrics(reranked, {images[i]: [captions[p] for p in row] for i, row in enumerate(i2t)})
    assert {m: v for m, v in got.items() if m.startswith("eccv/")} == pytest.approx(expected)
    assert got["t2i/R@1"] == pytest.approx(100 * (1 - 7 / len(captions)))  # the 7 misses stay missed
    meta.pop("coco_ids")  # any other collection: no ECCV metrics
    np.savez(tmp_path / "s.npz", meta=np.array(json.dumps(meta)), **g.to_arrays("g0/"))
    assert "eccv/t2i/R@1" not in evaluate_scores(tmp_path / "s.npz", k, [k], [], [1], None, names,
                                                 str(tmp_path / "v"))["metrics"]


def test_eccv_all_on_coco_reads_the_5k_full_cells_and_no_other_real_dataset_has_any():
    import yaml

    from conftest import ROOT
    from itr import papers
    from itr.params import validate_params

    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())
    coco = validate_params({**shipped, "dataset": "coco"})
    cells = papers.extended_cells(papers.plan("rfrs", coco), coco)
    assert cells == ["results/metrics/coco/rfrs/be/coco/full.json", "results/metrics/coco/rfrs/joint_be/coco/full.json"]
    # a table that re-ranks the 5K split (rerank.protocol full): its re-ranked rows are in the report too
    coco_full = validate_params({**coco, "rerank": {**coco["rerank"], "protocol": "full"}})
    assert "results/metrics/coco/rfrs/sep_coop/coco/full.json" in papers.extended_cells(
        papers.plan("rfrs", coco_full), coco_full)
    flickr = validate_params({**shipped, "dataset": "flickr30k"})
    assert papers.extended_cells(papers.plan("rfrs", flickr), flickr) == []
    assert eccv.judges(coco["datasets"]["coco"]) and not eccv.judges(coco["datasets"]["flickr30k"])
