import json

import numpy as np

from itr.config import ShapesConfig
from itr.data import shapes
from itr.data.dataset import read_dataset

CFG = ShapesConfig(n_train=40, n_val=10, n_test=60, twin_fraction=0.5, seed=3)


def test_generation_is_deterministic_and_seed_dependent():
    a = shapes.generate_split(CFG, "test")
    b = shapes.generate_split(CFG, "test")
    c = shapes.generate_split(ShapesConfig(**{**CFG.to_dict(), "seed": 4}), "test")
    assert a == b
    assert a != c


def test_rendering_is_byte_identical(tmp_path):
    small = ShapesConfig(n_train=3, n_val=2, n_test=2, seed=1)
    shapes.build(small, tmp_path / "x")
    shapes.build(small, tmp_path / "y")
    for f in sorted((tmp_path / "x" / "images").rglob("*.png")):
        assert f.read_bytes() == (tmp_path / "y" / f.relative_to(tmp_path / "x")).read_bytes()


def _signature(objs):
    return sorted((o["kind"], o["colour"], o["size"]) for o in objs)


def test_twins_differ_in_exactly_one_controlled_way_and_captions_tell_them_apart():
    scenes = {s["image_id"]: s for s in shapes.generate_split(CFG, "test")}
    twins = [s for s in scenes.values() if s["twin_of"]]
    assert len(twins) >= 0.4 * CFG.n_test / 2  # a sizeable share of the split
    kinds = set()
    for t in twins:
        base = scenes[t["twin_of"]]  # the partner is in the same split
        kinds.add(t["twin_type"])
        a, b = base["objects"], t["objects"]
        if t["twin_type"] == "binding":
            assert len(a) == len(b) and [o["box"] for o in a] == [o["box"] for o in b]
            assert sorted(o["colour"] for o in a) == sorted(o["colour"] for o in b)  # same colours, rebound
            assert [o["colour"] for o in a] != [o["colour"] for o in b]
        elif t["twin_type"] == "relation":
            assert _signature(a) == _signature(b)  # same objects, different places
            assert sorted(o["box"] for o in a) == sorted(o["box"] for o in b)
            assert [o["box"] for o in a] != [o["box"] for o in b]
        else:
            assert abs(len(a) - len(b)) == 1
        # The first caption (left-to-right listing) always differs between twins.
        assert base["captions"]["en"][0] != t["captions"]["en"][0]
    assert kinds == {"binding", "relation", "count"}


def test_captions_mention_attributes_counts_and_relations():
    text = " ".join(c for s in shapes.generate_split(CFG, "train") for c in s["captions"]["en"])
    for word in ("left of", "two ", "small", "large", "red", "from left to right"):
        assert word in text


def test_build_writes_canonical_tables_with_scenes(tmp_path):
    summary = shapes.build(ShapesConfig(n_train=4, n_val=2, n_test=4, seed=0), tmp_path)
    images, captions = read_dataset(tmp_path)
    assert summary["images"] == 10 and len(captions) == 50
    assert set(captions.columns) >= {"image_id", "caption_id", "split", "lang", "text"}
    scene = json.loads(images["scene"].iloc[0])
    for o in scene["objects"]:
        x1, y1, x2, y2 = o["box"]
        assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128
        assert shapes.label_of(o) > 0
    assert (tmp_path / images["file"].iloc[0]).exists()


def test_reading_a_dataset_starts_no_thread(tmp_path):
    # pyarrow's thread pools can abort a finished job at exit (itr.data.dataset.read_parquet): a read starts none
    import subprocess
    import sys

    shapes.build(ShapesConfig(n_train=4, n_val=2, n_test=4, seed=0), tmp_path)
    code = ("import os; from itr.data.dataset import read_dataset; n = lambda: len(os.listdir('/proc/self/task')); "
            f"before = n(); images, captions = read_dataset({str(tmp_path)!r}); print(before, n(), len(captions))")
    before, after, captions = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                             check=True).stdout.split()
    assert after == before and captions == "50"


