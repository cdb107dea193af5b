"""Never a stale result (issue 13, finding 1): resumable state is keyed by every input the job reads.

Each edit a user makes upstream (the data's noise, the text length, the feature threshold) must make a
resumed job start from scratch, and its result must equal a run that never had a saved state.
"""
import json
import shutil

import pytest
import torch

from conftest import FEATURES, SHAPES, disentangled_config, train_be as _be, train_small_detector as _detector

from itr.config import FeaturesConfig, ShapesConfig, TextEncoderConfig
from itr.data import shapes
from itr.data.dataset import DatasetError, read_dataset
from itr.features.extract import extract_dataset
from itr.features.store import FeatureStore, FeatureStoreError

def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_new_data_retrains_the_detector_from_scratch(tiny_pipeline, tmp_path):
    root, _ = tiny_pipeline
    shapes.build(ShapesConfig(**SHAPES, noise=0.3), tmp_path / "data")  # shapes.noise edited
    shutil.copytree(root / "det_state", tmp_path / "det_state")
    logs = []
    resumed = _detector(tmp_path, tmp_path / "data", tmp_path / "det_state", log=logs.append)
    assert any("discarding" in line and "changed: data" in line for line in logs), logs
    fresh = _detector(tmp_path / "f", tmp_path / "data", tmp_path / "fresh_state")
    assert _same(resumed, fresh)
    assert not _same(resumed, _detector(tmp_path / "o", root / "data", root / "det_state"))


def test_new_text_length_retrains_the_bi_encoder_from_scratch(tiny_pipeline, tmp_path):
    root, text = tiny_pipeline
    shutil.copytree(root / "be_state", tmp_path / "be_state")
    short = TextEncoderConfig(path=text.path, max_text_len=8)  # text_encoder.max_text_len edited
    logs = []
    resumed = _be(tmp_path, root / "data", root / "feat", tmp_path / "be_state", short, log=logs.append)
    assert any("discarding" in line and "changed: text_encoder" in line for line in logs), logs
    assert resumed["text_encoder"]["max_text_len"] == 8
    fresh = _be(tmp_path / "f", root / "data", root / "feat", tmp_path / "fresh", short)
    assert _same(resumed["model"], fresh["model"])


def test_new_features_retrain_the_bi_encoder_from_scratch(tiny_pipeline, tmp_path):
    root, text = tiny_pipeline
    extract_dataset(root / "data", root / "det.pt", FeaturesConfig(**{**FEATURES, "score_thresh": 0.5}),
                    tmp_path / "feat")  # features.score_thresh edited
    shutil.copytree(root / "be_state", tmp_path / "be_state")
    logs = []
    resumed = _be(tmp_path, root / "data", tmp_path / "feat", tmp_path / "be_state", text, log=logs.append)
    assert any("discarding" in line and "changed: features" in line for line in logs), logs
    assert resumed["features"]["features"]["score_thresh"] == 0.5
    fresh = _be(tmp_path / "f", root / "data", tmp_path / "feat", tmp_path / "fresh", text)
    assert _same(resumed["model"], fresh["model"])


def test_unchanged_inputs_resume_and_publish_the_same_model(tiny_pipeline, tmp_path):
    root, text = tiny_pipeline
    shutil.copytree(root / "be_state", tmp_path / "be_state")
    logs = []
    resumed = _be(tmp_path, root / "data", root / "feat", tmp_path / "be_state", text, log=logs.append)
    assert any(line.startswith("resuming") for line in logs) and not any("discarding" in x for x in logs)
    assert resumed["model"].keys() and _same(resumed["model"], torch.load(root / "be.pt", weights_only=True)["model"])


def test_new_data_retrains_the_bi_encoder_from_scratch(tiny_pipeline, tmp_path):
    root, text = tiny_pipeline
    shapes.build(ShapesConfig(**SHAPES, noise=0.3), tmp_path / "data")  # shapes.noise edited: new images, new features
    extract_dataset(tmp_path / "data", root / "det.pt", FeaturesConfig(**FEATURES), tmp_path / "feat")
    shutil.copytree(root / "be_state", tmp_path / "be_state")
    logs = []
    resumed = _be(tmp_path, tmp_path / "data", tmp_path / "feat", tmp_path / "be_state", text, log=logs.append)
    assert any("discarding" in line and "changed: data" in line for line in logs), logs
    fresh = _be(tmp_path / "f", tmp_path / "data", tmp_path / "feat", tmp_path / "fresh", text)
    assert _same(resumed["model"], fresh["model"])
    assert not _same(resumed["model"], torch.load(root / "be.pt", weights_only=True)["model"])


