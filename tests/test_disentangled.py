"""The disentangled two-head model of Messina et al. 2022 (itr.models.disentangled), its ListNet distillation
(itr.losses.listnet_distillation) on hand-made cases, and its training (itr.objectives.DisentangledObjective) on the
tiny pipeline."""
import math

import numpy as np
import pytest
import torch

from conftest import disentangled_config as _cfg
from itr.checkpoint import CheckpointError
from itr.config import BEConfig, ConfigError, TextEncoderConfig
from itr.data.dataset import read_dataset
from itr.features.store import FeatureStore, FeatureStoreError, FeatureStoreWriter
from itr.losses import listnet_distillation, max_violation_hinge
from itr.manifest import file_digest
from itr.models import build, load_trained
from itr.models.encode import CaptionSet, embed_images
from itr.objectives import DisentangledObjective
from itr.training import build_model, train_from_files
from itr.models.disentangled import DisentangledEncoder, tag_vocabulary
from itr.models.encoder import load_encoder
from itr.models.tiny import make_tiny_bert

REGION_DIM = 8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = make_tiny_bert(tmp_path_factory.mktemp("bert"), hidden=16, layers=1)
    return path


def _model(path, **kw):
    torch.manual_seed(0)
    backbone, tokenizer = load_encoder(str(path), REGION_DIM, match_head=True)
    vocab = tag_vocabulary(tokenizer, ["red circle", "blue square", "blue"])
    return DisentangledEncoder(backbone, layers=1, heads=2, ff=16, tag_vocab=vocab, **kw), tokenizer


def _images(b=2, r=3):
    g = torch.Generator().manual_seed(1)
    regions = torch.randn(b, r, REGION_DIM, generator=g)
    geometry = torch.rand(b, r, 6, generator=g)
    mask = torch.ones(b, r, dtype=torch.bool)
    mask[1, 2] = False  # image 1 has two real regions
    return regions, geometry, mask, regions.mean(1)


def test_alignment_is_mrsw_over_real_words_and_regions_by_hand():
    # image: slots (1, 0), (0, 1) and a padded slot (-1, 0) that would be the best match of word 2 if it counted
    image = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]])
    image_mask = torch.tensor([[True, True, False]])
    # caption: words (1, 1) -> max(cos 45°, cos 45°) = 0.7071; (-1, 0) -> max(-1, 0) = 0; a padded word (0, 1)
    text = torch.tensor([[[1.0, 1.0], [-1.0, 0.0], [0.0, 1.0]]])
    words = torch.tensor([[True, True, False]])
    a = DisentangledEncoder.alignment(image, image_mask, text, words)
    assert a.shape == (1, 1) and a.item() == pytest.approx(math.sqrt(0.5) + 0.0, abs=1e-6)
    assert DisentangledEncoder.pair_alignment(image, image_mask, text, words).item() == pytest.approx(a.item())


def test_listnet_matches_hand_computed_softmaxes():
    teacher = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    student = torch.tensor([[0.5, 0.0], [0.0, 0.25]])
    tau = 6.0

    def ce(p_logits, q_logits):  # cross-entropy of softmax(q) under softmax(p), both 2-vectors
        p = [math.exp(v) / sum(math.exp(u) for u in p_logits) for v in p_logits]
        logq = [v - math.log(sum(math.exp(u) for u in q_logits)) for v in q_logits]
        return -sum(pi * lq for pi, lq in zip(p, logq))

    rows = (ce([2, 0], [3.0, 0]) + ce([1, 1], [0, 1.5])) / 2
    cols = (ce([2, 1], [3.0, 0]) + ce([0, 1], [0, 1.5])) / 2
    assert listnet_distillation(teacher, student, tau).item() == pytest.approx(rows + cols, rel=1e-6)


def test_no_gradient_reaches_the_alignment_path_from_the_distillation():
    image = torch.randn(3, 4, 5, requires_grad=True)  # the alignment (teacher) path's input
    text = torch.randn(3, 6, 5, requires_grad=True)
    student = torch.randn(3, 3, requires_grad=True)  # the matching head's scores
    teacher = DisentangledEncoder.alignment(image, torch.ones(3, 4, dtype=torch.bool), text, torch.ones(3, 6, dtype=torch.bool))
    listnet_distillation(teacher, student).backward()
    assert image.grad is None and text.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


