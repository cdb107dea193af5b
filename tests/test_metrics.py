import numpy as np
import pytest

from itr.metrics import average_metrics, hits_at_k, retrieval_metrics
from itr.metrics import evaluate_rankings


def test_hits_at_k_counts_first_k_only():
    ranked = np.array([[5, 1, 2], [1, 5, 2], [2, 3, 4]])
    relevant = np.array([1, 1, 1])
    assert hits_at_k(ranked, relevant, [1, 2, 3]) == {1: pytest.approx(100 / 3), 2: pytest.approx(200 / 3),
                                                      3: pytest.approx(200 / 3)}


def test_i2t_counts_a_hit_when_any_caption_of_the_image_is_retrieved():
    # Two images (0, 1); captions 0-2 belong to image 0, 3-4 to image 1.
    caption_images = ["a", "a", "a", "b", "b"]
    images = ["a", "b"]
    t2i = np.array([[0, 1], [1, 0], [0, 1], [1, 0], [0, 1]])  # caption -> image positions
    i2t = np.array([[3, 2], [4, 0]])  # image a: first hit at rank 2; image b: hit at rank 1
    m = evaluate_rankings(t2i, i2t, caption_images, images, ks=(1, 2))
    assert m["t2i/R@1"] == pytest.approx(100 * 3 / 5)  # captions 0, 2 and 3 rank their image first
    assert m["t2i/R@2"] == 100.0
    assert m["i2t/R@1"] == 50.0 and m["i2t/R@2"] == 100.0
    assert m["rsum"] == pytest.approx(60 + 100 + 50 + 100)
    assert m["mR"] == pytest.approx(m["rsum"] / 4)


def test_a_missing_result_is_a_miss_and_short_lists_are_padded():
    # faiss returns -1 when a shortlist has fewer items than K; that must never match.
    t2i = np.array([[-1, -1], [1, -1]])
    i2t = np.array([[-1, -1], [-1, -1]])
    m = evaluate_rankings(t2i, i2t, ["a", "b"], ["a", "b"], ks=(1, 5))
    assert m["t2i/R@1"] == 50.0 and m["t2i/R@5"] == 50.0  # padded from 2 to 5 columns, still a miss
    assert m["i2t/R@5"] == 0.0


def test_retrieval_metrics_names_and_shape_errors():
    m = retrieval_metrics(np.array([[0]]), np.array([0]), np.array([[0]]), np.array([0]), ks=(1,))
    assert list(m) == ["t2i/R@1", "i2t/R@1", "rsum", "mR"]
    with pytest.raises(ValueError, match="R@5 needs at least 5"):
        hits_at_k(np.zeros((2, 3)), np.zeros(2), [5])


def test_average_over_folds():
    avg = average_metrics([{"rsum": 100.0, "t2i/R@1": 10.0}, {"rsum": 200.0, "t2i/R@1": 30.0}])
    assert avg == {"rsum": 150.0, "t2i/R@1": 20.0}
