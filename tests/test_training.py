import numpy as np
import pandas as pd
import pytest
import torch

from itr.config import BEConfig
from itr.features.store import FeatureStore, FeatureStoreWriter
from itr.models.encoder import load_encoder
from itr.models.tiny import make_tiny_bert
from itr.retrieval import CaptionSet
from itr.training import train_bi_encoder

R, D = 3, 8


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("be")
    bert = make_tiny_bert(root / "bert", hidden=16, layers=1)
    ids = [f"img{i}" for i in range(12)]
    rng = np.random.default_rng(0)
    w = FeatureStoreWriter(root / "feat", R, D, {"detector": "x"})
    w.write(0, ids, {"regions": rng.standard_normal((12, R, D)), "geometry": rng.random((12, R, 6)),
                     "mask": np.ones((12, R), bool), "global": rng.standard_normal((12, D))})
    w.finalize(1, {})
    colours = ["red", "green", "blue", "yellow"]
    kinds = ["circle", "square", "star"]
    rows = [{"image_id": iid, "caption_id": f"{iid}-{j}", "text": f"a {colours[i % 4]} {kinds[i % 3]} {word}"}
            for i, iid in enumerate(ids) for j, word in enumerate(["left", "right"])]
    return bert, FeatureStore(root / "feat"), pd.DataFrame(rows)


def _run(setup, state_dir, fail_at_step=None, epochs=2):
    bert, store, frame = setup
    torch.manual_seed(0)
    model, tok = load_encoder(str(bert), D)
    train = CaptionSet.from_frame(frame.iloc[:16], tok, 16)
    val = CaptionSet.from_frame(frame.iloc[16:], tok, 16)
    cfg = BEConfig(epochs=epochs, batch_size=4, lr=1e-3)
    logs = []

    def track(metrics, step):
        if fail_at_step is not None and step == fail_at_step:
            raise KeyboardInterrupt("killed")

    result = train_bi_encoder(cfg, model, train, val, store, state_dir, torch.device("cpu"), {"method": "be"},
                              log=logs.append, track=track)
    return result, logs


def test_killed_training_resumes_at_the_next_epoch_and_matches_an_uninterrupted_run(setup, tmp_path):
    reference, _ = _run(setup, tmp_path / "ref")
    with pytest.raises(KeyboardInterrupt):
        _run(setup, tmp_path / "killed", fail_at_step=4)  # 4 steps per epoch: dies at epoch 1's first step
    resumed, logs = _run(setup, tmp_path / "killed")
    assert any("resuming" in line and "epochs 0..0 done" in line for line in logs)
    assert len(resumed["history"]) == 2
    ref_val = [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in reference["history"]]
    got_val = [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in resumed["history"]]
    assert got_val == ref_val  # bit-identical: RNG, optimizer and schedule state were restored
    assert resumed["best_epoch"] == reference["best_epoch"]


def test_state_from_another_config_is_not_resumed(setup, tmp_path):
    _run(setup, tmp_path / "s", epochs=1)
    _, logs = _run(setup, tmp_path / "s", epochs=2)
    assert any("different config" in line for line in logs)


def test_training_lowers_the_loss(setup, tmp_path):
    result, _ = _run(setup, tmp_path / "l", epochs=3)
    losses = [row["train_loss"] for row in result["history"]]
    assert losses[-1] < losses[0]