def _step(model, tokenizer):
    tok = tokenizer(["a red circle", "two blue squares"], padding=True, return_tensors="pt")
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    text, words = model.text_tokens(tok["input_ids"], tok["attention_mask"])
    image, image_mask = model.image_tokens(*_images(), tags=[["red circle"], ["blue square", "blue square"]])
    a = model.alignment(image, image_mask, text, words)  # (images, captions)
    m = model.match_image(image, image_mask) @ model.match_text(text, tok["attention_mask"]).T
    labels = torch.arange(2)
    loss = max_violation_hinge(a, labels) + max_violation_hinge(m, labels) + listnet_distillation(a, m)
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_a_frozen_backbone_keeps_its_weights_bit_identical_and_the_heads_learn(tiny):
    model, tokenizer = _model(tiny, freeze_backbone=True)
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    heads = {k: v.clone() for k, v in model.text_head.state_dict().items()}
    _step(model, tokenizer)
    assert all(torch.equal(backbone[k], v) for k, v in model.backbone.state_dict().items())
    assert any(not torch.equal(heads[k], v) for k, v in model.text_head.state_dict().items())
    assert not model.backbone.training  # no dropout in a frozen feature extractor
    model, tokenizer = _model(tiny, freeze_backbone=False)  # fine-tuned: the backbone learns
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    _step(model, tokenizer)
    assert any(not torch.equal(backbone[k], v) for k, v in model.backbone.state_dict().items())


def test_the_image_pass_reads_cls_then_the_tags_and_sep_then_the_image_slots(tiny):
    model, tokenizer = _model(tiny)
    model.eval()
    names = [["red circle"], ["blue"]]
    tags = tokenizer(["red circle", "blue"], padding=True, add_special_tokens=False, return_tensors="pt")
    ids, tag_mask = tags["input_ids"], tags["attention_mask"]
    assert [torch.equal(a, b) for a, b in zip(model.tag_tensors(names, "cpu"), (ids, tag_mask))] == [True, True]
    images = _images()
    seq, seq_mask, n_text = model.image_sequence(*images, tags=names)
    n = ids.shape[1]
    plain, plain_mask = model.backbone.image_embeddings(*images)  # [CLS], whole image, regions
    assert n_text == n + 1 and seq.shape[1] == plain.shape[1] + n + 1
    assert torch.equal(seq[:, 0], plain[:, 0]) and torch.equal(seq[:, n + 2:], plain[:, 1:])  # [CLS] | ... | image
    emb = model.backbone.bert.embeddings
    for row in range(2):  # [SEP] in the slot after the tag slots, at the position after the image's own last tag
        own = int(tag_mask[row].sum())
        sep = emb.word_embeddings.weight[model.sep_id] + emb.position_embeddings.weight[own + 1] \
            + emb.token_type_embeddings.weight[1]
        assert torch.allclose(seq[row, n + 1], emb.LayerNorm(sep), atol=1e-6)
    first_tag = emb.word_embeddings.weight[ids[0, 0]] + emb.position_embeddings.weight[1] \
        + emb.token_type_embeddings.weight[1]
    assert torch.allclose(seq[0, 1], emb.LayerNorm(first_tag), atol=1e-6)
    assert seq_mask[1].tolist() == [True, *tag_mask[1].bool().tolist(), True, True, True, True, False]
    image, image_mask = model.image_tokens(*images, tags=names)
    assert image.shape[:2] == (2, 4) and image_mask.tolist() == [[True] * 4, [True, True, True, False]]
    # an image embeds the same alone as beside an image with more tags (its tag slots padded)
    single = model.embed_image(*(x[1:] for x in images), tags=[["blue"]])
    batched = model.embed_image(*images, tags=names)[1:]
    assert torch.allclose(single, batched, atol=1e-5)
    untagged, _ = _model(tiny, object_tags=False)
    seq, _, n_text = untagged.image_sequence(*images)
    assert n_text == 0 and seq.shape[1] == plain.shape[1]  # the switch: no tags, no [SEP]
    with pytest.raises(ValueError, match="object tags"):
        model.image_sequence(*images)
    with pytest.raises(ValueError, match=r"\['green star'\] are not in this model's tag vocabulary"):
        model.image_sequence(*images, tags=[["green star"], ["blue"]])