def test_new_code_retrains_the_bi_encoder_from_scratch(tiny_pipeline, tmp_path, monkeypatch):
    """The training code's digest is part of the state's identity: after a code edit, nothing is resumed."""
    import itr.provenance

    root, text = tiny_pipeline
    shutil.copytree(root / "be_state", tmp_path / "be_state")
    real = itr.provenance.code_digest
    monkeypatch.setattr(itr.provenance, "code_digest", lambda entry: "edited-" + real(entry))  # as after an edit
    logs = []
    _be(tmp_path, root / "data", root / "feat", tmp_path / "be_state", text, log=logs.append)
    assert any("discarding" in line and "changed: code" in line for line in logs), logs
    assert not any(line.startswith("resuming") for line in logs), logs


def test_a_new_initial_checkpoint_restarts_fine_tuning(tiny_pipeline, tmp_path):
    """A fine-tuned model's state is keyed by the checkpoint it starts from (ALADIN's init): another init, a new run."""
    from itr.training import train_from_files

    root, text = tiny_pipeline
    cfg = disentangled_config(loss_weights={"alignment": 1.0, "triplet": 0.0, "distill": 0.0})
    init = tmp_path / "init.pt"  # one path, as upstream retraining overwrites the file the fine-tune reads
    shutil.copy(root / "be.pt", init)

    def fine_tune(state, out, log=print):
        train_from_files("disentangled", cfg, text, root / "data", root / "feat", state, out, out.with_suffix(".csv"),
                         init=init, log=log)
        return torch.load(out, weights_only=True)["model"]

    first = fine_tune(tmp_path / "state", tmp_path / "a.pt")
    ckpt = torch.load(init, weights_only=True)
    name = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][name] = ckpt["model"][name] + 0.5  # another BE at the same path: the init checkpoint retrained
    torch.save(ckpt, init)
    logs = []
    resumed = fine_tune(tmp_path / "state", tmp_path / "b.pt", log=logs.append)
    assert any("discarding" in line and "changed: init" in line for line in logs), logs
    assert _same(resumed, fine_tune(tmp_path / "fresh", tmp_path / "c.pt"))
    assert not _same(resumed, first)


@pytest.mark.parametrize("edit", [{"dim": 8}, {"max_regions": 2}])
def test_an_edited_feature_manifest_is_refused(tiny_pipeline, tmp_path, edit):
    root, _ = tiny_pipeline
    shutil.copytree(root / "feat", tmp_path / "feat")
    path = tmp_path / "feat" / "manifest.json"
    manifest = json.loads(path.read_text())
    assert all(manifest[key] != value for key, value in edit.items())
    path.write_text(json.dumps({**manifest, **edit}))  # finding 8: dim or max_regions edited by hand
    with pytest.raises(FeatureStoreError, match="manifest.json was edited.*rebuild it: snakemake --force .*feat/manifest.json"):
        FeatureStore(tmp_path / "feat")


def test_a_swapped_feature_array_is_refused(tiny_pipeline, tmp_path):
    root, _ = tiny_pipeline
    shutil.copytree(root / "feat", tmp_path / "feat")
    shutil.copy(tmp_path / "feat" / "shard-00001.regions.npy", tmp_path / "feat" / "shard-00000.regions.npy")
    with pytest.raises(FeatureStoreError, match="shard-00000.regions.npy is not the array its marker"):
        FeatureStore(tmp_path / "feat")


def test_garbage_in_a_dataset_table_names_the_file(tiny_pipeline, tmp_path):
    root, _ = tiny_pipeline
    shutil.copytree(root / "data", tmp_path / "data")
    (tmp_path / "data" / "captions.parquet").write_bytes(b"PAR1 garbage")  # finding 6
    with pytest.raises(DatasetError, match=r"captions.parquet is not the file its manifest recorded.*snakemake --force .*data/manifest.json"):
        read_dataset(tmp_path / "data")
