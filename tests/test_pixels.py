"""CUSA's student (b): raw-pixel patches in the feature store (itr.features.patches) and a transformer from scratch
over them beside the text tower, taught by the detector store's whole-image features."""
import dataclasses

import numpy as np
import pytest
import torch

from itr.checkpoint import load_checkpoint
from itr.config import SoftLabelConfig
from itr.data.images import ImageError
from itr.features.extract import whole_image_encoder
from itr.features.patches import patchify, write_patch_store
from itr.features.store import FeatureStore
from itr.models import load_trained
from itr.models.encode import embed_images
from itr.teachers import ImageTeacher, TeacherError, write_text_teacher
from itr.training import build_model, train_from_files

PIXELS = {"patch": 16, "layers": 1, "heads": 2}


@pytest.fixture(scope="module")
def patch_store(tiny_pipeline, tmp_path_factory):
    root, _ = tiny_pipeline
    out = tmp_path_factory.mktemp("patches") / "store"
    write_patch_store(root / "data", out, patch=16, shard_size=8, log=lambda m: None)
    return out


def other_store(tmp_path):
    """A detector-like store of two images of another dataset (another data digest)."""
    from itr.features.store import FeatureStoreWriter

    writer = FeatureStoreWriter(tmp_path / "other", 2, 16, {"detector": "x"}, data="another dataset")
    writer.write(0, ["a", "b"], {"regions": np.zeros((2, 2, 16)), "geometry": np.zeros((2, 2, 6)),
                                 "mask": np.ones((2, 2), bool), "global": np.ones((2, 16))})
    writer.finalize(1, {"n_images": 2})
    return tmp_path / "other"


def _cfg(text, **changes):
    return dataclasses.replace(SoftLabelConfig(epochs=1, batch_size=4, lr=1e-3), text_teacher=text.path,
                               image_tower="pixels", pixel_tower=PIXELS, **changes)


def test_patchify_cuts_row_major_patches_with_their_boxes_and_a_thumbnail():
    image = torch.arange(3 * 4 * 6, dtype=torch.float32).reshape(3, 4, 6)  # 4 rows, 6 columns
    out = patchify(image, patch=2)
    assert out["regions"].shape == (6, 12) and out["geometry"].shape == (6, 6) and out["global"].shape == (12,)
    # patch 4 = second row of patches, second column: rows 2-3, columns 2-3 of every channel, channel first
    assert out["regions"][4].tolist() == image[:, 2:4, 2:4].flatten().tolist()
    assert out["geometry"][4].tolist() == pytest.approx([1 / 3, 1 / 2, 2 / 3, 1.0, 1 / 3, 1 / 2])
    assert out["global"][:4].tolist() == pytest.approx(  # channel 0 pooled to 2 x 2: the mean of each 2 x 3 block
        [image[0, :2, :3].mean(), image[0, :2, 3:].mean(), image[0, 2:, :3].mean(), image[0, 2:, 3:].mean()])
    with pytest.raises(ImageError, match="pixel_tower.patch"):
        patchify(image, patch=4)


def test_the_patch_store_holds_the_images_pixels(tiny_pipeline, patch_store):
    root, _ = tiny_pipeline
    from itr.data.dataset import read_dataset
    from itr.data.images import load_image

    images, _ = read_dataset(root / "data")
    store = FeatureStore(patch_store)
    assert len(store) == len(images) and store.dim == 3 * 16 * 16
    first = images.iloc[5]
    got = store.get([first["image_id"]])
    want = patchify(load_image(root / "data" / first["file"]), 16)
    assert torch.allclose(got["regions"][0].float(), want["regions"], atol=3e-4)  # float16 of pixels / 255
    assert bool(got["mask"].all())
    assert store.manifest["source"] == {"kind": "pixel_patches", "patch": 16}


