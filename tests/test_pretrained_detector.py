"""torchvision's COCO Faster R-CNN files (random weights in their exact state-dict format) load and extract."""
import numpy as np
import pytest
import torch
from PIL import Image

from itr.data.dataset import write_dataset
from itr.features.pretrained import WeightsError, box_feature_dim, extract_pretrained, load_pretrained
from itr.features.store import FeatureStore
from realformat import published


@pytest.fixture(scope="module")
def v2_weights(tmp_path_factory):
    return published(tmp_path_factory.mktemp("weights"), "fasterrcnn_resnet50_fpn_v2")


def test_v2_published_format_loads_and_extracts_adaptive_regions(tmp_path, v2_weights):
    weights = v2_weights
    model = load_pretrained("fasterrcnn_resnet50_fpn_v2", weights, min_size=64, max_size=96, proposals=50)
    assert model.rpn._post_nms_top_n["testing"] == 50  # fewer proposals than the real 300: the same code, faster
    assert box_feature_dim(model) == 1024
    rows, caps = [], []
    rng = np.random.default_rng(0)
    for k, (w, h) in enumerate([(80, 60), (50, 90)]):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"{k}.png")
        rows.append({"image_id": str(k), "split": "test", "file": f"../{k}.png", "width": w, "height": h,
                     "scene": "{}", "twin_of": None, "twin_type": None})
        caps.append({"image_id": str(k), "caption_id": str(k), "split": "test", "lang": "en", "text": "x"})
    write_dataset(tmp_path / "data", rows, caps, {"dataset": "tiny"})
    cfg = type("C", (), {"max_regions": 12, "min_regions": 5, "score_thresh": 0.99, "shard_size": 1,
                         "batch_size": 2})()
    summary = extract_pretrained(tmp_path / "data", model, cfg, tmp_path / "features", {"detector": weights.name})
    store = FeatureStore(tmp_path / "features")
    batch = store.get(["0", "1"])
    assert summary["n_shards"] == 2 and store.dim == 1024 and store.max_regions == 12
    # random weights score nothing at 0.99: min_regions tops every image up with its best boxes
    assert batch["mask"].sum(1).tolist() == [5, 5]
    geo = batch["geometry"][batch["mask"]]
    assert (geo >= -1e-3).all() and (geo <= 1 + 1e-3).all()  # relative to the image, in the resized frame too
    assert torch.allclose(geo[:, 4], geo[:, 2] - geo[:, 0], atol=2e-3)


def test_v1_published_format_from_frozen_batch_norm_loads(tmp_path):
    model = load_pretrained("fasterrcnn_resnet50_fpn", published(tmp_path, "fasterrcnn_resnet50_fpn", frozen_bn=True))
    assert box_feature_dim(model) == 1024 and not model.training


def test_a_file_whose_hash_is_not_its_name_or_another_architecture_is_refused(tmp_path, v2_weights):
    with pytest.raises(WeightsError, match="not a fasterrcnn_resnet50_fpn state dict"):
        load_pretrained("fasterrcnn_resnet50_fpn", v2_weights)
    bad = tmp_path / "fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth"
    bad.symlink_to(v2_weights)
    with pytest.raises(WeightsError, match="does not start with dd69338a"):
        load_pretrained("fasterrcnn_resnet50_fpn_v2", bad)


def test_cli_names_a_bad_section_or_a_missing_weights_file(tmp_path, capsys):
    import json

    import yaml

    from itr.cli import main
    from itr.config import PretrainedFeaturesConfig

    section = PretrainedFeaturesConfig().to_dict()
    args = ["features", "pretrained", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "f"), "--config"]
    assert main(args + [json.dumps({**section, "min_regions": 200})]) == 2
    assert "'pretrained_features.min_regions' (200) exceeds 'max_regions' (100)" in capsys.readouterr().err
    assert main(args + [json.dumps({**section, "weights": str(tmp_path / "nowhere.pth")})]) == 2
    assert "nowhere.pth: no such weights file" in capsys.readouterr().err
    shipped = yaml.safe_load(open("params.yaml"))["pretrained_features"]
    assert PretrainedFeaturesConfig.from_dict(shipped) == PretrainedFeaturesConfig()
