import torch

from itr.losses import batch_hard_triplet_loss, match_bce_loss


def test_triplet_loss_matches_hand_computed_hardest_negatives():
    # Captions 0 and 1 describe the same image (label 7): they must not be each other's negatives.
    text = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    image = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]])
    labels = torch.tensor([7, 7, 3])
    m = 0.1
    d = 1 - text @ image.T  # unit vectors already
    # caption 0: positive d00 = 0; negatives: image 2 only -> d02 = 0.4; image side col 0: caption 2 -> d20 = 1
    expected = [
        max(0, d[0, 0] - d[0, 2] + m) + max(0, d[0, 0] - d[2, 0] + m),
        max(0, d[1, 1] - d[1, 2] + m) + max(0, d[1, 1] - d[2, 1] + m),
        max(0, d[2, 2] - min(d[2, 0], d[2, 1]) + m) + max(0, d[2, 2] - min(d[0, 2], d[1, 2]) + m),
    ]
    loss = batch_hard_triplet_loss(text, image, labels, margin=m)
    assert torch.isclose(loss, torch.tensor(sum(float(e) for e in expected) / 3), atol=1e-6)


def test_same_image_captions_are_not_negatives():
    # Without masking, caption 1 (same image as 0) would be the hardest negative and give a large loss.
    text = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    image = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert batch_hard_triplet_loss(text, image, torch.tensor([0, 0]), margin=0.1) == 0
    assert batch_hard_triplet_loss(text, image, torch.tensor([0, 1]), margin=0.1) > 0.1


def test_gradient_flows_to_both_towers():
    text = torch.randn(4, 8, requires_grad=True)
    image = torch.randn(4, 8, requires_grad=True)
    batch_hard_triplet_loss(text, image, torch.arange(4), margin=0.5).backward()
    assert text.grad.abs().sum() > 0 and image.grad.abs().sum() > 0


def test_all_negatives_warmup_is_the_mean_hinge_over_valid_pairs():
    text = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    image = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]])
    labels = torch.tensor([7, 7, 3])
    m = 0.1
    d = 1 - text @ image.T
    valid = [(i, k) for i in range(3) for k in range(3) if labels[i] != labels[k]]
    caption_side = sum(max(0.0, float(d[i, i] - d[i, k] + m)) for i, k in valid)
    image_side = sum(max(0.0, float(d[k, k] - d[i, k] + m)) for i, k in valid)
    got = batch_hard_triplet_loss(text, image, labels, margin=m, hardest=False)
    assert torch.isclose(got, torch.tensor((caption_side + image_side) / len(valid)), atol=1e-6)
    assert got <= batch_hard_triplet_loss(text, image, labels, margin=m) + 1e-6  # the mean never exceeds the max


def test_match_loss_is_the_two_class_cross_entropy_of_the_paper_head():
    # The released head is a 2-way softmax; one logit l = z1 - z0 must give the same loss.
    z = torch.tensor([[0.3, 1.5], [2.0, -1.0], [0.0, 0.0]])
    y = torch.tensor([1, 0, 1])
    two_class = torch.nn.functional.cross_entropy(z, y)
    assert torch.isclose(match_bce_loss(z[:, 1] - z[:, 0], y), two_class, atol=1e-6)
    # and by hand for one pair: -log sigmoid(1.2)
    assert abs(float(match_bce_loss(torch.tensor([1.2]), torch.tensor([1]))) - 0.263282) < 1e-5