def test_a_pixel_student_trains_from_pixels_and_is_taught_by_the_detector_store(tiny_pipeline, patch_store, tmp_path):
    root, text = tiny_pipeline
    teacher = tmp_path / "text.npz"
    write_text_teacher(root / "data", text.path, teacher)
    cfg = _cfg(text)
    with pytest.raises(ValueError, match="image_tower is 'pixels' but .* holds detector regions"):
        build_model("softlabel", cfg, text, FeatureStore(root / "feat"))
    with pytest.raises(ValueError, match="image_tower is 'regions' but .* holds raw-pixel patches"):
        build_model("softlabel", dataclasses.replace(cfg, image_tower="regions"), text, FeatureStore(patch_store))
    with pytest.raises(TeacherError, match="patch store has no image teacher"):
        ImageTeacher(FeatureStore(patch_store))
    with pytest.raises(ValueError, match="other images"):  # a teacher store of another dataset
        train_from_files("softlabel", cfg, text, root / "data", patch_store, tmp_path / "x", tmp_path / "x.pt",
                         tmp_path / "x.csv", log=lambda m: None, teacher=teacher, image_teacher=other_store(tmp_path))
    result = train_from_files("softlabel", cfg, text, root / "data", patch_store, tmp_path / "state", tmp_path / "b.pt",
                              tmp_path / "b.csv", log=lambda m: None, teacher=teacher, image_teacher=root / "feat")
    assert np.isfinite(result["best_val_rsum"])
    ckpt = load_checkpoint(tmp_path / "b.pt")
    tower = ckpt["architecture"]["image_tower"]
    assert tower["region_dim"] == 768 and tower["bert_config"]["num_hidden_layers"] == 1
    # the image tower starts from scratch: no weight of it is the text tower's
    init, _ = build_model("softlabel", cfg, text, FeatureStore(patch_store))
    assert init.image_tower is not None and init.image_tower.bert is not init.towers.bert
    trained = ckpt["model"]
    assert not torch.equal(trained["image_tower.region_proj.0.weight"], init.state_dict()["image_tower.region_proj.0.weight"])
    # it embeds images from the patch store, and refuses the detector store it was not trained on
    model, _, _ = load_trained(tmp_path / "b.pt", FeatureStore(patch_store), "cpu")
    ids = FeatureStore(patch_store).ids[:3]
    vecs = embed_images(model, FeatureStore(patch_store), ids, 2, "cpu")
    assert vecs.shape == (3, 16) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    with pytest.raises(Exception, match="features"):
        load_trained(tmp_path / "b.pt", FeatureStore(root / "feat"), "cpu")


def test_a_pixel_students_image_teacher_is_the_detector_stores_whole_image_feature(tiny_pipeline, patch_store,
                                                                                    monkeypatch, tmp_path):
    """The objective hands CSA/USA the detector store's global features of the batch's images, never the thumbnail."""
    import itr.objectives as objectives

    root, text = tiny_pipeline
    teacher = tmp_path / "text.npz"
    write_text_teacher(root / "data", text.path, teacher)
    seen = []
    real = objectives.uni_softlabel_alignment

    def spy(image_sim, text_sim, image_teacher, *rest):
        seen.append(image_teacher.detach().clone())
        return real(image_sim, text_sim, image_teacher, *rest)

    monkeypatch.setattr(objectives, "uni_softlabel_alignment", spy)
    calls = []
    original = ImageTeacher.__call__

    def record(self, image_ids):
        calls.append(list(image_ids))
        return original(self, image_ids)

    monkeypatch.setattr(ImageTeacher, "__call__", record)
    train_from_files("softlabel", _cfg(text, alpha=0.0), text, root / "data", patch_store, tmp_path / "s", tmp_path / "m.pt",
                     tmp_path / "m.csv", log=lambda m: None, teacher=teacher, image_teacher=root / "feat")
    assert seen and calls
    detector = FeatureStore(root / "feat")
    want = torch.nn.functional.normalize(detector.get(calls[0])["global"].float(), dim=-1)
    assert torch.allclose(seen[0], want @ want.T, atol=1e-5)


