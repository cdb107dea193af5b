"""Training losses. Each takes features in and returns a scalar; models never compute losses.

Example:
    >>> t = F.normalize(torch.randn(4, 8), dim=-1); v = F.normalize(torch.randn(4, 8), dim=-1)
    >>> batch_hard_triplet_loss(t, v, torch.tensor([0, 1, 2, 3]), margin=0.1).shape
    torch.Size([])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_hard_triplet_loss(text: torch.Tensor, image: torch.Tensor, image_labels: torch.Tensor,
                            margin: float = 0.1, hardest: bool = True) -> torch.Tensor:
    """VSE++ triplet loss with the hardest in-batch negative, both directions (Geigle et al. §3.2).

    Pair i is (text[i], image[i]); ``image_labels[i]`` identifies the image, so captions of the
    same image are never negatives of each other. With cosine distance d = 1 - cos:

        L = mean_i [d_ii - min_{k: y_k != y_i} d_ik + m]_+  +  [d_ii - min_{k: y_k != y_i} d_ki + m]_+

    where d_ik compares caption i with image k (hardest image for a caption) and d_ki image i with
    caption k (hardest caption for an image).

    Args:
        text: (B, H) caption embeddings (normalised inside).
        image: (B, H) image embeddings, row i the image of caption i.
        image_labels: (B,) image identity of each pair.
        margin: m, 0.1 in the paper's configs.
        hardest: False replaces each min by the mean hinge over all valid negatives (VSE0). Used as a
            short warm-up when the image tower starts from scratch: hardest negatives among nearly
            identical random embeddings give almost no signal and training can collapse.
    """
    dist = 1.0 - F.normalize(text, dim=-1) @ F.normalize(image, dim=-1).T  # (B, B): caption i vs image k
    pos = dist.diagonal()  # (B,)
    same = image_labels[:, None] == image_labels[None, :]  # (B, B), includes the diagonal
    if not hardest:
        valid = (~same).to(dist.dtype)  # (B, B)
        n = valid.sum().clamp(min=1.0)
        per_caption = F.relu(pos[:, None] - dist + margin) * valid  # caption i vs negative image k
        per_image = F.relu(pos[None, :] - dist + margin) * valid  # image k vs negative caption i
        return (per_caption.sum() + per_image.sum()) / n  # mean hinge per valid pair, both directions
    masked = dist + 2.0 * same.to(dist.dtype)  # cosine distance is <= 2, so +2 removes these
    hardest_image = masked.min(dim=1).values  # per caption
    hardest_caption = masked.min(dim=0).values  # per image
    return (F.relu(pos - hardest_image + margin) + F.relu(pos - hardest_caption + margin)).mean()


def sampled_triplet_loss(text: torch.Tensor, image: torch.Tensor, negative_text: torch.Tensor,
                         negative_image: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Triplet loss over sampled negatives (T_ANCE, the released ``SampledHardTripletLoss``).

    Every positive pair (text[i], image[i]) is compared with its own n sampled negative images
    (for the caption) and n sampled negative captions (for the image):

        L = mean_{i,j} [d(t_i, v_i) - d(t_i, v'_ij) + m]_+  +  [d(t_i, v_i) - d(v_i, t'_ij) + m]_+

    Args:
        text, image: (B, H) the positive pairs.
        negative_text: (B, n, H) negative captions of each pair's image.
        negative_image: (B, n, H) negative images of each pair's caption.
    """
    t, v = F.normalize(text, dim=-1), F.normalize(image, dim=-1)
    pos = 1.0 - (t * v).sum(-1, keepdim=True)  # (B, 1)
    to_images = 1.0 - torch.einsum("bh,bnh->bn", t, F.normalize(negative_image, dim=-1))  # (B, n)
    to_captions = 1.0 - torch.einsum("bh,bnh->bn", v, F.normalize(negative_text, dim=-1))  # (B, n)
    return (F.relu(pos - to_images + margin) + F.relu(pos - to_captions + margin)).mean()


def match_bce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-encoder loss (Geigle et al. §3.1): binary cross-entropy of match logits, mean over pairs.

    The paper's head is a two-class softmax trained with cross-entropy; with one logit
    ``l = z_match - z_other`` that loss is exactly ``BCE(sigmoid(l), y)``.

    Args:
        logits: (P,) scores of P caption-image pairs.
        labels: (P,) 1 for a matching pair, 0 for a negative.
    """
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


INTRA_FORMS = ("paper", "released", "none")


def hardest_negatives(sim: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pair i, the index of its hardest negative text (l⁻) and hardest negative image (v⁻).

    ``sim[i, j]`` compares image i with text j (pair i = (image i, text i)); pairs of the same image are never
    negatives of each other. Returns (l, v), each (B,): l_i = argmax_{j: y_j != y_i} sim[i, j] (the text closest
    to image i) and v_i = argmax_{k: y_k != y_i} sim[k, i] (the image closest to text i).
    """
    same = labels[:, None] == labels[None, :]  # (B, B)
    masked = sim.detach().masked_fill(same, float("-inf"))
    own = torch.arange(sim.shape[0], device=sim.device)  # a pair with no negative in the batch gets itself
    hard_text = torch.where(torch.isinf(masked.max(dim=1).values), own, masked.argmax(dim=1))
    hard_image = torch.where(torch.isinf(masked.max(dim=0).values), own, masked.argmax(dim=0))
    return hard_text, hard_image


