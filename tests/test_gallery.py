"""Retrieval galleries: the queries they pick, the rankings they show (the row's own), and the files they write."""
import json

import numpy as np
import pytest

from itr.data.dataset import read_dataset
from itr.gallery import GalleryError, build_gallery, select_queries
from itr.shortlist import Shortlist, fuse, rerank

# 5 caption queries, image positions 0..4, shortlists of 3 in first-stage order. The cross scores move the truth:
# q0 rank 1 -> 3 (loss 2), q1 2 -> 1 (a gain), q2 1 -> 2 (loss 1), q3 not on its shortlist, q4 3 -> 3.
CAND = np.array([[0, 1, 2], [0, 1, 2], [2, 0, 1], [0, 1, 2], [0, 1, 4]])
FIRST = np.array([[.9, .8, .7], [.9, .8, .7], [.9, .8, .7], [.9, .8, .7], [.9, .8, .7]])
CROSS = np.array([[0., 2., 1.], [0., 1., 0.], [1., 3., 0.], [3., 2., 1.], [3., 2., 1.]])
TRUTH = np.array([0, 1, 2, 3, 4])


def shortlist():
    empty = np.zeros((5, 3))
    return Shortlist(TRUTH, CAND, FIRST, CROSS, CAND, empty, empty)


def test_the_worst_queries_are_the_largest_rank_losses_and_the_rest_are_drawn_by_seed():
    chosen = select_queries(shortlist(), k=2, fusion="ce", lam=0.0, n_random=2, n_worst=3, seed=0)
    worst = [q for q in chosen if q["kind"] == "worst"]
    assert [q["query"] for q in worst] == [0, 2]  # only two lost rank: n_worst is a most, never padded
    assert [(q["first_rank"], q["reranked_rank"]) for q in worst] == [(1, 3), (1, 2)]
    drawn = [q["query"] for q in chosen if q["kind"] == "random"]
    assert len(drawn) == 2 and not set(drawn) & {0, 2}
    again = select_queries(shortlist(), k=2, fusion="ce", lam=0.0, n_random=2, n_worst=3, seed=0)
    assert again == chosen  # the same seed, the same queries
    seeds = {tuple(q["query"] for q in select_queries(shortlist(), 2, "ce", 0.0, 2, 0, s)) for s in range(20)}
    assert len(seeds) > 1  # and the seed does draw


def test_the_rankings_shown_are_the_rows_own_and_a_shortlist_miss_is_none():
    chosen = select_queries(shortlist(), k=3, fusion="add", lam=0.5, n_random=5, n_worst=0, seed=1)
    by_query = {q["query"]: q for q in chosen}
    fused = fuse(FIRST, CROSS, "add", 0.5)
    want = rerank(CAND, fused)
    for q, shown in by_query.items():
        assert shown["first"] == CAND[q].tolist() and shown["first_scores"] == pytest.approx(FIRST[q].tolist())
        assert shown["reranked"] == want[q].tolist()
        assert shown["reranked_scores"] == pytest.approx(sorted(fused[q].tolist(), reverse=True))
    assert by_query[3]["first_rank"] is None and by_query[3]["reranked_rank"] is None  # never on the shortlist
    assert by_query[1]["first_rank"] == 2


def _scores_file(path, root, first_stage=True, shuffle=False):
    images, captions = read_dataset(root / "data", "test")
    pos = {iid: n for n, iid in enumerate(images["image_id"])}
    truth = captions["image_id"].map(pos).to_numpy()
    if shuffle:
        truth = truth[::-1].copy()
    n, q = len(images), len(truth)
    cand = np.tile(np.arange(n), (q, 1))
    rng = np.random.default_rng(0)
    arrays = Shortlist(truth, cand, rng.normal(size=cand.shape), rng.normal(size=cand.shape),
                       np.tile(np.arange(q), (n, 1)), np.zeros((n, q)), np.zeros((n, q))).to_arrays("g0/")
    meta = {"split": "test", "protocol_label": "full test set", "lang": None, "k_max": n,
            "first_stage": {"index": "Flat", "model_id": "x"} if first_stage else None}
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path, captions


def test_a_gallery_writes_png_html_and_json_of_the_dataset_captions(tiny_pipeline, tmp_path):
    root, _ = tiny_pipeline
    scores, captions = _scores_file(tmp_path / "s.npz", root)
    spec = {"k": 2, "n_worst": 1, "n_random": 3, "fusion": "ce", "lam": 0.0, "first": "BE", "second": "SEP+COOP"}
    result = build_gallery(scores, root / "data", spec, 0, tmp_path / "g")
    assert len(result["queries"]) == 4
    for q in result["queries"]:
        row = captions[captions["caption_id"] == q["caption_id"]].iloc[0]
        assert (q["text"], q["truth"]) == (row["text"], row["image_id"])
        assert len(q["first"]) == len(q["reranked"]) == 2
    assert json.loads((tmp_path / "g.json").read_text()) == result
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    page = (tmp_path / "g.html").read_text()
    assert page.count("<h3>") == 4 and "data:image/jpeg;base64," in page and "BE" in page and "SEP+COOP" in page


def test_a_scores_file_without_first_stage_or_of_other_captions_is_refused(tiny_pipeline, tmp_path):
    root, _ = tiny_pipeline
    spec = {"k": 2, "n_worst": 1, "n_random": 1, "fusion": "ce", "lam": 0.0, "first": "a", "second": "b"}
    with pytest.raises(GalleryError, match="no first stage"):
        build_gallery(_scores_file(tmp_path / "a.npz", root, first_stage=False)[0], root / "data", spec, 0,
                      tmp_path / "a")
    with pytest.raises(GalleryError, match="not the captions"):
        build_gallery(_scores_file(tmp_path / "b.npz", root, shuffle=True)[0], root / "data", spec, 0, tmp_path / "b")
    assert not list(tmp_path.glob("[ab].*[!z]"))  # nothing written
