"""torchrun with two CPU processes (gloo) trains the model one process trains with the same global batch."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from itr.config import JointConfig, TextEncoderConfig
from itr.models.tiny import make_tiny_bert
from itr.training import train_from_files

ITR = Path(sys.executable).parent / "itr"
# Stated tolerance: the processes compute the same sums in another order (slices of the batch, gradients summed
# over ranks), so losses and weights agree to float rounding amplified by a few Adam steps, not bit for bit.
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def no_dropout_text(tiny_pipeline):
    """The tiny pipeline's text tower without dropout: random masks differ between one and two processes."""
    root, text = tiny_pipeline
    path = make_tiny_bert(root / "bert_no_dropout", hidden=16, layers=1, dropout=0.0)
    return TextEncoderConfig(path=str(path), max_text_len=text.max_text_len)


@pytest.mark.integration  # two torchrun processes (~16 s): past the unit loop's budget
def test_two_gloo_processes_follow_the_one_process_trajectory(tiny_pipeline, no_dropout_text, tmp_path):
    """JOINT runs both kinds of objective: the triplet loss on gathered embeddings (batches of 7 captions: slices
    of 4 and 3, and a short last batch) and the match loss on each rank's slice of the 14 pairs."""
    method, cfg = "joint", JointConfig(epochs=3, batch_size=7, lr=1e-3, val_images=4)
    root, _ = tiny_pipeline
    one = train_from_files(method, cfg, no_dropout_text, root / "data", root / "feat", tmp_path / "s1",
                           tmp_path / "one.pt", tmp_path / "one.csv", log=lambda m: None)
    cmd = [str(ITR), "train", method, "--processes", "2",  # the train rule's form: it restarts under torchrun
           "--data", str(root / "data"), "--features", str(root / "feat"), "--config", json.dumps(cfg.to_dict()),
           "--text-encoder", json.dumps(no_dropout_text.to_dict()), "--out", str(tmp_path / "two.pt"),
           "--history", str(tmp_path / "two.csv"), "--state-dir", str(tmp_path / "s2"), "--threads", "1",
           "--device", "cpu"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    h1, h2 = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "two.csv")
    losses = [c for c in h1.columns if c.startswith("train_loss")]
    assert losses and len(h1) == cfg.epochs
    np.testing.assert_allclose(h2[losses].to_numpy(), h1[losses].to_numpy(), rtol=RTOL, atol=ATOL)
    assert h2["val/rsum"].tolist() == pytest.approx(h1["val/rsum"].tolist(), abs=1e-6)
    w1, w2 = (torch.load(tmp_path / f, weights_only=True)["model"] for f in ("one.pt", "two.pt"))
    for name in w1:
        torch.testing.assert_close(w2[name], w1[name], rtol=RTOL, atol=ATOL, msg=name)
    assert one["best_epoch"] == torch.load(tmp_path / "two.pt", weights_only=True)["epoch"]


def test_slices_and_weights_of_a_batch(monkeypatch):
    from itr.distributed import shard, share

    batch = np.arange(7)
    assert shard(batch) is batch and share(3, 7) == 1.0  # one process: the batch itself, unweighted
    monkeypatch.setenv("WORLD_SIZE", "2")
    slices = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        slices.append(shard(batch))
    assert [s.tolist() for s in slices] == [[0, 1, 2, 3], [4, 5, 6]]
    assert share(4, 7) + share(3, 7) == pytest.approx(2.0)  # averaged over 2 ranks: weight 1 on the batch mean


def test_cmc_refuses_to_run_in_more_than_one_process(monkeypatch):
    from itr.config import DualConfig
    from itr.errors import InputError
    from itr.objectives import CMCObjective

    monkeypatch.setenv("WORLD_SIZE", "2")
    objective = CMCObjective.__new__(CMCObjective)
    objective.cfg, objective.device = DualConfig(), torch.device("cpu")
    with pytest.raises(InputError, match="cmc training runs in one process"):
        objective.loss(np.arange(4), 0)
