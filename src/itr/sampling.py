"""Negative sampling for the cross-encoder's pairs (Geigle et al. 2022, §3.1).

Every training caption yields two pairs: its positive ``(caption, its image)`` and one
negative. With probability ``p_replace_image`` the negative keeps the caption and swaps
in a uniformly drawn *other* image; otherwise it keeps the image and swaps in a uniformly
drawn caption *of another image*. This is the released ``JointImageSentenceDataset``.

Example:
    >>> rng = np.random.default_rng(0)
    >>> caps, imgs, y = sample_match_pairs(np.array([0, 1]), np.array([0, 0, 1, 1]), 2, rng)
    >>> y.tolist()
    [1, 1, 0, 0]
"""
from __future__ import annotations

import numpy as np


def sample_match_pairs(rows: np.ndarray, caption_labels: np.ndarray, n_images: int, rng: np.random.Generator,
                       p_replace_image: float = 0.5, hard_images: np.ndarray | None = None,
                       hard_captions: np.ndarray | None = None,
                       p_hard: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positive and negative pairs for a batch of captions.

    Args:
        rows: (B,) caption rows of the batch.
        caption_labels: (N,) image label (0..n_images-1) of every caption in the training set.
        n_images: number of distinct images.
        rng: the generator to draw from (seed it per step so a resumed run draws the same pairs).
        p_replace_image: probability that a negative replaces the image rather than the caption.
        hard_images, hard_captions: (B,) a mined hard negative image label for each caption and a mined
            hard negative caption row for its image (itr.mining); with probability ``p_hard`` a negative
            takes these instead of the uniform draw (E_ANCE). With p_hard = 0 the draws are exactly E's.

    Returns:
        caption_rows (2B,), image_labels (2B,), targets (2B,): the B positives first, then the B negatives.
    """
    rows = np.asarray(rows)
    if n_images < 2:
        raise ValueError("negative sampling needs at least two images")
    own = caption_labels[rows]  # (B,)
    b = len(rows)
    replace_image = rng.random(b) < p_replace_image  # (B,)
    # Another image, uniformly: draw from n-1 labels and skip over the caption's own.
    other_image = rng.integers(0, n_images - 1, size=b)
    other_image = other_image + (other_image >= own)
    # A caption of another image, uniformly over such captions: redraw the few that hit the own image.
    other_caption = rng.integers(0, len(caption_labels), size=b)
    clash = caption_labels[other_caption] == own
    while clash.any():
        other_caption[clash] = rng.integers(0, len(caption_labels), size=int(clash.sum()))
        clash = caption_labels[other_caption] == own
    if p_hard > 0:
        if hard_images is None or hard_captions is None:
            raise ValueError("p_hard > 0 needs the mined hard_images and hard_captions of the batch")
        use_hard = rng.random(b) < p_hard  # (B,)
        other_image = np.where(use_hard, hard_images, other_image)
        other_caption = np.where(use_hard, hard_captions, other_caption)
    neg_caption = np.where(replace_image, rows, other_caption)
    neg_image = np.where(replace_image, other_image, own)
    caption_rows = np.concatenate([rows, neg_caption])
    image_labels = np.concatenate([own, neg_image])
    targets = np.concatenate([np.ones(b, dtype=np.int64), np.zeros(b, dtype=np.int64)])
    return caption_rows, image_labels, targets
