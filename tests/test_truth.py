"""The extended ground truth of ShapeCaptions (which caption is true of which scene) and the ECCV Caption metrics."""
import json

import numpy as np
import pytest

from itr.config import ShapesConfig
from itr.data import shapes
from itr.data.dataset import read_dataset
from itr.data.captions import NUMBERS
from itr.data.truth import extended_positives, facts, holds, name_relation
from itr.metrics import precision_metrics

CFG = ShapesConfig(n_train=4, n_val=4, n_test=150, twin_fraction=0.5, seed=11)
S = 128


def obj(kind, colour, size, x, y):
    half = 10 if size == "small" else 17
    return {"kind": kind, "colour": colour, "size": size, "box": [x - half, y - half, x + half, y + half]}


def test_every_caption_holds_of_its_own_image_and_some_of_others():
    scenes = shapes.generate_split(CFG, "test")
    column = [json.dumps(m) for sc in scenes for m in sc["meanings"]]
    positives = extended_positives(column, [sc["objects"] for sc in scenes], CFG.image_size, CFG.domain)
    own = np.repeat(np.arange(len(scenes)), CFG.captions_per_image)
    assert positives[np.arange(len(column)), own].all()
    extra = positives.sum(axis=1) - 1
    assert (extra > 0).mean() > 0.3  # generic captions ("three shapes ...") hold of many images
    # the index agrees with the definition, pair by pair
    for q in range(0, len(column), 37):
        for n in range(0, len(scenes), 7):
            assert positives[q, n] == holds(json.loads(column[q]), scenes[n]["objects"], CFG.image_size, CFG.domain)


def test_twins_captions_tell_them_apart():
    scenes = shapes.generate_split(CFG, "test")
    pairs = [(a, b) for a, b in zip(scenes, scenes[1:]) if b["twin_of"] == a["image_id"]]
    assert pairs
    for a, b in pairs:  # some caption of each image is false of its twin (binding, relation or count)
        assert not all(holds(m, b["objects"], S, "plain") for m in a["meanings"]), (a["captions"]["en"], b["objects"])


def test_binding_colours_to_kinds():
    scene = [obj("circle", "red", "small", 30, 60), obj("square", "blue", "large", 90, 60)]
    swapped = [obj("circle", "blue", "small", 30, 60), obj("square", "red", "large", 90, 60)]
    for meaning in ([["groups", ["blue", "square", 1], ["red", "circle", 1]]],
                    [["sequence", ["small", "red", "circle"], ["large", "blue", "square"]]],
                    [["has", None, "red", "circle"]]):
        assert holds(meaning, scene, S, "plain") and not holds(meaning, swapped, S, "plain")


def test_relation_follows_positions_and_the_generators_rule():
    red, blue = obj("circle", "red", "small", 30, 60), obj("square", "blue", "large", 90, 60)
    left = [["relation", ["small", "red", "circle"], "left of", ["blue", "square"]]]
    assert holds(left, [red, blue], S, "plain")
    assert not holds(left, [obj("circle", "red", "small", 90, 60), obj("square", "blue", "large", 30, 60)], S, "plain")
    # too close to name: no relation at all (the generator would write the "half" caption)
    assert name_relation(red, obj("square", "blue", "large", 40, 65), S) is None
    # the generator names the dominant offset: far right but farther down is "above"; "left of" holds as well
    far = obj("square", "blue", "large", 60, 110)
    assert name_relation(red, far, S) == "above"
    for name in ("above", "left of"):
        assert holds([["relation", ["small", "red", "circle"], name, ["blue", "square"]]], [red, far], S, "plain")
    assert not holds([["relation", ["small", "red", "circle"], "below", ["blue", "square"]]], [red, far], S, "plain")
    assert holds([["half", ["small", "red", "circle"], "left"]], [red, blue], S, "plain")
    assert not holds([["half", ["small", "red", "circle"], "right"]], [red, blue], S, "plain")


def test_counts_are_exact_and_sizes_optional():
    two = [obj("star", "red", "small", 20, 20), obj("star", "red", "large", 80, 80)]
    three = two + [obj("star", "red", "small", 100, 20)]
    meaning = [["groups", ["red", "star", 2]], ["k", 2]]
    assert holds(meaning, two, S, "plain") and not holds(meaning, three, S, "plain")
    assert holds([["has", None, "red", "star"]], three, S, "plain")
    assert not holds([["has", "large", "red", "star"]], [two[0]], S, "plain")
    assert not holds([["k", 2], ["domain", "plain"]], two, S, "sketch")


