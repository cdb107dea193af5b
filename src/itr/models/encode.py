"""Encoding with a trained model: captions and feature-store images to vectors, pairs to CE scores.

``CaptionSet`` holds tokenised captions with their image ids; ``embed_captions`` and ``embed_images``
turn captions and feature-store images into L2-normalised vectors; ``score_pairs`` has a cross-encoder
score (caption, image) pairs. ``rank_exact`` is the reference search (a plain matrix product) that faiss
indexes are checked against, and ``exact_metrics`` scores a collection with it (validation during training).

Example:
    >>> caps = CaptionSet.from_frame(captions_frame, tokenizer, max_len=32)
    >>> exact_metrics(embed_images(model, store, ids, 256, "cpu"), embed_captions(model, caps, 256, "cpu"),
    ...               ids, caps.image_ids, ks=(1, 5, 10))["rsum"]
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from itr.features.store import FeatureStore
from itr.metrics import evaluate_rankings


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


def reads_tags(model) -> bool:
    """Whether the model's image pass reads object tags (itr.models.disentangled), which image_batch then adds."""
    return bool(getattr(model, "object_tags", False))


def image_batch(store: FeatureStore, image_ids: list[str], device, tags: bool = False) -> dict:
    """Features of some images, trimmed to the last region slot any of them uses; with ``tags``, also their
    object tags (``"tags"``: per image, the class names of its regions, FeatureStore.tags).

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
    batch = {k: v.to(device) for k, v in batch.items()}
    if tags:
        batch["tags"] = store.tags(image_ids)
    return batch


def image_inputs(batch: dict) -> tuple:
    """A batch's arguments of a model's image entry points (embed_image, image_tokens, match_logits' tail)."""
    features = batch["regions"], batch["geometry"], batch["mask"], batch["global"]
    return (*features, batch["tags"]) if "tags" in batch else features


def _batches(n: int, size: int, desc: str):
    """Batch starts 0, size, 2·size, ... below n, with a progress bar (refreshed every 10 s) past four batches."""
    return tqdm(range(0, n, size), desc=desc, mininterval=10, disable=n <= 4 * size)


@torch.no_grad()
def embed_captions(model, captions: CaptionSet, batch_size: int, device, head: str = "embed_text") -> np.ndarray:
    """(N, H) unit caption embeddings from the model's ``head`` (a soft-label student's ``uni_text`` too)."""
    model.eval()
    out = []
    for s in _batches(len(captions), batch_size, "embedding captions"):
        ids, mask = captions.batch(slice(s, s + batch_size))
        out.append(F.normalize(getattr(model, head)(ids.to(device), mask.to(device)), dim=-1).float().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def embed_images(model, store: FeatureStore, image_ids: list[str], batch_size: int, device,
                 head: str = "embed_image") -> np.ndarray:
    """(N, H) unit image embeddings from the model's ``head`` (a soft-label student's ``uni_image`` too)."""
    model.eval()
    out = []
    for s in _batches(len(image_ids), batch_size, "embedding images"):
        batch = image_batch(store, image_ids[s:s + batch_size], device, reads_tags(model))
        out.append(F.normalize(getattr(model, head)(*image_inputs(batch)), dim=-1).float().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def score_pairs(model, captions: CaptionSet, caption_rows: np.ndarray, store: FeatureStore, image_ids: list[str],
                batch_size: int, device, desc: str = "cross-encoding pairs") -> np.ndarray:
    """Second-stage scores of pairs (captions[caption_rows[i]], image_ids[i]). (P,) float32.

    A cross-encoder (``match_logits``) reads each pair jointly; a late-interaction model (``late_interaction``,
    itr.models.dual) encodes each caption and image once and scores pairs from their token sets.
    """
    model.eval()
    caption_rows = np.asarray(caption_rows)
    if getattr(model, "late_interaction", False):
        return _late_pair_scores(model, captions, caption_rows, store, image_ids, batch_size, device)
    out = []
    for s in _batches(len(caption_rows), batch_size, desc):
        ids, mask = captions.batch(caption_rows[s:s + batch_size])
        images = image_batch(store, image_ids[s:s + batch_size], device, reads_tags(model))
        out.append(model.match_logits(ids.to(device), mask.to(device), *image_inputs(images)).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)


@torch.no_grad()
def caption_token_sets(model, captions: CaptionSet, rows: np.ndarray, batch_size: int, device):
    """Token sets of some captions, padded to the longest: ((N, T, d) tokens, (N, T) local mask), on ``device``."""
    model.eval()
    rows = np.asarray(rows)
    t = max(1, int(captions.attention_mask[rows].sum(1).max())) if len(rows) else 1
    tokens, local = [], []
    for s in range(0, len(rows), batch_size):
        r = rows[s:s + batch_size]
        tok, loc = model.text_tokens(captions.input_ids[r][:, :t].to(device), captions.attention_mask[r][:, :t].to(device))
        tokens.append(tok.float())
        local.append(loc)
    return torch.cat(tokens), torch.cat(local)


@torch.no_grad()
def image_token_sets(model, store: FeatureStore, image_ids: list[str], batch_size: int, device):
    """Token sets of some images, every region slot kept: ((N, 1 + R, d) tokens, (N, 1 + R) local mask), on device."""
    model.eval()
    tokens, local = [], []
    for s in range(0, len(image_ids), batch_size):
        batch = {k: v.to(device) for k, v in store.get(image_ids[s:s + batch_size]).items()}
        if reads_tags(model):
            batch["tags"] = store.tags(image_ids[s:s + batch_size])
        tok, loc = model.image_tokens(*image_inputs(batch))
        tokens.append(tok.float())
        local.append(loc)
    return torch.cat(tokens), torch.cat(local)


@torch.no_grad()
def local_score_matrix(model, image, image_local, text, text_local, block: int = 64) -> torch.Tensor:
    """S_l of every image with every caption, from token sets, ``block`` captions at a time. (Ni, Nc) on the CPU."""
    return torch.cat([model.local_scores(image, image_local, text[s:s + block], text_local[s:s + block])
                      for s in range(0, len(text), block)], dim=1).float().cpu()


def _late_pair_scores(model, captions: CaptionSet, caption_rows: np.ndarray, store: FeatureStore,
                      image_ids: list[str], batch_size: int, device) -> np.ndarray:
    """Each distinct caption and image encoded once, then every pair scored from the two token sets."""
    rows, caption_of = np.unique(caption_rows, return_inverse=True)
    images, image_of = np.unique(np.asarray(image_ids, dtype=object), return_inverse=True)
    text, text_local = caption_token_sets(model, captions, rows, batch_size, device)  # (Nc, T, d)
    image, image_local = image_token_sets(model, store, list(images), batch_size, device)  # (Ni, 1 + R, d)
    if len(caption_rows) >= len(rows) * len(images) // 2:  # (nearly) all pairs: whole blocks beat gathering
        full = local_score_matrix(model, image, image_local, text, text_local)  # (Ni, Nc)
        return full[torch.from_numpy(image_of), torch.from_numpy(caption_of)].numpy()
    out, step = [], 16 * batch_size
    for s in _batches(len(caption_rows), step, "scoring pairs from token sets"):
        c, i = caption_of[s:s + step], image_of[s:s + step]
        c, i = torch.from_numpy(c).to(text.device), torch.from_numpy(i).to(image.device)
        out.append(model.pair_scores(image[i], image_local[i], text[c], text_local[c]).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)


def rank_exact(queries: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Top-k item positions per query by inner product, computed exactly with torch. (Q, k)."""
    scores = torch.from_numpy(queries) @ torch.from_numpy(items).T  # (Q, N)
    return torch.topk(scores, min(k, items.shape[0]), dim=1).indices.numpy()


def exact_metrics(image_vecs: np.ndarray, caption_vecs: np.ndarray, image_ids: list[str],
                  caption_image_ids: list[str], ks) -> dict[str, float]:
    """Metrics with exact search over the whole collection (used for validation)."""
    k = max(ks)
    return evaluate_rankings(rank_exact(caption_vecs, image_vecs, k), rank_exact(image_vecs, caption_vecs, k),
                             caption_image_ids, image_ids, ks)


@dataclasses.dataclass
class ModelOnCollection:
    """A trained checkpoint with its tokenizer, and a test collection tokenised for it.

    The first ``n_targets`` of ``image_ids`` are the split's images, distractors (if any) after them.
    """
    model: torch.nn.Module
    checkpoint: dict
    store: object  # a FeatureStore, or itr.collection.StackedStore when there are distractors
    image_ids: list[str]
    captions: CaptionSet
    n_targets: int


def load_on_collection(model_path, target, distractors=(), lang: str | None = None,
                       first_images: int | None = None, device="cpu") -> ModelOnCollection:
    """The checkpoint at ``model_path`` and the collection read by itr.collection.read_collection."""
    from itr.collection import read_collection
    from itr.models import load_trained

    images, caps, store, n_targets = read_collection(target, list(distractors), lang, first_images)
    model, tokenizer, ckpt = load_trained(model_path, store, device)
    captions = CaptionSet.from_frame(caps, tokenizer, ckpt["text_encoder"]["max_text_len"])
    return ModelOnCollection(model, ckpt, store, list(images["image_id"]), captions, n_targets)
