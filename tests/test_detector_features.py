import json
from pathlib import Path

import pytest
import torch

from itr.config import DetectorConfig, FeaturesConfig, ShapesConfig
from itr.data import shapes
from itr.data.images import ImageError, load_image
from itr.data.dataset import read_dataset
from itr.features import extract
from itr.features.detector import average_precision, build_detector, mean_average_precision
from itr.features.store import FeatureStore, FeatureStoreWriter


def _t(boxes, labels, scores=None):
    d = {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), "labels": torch.tensor(labels)}
    if scores is not None:
        d["scores"] = torch.tensor(scores, dtype=torch.float32)
    return d


def test_map_perfect_and_hand_computed():
    gt = [_t([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 2])]
    assert mean_average_precision([_t([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 2], [0.9, 0.8])], gt)["mAP@0.5"] == 1
    # class 1: a false positive ranked above the true one -> precision 1/2 at recall 1 -> AP 0.5;
    # class 2: wrong class label -> AP 0.
    preds = [_t([[50, 50, 60, 60], [0, 0, 10, 10], [20, 20, 30, 30]], [1, 1, 3], [0.9, 0.8, 0.7])]
    res = mean_average_precision(preds, gt)
    assert res["per_class_AP"] == {1: pytest.approx(0.5), 2: 0.0}
    assert res["mAP@0.5"] == pytest.approx(0.25)


def test_duplicate_detections_count_once():
    gt = [_t([[0, 0, 10, 10]], [1])]
    preds = [_t([[0, 0, 10, 10], [0, 0, 10, 11]], [1, 1], [0.9, 0.8])]
    assert mean_average_precision(preds, gt)["mAP@0.5"] == 1.0  # the duplicate is an FP after recall 1
    assert average_precision(torch.tensor([0.5, 1.0]).numpy(), torch.tensor([1.0, 0.5]).numpy()) == 0.75


def test_corrupt_image_error_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageError, match="broken.png"):
        load_image(bad)


def test_extraction_shapes_and_resume_without_recompute(tmp_path, monkeypatch):
    cfg = ShapesConfig(image_size=64, n_train=2, n_val=1, n_test=5, seed=0)
    shapes.build(cfg, tmp_path / "data")
    images, _ = read_dataset(tmp_path / "data")
    torch.manual_seed(0)
    det = build_detector(DetectorConfig(channels=(8, 8, 8), representation_size=16, anchor_sizes=(8, 16)),
                         len(shapes.detection_labels()), 64).eval()
    fcfg = FeaturesConfig(max_regions=3, score_thresh=0.0, shard_size=3, batch_size=2)
    ids, paths = list(images["image_id"]), [tmp_path / "data" / f for f in images["file"]]
    writer = FeatureStoreWriter(tmp_path / "feat", 3, 16, {"detector": "d0"}, with_tags=True)
    names = shapes.detection_labels()
    first = extract.extract_to_store(det, ids, paths, fcfg, writer, torch.device("cpu"), names)
    assert first["n_shards"] == 3 and first["shards_resumed"] == 0
    writer.finalize(first["n_shards"], {})
    store = FeatureStore(tmp_path / "feat")
    batch = store.get(ids[:2])
    assert batch["regions"].shape == (2, 3, 16) and batch["geometry"].shape == (2, 3, 6)
    geo = batch["geometry"][batch["mask"]]
    assert (geo >= -1e-3).all() and (geo <= 1 + 1e-3).all()
    # object tags: one class name per kept region, in the regions' order
    direct = extract.regions_for_batch(det, [load_image(p) for p in paths[:2]], fcfg)
    assert store.tags(ids[:2]) == [[names[c] for c in row[m]] for row, m in zip(direct["labels"], direct["mask"])]
    assert [len(t) for t in store.tags(ids[:2])] == batch["mask"].sum(1).tolist()
    assert all(t in names[1:] for tags in store.tags(ids) for t in tags)  # never the background
    # Simulate a kill after the first shard: drop the later markers, then forbid recomputing shard 0.
    for k in (1, 2):
        Path(tmp_path / "feat" / f"shard-0000{k}.json").unlink()
    calls = []
    real = extract.regions_for_batch
    monkeypatch.setattr(extract, "regions_for_batch", lambda m, imgs, c: calls.append(len(imgs)) or real(m, imgs, c))
    second = extract.extract_to_store(det, ids, paths, fcfg, writer, torch.device("cpu"), names)
    assert second["shards_resumed"] == 1
    assert sum(calls) == len(ids) - 3  # only the images of shards 1 and 2 were recomputed
    meta = json.loads((tmp_path / "feat" / "shard-00001.json").read_text())
    assert meta["ids"] == ids[3:6]
    # a shard extracted before tags were kept is redone, so re-extracting an old store gives it tags
    marker = tmp_path / "feat" / "shard-00000.json"
    marker.write_text(json.dumps({k: v for k, v in json.loads(marker.read_text()).items() if k != "tags"}))
    assert not writer.is_done(0, ids[:3]) and writer.is_done(1, ids[3:6])


def test_killed_detector_training_resumes_to_identical_weights(tmp_path, capsys):
    from itr.features.detector import targets_from_scenes, train_detector

    shapes.build(ShapesConfig(image_size=64, n_train=8, n_val=2, n_test=1, seed=0), tmp_path / "d")
    tr, _ = read_dataset(tmp_path / "d", "train")
    va, _ = read_dataset(tmp_path / "d", "val")
    cfg = DetectorConfig(epochs=2, batch_size=4, channels=(8, 8, 8), representation_size=16, anchor_sizes=(8, 16))
    args = ([tmp_path / "d" / f for f in tr["file"]], targets_from_scenes(tr, shapes.label_of),
            [tmp_path / "d" / f for f in va["file"]], targets_from_scenes(va, shapes.label_of),
            len(shapes.detection_labels()), 64)
    reference, _, reference_history = train_detector(cfg, *args, tmp_path / "ref", torch.device("cpu"))

    def die(epoch, metrics):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_detector(cfg, *args, tmp_path / "killed", torch.device("cpu"), on_epoch=die)
    logs = []
    resumed, _, history = train_detector(cfg, *args, tmp_path / "killed", torch.device("cpu"), log=logs.append)
    assert any("resuming detector" in line and "epoch 1" in line for line in logs)
    # the bar shows the epoch's running mean loss; at the epoch's end, the mean the log line gives
    logged = next(line for line in logs if line.startswith("epoch 1: loss")).split()[-1]
    assert f"loss={logged}" in capsys.readouterr().err.split("detector epoch 1")[-1]
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    # the loss curve (dvc plots) keeps the epoch trained before the kill: it came back from the saved state
    assert [row["epoch"] for row in history] == [0, 1] and history == reference_history
    assert f"{history[1]['train/loss']:.4f}" == logged
