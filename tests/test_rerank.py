import subprocess
import sys

import numpy as np
import pytest

from itr.config import ConfigError
from itr.metrics import retrieval_metrics
from itr.shortlist import Shortlist, fuse, rerank, rerank_metrics


def test_rerank_sorts_by_cross_score_and_keeps_missing_last():
    cand = np.array([[4, 7, 9, -1]])
    c = np.array([[-1.0, 2.0, 0.0, 5.0]])  # the score of a missing slot must never promote it
    assert rerank(cand, c).tolist() == [[7, 9, 4, -1]]
    # ties keep the first-stage order
    assert rerank(np.array([[1, 2, 3]]), np.array([[0.5, 0.5, 0.5]])).tolist() == [[1, 2, 3]]


def test_add_and_norm_add_on_hand_made_scores():
    e = np.array([[0.9, 0.5, 0.1]])
    c = np.array([[0.0, 2.0, -2.0]])
    sig = 1 / (1 + np.exp(-c))
    np.testing.assert_allclose(fuse(e, c, "add", 0.1), 0.1 * e + 0.9 * sig)
    # ADD_0.9 trusts the embedding: first-stage order; ADD_0.1 trusts the CE
    assert rerank(np.array([[0, 1, 2]]), fuse(e, c, "add", 0.9)).tolist() == [[0, 1, 2]]
    assert rerank(np.array([[0, 1, 2]]), fuse(e, c, "add", 0.1)).tolist() == [[1, 0, 2]]
    # NORM_ADD: both 0-1 normalised within the shortlist: e -> [1, .5, 0], c -> [.5, 1, 0]
    np.testing.assert_allclose(fuse(e, c, "norm_add", 0.5), [[0.75, 0.75, 0.0]])
    np.testing.assert_allclose(fuse(e, c, "norm_add", 0.2), [[0.2 + 0.4, 0.1 + 0.8, 0.0]])
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse(e, c, "mul", 0.5)


def _one_group(t2i_cand, t2i_cross, i2t_cand, i2t_cross, caption_image):
    nan = lambda a: np.full(np.shape(a), np.nan)
    return Shortlist(np.array(caption_image), np.array(t2i_cand), nan(t2i_cand), np.array(t2i_cross, float),
                     np.array(i2t_cand), nan(i2t_cand), np.array(i2t_cross, float))


def test_a_shortlist_miss_stays_a_miss_even_with_a_perfect_reranker():
    # 3 images, one caption each (caption i shows image i); the first stage kept 2 of 3 images.
    # Caption 0's shortlist lacks image 0: however the CE scores, that query cannot be found.
    g = _one_group(t2i_cand=[[1, 2], [1, 0], [2, 1]], t2i_cross=[[9, 9], [5, 1], [3, 1]],
                   i2t_cand=[[0, 1], [1, 2], [2, 0]], i2t_cross=[[1, 0], [1, 0], [1, 0]], caption_image=[0, 1, 2])
    m = rerank_metrics([g], k=2, how="ce", lam=0.0, ks=(1, 2))[0]
    assert m["t2i/R@1"] == pytest.approx(200 / 3) and m["t2i/R@2"] == pytest.approx(200 / 3)
    assert m["i2t/R@1"] == 100.0


