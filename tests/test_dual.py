"""The dual transformer (global + local tokens), its local similarity, and the CMC loss terms on hand-computed cases."""
import pytest
import torch
import torch.nn.functional as F

from itr.losses import (cmc_loss, hardest_negatives, intra_modal_consistency, max_violation_hinge,
                        released_intra_consistency)
from itr.models import build
from itr.models.alignment import local_similarity, pair_local_similarity
from itr.models.dual import DualTransformer
from itr.models.encoder import load_tokenizer
from itr.models.tiny import make_tiny_bert

# Hand-computed case: image i (rows) vs text j (columns), pair i on the diagonal.
SIM = torch.tensor([[0.9, 0.5, 0.1],
                    [0.3, 0.8, 0.6],
                    [0.7, 0.2, 0.4]])
IMAGE_SIM = torch.tensor([[1.0, 0.2, 0.9],
                          [0.2, 1.0, 0.5],
                          [0.9, 0.5, 1.0]])
TEXT_SIM = torch.tensor([[1.0, 0.75, 0.2],
                         [0.75, 1.0, 0.05],
                         [0.2, 0.05, 1.0]])
LABELS = torch.tensor([0, 1, 2])


def test_hardest_negatives_by_hand():
    hard_text, hard_image = hardest_negatives(SIM, LABELS)
    assert hard_text.tolist() == [1, 2, 0]  # row maxima off the diagonal
    assert hard_image.tolist() == [2, 0, 1]  # column maxima off the diagonal


def test_max_violation_hinge_by_hand():
    # to text: [0.2-0.9+0.5]+ + [0.2-0.8+0.6]+ + [0.2-0.4+0.7]+ = 0 + 0 + 0.5
    # to image: [0.2-0.9+0.7]+ + [0.2-0.8+0.5]+ + [0.2-0.4+0.6]+ = 0 + 0 + 0.4
    assert max_violation_hinge(SIM, LABELS, 0.2).item() == pytest.approx(0.9)


def test_captions_of_the_same_image_are_not_negatives():
    sim = torch.tensor([[0.9, 0.85, 0.1],
                        [0.8, 0.8, 0.6],
                        [0.7, 0.2, 0.4]])
    # pairs 0 and 1 show one image, so S[0,1] = 0.85 and S[1,0] = 0.8 are not negatives:
    # to text: i0 [0.2-0.9+0.1]+ = 0, i1 [0.2-0.8+0.6]+ = 0, i2 [0.2-0.4+0.7]+ = 0.5
    # to image: j0 [0.2-0.9+0.7]+ = 0, j1 [0.2-0.8+0.2]+ = 0, j2 [0.2-0.4+0.6]+ = 0.4
    assert max_violation_hinge(sim, torch.tensor([0, 0, 2]), 0.2).item() == pytest.approx(0.9)
    assert max_violation_hinge(sim, torch.tensor([0, 1, 2]), 0.2).item() == pytest.approx(1.6)  # as negatives
    assert hardest_negatives(sim, torch.tensor([0, 0, 2]))[0].tolist() == [2, 2, 0]
    one_image = torch.zeros(3, dtype=torch.long)  # no negatives at all
    assert max_violation_hinge(sim, one_image, 0.2).item() == 0.0
    assert hardest_negatives(sim, one_image)[0].tolist() == [0, 1, 2]


def test_intra_modal_consistency_paper_form_by_hand():
    # |V - T|: (0,1) 0.55, (0,2) 0.7, (1,2) 0.45; sigma 0.3
    # with l = [1, 2, 0]: 0.25 + 0.15 + 0.4; with v = [2, 0, 1]: 0.4 + 0.25 + 0.15
    loss = intra_modal_consistency(IMAGE_SIM, TEXT_SIM, torch.tensor([1, 2, 0]), torch.tensor([2, 0, 1]), 0.3)
    assert loss.item() == pytest.approx(1.6)
    other_pairs = intra_modal_consistency(IMAGE_SIM, TEXT_SIM, torch.tensor([1, 0, 1]), torch.tensor([0, 1, 2]), 0.3)
    assert other_pairs.item() == pytest.approx(0.25 + 0.25 + 0.15)  # l: (0,1), (1,0), (2,1); v on the diagonal: 0


