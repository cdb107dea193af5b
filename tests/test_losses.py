import math

import pytest
import torch
import torch.nn.functional as F

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


# ----------------------------------------------------------------------------------------------- CUSA, by hand

def _log_softmax_row(row, tau):
    z = [x / tau for x in row]
    log_norm = math.log(sum(math.exp(v) for v in z))
    return [v - log_norm for v in z]


def test_multi_positive_itc_by_hand():
    from itr.losses import multi_positive_itc

    sim = [[0.8, 0.2, 0.1], [0.3, 0.7, 0.0], [0.1, 0.4, 0.9]]
    labels = [0, 0, 1]  # pairs 0 and 1 show one image: each is a positive of the other, weight 1/2
    target = [[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0, 1]]
    cols = [list(c) for c in zip(*sim)]
    i2t = -sum(t * l for row, trow in zip(sim, target) for t, l in zip(trow, _log_softmax_row(row, 0.05))) / 3
    t2i = -sum(t * l for row, trow in zip(cols, target) for t, l in zip(trow, _log_softmax_row(row, 0.05))) / 3
    got = multi_positive_itc(torch.tensor(sim), torch.tensor(labels), 0.05)
    assert got.item() == pytest.approx((i2t + t2i) / 2, rel=1e-5)
    released = multi_positive_itc(torch.tensor(sim), torch.tensor(labels), 0.05, released_mean=True)
    assert released.item() == pytest.approx((i2t + t2i) / 2 / 3, rel=1e-5)  # the release's mean over j: 1/N
    # one positive per row is plain symmetric cross-entropy
    plain = multi_positive_itc(torch.tensor(sim), torch.tensor([0, 1, 2]), 0.05)
    ce = (F.cross_entropy(torch.tensor(sim) / 0.05, torch.arange(3)) + F.cross_entropy(torch.tensor(sim).T / 0.05, torch.arange(3))) / 2
    assert plain.item() == pytest.approx(ce.item(), rel=1e-6)


def test_soft_label_kl_is_teacher_to_student_with_each_temperature():
    from itr.losses import cross_softlabel_alignment, soft_label_kl, uni_softlabel_alignment

    student = [[0.9, 0.1], [0.2, 0.5]]
    teacher = [[1.0, 0.6], [0.6, 1.0]]
    q = [[math.exp(v) for v in _log_softmax_row(r, 0.45)] for r in student]  # student, τ = 0.45
    p = [[math.exp(v) for v in _log_softmax_row(r, 1.0)] for r in teacher]  # teacher, τ' = 1
    kl_pq = sum(pi * (math.log(pi) - math.log(qi)) for pr, qr in zip(p, q) for pi, qi in zip(pr, qr)) / 2
    kl_qp = sum(qi * (math.log(qi) - math.log(pi)) for pr, qr in zip(p, q) for pi, qi in zip(pr, qr)) / 2
    t = torch.tensor(teacher, requires_grad=True)
    s = torch.tensor(student, requires_grad=True)
    got = soft_label_kl(s, t, 0.45, 1.0)
    assert got.item() == pytest.approx(kl_pq, rel=1e-5) and abs(kl_pq - kl_qp) > 1e-3  # direction matters
    got.backward()
    assert t.grad is None and s.grad is not None  # the teacher is a fixed target
    # swapping the two temperatures gives another number: each divides its own matrix
    assert soft_label_kl(torch.tensor(student), torch.tensor(teacher), 1.0, 0.45).item() != pytest.approx(kl_pq, rel=1e-3)
    # CSA: rows of s follow the image teacher, rows of sᵀ (columns of s) the text teacher
    s3 = torch.tensor([[0.9, 0.1, 0.3], [0.2, 0.5, -0.4], [0.0, 0.8, 0.6]])
    image_t = torch.tensor([[1.0, 0.6, 0.1], [0.6, 1.0, 0.3], [0.1, 0.3, 1.0]])
    text_t = torch.tensor([[1.0, -0.2, 0.7], [-0.2, 1.0, 0.0], [0.7, 0.0, 1.0]])
    csa = cross_softlabel_alignment(s3, image_t, text_t, 0.45)
    by_hand = (soft_label_kl(s3, image_t, 0.45, 1.0) + soft_label_kl(s3.T, text_t, 0.45, 1.0)) / 2
    assert csa.item() == pytest.approx(by_hand.item())
    swapped = cross_softlabel_alignment(s3, text_t, image_t, 0.45)
    assert swapped.item() != pytest.approx(csa.item(), rel=1e-3)
    usa = uni_softlabel_alignment(s3, s3.T, image_t, text_t, 0.45, 0.3)
    assert usa.item() == pytest.approx((soft_label_kl(s3, image_t, 0.45, 1.0)
                                        + soft_label_kl(s3.T, text_t, 0.3, 1.0)).item() / 2)
