"""Released region features (bottom-up TSV, VinVL TSV, SCAN npy, TERAN npz) into the feature store."""
import base64
import json

import numpy as np
import pytest

from itr.cli import main
from itr.data.dataset import write_dataset
from itr.features.importers import FeatureImportError, import_features
from itr.features.store import FeatureStore, FeatureStoreError

IDS = ["1000", "1001", "1002", "1003", "1004"]
SPLITS = ["train", "train", "val", "test", "test"]
D = 8
W, H = 200.0, 100.0


@pytest.fixture
def dataset(tmp_path):
    rows = [{"image_id": i, "split": s, "file": f"images/{i}.jpg", "width": int(W), "height": int(H), "scene": "{}",
             "twin_of": None, "twin_type": None} for i, s in zip(IDS, SPLITS)]
    caps = [{"image_id": i, "caption_id": f"{i}-0", "split": s, "lang": "en", "text": "x"} for i, s in zip(IDS, SPLITS)]
    write_dataset(tmp_path / "data", rows, caps, {"dataset": "tiny"})
    return tmp_path / "data"


def regions(k: int, seed: int) -> np.ndarray:
    """(k, D) features exactly representable in float16, so the store returns them unchanged."""
    return np.random.default_rng(seed).integers(-64, 64, (k, D)).astype(np.float32) / 8


def boxes(k: int) -> np.ndarray:
    return np.array([[10 * j, 5 * j, 10 * j + 100, 5 * j + 50] for j in range(k)], np.float32)  # (k, 4) pixels


def b64(a: np.ndarray) -> str:
    return base64.b64encode(a.astype(np.float32).tobytes()).decode()


NBOX = {"1000": 3, "1001": 5, "1002": 1, "1003": 4, "1004": 2, "999": 2}  # adaptive counts; 999 is not in the dataset


def butd_tsv(path, nbox=NBOX, damage=None):
    lines = []
    for n, (i, k) in enumerate(nbox.items()):
        fields = [i, str(W), str(H), str(k), b64(boxes(k)), b64(regions(k, int(i)))]
        if damage and damage[0] == n:
            fields = damage[1](fields)
        lines.append("\t".join(fields))
    path.write_text("\n".join(lines) + "\n")
    return path


def check_store(out, with_geometry=True):
    store = FeatureStore(out)
    assert len(store) == len(IDS) and store.dim == D
    batch = store.get(IDS)
    for row, i in enumerate(IDS):
        k = NBOX[i]
        assert batch["mask"][row].sum() == k
        np.testing.assert_array_equal(batch["regions"][row, :k].numpy(), regions(k, int(i)))
        assert not batch["regions"][row, k:].any()
        np.testing.assert_allclose(batch["global"][row].numpy(), regions(k, int(i)).mean(0), atol=2e-3)
        if with_geometry:
            b = boxes(k)
            want = np.concatenate([b / [W, H, W, H], (b[:, 2:3] - b[:, 0:1]) / W, (b[:, 3:4] - b[:, 1:2]) / H], 1)
            np.testing.assert_allclose(batch["geometry"][row, :k].numpy(), want, atol=1e-3)
    return store