def test_intra_modal_consistency_released_form_by_hand():
    # column maxima of |T - V|: 0.7, 0.55, 0.7 -> [. - 0.3]+ = 0.4 + 0.25 + 0.4
    assert released_intra_consistency(IMAGE_SIM, TEXT_SIM, 0.3).item() == pytest.approx(1.05)


@pytest.mark.parametrize("intra,expected", [("paper", 0.9 + 1.6), ("released", 0.9 + 1.05), ("none", 0.9)])
def test_cmc_loss_is_the_hinge_plus_the_chosen_intra_term(intra, expected):
    assert cmc_loss(SIM, IMAGE_SIM, TEXT_SIM, LABELS, 0.2, 0.3, intra).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="intra"):
        cmc_loss(SIM, IMAGE_SIM, TEXT_SIM, LABELS, intra="both")


def _unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float), dim=-1)


def test_local_similarity_with_padding_masks_by_hand():
    x = torch.stack([_unit([1, 0], [0, 1], [0.6, 0.8]),  # image 0: two regions and a padded slot
                     _unit([-1, 0], [1, 0], [1, 0])])  # image 1: one region, opposite to every word
    x_mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    y = _unit([0.8, 0.6], [0, 1], [1, 0])[None]  # one caption: two words and a padded slot
    y_mask = torch.tensor([[1, 1, 0]])
    # image 0: word 0 -> max(0.8, 0.6) = 0.8 (the padded 0.96 never counts), word 1 -> 1.0
    # image 1: word 0 -> -0.8, word 1 -> 0.0 (a padded region would have given max(., 1) instead)
    mean = local_similarity(x, x_mask, y, y_mask)
    assert mean[:, 0].tolist() == pytest.approx([0.9, -0.4])
    released = local_similarity(x, x_mask, y, y_mask, reduction="sum", scale=10.0)
    assert released[:, 0].tolist() == pytest.approx([18.0, -8.0])
    no_regions = local_similarity(x, torch.zeros_like(x_mask), y, y_mask)
    assert no_regions.abs().sum().item() == 0.0
    with pytest.raises(ValueError, match="reduction"):
        local_similarity(x, x_mask, y, y_mask, reduction="max")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = make_tiny_bert(tmp_path_factory.mktemp("bert"), hidden=16, layers=1)
    return path, load_tokenizer(str(path))


def _model(path, **kw):
    from itr.models.bert import BertModel

    torch.manual_seed(0)
    return DualTransformer(BertModel.from_pretrained(path), region_dim=5, dim=8, heads=2,
                           ff=16, stage1_layers=1, stage2_layers=1, dropout=0.0, **kw)


def _inputs(tokenizer):
    tok = tokenizer(["a red circle", "a small blue square left of a circle"], padding=True, return_tensors="pt")
    g = torch.Generator().manual_seed(1)
    regions, global_feat = torch.randn(2, 3, 5, generator=g), torch.randn(2, 5, generator=g)
    geometry = torch.rand(2, 3, 6, generator=g)
    region_mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    return tok["input_ids"], tok["attention_mask"], (regions, geometry, region_mask, global_feat)


def test_token_sets_global_token_and_local_masks(tiny):
    path, tokenizer = tiny
    model = _model(path).eval()
    ids, mask, images = _inputs(tokenizer)
    text, text_local = model.text_tokens(ids, mask)
    image, image_local = model.image_tokens(*images)
    assert text.shape == (2, ids.shape[1], 8) and image.shape == (2, 4, 8)
    assert torch.allclose(text.norm(dim=-1), torch.ones(2, ids.shape[1]))
    lengths = mask.sum(1)  # [CLS] words [SEP]
    assert text_local.sum(1).tolist() == (lengths - 2).tolist()
    assert not text_local[:, 0].any() and not text_local[0, lengths[0] - 1]  # neither [CLS] nor [SEP]
    assert image_local.tolist() == [[False, True, True, False], [False, True, False, False]]
    assert torch.equal(model.embed_text(ids, mask), text[:, 0])
    assert torch.equal(model.embed_image(*images), image[:, 0])
    # a padded region changes nothing of the real tokens
    regions, geometry, region_mask, global_feat = images
    other = regions.clone()
    other[0, 2] = 100.0
    assert torch.allclose(model.image_tokens(other, geometry, region_mask, global_feat)[0][0, :3], image[0, :3],
                          atol=1e-6)