def test_k_larger_than_the_collection_and_k_beyond_the_stored_depth():
    # all-pairs shortlists of a 2-image collection: k=2 uses both, k=20 is refused (issue 13, finding 5:
    # it used to be cut silently to 2, so a table said k=20 of a measurement at k=2)
    g = _one_group(t2i_cand=[[0, 1], [0, 1]], t2i_cross=[[0, 1], [0, 1]],
                   i2t_cand=[[0, 1], [0, 1]], i2t_cross=[[1, 0], [0, 1]], caption_image=[0, 1])
    m = rerank_metrics([g], k=2, how="ce", lam=0.0, ks=(1, 5))[0]
    expected = retrieval_metrics(np.array([[1, 0], [1, 0]]), np.array([0, 1]), np.array([[0, 1], [1, 0]]),
                                 np.array([0, 1]), ks=(1, 2))
    assert m["t2i/R@1"] == expected["t2i/R@1"] == 50.0 and m["t2i/R@5"] == 100.0
    assert m["i2t/R@1"] == 100.0
    with pytest.raises(ConfigError, match="k=20 exceeds the 2 items a t2i query can rank"):
        rerank_metrics([g], k=20, how="ce", lam=0.0, ks=(1, 5))
    # shortlists cut at depth 2 out of 3 images cannot answer k=3
    g3 = _one_group(t2i_cand=[[0, 1]] * 3, t2i_cross=[[0, 1]] * 3, i2t_cand=[[0, 1]] * 3,
                    i2t_cross=[[0, 1]] * 3, caption_image=[0, 1, 2])
    with pytest.raises(ValueError, match="larger k_max"):
        rerank_metrics([g3], k=3, how="ce", lam=0.0, ks=(1,))


def test_mix_is_a_linear_mix_of_two_similarities():
    e, c = np.array([[0.9, 0.5, 0.1]]), np.array([[0.2, 0.8, 0.9]])
    np.testing.assert_allclose(fuse(e, c, "mix", 0.25), 0.25 * e + 0.75 * c)  # TGDT eq. 8 with theta = 0.75
    np.testing.assert_allclose(fuse(e, c, "mix", 1.0), e)
    assert rerank(np.array([[0, 1, 2]]), fuse(e, c, "mix", 0.5)).tolist() == [[1, 0, 2]]  # .55 .65 .5


def test_the_released_evaluator_counts_a_shortlist_miss_as_a_hit():
    # caption 0 and image 2 have no relevant item on their shortlists; caption 1's image is second after reranking
    g = _one_group(t2i_cand=[[1, 2], [1, 0], [2, 1], [0, 3]], t2i_cross=[[9, 9], [5, 9], [3, 1], [0, 1]],
                   i2t_cand=[[0, 1], [1, 2], [0, 1], [3, 2]], i2t_cross=[[1, 0]] * 4, caption_image=[0, 1, 2, 3])
    ours = rerank_metrics([g], k=2, how="ce", lam=0.0, ks=(1, 2))[0]
    released = rerank_metrics([g], k=2, how="ce", lam=0.0, ks=(1, 2), miss="released")[0]
    assert (ours["t2i/R@1"], ours["t2i/R@2"], ours["i2t/R@1"]) == (50.0, 75.0, 75.0)
    assert (released["t2i/R@1"], released["t2i/R@2"], released["i2t/R@1"]) == (75.0, 100.0, 100.0)
    with pytest.raises(ValueError, match="miss"):
        rerank_metrics([g], k=2, how="ce", lam=0.0, ks=(1,), miss="hit")


def test_smaller_k_drops_candidates_before_reranking():
    # caption 0's true image sits at first-stage rank 3: found with k=3, lost with k=2 whatever the CE says
    g = _one_group(t2i_cand=[[1, 2, 0], [1, 2, 0], [2, 0, 1]], t2i_cross=[[0, 0, 9], [9, 0, 0], [9, 0, 0]],
                   i2t_cand=[[0, 1, 2], [1, 2, 0], [2, 0, 1]], i2t_cross=[[1, 0, 0]] * 3, caption_image=[0, 1, 2])
    assert rerank_metrics([g], 3, "ce", 0.0, ks=(1,))[0]["t2i/R@1"] == 100.0
    assert rerank_metrics([g], 2, "ce", 0.0, ks=(1,))[0]["t2i/R@1"] == pytest.approx(200 / 3)


def test_evaluating_a_cell_needs_neither_torch_nor_transformers():
    """`itr evaluate` and `itr rerank evaluate` are a third of the DAG's jobs; importing torch would be
    most of their run time."""
    code = ("import sys, itr.cli, itr.evaluate, itr.shortlist, itr.tracking, itr.config; "
            "print(sorted({'torch', 'transformers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