def test_butd_tsv_adaptive_boxes_become_masked_regions_with_normalised_geometry(tmp_path, dataset, capsys):
    src = butd_tsv(tmp_path / "feats.tsv")
    assert main(["features", "import", "--format", "butd-tsv", "--source", str(src), "--dataset", str(dataset),
                 "--out", str(tmp_path / "features")]) == 0
    store = check_store(tmp_path / "features")
    assert not store.has_tags  # bottom-up attention's TSV has no class names
    with pytest.raises(FeatureStoreError, match="records no object tags"):
        store.tags(IDS[:1])
    assert store.max_regions == 5  # the largest count in the source
    capsys.readouterr()
    assert main(["features", "info", str(tmp_path / "features"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["images"], shown["max_regions"], shown["dim"]) == (5, 5, D)
    assert shown["source"]["format"] == "butd-tsv"


def test_vinvl_tsv_keeps_its_geometry_and_its_tags(tmp_path, dataset):
    rows, preds = [], []
    for i, k in NBOX.items():
        b = boxes(k)
        geo = np.concatenate([b / [W, H, W, H], (b[:, 2:3] - b[:, 0:1]) / W, (b[:, 3:4] - b[:, 1:2]) / H], 1)
        rows.append("\t".join([i, str(k), b64(np.concatenate([regions(k, int(i)), geo], 1))]))
        preds.append("\t".join([i, json.dumps({"objects": [{"class": f"obj{j}", "rect": [0, 0, 1, 1]}
                                                            for j in range(k)], "image_h": H, "image_w": W})]))
    (tmp_path / "vinvl").mkdir()
    (tmp_path / "vinvl" / "features.tsv").write_text("\n".join(rows) + "\n")
    (tmp_path / "vinvl" / "predictions.tsv").write_text("\n".join(preds) + "\n")
    import_features("vinvl-tsv", tmp_path / "vinvl" / "features.tsv", dataset, tmp_path / "features")
    check_store(tmp_path / "features")
    store = FeatureStore(tmp_path / "features")
    assert store.has_tags and store.tags(["1001"]) == [["obj0", "obj1", "obj2", "obj3", "obj4"]]
    assert [len(t) for t in store.tags(IDS)] == [NBOX[i] for i in IDS]


def test_scan_npy_rows_follow_the_split_order_and_vse_ids_are_checked(tmp_path, dataset):
    src = tmp_path / "precomp"
    src.mkdir()
    for name, ids in (("train", IDS[:2]), ("dev", IDS[2:3]), ("testall", IDS[3:])):
        np.save(src / f"{name}_ims.npy", np.stack([np.pad(regions(NBOX[i], int(i)), ((0, 5 - NBOX[i]), (0, 0)))
                                                   for i in ids]))
    (src / "testall_ids.txt").write_text("1003\n1004\n")
    import_features("scan-npy", src, dataset, tmp_path / "features")
    batch = FeatureStore(tmp_path / "features").get(IDS)
    assert batch["mask"].all()  # SCAN's rows are all regions (fixed 36); no boxes: geometry is zero
    np.testing.assert_array_equal(batch["regions"][1, :5].numpy(), regions(5, 1001))
    assert not batch["geometry"].any()
    (src / "testall_ids.txt").write_text("1004\n1003\n")
    with pytest.raises(FeatureImportError, match=r"testall_ids.txt: row 0 is image 1004"):
        import_features("scan-npy", src, dataset, tmp_path / "features2")


def test_teran_npz_and_pixel_boxes(tmp_path, dataset):
    src = tmp_path / "features_36"
    (src / "bu_att").mkdir(parents=True)
    (src / "bu_box").mkdir()
    for i in IDS:
        np.savez(src / "bu_att" / f"{i}.npz", feat=regions(NBOX[i], int(i)))
        np.save(src / "bu_box" / f"{i}.npy", boxes(NBOX[i]))
    with pytest.raises(FeatureImportError, match="image 1001 has 5 regions, the first had 3"):
        import_features("teran", src, dataset, tmp_path / "features")  # TERAN's are fixed-size: ragged is wrong
    for i in IDS:
        np.savez(src / "bu_att" / f"{i}.npz", feat=regions(3, int(i)))
        np.save(src / "bu_box" / f"{i}.npy", boxes(3))
    import_features("teran", src, dataset, tmp_path / "features")
    batch = FeatureStore(tmp_path / "features").get(IDS)
    assert batch["mask"].sum(1).tolist() == [3] * len(IDS)
    np.testing.assert_array_equal(batch["regions"][4].numpy(), regions(3, 1004))
    np.testing.assert_allclose(batch["geometry"][0, 1].numpy(), [0.05, 0.05, 0.55, 0.55, 0.5, 0.5], atol=1e-3)


@pytest.mark.parametrize("damage,named", [
    ((2, lambda f: f[:5] + ["not*base64"]), r"feats.tsv:3: features is not base64"),
    ((1, lambda f: f[:4] + [b64(boxes(4))] + f[5:]), r"feats.tsv:2: boxes holds 16 floats, not a multiple of num_boxes=5"),
    ((0, lambda f: f[:3]), r"feats.tsv:1: 3 fields, expected 6"),
    ((3, lambda f: ["1003x"] + f[1:]), r"feats.tsv:4: image_id '1003x' is not an integer"),
], ids=["bad-base64", "box-count", "short-row", "bad-id"])
def test_a_corrupt_row_is_named_and_no_store_is_left(tmp_path, dataset, damage, named):
    src = butd_tsv(tmp_path / "feats.tsv", damage=damage)
    with pytest.raises(FeatureImportError, match=named):
        import_features("butd-tsv", src, dataset, tmp_path / "features")
    assert not (tmp_path / "features").exists() and not (tmp_path / "features.partial").exists()


def test_a_missing_image_is_named(tmp_path, dataset):
    src = butd_tsv(tmp_path / "feats.tsv", nbox={k: v for k, v in NBOX.items() if k != "1002"})
    with pytest.raises(FeatureImportError, match=r"no features for 1 of the 5 images .*'1002'"):
        import_features("butd-tsv", src, dataset, tmp_path / "features")
    assert not (tmp_path / "features").exists() and not (tmp_path / "features.partial").exists()
