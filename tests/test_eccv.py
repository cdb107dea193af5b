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