def test_the_image_teacher_on_the_fly_is_the_stores_whole_image_feature(tiny_pipeline):
    """Computed every step from the images, the teacher equals the one the extraction stored (float16 apart)."""
    root, _ = tiny_pipeline
    store = FeatureStore(root / "feat")
    ids = store.ids[:5]
    live = ImageTeacher(encode=whole_image_encoder(root / "det.pt", root / "data"))(ids)
    disk = ImageTeacher(store)(ids)
    error = (live - disk).abs().max()
    assert live.shape == disk.shape and error < 2e-3
    assert (disk[:, None] - disk[None]).abs().amax(-1).max() > 2 * error  # another image's features would not pass


def test_the_cost_benchmark_times_every_module_and_teacher_mode(tiny_pipeline, tmp_path):
    """benchmarks/softlabel_cost.py on the tiny pipeline: every row of Tables 12-13, each round kept, the epoch
    projected from the step time; then the tables show them beside the paper's."""
    import importlib.util
    import json
    from pathlib import Path

    from itr.papers.cusa.tables import build_table12, build_table13

    root, text = tiny_pipeline
    teacher = tmp_path / "text.npz"
    write_text_teacher(root / "data", text.path, teacher)
    spec = importlib.util.spec_from_file_location("softlabel_cost", Path(__file__).parents[1] / "benchmarks" / "softlabel_cost.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cfg = {**dataclasses.asdict(SoftLabelConfig(batch_size=4)), "text_teacher": text.path,
           "cost": {"rounds": 2, "steps": 1, "iterations": 2}}
    out = tmp_path / "cost.json"
    assert bench.main(["--data", str(root / "data"), "--features", str(root / "feat"), "--detector", str(root / "det.pt"),
                       "--teacher", str(teacher), "--config", json.dumps(cfg), "--text-encoder",
                       json.dumps(text.to_dict()), "--out", str(out), "--threads", "1"]) == 0
    cost = json.loads(out.read_text())
    assert set(cost["modules"]) >= {"image teacher on the fly", "text teacher from disk", "CSA loss", "USA loss"}
    assert len(cost["epochs"]) == 1 + 4 * 3 and all(len(m["per_round_ms"]) == 2 for m in cost["modules"].values())
    for mode in cost["epochs"].values():
        assert mode["epoch_minutes"] == pytest.approx(mode["step_seconds"] * cost["steps_per_epoch"] / 60, abs=1e-3)
    assert cost["steps_per_epoch"] == -(-cost["train_captions"] // 4) and cost["modules"]["text teacher from disk"]["disk_mb"] > 0
    history = tmp_path / "results/train/cusa/softlabel.csv"
    history.parent.mkdir(parents=True)
    history.write_text("epoch,epoch_seconds\n0,90\n1,150\n")
    build_table12([out], tmp_path / "t12")
    table13 = build_table13([out, history], tmp_path / "t13",
                            labels={"history_modes": {"results/train/cusa/softlabel.csv": "cusa image=disk text=disk"}})
    md12 = (tmp_path / "t12.md").read_text()
    assert "Img-Fea extraction" in md12 and f"{cost['modules']['CSA loss']['ms']:.2f} ±" in md12
    row = table13.set_index("Method").loc["cusa image=disk text=disk"]
    assert row["ours epoch (trained)"] == "2.00 min" and row["paper overhead"] == "+4.5%"  # 12.68 / 12.13
    base = cost["epochs"]["contrastive"]["epoch_minutes"]
    want = 100 * (cost["epochs"]["usa image=on_the_fly text=disk"]["epoch_minutes"] / base - 1)
    assert table13.set_index("Method").loc["usa image=on_the_fly text=disk", "ours overhead"] == f"{want:+.1f}%"