def test_checkpoint_architecture_rebuilds_the_same_model(tiny):
    path, tokenizer = tiny
    model = _model(path, detach_stage1=True).eval()
    rebuilt = build(model.architecture())
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    ids, mask, images = _inputs(tokenizer)
    assert rebuilt.detach_stage1 and torch.equal(rebuilt.embed_text(ids, mask), model.embed_text(ids, mask))
    assert torch.equal(rebuilt.embed_image(*images), model.embed_image(*images))


@pytest.mark.parametrize("detach", [False, True])
def test_detach_stage1_cuts_the_gradient_below_stage_2(tiny, detach):
    """The released code detaches stage 1: then the text tower, projections and stage 1 never learn."""
    path, tokenizer = tiny
    model = _model(path, detach_stage1=detach)
    ids, mask, images = _inputs(tokenizer)
    text, text_local = model.text_tokens(ids, mask)
    image, image_local = model.image_tokens(*images)
    sim = image[:, 0] @ text[:, 0].T + local_similarity(image, image_local, text, text_local)
    max_violation_hinge(sim, torch.tensor([0, 1]), margin=2.0).backward()  # margin 2: every hinge is active
    below = {"bert": model.bert, "text_proj": model.text_proj, "image_proj": model.image_proj,
             "text.stage1": model.text.stage1, "image.stage1": model.image.stage1}
    for name, module in below.items():
        reached = any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
        assert reached != detach, name
    for module in (model.text.stage2, model.image.stage2):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_pair_scores_are_the_diagonal_of_the_all_pairs_matrix():
    g = torch.Generator().manual_seed(3)
    x, y = F.normalize(torch.randn(4, 5, 8, generator=g), dim=-1), F.normalize(torch.randn(4, 6, 8, generator=g), dim=-1)
    x_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    y_mask = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0]])
    for reduction, scale in (("mean", 1.0), ("sum", 10.0)):
        full = local_similarity(x, x_mask, y, y_mask, reduction, scale)
        pairs = pair_local_similarity(x, x_mask, y, y_mask, reduction, scale)
        assert torch.allclose(pairs, full.diagonal()) and pairs[2] == 0.0  # image 2 has no region


def test_late_interaction_pair_scores_equal_each_pair_encoded_alone(tiny_pipeline):
    """score_pairs encodes each caption and image once, padded with others; padding must change no score."""
    import numpy as np

    from itr.data.dataset import read_dataset
    from itr.features.store import FeatureStore
    from itr.models.encode import CaptionSet, image_batch, image_inputs, score_pairs
    from itr.models.encoder import load_tokenizer as tokenizer_of
    from itr.models.bert import BertModel

    root, text = tiny_pipeline
    store = FeatureStore(root / "feat")
    _, caps = read_dataset(root / "data", "val")
    captions = CaptionSet.from_frame(caps, tokenizer_of(text.path), text.max_text_len)
    torch.manual_seed(0)
    model = DualTransformer(BertModel.from_pretrained(text.path), store.dim, dim=8, heads=2,
                            ff=16, stage1_layers=1, stage2_layers=1, local_reduction="sum", local_scale=10.0).eval()
    images = captions.unique_images
    rows = np.array([0, 3, 5, 0, len(captions) - 1])
    pair_images = [images[0], images[1], images[0], images[-1], images[-1]]
    scores = score_pairs(model, captions, rows, store, pair_images, batch_size=2, device="cpu")
    with torch.no_grad():
        for row, image, got in zip(rows, pair_images, scores):
            ids, mask = captions.batch([row])  # trimmed to this caption alone
            text_tok, text_local = model.text_tokens(ids, mask)
            img_tok, img_local = model.image_tokens(*image_inputs(image_batch(store, [image], "cpu")))
            assert got == pytest.approx(model.local_scores(img_tok, img_local, text_tok, text_local).item(), abs=1e-5)


def test_train_methods_have_one_list():
    from itr.cli.train import METHODS
    from itr.config import TRAIN_METHODS

    assert METHODS == tuple(TRAIN_METHODS)


