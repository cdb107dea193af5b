"""The disentangled two-head model of Messina et al. 2022 (itr.models.disentangled) and its ListNet
distillation (itr.losses.listnet_distillation) on hand-made cases."""
import math

import pytest
import torch

from itr.losses import listnet_distillation, max_violation_hinge
from itr.models import build
from itr.models.disentangled import DisentangledEncoder
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
    return DisentangledEncoder(backbone, layers=1, heads=2, ff=16, **kw), tokenizer


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
    tags = tokenizer(["red circle", "blue square blue square"], padding=True, add_special_tokens=False,
                     return_tensors="pt")
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    text, words = model.text_tokens(tok["input_ids"], tok["attention_mask"])
    image, image_mask = model.image_tokens(*_images(), tags=(tags["input_ids"], tags["attention_mask"]))
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
    tags = tokenizer(["red circle", "blue"], padding=True, add_special_tokens=False, return_tensors="pt")
    ids, tag_mask = tags["input_ids"], tags["attention_mask"]
    images = _images()
    seq, seq_mask, n_text = model.image_sequence(*images, tags=(ids, tag_mask))
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
    image, image_mask = model.image_tokens(*images, tags=(ids, tag_mask))
    assert image.shape[:2] == (2, 4) and image_mask.tolist() == [[True] * 4, [True, True, True, False]]
    # an image embeds the same alone as beside an image with more tags (its tag slots padded)
    alone = tokenizer(["blue"], add_special_tokens=False, return_tensors="pt")
    single = model.embed_image(*(x[1:] for x in images), tags=(alone["input_ids"], alone["attention_mask"]))
    batched = model.embed_image(*images, tags=(ids, tag_mask))[1:]
    assert torch.allclose(single, batched, atol=1e-5)
    untagged, _ = _model(tiny, object_tags=False)
    seq, _, n_text = untagged.image_sequence(*images)
    assert n_text == 0 and seq.shape[1] == plain.shape[1]  # the switch: no tags, no [SEP]
    with pytest.raises(ValueError, match="object tags"):
        model.image_sequence(*images)


def test_the_words_are_every_real_token_but_cls_and_sep(tiny):
    model, tokenizer = _model(tiny)
    tok = tokenizer(["a red circle", "two blue squares near a star"], padding=True, return_tensors="pt")
    _, words = model.text_tokens(tok["input_ids"], tok["attention_mask"])
    real = tok["attention_mask"].sum(1).tolist()
    assert words.sum(1).tolist() == [n - 2 for n in real]
    assert not words[:, 0].any() and all(not words[b, n - 1] for b, n in enumerate(real))


def test_a_checkpointed_architecture_rebuilds_the_same_model(tiny):
    model, tokenizer = _model(tiny, object_tags=False)
    twin = build(model.architecture())
    twin.load_state_dict(model.state_dict())
    model.eval(), twin.eval()
    tok = tokenizer(["a red circle"], return_tensors="pt")
    assert torch.equal(model.embed_text(tok["input_ids"], tok["attention_mask"]),
                       twin.embed_text(tok["input_ids"], tok["attention_mask"]))
    regions, geometry, mask, glob = _images()
    pair = model.match_logits(tok["input_ids"].expand(2, -1), tok["attention_mask"].expand(2, -1),
                              regions, geometry, mask, glob)
    assert pair.shape == (2,) and torch.equal(model.embed_image(regions, geometry, mask, glob),
                                              twin.embed_image(regions, geometry, mask, glob))