def max_violation_hinge(sim: torch.Tensor, labels: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """VSE++ max-violation triplet loss on a similarity matrix, summed over the batch (Liu et al. 2023, eq. 4).

        L_r = Σ_i [δ - S(I_i, T_i) + S(I_i, T_l⁻)]_+ + [δ - S(I_i, T_i) + S(I_v⁻, T_i)]_+

    Args:
        sim: (B, B) similarities, image i (rows) vs text j (columns); pair i is the diagonal.
        labels: (B,) image identity of each pair: captions of the same image are not negatives.
        margin: δ, 0.2 in the paper.
    A batch in which every pair shows the same image has no negatives and gives 0.
    """
    same = labels[:, None] == labels[None, :]  # (B, B)
    masked = sim.masked_fill(same, float("-inf"))
    pos = sim.diagonal()  # (B,)
    to_text = F.relu(margin - pos + masked.max(dim=1).values)  # hardest text per image; relu(-inf) = 0
    to_image = F.relu(margin - pos + masked.max(dim=0).values)  # hardest image per text
    return to_text.sum() + to_image.sum()


def intra_modal_consistency(image_sim: torch.Tensor, text_sim: torch.Tensor, hard_text: torch.Tensor,
                            hard_image: torch.Tensor, slack: float = 0.3) -> torch.Tensor:
    """The paper's intra-modal term (Liu et al. 2023, eq. 5), summed over the batch.

    For pair i and its hard negative pairs l = l⁻_i and v = v⁻_i (``hardest_negatives``), the image–image and
    text–text similarities of the two pairs should agree up to the slack σ:

        L_a = Σ_i [|S(I_i, I_l) - S(T_i, T_l)| - σ]_+ + [|S(I_i, I_v) - S(T_i, T_v)| - σ]_+

    Args:
        image_sim: (B, B) image i vs image k; text_sim: (B, B) text i vs text k (same similarity function).
        hard_text, hard_image: (B,) l⁻ and v⁻ of each pair.
    """
    rows = torch.arange(image_sim.shape[0], device=image_sim.device)
    gap_l = (image_sim[rows, hard_text] - text_sim[rows, hard_text]).abs()  # (B,)
    gap_v = (image_sim[rows, hard_image] - text_sim[rows, hard_image]).abs()  # (B,)
    return F.relu(gap_l - slack).sum() + F.relu(gap_v - slack).sum()


def released_intra_consistency(image_sim: torch.Tensor, text_sim: torch.Tensor, slack: float = 0.3) -> torch.Tensor:
    """The released code's intra term: Σ_j [max_i |T_ij - V_ij| - σ]_+ over the whole batch (no hard pairs)."""
    return F.relu((text_sim - image_sim).abs().max(dim=0).values - slack).sum()


def cmc_loss(sim: torch.Tensor, image_sim: torch.Tensor, text_sim: torch.Tensor, labels: torch.Tensor,
             margin: float = 0.2, slack: float = 0.3, intra: str = "paper") -> torch.Tensor:
    """Consistent Multimodal Contrastive loss L_cmc = L_r + L_a (Liu et al. 2023, eq. 6) of one similarity function.

    Args:
        sim: (B, B) image vs text; image_sim: (B, B) image vs image; text_sim: (B, B) text vs text.
        intra: "paper" (eq. 5 on the hard negative pairs), "released" (``released_intra_consistency``) or
            "none" (L_r alone: the ablation without the intra-modal term).
    """
    if intra not in INTRA_FORMS:
        raise ValueError(f"intra={intra!r}; choose one of {INTRA_FORMS}")
    loss = max_violation_hinge(sim, labels, margin)
    if intra == "paper":
        hard_text, hard_image = hardest_negatives(sim, labels)
        loss = loss + intra_modal_consistency(image_sim, text_sim, hard_text, hard_image, slack)
    elif intra == "released":
        loss = loss + released_intra_consistency(image_sim, text_sim, slack)
    return loss


def listnet_distillation(teacher: torch.Tensor, student: torch.Tensor, tau: float = 6.0) -> torch.Tensor:
    """Distillation of Messina et al. 2022 (ListNet): the student's score distribution over each row and
    each column of a batch follows the teacher's.

        L = mean_i CE(softmax_j(A_ij), softmax_j(τ·M_ij)) + mean_j CE(softmax_i(A_ij), softmax_i(τ·M_ij))

    Args:
        teacher: (B, B) alignment scores A (images x captions); no gradient reaches it (it is detached here).
        student: (B, B) matching-head similarities M of the same pairs.
        tau: the factor on the student's scores (6 in the release; the teacher's raw MrSw sums have no factor).
    Example:
        >>> listnet_distillation(torch.eye(2) * 9, torch.eye(2))   # the student already ranks like the teacher
    """
    target = teacher.detach()
    log_student = F.log_softmax(tau * student, dim=1)  # (B, B): over captions, per image
    rows = -(F.softmax(target, dim=1) * log_student).sum(1).mean()
    log_student = F.log_softmax(tau * student, dim=0)  # over images, per caption
    cols = -(F.softmax(target, dim=0) * log_student).sum(0).mean()
    return rows + cols


def multi_positive_itc(sim: torch.Tensor, labels: torch.Tensor, tau: torch.Tensor | float,
                       released_mean: bool = False) -> torch.Tensor:
    """The image-text contrastive loss of soft-label alignment (Huang et al. 2024): InfoNCE in both directions where every pair of one image is a positive.

    With s_ij the similarity of image i and caption j and y_ij = 1[id_i = id_j] / #{k: id_k = id_i}:

        L = ½ [ -(1/N) Σ_i Σ_j y_ij log softmax_j(s_ij / τ)  +  (the same on sᵀ) ]

    Args:
        sim: (N, N) cosine similarities, row = image of pair i, column = caption of pair j.
        labels: (N,) image identity of each pair.
        tau: the (learned, clamped by the caller) temperature.
        released_mean: the released code's ``contrastive_loss_mode: mean`` averages over j instead of summing, so
            its ITC weighs 1/N of the paper's (seed-code-notes §1); selectable, labelled "as released".
    """
    same = (labels[:, None] == labels[None, :]).to(sim.dtype)  # (N, N)
    target = same / same.sum(dim=1, keepdim=True)  # (N, N), rows sum to 1 (symmetric: same is)
    reduce = (lambda x: x.mean(dim=1)) if released_mean else (lambda x: x.sum(dim=1))
    i2t = -reduce(target * F.log_softmax(sim / tau, dim=1)).mean()
    t2i = -reduce(target * F.log_softmax(sim.T / tau, dim=1)).mean()
    return (i2t + t2i) / 2


def soft_label_kl(student: torch.Tensor, teacher: torch.Tensor, tau: torch.Tensor | float,
                  tau_teacher: float) -> torch.Tensor:
    """KL(P ‖ Q) row by row, averaged over rows: P = softmax(teacher / τ'), a fixed target (no gradient reaches
    the teacher), Q = softmax(student / τ). The primitive of both soft-label alignments (``F.kl_div(..., 'batchmean')``).

    Args:
        student, teacher: (N, N) similarity matrices over one batch.
    """
    target = F.softmax(teacher.detach() / tau_teacher, dim=1)  # (N, N)
    return F.kl_div(F.log_softmax(student / tau, dim=1), target, reduction="batchmean")


def cross_softlabel_alignment(sim: torch.Tensor, image_teacher: torch.Tensor, text_teacher: torch.Tensor,
                              tau: torch.Tensor | float, tau_teacher: float = 1.0) -> torch.Tensor:
    """CSA: ½ [KL_row(s, S^I) + KL_row(sᵀ, S^T)]. Row i of the image->text matrix (image i against every caption
    j, caption j being pair j's) follows the image teacher's similarities of image i to image j; row i of the
    text->image matrix follows the text teacher's caption-caption similarities. One student τ for both.

    Args:
        sim: (N, N) student image-caption similarities (cross-modal heads).
        image_teacher, text_teacher: (N, N) the teachers' image-image and caption-caption cosines.
    """
    return (soft_label_kl(sim, image_teacher, tau, tau_teacher) + soft_label_kl(sim.T, text_teacher, tau, tau_teacher)) / 2


def uni_softlabel_alignment(image_sim: torch.Tensor, text_sim: torch.Tensor, image_teacher: torch.Tensor,
                            text_teacher: torch.Tensor, tau_image: torch.Tensor | float, tau_text: torch.Tensor | float,
                            tau_teacher: float = 1.0) -> torch.Tensor:
    """USA: ½ [KL_row(a, S^I; τ_I) + KL_row(b, S^T; τ_T)], a and b the student's uni-modal heads' image-image and
    caption-caption similarities (each modality has its own τ)."""
    return (soft_label_kl(image_sim, image_teacher, tau_image, tau_teacher)
            + soft_label_kl(text_sim, text_teacher, tau_text, tau_teacher)) / 2