@pytest.mark.parametrize("detach", [False, True])
def test_cmc_training_trains_end_to_end_unless_stage_1_is_detached(tiny_pipeline, tmp_path, detach):
    """Through itr train's library path: the checkpoint is a dual transformer selected on val (global and local
    rsum), and the text tower learns only when stage 1 is not detached (the released code detaches it)."""
    import pandas as pd

    from itr.config import DualConfig
    from itr.features.store import FeatureStore
    from itr.models import load_trained
    from itr.models.encoder import load_text_tower
    from itr.training import train_from_files

    root, text = tiny_pipeline
    cfg = DualConfig(epochs=1, batch_size=8, lr=1e-3, dim=8, heads=2, ff=16, stage1_layers=1, stage2_layers=1,
                     detach_stage1=detach)
    result = train_from_files("cmc", cfg, text, root / "data", root / "feat", tmp_path / "state", tmp_path / "m.pt",
                              tmp_path / "h.csv", log=lambda *_: None)
    history = pd.read_csv(tmp_path / "h.csv")
    assert {"val/rsum", "val/global/rsum", "val/local/rsum", "train_loss"} <= set(history.columns)
    assert history["val/rsum"].iloc[0] == pytest.approx((history["val/global/rsum"] + history["val/local/rsum"]).iloc[0] / 2)
    model, _, ckpt = load_trained(tmp_path / "m.pt", FeatureStore(root / "feat"), "cpu")
    assert ckpt["architecture"]["name"] == "dual_transformer" and ckpt["method"] == "cmc"
    assert result["best_epoch"] == 0 and model.detach_stage1 == detach
    pretrained = load_text_tower(text.path).state_dict()
    changed = any(not torch.equal(v, pretrained[k]) for k, v in model.bert.state_dict().items())
    assert changed != detach


def _tiny_dual(tiny_pipeline, split: str, **kwargs):
    """A small dual transformer (seed 0) on the tiny pipeline's text tower, the split's captions and the store."""
    from itr.models.bert import BertModel

    from itr.data.dataset import read_dataset
    from itr.features.store import FeatureStore
    from itr.models.encode import CaptionSet
    from itr.models.encoder import load_tokenizer

    root, text = tiny_pipeline
    store = FeatureStore(root / "feat")
    _, caps = read_dataset(root / "data", split)
    captions = CaptionSet.from_frame(caps, load_tokenizer(text.path), text.max_text_len)
    torch.manual_seed(0)
    model = DualTransformer(BertModel.from_pretrained(text.path), store.dim, dim=8, heads=2,
                            ff=16, stage1_layers=1, stage2_layers=1, **kwargs)
    return model, captions, store


def test_cmc_objective_is_the_global_plus_the_local_loss(tiny_pipeline):
    """TGDT eq. 7 through the training objective: loss_on=both is loss_on=global plus loss_on=local."""
    import dataclasses

    import numpy as np

    from itr.config import DualConfig
    from itr.objectives import CMCObjective

    model, train, store = _tiny_dual(tiny_pipeline, "train", dropout=0.0)
    base = DualConfig(batch_size=8, dim=8)
    rows = np.arange(8)
    loss = {on: CMCObjective(dataclasses.replace(base, loss_on=on), model, train, store, "cpu").loss(rows, 0).item()
            for on in ("both", "global", "local")}
    assert loss["both"] == pytest.approx(loss["global"] + loss["local"], rel=1e-5)
    assert loss["global"] > 0 and loss["local"] > 0


def test_all_pairs_take_the_block_path_and_give_the_same_scores(tiny_pipeline):
    """Scoring every pair goes through whole blocks (local_scores), a shortlist through gathered pairs: same numbers."""
    import numpy as np

    from itr.models.encode import score_pairs

    model, captions, store = _tiny_dual(tiny_pipeline, "val")
    model.eval()
    images = captions.unique_images
    rows = np.repeat(np.arange(len(captions)), len(images))  # every pair, caption-major
    pair_images = images * len(captions)
    every = score_pairs(model, captions, rows, store, pair_images, batch_size=4, device="cpu")
    some = score_pairs(model, captions, rows[::7], store, pair_images[::7], batch_size=4, device="cpu")
    np.testing.assert_allclose(every[::7], some, rtol=1e-5, atol=1e-6)