def test_objects_do_not_overlap():
    for s in shapes.generate_split(CFG, "train"):
        boxes = np.array([o["box"] for o in s["objects"]])
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                overlap = min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])
                assert not overlap


def test_sketch_domain_draws_its_own_scenes_and_names_its_background():
    import dataclasses

    import pytest

    sketch = dataclasses.replace(CFG, domain="sketch")
    plain_scenes, sketch_scenes = shapes.generate_split(CFG, "test"), shapes.generate_split(sketch, "test")
    # the plain domain keeps the seeds it always had; another domain never repeats its scenes
    assert shapes.split_seed(CFG, "test") == [CFG.seed, 2]
    assert [s["objects"] for s in plain_scenes] != [s["objects"] for s in sketch_scenes]
    captions = [c for s in sketch_scenes for c in s["captions"]["en"]]
    assert any("striped background" in c for c in captions) and not any("noisy" in c for c in captions)
    rng = lambda: np.random.default_rng(0)
    objects = plain_scenes[0]["objects"]
    plain_px = np.asarray(shapes.render(objects, CFG, rng()), float)
    sketch_px = np.asarray(shapes.render(objects, sketch, rng()), float)
    assert sketch_px.mean() > plain_px.mean() + 40  # light paper instead of mid-grey noise
    with pytest.raises(ValueError, match="unknown ShapeCaptions domain 'night'"):
        shapes.split_seed(dataclasses.replace(CFG, domain="night"), "test")


def test_languages_share_one_plan_and_leave_english_unchanged(tmp_path):
    import dataclasses

    from itr.models.tiny import shapes_vocabulary

    multi = dataclasses.replace(CFG, languages=("en", "de", "fr", "cs"))
    english, all_four = shapes.generate_split(CFG, "val"), shapes.generate_split(multi, "val")
    assert [s["captions"]["en"] for s in english] == [s["captions"]["en"] for s in all_four]
    assert [s["objects"] for s in english] == [s["objects"] for s in all_four]  # same images
    vocabulary = set(shapes_vocabulary())
    for scene in all_four:
        assert sorted(scene["captions"]) == ["cs", "de", "en", "fr"]
        for texts in scene["captions"].values():
            assert len(texts) == CFG.captions_per_image
            assert {w for t in texts for w in t.replace(",", " ").replace(":", " ").split()} <= vocabulary
    summary = shapes.build(dataclasses.replace(multi, n_train=2, n_val=2, n_test=2), tmp_path)
    _, captions = read_dataset(tmp_path, "test")
    assert summary["captions"] == 6 * 4 * CFG.captions_per_image
    assert captions.groupby("lang").size().to_dict() == {lang: 2 * CFG.captions_per_image for lang in multi.languages}
    assert captions["caption_id"].iloc[0] == "test-000000-0"  # English ids as before


def test_grammatical_agreement_in_each_language():
    from itr.data.captions import LEXICONS

    star = {"kind": "star", "colour": "purple", "size": "small", "box": [0, 0, 1, 1]}
    square = {"kind": "square", "colour": "green", "size": "large", "box": [0, 0, 1, 1]}
    de, fr, cs = LEXICONS["de"], LEXICONS["fr"], LEXICONS["cs"]
    assert (de.np(star), de.np(square)) == ("ein kleiner violetter Stern", "ein großes grünes Quadrat")
    assert de.group("green", "diamond", 3) == "drei grüne Rauten"
    assert (fr.np(star), fr.np(square)) == ("une petite étoile violette", "un grand carré vert")
    assert (fr.group("green", "star", 2), fr.group("orange", "circle", 2)) == ("deux étoiles vertes", "deux cercles orange")
    assert (cs.np(star), cs.np(square)) == ("malá fialová hvězda", "velký zelený čtverec")
    assert (cs.group("red", "star", 2), cs.group("red", "circle", 2)) == ("dvě červené hvězdy", "dva červené kruhy")
    # "A left of B" is said from A: B lies to A's right
    assert de.relation(star, "left of", square).endswith("rechts davon ein grünes Quadrat")
