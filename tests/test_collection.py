"""Collections grown with distractors (Table 5): queries first, distractors never relevant."""
import numpy as np
import pytest
import torch

from itr.collection import Source, StackedStore
from itr.protocols import protocol_groups
from itr.config import ConfigError, EvalConfig
from itr.features.store import FeatureStoreError
from itr.metrics import evaluate_rankings
from itr.rerank import cross_score_groups, first_stage_groups, shortlists_from_all_pairs
from itr.shortlist import rerank_metrics


def test_distractor_captions_and_images_are_never_hits():
    # 2 query images (a, b), one caption each; a distractor image d with one caption.
    image_ids, caption_image_ids = ["a", "b", "d"], ["a", "b", "d"]
    t2i = np.array([[2, 0], [1, 2]])  # caption a: distractor first; caption b: its image first
    i2t = np.array([[2, 0], [1, 0]])  # image a: the distractor's caption first
    m = evaluate_rankings(t2i, i2t, caption_image_ids, image_ids, ks=(1, 2))
    assert m["t2i/R@1"] == 50.0 and m["t2i/R@2"] == 100.0
    assert m["i2t/R@1"] == 50.0 and m["i2t/R@2"] == 100.0
    with pytest.raises(ValueError, match="3 caption / 1 image queries"):
        evaluate_rankings(np.zeros((3, 1), int), np.zeros((1, 1), int), ["a"] * 2, ["a"], ks=(1,))


class _Store:
    def __init__(self, source, ids):
        self.manifest, self.root, self.dim = {"source": source}, f"/stores/{source}", 2
        self.rows = {i: n for n, i in enumerate(ids)}

    def get(self, ids):
        return {"regions": torch.tensor([[float(self.rows[i])] for i in ids])}


def test_stacked_store_routes_prefixed_ids_and_keeps_the_order():
    target, other = _Store("det", ["t0", "t1"]), _Store("det", ["x0", "x1", "x2"])
    store = StackedStore(target, {"other/": other})
    got = store.get(["other/x2", "t1", "other/x0", "t0"])["regions"][:, 0].tolist()
    assert got == [2.0, 1.0, 0.0, 0.0]
    with pytest.raises(FeatureStoreError, match="extract both with one detector"):
        StackedStore(target, {"other/": _Store("another-detector", ["x0"])})
    assert Source.parse("data/shapes_sketch:features/shapes_sketch:val").prefix == "shapes_sketch/"
    with pytest.raises(ValueError, match="DATA_DIR:FEATURES_DIR:SPLIT"):
        Source.parse("data/shapes_sketch:val")


def test_all_pairs_with_distractors_queries_only_the_test_items():
    # 3 test images (positions 0-2), 2 distractors (3, 4); one caption per image, in image order.
    caption_image_pos = np.arange(5)
    groups = first_stage_groups(protocol_groups(3, EvalConfig(subset_size=2), "subset")[0], caption_image_pos, k=0,
                                distractors=np.array([3, 4]))
    g = groups[0]
    assert g["images"].tolist() == [0, 1, 3, 4] and g["captions"].tolist() == [0, 1, 3, 4]
    assert g["t2i_candidates"].shape == (2, 4) and g["i2t_candidates"].shape == (2, 4)  # queries: the subset only

    class Oracle:  # a perfect cross-encoder: logit 1 for a caption and its own image
        def eval(self):
            return self

        def match_logits(self, ids, mask, regions, *rest):
            return (ids[:, 0].float() == regions[:, 0, 0]).float()

    class Captions:
        def batch(self, rows):
            return torch.as_tensor(rows)[:, None], torch.ones(len(rows), 1)

    store = _Store("det", [f"i{n}" for n in range(5)])
    store.get = lambda ids: {"regions": torch.tensor([[[float(i[1:])]] for i in ids]), "geometry": torch.zeros(len(ids)),
                             "mask": torch.ones(len(ids)), "global": torch.zeros(len(ids))}
    shortlists, n_pairs = cross_score_groups(Oracle(), Captions(), store, [f"i{n}" for n in range(5)], groups, 64, "cpu")
    # t2i: 2 queries x 4 images, i2t: 2 queries x 4 captions; the 2 x 2 test pairs are shared: 8 + 8 - 4
    assert n_pairs == 12
    m = rerank_metrics(shortlists, None, "ce", 0.0, ks=(1,))[0]
    assert m["t2i/R@1"] == 100.0 and m["i2t/R@1"] == 100.0


