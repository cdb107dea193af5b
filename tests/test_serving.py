import pytest
import torch
import torch.nn.functional as F

from itr.models.encoder import load_encoder
from itr.models.serving import text_tower
from itr.models.tiny import make_tiny_bert


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    bert = make_tiny_bert(tmp_path_factory.mktemp("bert"), hidden=64, layers=2)
    torch.manual_seed(0)
    model, tok = load_encoder(str(bert), 8)
    return model.eval(), tok


def test_int8_tower_follows_fp32_at_every_query_length(encoder):
    model, tok = encoder
    texts = ["a red circle", "two small blue squares left of a large green triangle",
             "a yellow star above a purple circle and a small red square on the right"]
    example = tok(texts[0], return_tensors="pt")
    tower = text_tower(model, "int8", example["input_ids"], example["attention_mask"])
    assert isinstance(tower, torch.jit.ScriptModule)
    lengths = set()
    for text in texts:  # traced on a 5-token query; the others are longer
        t = tok(text, return_tensors="pt")
        lengths.add(t["input_ids"].shape[1])
        with torch.inference_mode():
            ref = F.normalize(model.embed_text(t["input_ids"], t["attention_mask"]), dim=-1)
            got = tower(t["input_ids"], t["attention_mask"])
        assert got.shape == ref.shape and torch.allclose(got.norm(dim=-1), torch.ones(1), atol=1e-5)
        assert float((got * ref).sum()) > 0.97, text  # int8 moves the embedding a little, not a lot
        assert not torch.allclose(got, ref, atol=1e-6)  # and it is really quantized
    assert len(lengths) == 3


def test_fp32_tower_is_the_model_and_bad_precisions_are_refused(encoder):
    model, tok = encoder
    t = tok("a red circle", return_tensors="pt")
    tower = text_tower(model, "fp32", t["input_ids"], t["attention_mask"])
    with torch.inference_mode():
        assert torch.equal(tower(t["input_ids"], t["attention_mask"]),
                           F.normalize(model.embed_text(t["input_ids"], t["attention_mask"]), dim=-1))
    with pytest.raises(ValueError, match="fp32"):
        text_tower(model, "int4", t["input_ids"], t["attention_mask"])


def test_a_checkpoint_rebuilds_the_architecture_it_names(encoder, tmp_path):
    """itr.models: load_trained builds what the checkpoint names, with the same outputs; a checkpoint that
    names no architecture, or an unknown one, is refused with a message."""
    from types import SimpleNamespace

    from itr.checkpoint import CheckpointError, save_checkpoint
    from itr.models import load_trained

    model, tok = encoder
    store = SimpleNamespace(manifest={"source": {"features": "f"}}, root=tmp_path)
    text_path = str(make_tiny_bert(tmp_path / "bert", hidden=64, layers=2))
    state = {"model": model.state_dict(), "features": {"features": "f"}, "architecture": model.architecture(),
             "text_encoder": {"path": text_path}}
    save_checkpoint(tmp_path / "m.pt", state)
    loaded, _, ckpt = load_trained(tmp_path / "m.pt", store, "cpu")
    assert ckpt["architecture"]["name"] == "multimodal_encoder" and type(loaded) is type(model)
    ids = tok(["a red circle"], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(loaded.embed_text(ids["input_ids"], ids["attention_mask"]),
                           model.embed_text(ids["input_ids"], ids["attention_mask"]))
    unnamed = {**state, "architecture": {k: v for k, v in state["architecture"].items() if k != "name"}}
    save_checkpoint(tmp_path / "old.pt", unnamed)
    with pytest.raises(CheckpointError, match="records no architecture name"):
        load_trained(tmp_path / "old.pt", store, "cpu")
    save_checkpoint(tmp_path / "other.pt", {**state, "architecture": {**state["architecture"], "name": "graph_transformer"}})
    with pytest.raises(KeyError, match="unknown model architecture .graph_transformer."):
        load_trained(tmp_path / "other.pt", store, "cpu")
