"""Encoding collections and ranking them: the first stage of retrieve-and-rerank.

``CaptionSet`` holds tokenised captions with their image ids; ``embed_captions`` and
``embed_images`` turn captions and feature-store images into L2-normalised vectors;
``rank_exact`` is the reference search (a plain matrix product) that faiss indexes are
checked against; ``evaluate_rankings`` turns rankings into the metrics of itr.metrics.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from itr.features.store import FeatureStore
from itr.metrics import retrieval_metrics


@dataclasses.dataclass
class CaptionSet:
    """Tokenised captions of one split. Row i is caption ``caption_ids[i]`` of image ``image_ids[i]``."""
    caption_ids: list[str]
    image_ids: list[str]
    input_ids: torch.Tensor  # (N, T)
    attention_mask: torch.Tensor  # (N, T)

    @classmethod
    def from_frame(cls, captions, tokenizer, max_len: int) -> "CaptionSet":
        tok = tokenizer(list(captions["text"]), padding=True, truncation=True, max_length=max_len,
                        return_tensors="pt")
        return cls(list(captions["caption_id"]), list(captions["image_id"]), tok["input_ids"],
                   tok["attention_mask"])

    def __len__(self) -> int:
        return len(self.caption_ids)

    def batch(self, rows) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and mask of some rows, trimmed to the longest caption among them."""
        mask = self.attention_mask[rows]
        t = int(mask.sum(1).max())
        return self.input_ids[rows][:, :t], mask[:, :t]

    @property
    def unique_images(self) -> list[str]:
        return list(dict.fromkeys(self.image_ids))


def image_batch(store: FeatureStore, image_ids: list[str], device) -> dict[str, torch.Tensor]:
    """Features of some images, trimmed to the last region slot any of them uses.

    Stores pad every image to ``max_regions`` slots, but ShapeCaptions images hold 2.6 detections on
    average; the padded slots are masked out of attention and pooling, so dropping the ones no image
    in the batch uses changes nothing but the cost (~12% of a cross-encoder step).
    """
    batch = store.get(image_ids)
    mask = batch["mask"]  # (B, R)
    if mask.ndim == 2 and mask.shape[0]:
        used = torch.nonzero(mask.any(0)).flatten()  # slots some image of the batch uses
        r = int(used[-1]) + 1 if used.numel() else 1  # keep one (masked) slot when no image has a region
        batch = {k: (v[:, :r] if k in ("regions", "geometry", "mask") else v) for k, v in batch.items()}
    return {k: v.to(device) for k, v in batch.items()}


def image_inputs(batch: dict[str, torch.Tensor]) -> tuple:
    return batch["regions"], batch["geometry"], batch["mask"], batch["global"]


@torch.no_grad()
def embed_captions(model, captions: CaptionSet, batch_size: int, device) -> np.ndarray:
    model.eval()
    out = []
    for s in range(0, len(captions), batch_size):
        ids, mask = captions.batch(slice(s, s + batch_size))
        out.append(F.normalize(model.embed_text(ids.to(device), mask.to(device)), dim=-1).float().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def embed_images(model, store: FeatureStore, image_ids: list[str], batch_size: int, device) -> np.ndarray:
    model.eval()
    out = []
    for s in range(0, len(image_ids), batch_size):
        batch = image_batch(store, image_ids[s:s + batch_size], device)
        out.append(F.normalize(model.embed_image(*image_inputs(batch)), dim=-1).float().cpu())
    return torch.cat(out).numpy()


def rank_exact(queries: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Top-k item positions per query by inner product, computed exactly with torch. (Q, k)."""
    scores = torch.from_numpy(queries) @ torch.from_numpy(items).T  # (Q, N)
    return torch.topk(scores, min(k, items.shape[0]), dim=1).indices.numpy()


def evaluate_rankings(t2i_positions: np.ndarray, i2t_positions: np.ndarray, caption_image_ids: list[str],
                      image_ids: list[str], ks) -> dict[str, float]:
    """Metrics from position rankings (-1 = no result) over one collection.

    t2i_positions: (Q_t, K) positions into ``image_ids`` per caption query.
    i2t_positions: (Q_i, K) positions into ``caption_image_ids`` per image query.

    The queries are the first Q_t captions and the first Q_i images of the collection; usually
    that is all of them, but a collection grown with distractors (Table 5 of Geigle et al.)
    continues past its queries with images and captions that are never relevant.
    """
    if len(t2i_positions) > len(caption_image_ids) or len(i2t_positions) > len(image_ids):
        raise ValueError(f"{len(t2i_positions)} caption / {len(i2t_positions)} image queries, but the collection "
                         f"holds only {len(caption_image_ids)} captions / {len(image_ids)} images")
    k = max(ks)  # a collection smaller than K returns fewer results: pad with "no result"
    pad = lambda a: np.pad(a, ((0, 0), (0, max(0, k - a.shape[1]))), constant_values=-1)
    t2i_positions, i2t_positions = pad(np.asarray(t2i_positions)), pad(np.asarray(i2t_positions))
    img_label = {iid: n for n, iid in enumerate(image_ids)}
    cap_labels = np.array([img_label[i] for i in caption_image_ids])  # image label of each caption
    # -1 (no result) maps to a label no query has, so a missing result is a miss.
    t2i = np.where(t2i_positions >= 0, t2i_positions, -1)
    i2t = np.where(i2t_positions >= 0, cap_labels[np.clip(i2t_positions, 0, None)], -1)
    return retrieval_metrics(t2i, cap_labels[:len(t2i)], i2t, np.arange(len(i2t)), ks)


def exact_metrics(image_vecs: np.ndarray, caption_vecs: np.ndarray, image_ids: list[str],
                  caption_image_ids: list[str], ks) -> dict[str, float]:
    """Metrics with exact search over the whole collection (used for validation)."""
    k = max(ks)
    return evaluate_rankings(rank_exact(caption_vecs, image_vecs, k), rank_exact(image_vecs, caption_vecs, k),
                             caption_image_ids, image_ids, ks)
