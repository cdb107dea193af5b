"""Fine-grained alignment of two token sets: every token of one side matched with its best token of the other.

    S(X, Y) = scale · reduce_{j in Y} max_{i in X} <x̂_i, ŷ_j>,   reduce = mean (Liu et al. 2023's S_l, eq. 3) or sum
    (TERAN's MrSw, which Messina et al. 2022's alignment head uses)

Tokens are unit vectors, so <x̂_i, ŷ_j> is a cosine. The dual transformer's local similarity (itr.models.dual) and the
alignment head of itr.models.disentangled are this one function.

Example:
    >>> local_similarity(regions, region_mask, words, word_mask, reduction="sum").shape   # (A images, C captions)
"""
from __future__ import annotations

import torch

REDUCTIONS = ("mean", "sum")


def local_similarity(x: torch.Tensor, x_mask: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor,
                     reduction: str = "mean", scale: float = 1.0) -> torch.Tensor:
    """S_l of every (x sample, y sample) pair: each token of y aligned with its best token of x (Liu et al., eq. 3).

    ``x`` and ``y`` hold unit tokens, so <x̂_i, ŷ_j> is the cosine M_ij of eq. 2. Masked tokens never take
    part: a padded x token is never the best match (not even when every real one is negative), and a padded
    y token is left out of the sum and of the count n_y. A pair where either side has no local token scores 0.

    Args:
        x: (A, I, d) tokens of A samples (images, for S_l(image, caption)); x_mask: (A, I) their local tokens.
        y: (C, J, d) tokens of C samples (captions); y_mask: (C, J).
        reduction: "mean" over y's tokens (the paper's eq. 3) or "sum" (TERAN's MrSw, the released code).
        scale: a factor on the result (1 in the paper; the released code uses 10 with "sum").
    Returns:
        (A, C) similarities.
    """
    cos = torch.einsum("aid,cjd->acij", x, y)  # (A, C, I, J)
    return _align(cos, x_mask[:, None], y_mask[None], reduction, scale)


def pair_local_similarity(x: torch.Tensor, x_mask: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor,
                          reduction: str = "mean", scale: float = 1.0) -> torch.Tensor:
    """``local_similarity`` of aligned pairs (x sample p, y sample p) only: x (P, I, d), y (P, J, d) -> (P,)."""
    cos = torch.einsum("pid,pjd->pij", x, y)  # (P, I, J)
    return _align(cos, x_mask, y_mask, reduction, scale)


def _align(cos: torch.Tensor, x_mask: torch.Tensor, y_mask: torch.Tensor, reduction: str, scale: float):
    """(..., I, J) cosines -> (...) S_l; x_mask (..., I) and y_mask (..., J) broadcast against the batch dims."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}; choose one of {REDUCTIONS}")
    cos = cos.masked_fill(~x_mask.bool()[..., :, None], float("-inf"))
    best = cos.max(dim=-2).values  # (..., J): each y token's best x token; -inf where x has no token at all
    keep = y_mask.bool() & torch.isfinite(best)  # (..., J)
    total = torch.where(keep, best, torch.zeros_like(best)).sum(-1)  # (...)
    if reduction == "mean":
        total = total / y_mask.to(best.dtype).sum(-1).clamp(min=1.0)  # n_y of each y sample
    return scale * total