def test_the_words_are_every_real_token_but_cls_and_sep(tiny):
    model, tokenizer = _model(tiny)
    tok = tokenizer(["a red circle", "two blue squares near a star"], padding=True, return_tensors="pt")
    _, words = model.text_tokens(tok["input_ids"], tok["attention_mask"])
    real = tok["attention_mask"].sum(1).tolist()
    assert words.sum(1).tolist() == [n - 2 for n in real]
    assert not words[:, 0].any() and all(not words[b, n - 1] for b, n in enumerate(real))


def test_a_checkpointed_architecture_rebuilds_the_same_model(tiny):
    model, tokenizer = _model(tiny)  # object tags on: the tag vocabulary travels in the architecture
    twin = build(model.architecture())
    twin.load_state_dict(model.state_dict())
    model.eval(), twin.eval()
    tok = tokenizer(["a red circle"], return_tensors="pt")
    assert torch.equal(model.embed_text(tok["input_ids"], tok["attention_mask"]),
                       twin.embed_text(tok["input_ids"], tok["attention_mask"]))
    regions, geometry, mask, glob = _images()
    pair = model.match_logits(tok["input_ids"].expand(2, -1), tok["attention_mask"].expand(2, -1),
                              regions, geometry, mask, glob, [["red circle"], []])
    tags = [["blue", "red circle"], ["blue square"]]
    assert pair.shape == (2,) and torch.equal(model.embed_image(regions, geometry, mask, glob, tags),
                                              twin.embed_image(regions, geometry, mask, glob, tags))


# ---------------------------------------------------------------------------------------------- training (itr train)
A_FT = {"alignment": 1.0, "triplet": 0.0, "distill": 0.0}
DISTILL = {"alignment": 0.0, "triplet": 0.0, "distill": 1.0}


@pytest.fixture(scope="module")
def a_ft(tiny_pipeline, tmp_path_factory):
    """Variant A/ft on the tiny pipeline: the alignment hinge fine-tunes the BE checkpoint's backbone."""
    root, text = tiny_pipeline
    out = tmp_path_factory.mktemp("aft")
    result = train_from_files("disentangled", _cfg(loss_weights=A_FT), text, root / "data", root / "feat",
                              out / "state", out / "a_ft.pt", out / "a_ft.csv", init=root / "be.pt")
    return out / "a_ft.pt", result


def test_a_ft_carries_the_stores_tags_and_is_selected_by_the_alignment_head(tiny_pipeline, a_ft):
    root, text = tiny_pipeline
    path, result = a_ft
    store = FeatureStore(root / "feat")
    model, tokenizer, ckpt = load_trained(path, store, "cpu")
    assert ckpt["architecture"]["name"] == "disentangled_encoder" and ckpt["init"] == file_digest(root / "be.pt")
    assert sorted(model.tag_vocab) == store.tag_names() and store.tag_names()  # e.g. "red circle"
    assert model.tag_vocab[store.tag_names()[0]] == tokenizer(store.tag_names()[0], add_special_tokens=False)["input_ids"]
    row = result["history"][0]
    assert row["val/rsum"] == row["val/alignment/rsum"] != row["val/matching/rsum"]  # no matching loss: alignment
    # the published model embeds through the shared paths, object tags included (itr.models.encode.reads_tags)
    images = store.ids[:3]
    batch = {k: v for k, v in store.get(images).items()}
    with torch.no_grad():
        direct = model.embed_image(batch["regions"], batch["geometry"], batch["mask"], batch["global"],
                                   store.tags(images))
    assert np.allclose(embed_images(model, store, images, 2, "cpu"), direct.numpy(), atol=1e-5)


def test_d_from_a_ft_keeps_the_backbone_bit_identical_and_selects_by_the_matching_head(tiny_pipeline, a_ft, tmp_path):
    root, text = tiny_pipeline
    store = FeatureStore(root / "feat")
    result = train_from_files("disentangled", _cfg(loss_weights=DISTILL, freeze_backbone=True), text, root / "data",
                              root / "feat", tmp_path / "state", tmp_path / "d.pt", tmp_path / "d.csv", init=a_ft[0])
    before, _, _ = load_trained(a_ft[0], store, "cpu")
    after, _, _ = load_trained(tmp_path / "d.pt", store, "cpu")
    assert all(torch.equal(v, after.backbone.state_dict()[k]) for k, v in before.backbone.state_dict().items())
    assert any(not torch.equal(v, after.text_head.state_dict()[k]) for k, v in before.text_head.state_dict().items())
    row = result["history"][0]
    assert row["val/rsum"] == row["val/matching/rsum"]


