import numpy as np
import pandas as pd
import pytest
import torch

from itr.config import BEConfig, CEConfig, JointConfig
from itr.features.store import FeatureStore, FeatureStoreWriter
from itr.models.encoder import load_encoder
from itr.models.tiny import make_tiny_bert
from itr.models.encode import CaptionSet
from itr.training import train_model

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

    result = train_model("be", cfg, model, train, val, store, state_dir, torch.device("cpu"), {"method": "be"},
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
    assert any("discarding" in line and "changed: config" in line for line in logs)


def test_training_lowers_the_loss(setup, tmp_path):
    result, _ = _run(setup, tmp_path / "l", epochs=3)
    losses = [row["train_loss"] for row in result["history"]]
    assert losses[-1] < losses[0]


def test_the_progress_bar_shows_the_epoch_running_loss(setup, tmp_path, capsys):
    result, _ = _run(setup, tmp_path / "bar", epochs=1)
    bar = capsys.readouterr().err  # tqdm's, on stderr (the rule's log)
    # its last refresh (at the epoch's end) shows the mean over the epoch's steps: the history's train_loss
    assert f"loss={result['history'][0]['train_loss']:.4f}" in bar.split("be epoch 0")[-1]


def test_embedding_shows_a_bar_past_four_batches_only(setup, capsys):
    from itr.models.encode import embed_images

    bert, store, _ = setup
    model, _ = load_encoder(str(bert), D)
    ids = [f"img{i}" for i in range(12)]
    embed_images(model, store, ids, 3, torch.device("cpu"))  # 4 batches: too short to need one
    assert "embedding images" not in capsys.readouterr().err
    vectors = embed_images(model, store, ids, 2, torch.device("cpu"))  # 6 batches
    assert "embedding images: 100%" in capsys.readouterr().err and vectors.shape[0] == 12


def _model_and_sets(setup, match_head):
    bert, store, frame = setup
    torch.manual_seed(0)
    model, tok = load_encoder(str(bert), D, match_head=match_head)
    return model, CaptionSet.from_frame(frame.iloc[:16], tok, 16), CaptionSet.from_frame(frame.iloc[16:], tok, 16), store


def test_joint_alternates_one_be_and_one_ce_update_per_step_on_shared_weights(setup, tmp_path, monkeypatch):
    from itr import objectives, training

    model, train, val, store = _model_and_sets(setup, match_head=True)
    calls = []  # (objective, step, rows, checksum of the shared weights when the loss is computed)
    shared = model.bert.encoder.layer[0].attention.self.query.weight
    for cls in (objectives.TripletObjective, objectives.MatchObjective):
        original = cls.loss

        def spy(self, rows, step, original=original):
            calls.append((self.name, step, tuple(rows), float(shared.detach().sum())))
            return original(self, rows, step)
        monkeypatch.setattr(cls, "loss", spy)
    lrs = {}
    cfg = JointConfig(epochs=1, batch_size=4, lr=1e-2, val_images=3, all_negatives_warmup_steps=0)
    result = training.train_model("joint", cfg, model, train, val, store, tmp_path / "j", torch.device("cpu"), {},
                                  log=lambda m: None, track=lambda m, step: lrs.setdefault(step, m.get("train/lr")))
    assert [c[0] for c in calls] == ["be", "ce"] * 4  # 16 captions / batch 4 = 4 steps, strict alternation
    assert [c[1] for c in calls] == [0, 0, 1, 1, 2, 2, 3, 3]
    for be_call, ce_call in zip(calls[::2], calls[1::2]):
        assert be_call[3] != ce_call[3]  # the BE update changed the weights the CE loss then uses
    assert calls[0][2] != calls[1][2]  # each objective has its own data order
    # the schedule steps once per step (both updates), so after step 0 the lr is lr * (1 - 1/4)
    assert lrs[0] == pytest.approx(1e-2 * 0.75)
    row = result["history"][0]
    assert {"val/be/rsum", "val/ce/rsum", "train_loss/be", "train_loss/ce"} <= set(row)
    assert row["val/rsum"] == pytest.approx((row["val/be/rsum"] + row["val/ce/rsum"]) / 2)


def test_ce_training_learns_to_tell_matches_from_negatives(setup, tmp_path):
    from itr.training import train_model

    # Telling a match from a negative needs text-image interaction: two layers (one cannot mix the modalities
    # before [CLS] reads them) and features that carry the caption's attributes (one-hot colour and kind).
    bert, _, frame = setup
    bert2 = make_tiny_bert(tmp_path / "bert2", hidden=32, layers=2)
    n = 12
    attributes = np.zeros((n, D))
    attributes[np.arange(n), np.arange(n) % 4] = 3.0  # colour i % 4, as in the captions
    attributes[np.arange(n), 4 + np.arange(n) % 3] = 3.0  # kind i % 3
    rng = np.random.default_rng(0)
    w = FeatureStoreWriter(tmp_path / "feat", R, D, {"detector": "x"})
    w.write(0, [f"img{i}" for i in range(n)], {
        "regions": attributes[:, None] + 0.1 * rng.standard_normal((n, R, D)), "geometry": rng.random((n, R, 6)),
        "mask": np.ones((n, R), bool), "global": attributes + 0.1 * rng.standard_normal((n, D))})
    w.finalize(1, {})
    torch.manual_seed(0)
    model, tok = load_encoder(str(bert2), D, match_head=True)
    train, val = CaptionSet.from_frame(frame.iloc[:16], tok, 16), CaptionSet.from_frame(frame.iloc[16:], tok, 16)
    cfg = CEConfig(epochs=30, batch_size=4, lr=1e-2, val_images=4)
    result = train_model("ce", cfg, model, train, val, FeatureStore(tmp_path / "feat"), tmp_path / "c",
                         torch.device("cpu"), {}, log=lambda m: None)
    losses = [row["train_loss"] for row in result["history"]]
    assert losses[0] > 0.68 and min(losses[-3:]) < 0.6  # from chance level log(2) to clearly below it
    assert "val/rsum" in result["history"][0] and "val/be/rsum" not in result["history"][0]


def test_a_bi_encoder_checkpoint_cannot_cross_encode(setup):
    model, *_ = _model_and_sets(setup, match_head=False)
    with pytest.raises(ValueError, match="no match head"):
        model.match_logits(torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2), torch.zeros(1, R, D),
                           torch.zeros(1, R, 6), torch.ones(1, R, dtype=torch.bool), torch.zeros(1, D))


