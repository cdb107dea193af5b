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
