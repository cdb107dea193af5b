import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

from itr.config import BEConfig, DetectorConfig, FeaturesConfig, ShapesConfig, TextEncoderConfig
from itr.data import shapes
from itr.features.detector import train_on_dataset
from itr.features.extract import extract_dataset
from itr.models.tiny import make_tiny_bert
from itr.training import train_from_files

SHAPES = dict(image_size=64, n_train=12, n_val=4, n_test=2, seed=0)
DETECTOR = DetectorConfig(epochs=1, batch_size=4, channels=(8, 8, 8), representation_size=16, anchor_sizes=(8, 16))
FEATURES = dict(max_regions=3, score_thresh=0.0, shard_size=8, batch_size=4)
BE = BEConfig(epochs=1, batch_size=4, lr=1e-3)


def train_small_detector(root, data, state, log=print):
    train_on_dataset(DETECTOR, data, root / "det.pt", root / "det.json", state, log=log)
    return torch.load(root / "det.pt", weights_only=True)["model"]


def train_be(root, data, features, state, text, log=print):
    train_from_files("be", BE, text, data, features, state, root / "be.pt", root / "be.csv", log=log)
    return torch.load(root / "be.pt", weights_only=True)


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory):
    """A tiny ShapeCaptions dataset, its detector and features, and a BE trained on them (about 10 s):
    (root, TextEncoderConfig); root holds data/, det.pt, feat/, be.pt, det_state/ and be_state/."""
    root = tmp_path_factory.mktemp("stale")
    shapes.build(ShapesConfig(**SHAPES), root / "data")
    train_small_detector(root, root / "data", root / "det_state")
    extract_dataset(root / "data", root / "det.pt", FeaturesConfig(**FEATURES), root / "feat")
    text = TextEncoderConfig(path=str(make_tiny_bert(root / "bert", hidden=16, layers=1)), max_text_len=16)
    train_be(root, root / "data", root / "feat", root / "be_state", text)
    return root, text