def test_zero_epochs_publish_the_initial_model_validated(tiny_pipeline, tmp_path):
    root, text = tiny_pipeline
    result = train_from_files("disentangled", _cfg(epochs=0, loss_weights=A_FT, freeze_backbone=True), text,
                              root / "data", root / "feat", tmp_path / "s", tmp_path / "a.pt", tmp_path / "a.csv",
                              init=root / "be.pt")
    store = FeatureStore(root / "feat")
    init, _, _ = load_trained(root / "be.pt", store, "cpu")
    model, _, _ = load_trained(tmp_path / "a.pt", store, "cpu")
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in init.state_dict().items())
    assert len(result["history"]) == 1 and result["best_epoch"] == 0


def test_distillation_waits_distill_after_epochs(tiny_pipeline):
    root, text = tiny_pipeline
    store = FeatureStore(root / "feat")
    cfg = _cfg(epochs=2, loss_weights={"alignment": 1.0, "triplet": 0.0, "distill": 1.0}, distill_after_epochs=1)
    model, tokenizer = build_model("disentangled", cfg, text, store, root / "be.pt")
    _, caps = read_dataset(root / "data", "train")
    train = CaptionSet.from_frame(caps, tokenizer, text.max_text_len)
    objective = DisentangledObjective(cfg, model, train, store, torch.device("cpu"))
    model.eval()  # no dropout: the same scores on every call
    rows = np.arange(4)
    ids, mask = train.batch(rows)
    images = [train.image_ids[r] for r in rows]
    batch = store.get(images)
    text_tokens, words = model.text_tokens(ids, mask)
    image, regions = model.image_tokens(batch["regions"], batch["geometry"], batch["mask"], batch["global"],
                                        store.tags(images))
    y = torch.tensor([objective.labels[i] for i in images])
    a = model.alignment(image, regions, text_tokens, words)
    m = model.match_image(image, regions) @ model.match_text(text_tokens, mask).T
    hinge = max_violation_hinge(a, y, 0.2)
    with torch.no_grad():
        assert objective.loss(rows, 0).item() == pytest.approx(hinge.item(), rel=1e-5)  # epoch 0: no distillation
        later = objective.loss(rows, objective.steps_per_epoch).item()  # epoch 1
    assert later == pytest.approx((hinge + listnet_distillation(a, m, 6.0)).item(), rel=1e-5)


def test_bad_starts_are_refused_with_the_fix(tiny_pipeline, tmp_path):
    root, text = tiny_pipeline
    store = FeatureStore(root / "feat")
    with pytest.raises(ValueError, match="needs --init"):
        build_model("disentangled", _cfg(), text, store, None)
    with pytest.raises(ValueError, match="drop --init"):
        build_model("be", BEConfig(), text, store, root / "be.pt")
    other = TextEncoderConfig(path=text.path, max_text_len=text.max_text_len + 1)
    with pytest.raises(CheckpointError, match="text encoder"):
        build_model("disentangled", _cfg(), other, store, root / "be.pt")
    untagged = FeatureStoreWriter(tmp_path / "feat", store.max_regions, store.dim, store.manifest["source"])
    untagged.write(0, store.ids, {k: v.numpy() for k, v in store.get(store.ids).items()})
    untagged.finalize(1, {})
    with pytest.raises(FeatureStoreError, match="records no object tags"):
        build_model("disentangled", _cfg(), text, FeatureStore(tmp_path / "feat"), root / "be.pt")
    model, _ = build_model("disentangled", _cfg(object_tags=False), text, FeatureStore(tmp_path / "feat"),
                           root / "be.pt")
    assert model.tag_vocab == {}


@pytest.mark.parametrize("change,message", [
    ({"loss_weights": {"alignment": 0.0, "triplet": 0.0, "distill": 0.0}}, "nothing would learn"),
    ({"loss_weights": A_FT, "freeze_backbone": True}, "alignment head has no weights"),
    ({"loss_weights": {**A_FT, "distill": 1.0}, "freeze_backbone": True, "distill_after_epochs": 1, "epochs": 2},
     "first epoch would train nothing"),
    ({"loss_weights": DISTILL, "distill_after_epochs": 1}, "would never start"),
    ({"loss_weights": DISTILL, "distill_after_epochs": 1, "epochs": 2}, "first epoch would train nothing"),
])
def test_configs_that_would_train_nothing_are_refused(change, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(**change)
    _cfg(**{**change, "epochs": 0})  # publishing the initial model is always allowed