def _said(atom) -> list[str]:
    """Words of an English caption that an atom requires (the background's name for a domain)."""
    background = {"plain": "noisy background", "sketch": "striped background"}
    kind, *rest = atom
    if kind == "k":
        return [f"{NUMBERS[rest[0]]} shape"]
    if kind == "domain":
        return [background[rest[0]]]
    if kind == "has":
        return [" ".join(w for w in rest if w)]
    if kind == "groups":  # "two red circles" or "a red circle"
        return [f"{NUMBERS[m]} {c} {k}" if m > 1 else f"{c} {k}" for c, k, m in rest]
    if kind == "sequence":
        return [" ".join(o) for o in rest]
    if kind == "relation":
        return [" ".join(rest[0]), rest[1], " ".join(rest[2])]
    return [" ".join(rest[0]), f"{rest[1]} half"]  # half


def test_every_atom_of_a_meaning_is_said_by_its_caption_and_every_caption_says_its_facts():
    for domain in ("plain", "sketch"):
        for sc in shapes.generate_split(ShapesConfig(**{**CFG.to_dict(), "domain": domain, "n_test": 60}), "test"):
            for text, meaning in zip(sc["captions"]["en"], sc["meanings"]):
                for atom in meaning:  # no atom the caption does not say
                    assert all(w.rstrip("s") in text for w in _said(atom)), (text, atom)
                said = {a[0] for a in meaning}  # and the caption's numbers and background are in its meaning
                if "shape" in text:
                    assert "k" in said, (text, meaning)
                if "background" in text:
                    assert "domain" in said, (text, meaning)


def test_build_stores_one_meaning_per_caption_in_every_language(tmp_path):
    import dataclasses

    shapes.build(dataclasses.replace(CFG, n_test=3, languages=("en", "de")), tmp_path)
    _, captions = read_dataset(tmp_path, "test")
    by_lang = captions.set_index("caption_id")["meaning"]
    assert by_lang["test-000000-1"] == by_lang["test-000000-de1"] != by_lang["test-000000-2"]


def test_precision_metrics_by_hand():
    positives = np.array([[1, 1, 0, 0, 1], [0, 0, 1, 0, 0]], dtype=bool)  # R = 3 and 1
    ranked = np.array([[0, 2, 4, 1, 3], [1, 2, 0, 3, 4]])
    got = precision_metrics(ranked, positives)
    # query 0: relevant at ranks 1 and 3 of the first 3 -> AP@R = (1 + 2/3) / 3, R-P = 2/3; query 1: miss at 1
    assert got["R@1"] == pytest.approx(50.0)
    assert got["mAP@R"] == pytest.approx(100 * ((1 + 2 / 3) / 3 + 0) / 2)
    assert got["R-P"] == pytest.approx(100 * (2 / 3 + 0) / 2)
    # a shortlist of two misses what it did not return; "no result" (-1) is never a hit
    short = precision_metrics(np.array([[0, -1], [2, -1]]), positives)
    assert short["mAP@R"] == pytest.approx(100 * (1 / 3 + 1) / 2) and short["R-P"] == pytest.approx(100 * (1 / 3 + 1) / 2)
    with pytest.raises(ValueError, match="no positive"):
        precision_metrics(ranked, np.zeros((2, 5), dtype=bool))


def test_precision_metrics_agree_with_eccv_caption():
    import warnings

    with warnings.catch_warnings():  # the package warns that the optional ujson is missing
        warnings.simplefilter("ignore")
        from eccv_caption._metrics import compute_eccv_metrics

    rng = np.random.default_rng(0)
    positives = rng.random((40, 30)) < 0.15
    positives[np.arange(40), rng.integers(0, 30, 40)] = True
    ranked = np.argsort(rng.random((40, 30)), axis=1)
    ours = precision_metrics(ranked, positives)
    theirs = compute_eccv_metrics({q: list(r) for q, r in enumerate(ranked)},
                                  {q: list(np.flatnonzero(p)) for q, p in enumerate(positives)})
    assert ours["mAP@R"] == pytest.approx(100 * theirs["eccv_map_at_r"])
    assert ours["R-P"] == pytest.approx(100 * theirs["eccv_rprecision"])
    assert ours["R@1"] == pytest.approx(100 * theirs["eccv_r1"])


