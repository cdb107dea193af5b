import numpy as np
import pytest

from itr.features.store import FeatureStore, FeatureStoreError, FeatureStoreWriter

R, D = 3, 4
SOURCE = {"detector": "abc", "features": {"max_regions": R}}


def _arrays(n, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((n, R)) > 0.3
    return {"regions": rng.standard_normal((n, R, D)), "geometry": rng.random((n, R, 6)), "mask": mask,
            "global": rng.standard_normal((n, D))}


def _write_store(root, ids, shard=2):
    w = FeatureStoreWriter(root, R, D, SOURCE)
    arrays = {}
    for k in range(0, len(ids), shard):
        a = _arrays(len(ids[k:k + shard]), k)
        w.write(k // shard, ids[k:k + shard], a)
        for i, iid in enumerate(ids[k:k + shard]):
            arrays[iid] = {key: v[i] for key, v in a.items()}
    w.finalize((len(ids) + shard - 1) // shard, {})
    return arrays


def test_round_trip_in_requested_order(tmp_path):
    ids = [f"img{i}" for i in range(5)]
    arrays = _write_store(tmp_path, ids)
    store = FeatureStore(tmp_path)
    assert len(store) == 5
    got = store.get(["img4", "img0"])
    assert got["regions"].shape == (2, R, D) and got["mask"].dtype.is_floating_point is False
    np.testing.assert_allclose(got["regions"][0].numpy(), arrays["img4"]["regions"].astype(np.float16), rtol=0)
    np.testing.assert_array_equal(got["mask"][1].numpy(), arrays["img0"]["mask"])


def test_truncated_shard_is_detected_and_named(tmp_path):
    _write_store(tmp_path, [f"img{i}" for i in range(4)])
    victim = tmp_path / "shard-00001.regions.npy"
    victim.write_bytes(victim.read_bytes()[:-10])
    with pytest.raises(FeatureStoreError, match="shard-00001.regions.npy"):
        FeatureStore(tmp_path)


def test_shape_mismatch_and_missing_ids_fail_clearly(tmp_path):
    _write_store(tmp_path, ["a", "b"])
    np.save(tmp_path / "shard-00000.global.npy", np.zeros((2, D + 1), np.float16))
    with pytest.raises(FeatureStoreError, match="is not the array its marker shard-00000.json recorded"):
        FeatureStore(tmp_path)
    _write_store(tmp_path, ["a", "b"])
    with pytest.raises(FeatureStoreError, match="no features for \\['zzz'\\]"):
        FeatureStore(tmp_path).get(["zzz"])


def test_unfinished_store_has_no_manifest(tmp_path):
    w = FeatureStoreWriter(tmp_path, R, D, SOURCE)
    w.write(0, ["a"], _arrays(1, 0))
    with pytest.raises(FeatureStoreError, match="did not finish"):
        FeatureStore(tmp_path)


def test_resume_keeps_finished_shards_and_redoes_foreign_ones(tmp_path):
    w = FeatureStoreWriter(tmp_path, R, D, SOURCE)
    w.write(0, ["a", "b"], _arrays(2, 0))
    assert w.is_done(0, ["a", "b"])
    assert not w.is_done(1, ["c"])  # never written
    assert not w.is_done(0, ["a", "x"])  # a different id order is different work
    other = FeatureStoreWriter(tmp_path, R, D, {"detector": "other"})
    assert not other.is_done(0, ["a", "b"])  # made by another detector: redo
    assert not FeatureStoreWriter(tmp_path, R, D, SOURCE, data="new").is_done(0, ["a", "b"])  # other images: redo
    (tmp_path / "shard-00000.mask.npy").unlink()
    assert not w.is_done(0, ["a", "b"])  # marker without its arrays is not done


def test_writer_leaves_no_temporary_files(tmp_path):
    _write_store(tmp_path, ["a", "b", "c"])
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
