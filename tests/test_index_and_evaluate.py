import json
import shutil

import faiss
import numpy as np
import pytest

from itr.config import EvalConfig
from itr.evaluate import evaluate_collection
from itr.protocols import protocol_groups
from itr.index import IndexedCollection, IndexFileError, build_index, load_index, save_collection, save_index, search
from itr.metrics import evaluate_rankings
from itr.models.encode import rank_exact


def _vectors(n, d=32, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_index_equals_exact_search():
    items, queries = _vectors(300), _vectors(20, seed=1)
    _, got = search(build_index(items, "Flat"), queries, 10)
    np.testing.assert_array_equal(got, rank_exact(queries, items, 10))


@pytest.mark.parametrize("factory,params", [("HNSW32", "efSearch=128"), ("IVF16,Flat", "nprobe=16")])
def test_approximate_presets_recall_against_exact(factory, params):
    items, queries = _vectors(2000), _vectors(50, seed=1)
    _, got = search(build_index(items, factory, params), queries, 10)
    exact = rank_exact(queries, items, 10)
    recall = np.mean([len(set(g) & set(e)) / 10 for g, e in zip(got, exact)])
    assert recall >= 0.95


def test_subset_search_equals_exact_search_within_the_subset():
    items, queries = _vectors(200), _vectors(10, seed=2)
    subset = np.arange(50, 120)
    _, got = search(build_index(items, "Flat"), queries, 5, subset=subset)
    exact = subset[rank_exact(queries, items[subset], 5)]
    np.testing.assert_array_equal(got, exact)


def test_index_from_another_model_is_refused(tmp_path):
    save_index(tmp_path / "images", build_index(_vectors(5), "Flat"), list("abcde"), "model-A", "Flat", "")
    index, meta = load_index(tmp_path / "images", "model-A")
    assert meta["ids"] == list("abcde") and index.ntotal == 5
    with pytest.raises(IndexFileError, match="built from model model-A.*Rebuild the index"):
        load_index(tmp_path / "images", "model-B")


def test_k_larger_than_collection_returns_everything():
    _, got = search(build_index(_vectors(3), "Flat"), _vectors(2, seed=5), 10)
    assert got.shape == (2, 3) and set(got[0]) == {0, 1, 2}


def _collection(tmp_path, n_images=20, caps_per_image=2, factory="Flat"):
    img = _vectors(n_images, seed=3)
    cap = np.repeat(img, caps_per_image, axis=0) + 0.6 * _vectors(n_images * caps_per_image, seed=4)
    cap /= np.linalg.norm(cap, axis=1, keepdims=True)
    image_ids = [f"i{k}" for k in range(n_images)]
    caption_image_ids = list(np.repeat(image_ids, caps_per_image))
    save_collection(tmp_path, img, cap, image_ids, [f"c{k}" for k in range(len(cap))], factory, "",
                    {"model_id": "m", "split": "test", "caption_image_ids": caption_image_ids})
    return img, cap, image_ids, caption_image_ids


def test_an_index_file_from_another_collection_is_refused(tmp_path):
    """Finding 8 of issue 13: swapping images.faiss or a vector file in from another build is caught."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    _collection(tmp_path / "a")
    _collection(tmp_path / "b", n_images=12)
    IndexedCollection(tmp_path / "a")
    for swapped in ("images.faiss", "captions.vectors.npy"):
        shutil.copytree(tmp_path / "a", tmp_path / swapped)
        shutil.copy(tmp_path / "b" / swapped, tmp_path / swapped / swapped)
        with pytest.raises(IndexFileError, match=f"{swapped} is not the file its manifest recorded"):
            IndexedCollection(tmp_path / swapped)


def test_fold_protocol_equals_exact_search_per_fold(tmp_path):
    img, cap, image_ids, cap_img = _collection(tmp_path)
    cfg = EvalConfig(ks=(1, 5), n_folds=2)
    result = evaluate_collection(tmp_path, cfg, "folds")
    assert result["protocol_label"] == "mean over 2 folds of 10 images" and result["n_groups"] == 2
    per_fold = []
    for f in range(2):
        ims = list(range(10 * f, 10 * f + 10))
        caps = [c for c, i in enumerate(cap_img) if image_ids.index(i) in ims]
        per_fold.append(evaluate_rankings(rank_exact(cap[caps], img[ims], 5), rank_exact(img[ims], cap[caps], 5),
                                          [cap_img[c] for c in caps], [image_ids[i] for i in ims], (1, 5)))
    for key in result["metrics"]:
        assert result["metrics"][key] == pytest.approx(np.mean([m[key] for m in per_fold]))
    full = evaluate_collection(tmp_path, cfg, "full")
    # Folds search smaller collections, so they are never harder than the full set.
    assert result["metrics"]["rsum"] >= full["metrics"]["rsum"]


def test_protocol_groups_labels():
    assert protocol_groups(10, EvalConfig(subset_size=4), "subset")[1] == "fixed subset: first 4 test images"
    with pytest.raises(ValueError, match="lower evaluation.n_folds"):
        protocol_groups(3, EvalConfig(n_folds=5), "folds")


def test_to_local_maps_members_and_marks_the_rest_missing():
    from itr.index import to_local

    members = np.array([3, 5, 9])
    got = to_local(np.array([[9, 3, -1], [4, 5, 10]]), members)
    np.testing.assert_array_equal(got, [[2, 0, -1], [-1, 1, -1]])


def test_collection_of_the_first_images_answers_only_subsets_it_holds(tmp_path):
    """An index built with --first-images N equals the full collection on subset<M <= N>, refuses the rest."""
    (tmp_path / "all").mkdir()
    img, cap, image_ids, cap_img = _collection(tmp_path / "all")
    keep = image_ids[:10]
    rows = [c for c, i in enumerate(cap_img) if i in keep]
    cut = tmp_path / "first10"
    save_collection(cut, img[:10], cap[rows], keep, [f"c{k}" for k in rows], "Flat", "",
                    {"model_id": "m", "split": "test", "first_images": 10,
                     "caption_image_ids": [cap_img[r] for r in rows]})
    cfg = EvalConfig(ks=(1, 5), subset_size=10)
    for protocol in ("subset8", "subset10", "subset"):
        assert evaluate_collection(cut, cfg, protocol)["metrics"] == evaluate_collection(tmp_path / "all", cfg,
                                                                                         protocol)["metrics"]
    for protocol in ("full", "folds", "subset11"):
        with pytest.raises(ValueError, match="--first-images 10"):
            evaluate_collection(cut, cfg, protocol)


def test_a_large_collection_is_added_in_chunks_under_a_progress_bar(monkeypatch, capsys):
    """At a million vectors the faiss add shows progress: chunks of ADD_CHUNK, the same index as one add
    (Flat, IVF), the bar on stderr only past four chunks."""
    import itr.index as index_module

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((1000, 16)).astype("float32")
    for factory in ("Flat", "IVF4,Flat"):
        monkeypatch.setattr(index_module, "ADD_CHUNK", 10**9)
        whole = faiss.serialize_index(index_module.build_index(vectors, factory))
        assert f"index {factory}" not in capsys.readouterr().err
        monkeypatch.setattr(index_module, "ADD_CHUNK", 100)
        chunked = index_module.build_index(vectors, factory)
        assert chunked.ntotal == 1000 and np.array_equal(faiss.serialize_index(chunked), whole), factory
        bar = capsys.readouterr().err
        assert f"index {factory}: 100%" in bar and "10/10" in bar, bar