def test_the_extended_protocol_scores_whole_rankings_against_every_true_caption(tmp_path):
    from itr.config import ConfigError, EvalConfig
    from itr.evaluate import evaluate_collection
    from itr.index import save_collection
    from itr.models.encode import rank_exact

    cfg = ShapesConfig(image_size=64, n_train=2, n_val=2, n_test=30, twin_fraction=0.5, seed=4)
    shapes.build(cfg, tmp_path / "data")
    scenes = shapes.generate_split(cfg, "test")
    image_ids = [s["image_id"] for s in scenes]
    caption_ids = [f"{i}-{j}" for i in image_ids for j in range(cfg.captions_per_image)]
    caption_image_ids = [i for i in image_ids for _ in range(cfg.captions_per_image)]
    rng = np.random.default_rng(0)
    img = rng.standard_normal((30, 16)).astype("float32")
    cap = np.repeat(img, cfg.captions_per_image, axis=0) + 0.8 * rng.standard_normal((150, 16)).astype("float32")
    img, cap = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (img, cap))
    save_collection(tmp_path / "index", img, cap, image_ids, caption_ids, "Flat", "",
                    {"model_id": "m", "split": "test", "caption_image_ids": caption_image_ids})
    result = evaluate_collection(tmp_path / "index", EvalConfig(), "extended", tmp_path / "data")
    # the same, computed from the generator's own meanings and an exact search
    positives = extended_positives([json.dumps(m) for s in scenes for m in s["meanings"]], [s["objects"] for s in scenes],
                                   64, "plain")
    want = {**{f"ext/t2i/{k}": v for k, v in precision_metrics(rank_exact(cap, img, 30), positives).items()},
            **{f"ext/i2t/{k}": v for k, v in precision_metrics(rank_exact(img, cap, 150), positives.T).items()}}
    single = {k: result["metrics"].pop(k) for k in ("single/t2i/R@1", "single/i2t/R@1")}
    assert result["metrics"] == pytest.approx(want)
    assert result["positives"]["i2t"]["median"] > cfg.captions_per_image  # captions true of other images count
    # a superset of the single positive: R@1 can only rise; single/* is protocol full's R@1 of the same rankings
    full = evaluate_collection(tmp_path / "index", EvalConfig(), "full")["metrics"]
    assert single == pytest.approx({"single/t2i/R@1": full["t2i/R@1"], "single/i2t/R@1": full["i2t/R@1"]})
    assert result["metrics"]["ext/t2i/R@1"] >= full["t2i/R@1"] and result["metrics"]["ext/i2t/R@1"] >= full["i2t/R@1"]
    with pytest.raises(ConfigError, match="--data"):
        evaluate_collection(tmp_path / "index", EvalConfig(), "extended")


def test_spearman_and_ranks_by_hand():
    from itr.metrics import average_ranks, spearman

    assert list(average_ranks([3.0, 1.0, 1.0, 2.0])) == [4.0, 1.5, 1.5, 3.0]  # ties share their mean rank
    assert spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(80.0)  # 1 - 6 * 2 / (4 * 15)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-100.0)
    with pytest.raises(ValueError, match="constant"):
        spearman([1, 2, 3], [5, 5, 5])


def test_same_class_retrieval_by_hand():
    from itr.metrics import same_class_metrics

    # items 0, 1 of class a, 2, 3 of class b, 4 alone (no positive: not a query)
    v = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9], [-1.0, 0.0]])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    got = same_class_metrics(v, ["a", "a", "b", "b", "c"])
    # every query's nearest other item is of the other class (0 -> 2, 1 -> 3, 2 -> 0, 3 -> 1): R@1 = 0; R = 1
    assert got == {"R@1": 0.0, "mAP@R": 0.0, "R-P": 0.0, "queries": 4}
    assert same_class_metrics(v, ["a", "b", "a", "b", "c"])["R@1"] == 100.0
    assert same_class_metrics(v, list("abcde"))["queries"] == 0  # no item shares a class: NaN, not an error


def test_scene_classes_and_graded_caption_pairs():
    from itr.data.truth import graded_caption_pairs, scene_class

    red_small, blue = obj("circle", "red", "small", 30, 60), obj("square", "blue", "large", 90, 60)
    moved = [obj("square", "blue", "small", 20, 20), obj("circle", "red", "large", 100, 100)]
    assert scene_class([red_small, blue]) == scene_class(moved)  # sizes and places aside
    assert scene_class([red_small, blue]) != scene_class([dict(red_small, colour="blue"), dict(blue, colour="red")])
    scenes = shapes.generate_split(CFG, "test")
    positives = extended_positives([json.dumps(m) for s in scenes for m in s["meanings"]], [s["objects"] for s in scenes],
                                   CFG.image_size, CFG.domain)
    pairs, grades = graded_caption_pairs(positives, 400, seed=0)
    again, _ = graded_caption_pairs(positives, 400, seed=0)
    assert np.array_equal(pairs, again) and (pairs[:, 0] != pairs[:, 1]).all()
    a, b = positives[pairs[7, 0]], positives[pairs[7, 1]]
    assert grades[7] == pytest.approx((a & b).sum() / (a | b).sum())
    assert (grades[::2] > 0).all() and 0.2 < (grades > 0).mean() < 1  # half share an image; grades spread