def test_subset_protocols():
    cfg = EvalConfig(subset_size=4)
    assert protocol_groups(10, cfg, "subset")[0][0].tolist() == [0, 1, 2, 3]
    groups, label = protocol_groups(10, cfg, "subset7")
    assert groups[0].tolist() == list(range(7)) and label == "fixed subset: first 7 test images"
    with pytest.raises(ValueError, match="subset<N>"):
        protocol_groups(10, cfg, "subsetx")


class _PairScorer:  # a cross-encoder whose score depends on the (caption, image) pair alone: 10 * caption + image
    def eval(self):
        return self

    def match_logits(self, ids, mask, regions, *rest):
        return 10 * ids[:, 0].float() + regions[:, 0, 0]


class _Rows:
    def batch(self, rows):
        return torch.as_tensor(rows)[:, None], torch.ones(len(rows), 1)


class _Shuffled:
    """A first stage whose shortlists are the group's items in a seeded order, cut to k (-1 past the group)."""
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def first_stage(self, group, k):
        n = len(group)
        t2i = np.stack([self.rng.permutation(n)[:k] for _ in range(n)])  # one caption per image: n queries each way
        i2t = np.stack([self.rng.permutation(n)[:k] for _ in range(n)])
        return self.rng.random(t2i.shape), t2i, self.rng.random(i2t.shape), i2t


def test_shortlist_scores_read_from_the_all_pairs_file_are_those_the_reranker_gives():
    # 6 images, one caption each; two protocol groups of 3 (as folds). The pair scores tell every pair apart.
    n = 6
    store = _Store("det", [f"i{m}" for m in range(n)])
    store.get = lambda ids: {"regions": torch.tensor([[[float(i[1:])]] for i in ids]), "geometry": torch.zeros(len(ids)),
                             "mask": torch.ones(len(ids)), "global": torch.zeros(len(ids))}
    image_ids, groups = [f"i{m}" for m in range(n)], [np.array([0, 1, 2]), np.array([3, 4, 5])]
    every = first_stage_groups(groups, np.arange(n), k=0)
    every_pair, n_all = cross_score_groups(_PairScorer(), _Rows(), store, image_ids, every, 64, "cpu")
    shortlists = first_stage_groups(groups, np.arange(n), k=2, collection=_Shuffled(0))
    scored, n_scored = cross_score_groups(_PairScorer(), _Rows(), store, image_ids, shortlists, 64, "cpu")
    read, n_read = shortlists_from_all_pairs(every_pair, shortlists, n)
    assert n_all == 2 * 3 * 3 and n_read == n_scored < n_all
    for a, b in zip(scored, read):
        for field in ("t2i_candidates", "t2i_first", "t2i_cross", "i2t_candidates", "i2t_first", "i2t_cross"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    # The scores are the pairs': caption c of group image j -> 10 * c + j (global numbering), in both directions
    g = shortlists[1]
    assert read[1].t2i_cross[0].tolist() == [10 * 3 + 3 + j for j in g["t2i_candidates"][0]]
    assert read[1].i2t_cross[2].tolist() == [10 * (3 + c) + 5 for c in g["i2t_candidates"][2]]
    with pytest.raises(ConfigError, match="other captions or images"):  # another protocol's groups
        shortlists_from_all_pairs(every_pair[::-1], first_stage_groups([np.arange(4), np.array([4, 5])], np.arange(n),
                                                                        k=2, collection=_Shuffled(1)), n)
    with pytest.raises(ConfigError, match="2 protocol groups, the shortlists 1"):
        shortlists_from_all_pairs(every_pair, shortlists[:1], n)
