"""ANCE-style hard negatives: the model's own nearest neighbours, mined again before every epoch.

Appendix A.3 of the first version of Geigle et al. (000_7cfbc53d2d135d21.txt) compares in-batch
hardest negatives (BHN) with ANCE (Xiong et al. 2021): every training caption is scored against
every training image with the current bi-encoder, and each positive keeps a list of its top-k
nearest *wrong* partners. Training then samples negatives from those lists, with probabilities
given by a softmax over their cosine scores (the released ``HardExamples`` callback); the lists go
stale as the model moves, so they are mined again before every epoch.

Both directions are kept: the images nearest each caption (excluding the caption's own image)
and the captions nearest each image (excluding all of the image's own captions).

Example:
    >>> caps = np.eye(3, dtype=np.float32); imgs = np.eye(3, dtype=np.float32)
    >>> hard = mine_hard_negatives(caps, imgs, np.array([0, 1, 2]), k=1)
    >>> hard.caption_images.shape, hard.image_captions.shape
    ((3, 1), (3, 1))
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch


@dataclasses.dataclass
class HardNegatives:
    """Per-caption and per-image lists of mined negatives with their sampling weights."""
    caption_images: np.ndarray  # (N, k) image labels nearest each caption, its own image excluded
    caption_weights: np.ndarray  # (N, k) softmax of their cosine scores
    image_captions: np.ndarray  # (M, k) caption rows nearest each image, its own captions excluded
    image_weights: np.ndarray  # (M, k)

    def sample_images(self, caption_rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """(B, n) image labels drawn (with replacement) from each caption's list."""
        return _draw(self.caption_images[caption_rows], self.caption_weights[caption_rows], n, rng)

    def sample_captions(self, image_labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """(B, n) caption rows drawn (with replacement) from each image's list."""
        return _draw(self.image_captions[image_labels], self.image_weights[image_labels], n, rng)


def _draw(candidates: np.ndarray, weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws per row from categorical(weights[row]) over candidates[row]. (B, n)."""
    cum = np.cumsum(weights, axis=1)  # (B, k)
    u = rng.random((len(candidates), n)) * cum[:, -1:]  # (B, n)
    pick = (cum[:, None, :] <= u[..., None]).sum(-1)  # (B, n) first index whose cumsum exceeds u
    pick = np.minimum(pick, candidates.shape[1] - 1)
    return np.take_along_axis(candidates, pick, axis=1)


def _top_negatives(scores: torch.Tensor, own: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k columns per row of ``scores`` outside the row's own ones (mask ``own``), with softmax weights."""
    available = int((~own).sum(1).min())
    if available < 1:
        raise ValueError("a positive has no negatives to mine: every candidate is its own")
    k = min(k, available)
    top = torch.topk(scores.masked_fill(own, float("-inf")), k, dim=1)  # (R, k)
    return top.indices.numpy(), torch.softmax(top.values, dim=1).numpy()


def mine_hard_negatives(caption_vecs: np.ndarray, image_vecs: np.ndarray, caption_labels: np.ndarray,
                        k: int) -> HardNegatives:
    """Nearest wrong partners of every caption and every image.

    Args:
        caption_vecs: (N, H) L2-normalised caption embeddings of the training set.
        image_vecs: (M, H) L2-normalised embeddings of its distinct images, label = row.
        caption_labels: (N,) image label of each caption.
        k: list length (fewer when a positive has fewer negatives).
    """
    scores = torch.from_numpy(caption_vecs) @ torch.from_numpy(image_vecs).T  # (N, M) cosine
    labels = torch.from_numpy(np.asarray(caption_labels))
    own_image = labels[:, None] == torch.arange(image_vecs.shape[0])[None, :]  # (N, M)
    caption_images, caption_weights = _top_negatives(scores, own_image, k)
    image_captions, image_weights = _top_negatives(scores.T.contiguous(), own_image.T.contiguous(), k)
    return HardNegatives(caption_images, caption_weights, image_captions, image_weights)