def test_steps_per_epoch_caps_an_epoch_and_refuses_more_than_one_pass(setup, tmp_path):
    model, train, val, store = _model_and_sets(setup, match_head=False)
    result = train_model("be", BEConfig(epochs=2, batch_size=4, steps_per_epoch=2), model, train, val, store,
                         tmp_path / "s", torch.device("cpu"), {}, log=lambda m: None)
    assert [row["step"] for row in result["history"]] == [2, 4]  # 16 captions would be 4 steps per epoch
    with pytest.raises(ValueError, match="exceeds one pass over the 16 training captions"):
        train_model("be", BEConfig(epochs=1, batch_size=4, steps_per_epoch=5), model, train, val, store,
                    tmp_path / "t", torch.device("cpu"), {}, log=lambda m: None)


class _Stop(Exception):
    """Raised by a stand-in to end training once the captions it will train on are known."""


def test_train_languages_keep_only_those_captions_for_training_and_validation(tiny_pipeline, tmp_path, monkeypatch):
    """A multilingual dataset (English and German captions of the same images) trains on every language by default and
    on English alone with train_languages ["en"] (Retrieve Fast, Rerank Smart's Table 7 on Multi30k); a language the
    dataset lacks is an error naming it."""
    import dataclasses
    import shutil

    import pandas as pd

    import itr.training
    from conftest import BE
    from itr.data.dataset import read_dataset, write_dataset

    root, text = tiny_pipeline
    shutil.copytree(root / "data", tmp_path / "data")
    images, captions = read_dataset(root / "data")
    german = captions.assign(caption_id=captions["caption_id"] + "-de", lang="de", text="ein roter kreis")
    write_dataset(tmp_path / "data", images.to_dict("records"), pd.concat([captions, german]).to_dict("records"),
                  {"name": "bilingual"})
    seen = []

    def record(frame, *args, **kwargs):
        seen.append(sorted(set(frame["lang"])))
        if len(seen) % 2 == 0:  # training, then validation captions
            raise _Stop

    monkeypatch.setattr(itr.training.CaptionSet, "from_frame", staticmethod(record))
    for languages in ((), ("en",)):
        with pytest.raises(_Stop):
            itr.training.train_from_files("be", dataclasses.replace(BE, train_languages=languages), text,
                                          tmp_path / "data", root / "feat", tmp_path / "state", tmp_path / "be.pt",
                                          tmp_path / "be.csv", log=lambda m: None)
    assert seen == [["de", "en"], ["de", "en"], ["en"], ["en"]]
    with pytest.raises(ValueError, match=r"data train has no captions in \['fr'\]"):
        itr.training.train_from_files("be", dataclasses.replace(BE, train_languages=("fr",)), text, tmp_path / "data",
                                      root / "feat", tmp_path / "state", tmp_path / "be.pt", tmp_path / "be.csv")
