"""A single-stream transformer run *disentangled*, with two heads on its tokens (Messina et al. 2022).

The backbone (the single-stream CE/JOINT transformer, itr.models.encoder, as Messina et al. start from VinVL's retrieval model)
reads each modality alone, so both sides can be computed once and cached:

* text pass: ``[CLS] w_1 ... w_n [SEP]``; the words are every real token but [CLS] and [SEP];
* image pass: ``[CLS] tag_1 ... tag_m [SEP]`` (the detector's class names as words, VinVL's object tags; off with
  ``object_tags=False``) followed by the whole-image feature and the regions; the outputs kept are the image
  slots (whole image and every real region).

Heads:

* **alignment**: last-layer tokens, L2-normalised; A(I, C) = Σ_{words of C} max_{regions of I} cos (TERAN's MrSw,
  itr.models.alignment). No real word or region is dropped (the release drops region slot 0 and the last word);
* **matching**: a small transformer encoder per modality over that side's backbone tokens; output token 0
  (the text's [CLS], the image's whole-image slot), L2-normalised; M(I, C) = dot product. These embeddings are
  what the faiss index holds (``embed_text`` / ``embed_image``); ``match_logits`` scores pairs by alignment,
  so the rerank rows run the alignment head unchanged.

``freeze_backbone`` keeps the backbone in eval mode under no_grad (the paper's frozen variants A, T, D): only
the heads train, and the backbone's weights stay bit-identical.

Example:
    >>> model = DisentangledEncoder(backbone, layers=2, heads=4, ff=384,
    ...                             tag_vocab=tag_vocabulary(tokenizer, store.tag_names()))
    >>> text, words = model.text_tokens(ids, mask)                     # (B, T, H) last-layer tokens, (B, T) bool
    >>> image, regions = model.image_tokens(*images, tags=[["red circle"], []])   # (B, 1 + R, H), (B, 1 + R)
    >>> model.alignment(image, regions, text, words).shape             # (B_images, B_captions)
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from itr.models.alignment import local_similarity, pair_local_similarity
from itr.models.encoder import MultimodalEncoder

HEAD_KEYS = ("layers", "heads", "ff", "dropout", "object_tags", "freeze_backbone")


def _head(dim: int, heads: int, ff: int, layers: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, ff, dropout, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class DisentangledEncoder(nn.Module):
    """The backbone plus the matching heads (one per modality); the alignment head has no weights."""

    late_interaction = True  # the alignment head scores pairs from token sets encoded once (itr.models.encode)

    def __init__(self, backbone: MultimodalEncoder, layers: int = 2, heads: int = 4, ff: int = 384,
                 dropout: float = 0.1, object_tags: bool = True, freeze_backbone: bool = False,
                 tag_vocab: dict[str, list[int]] | None = None):
        super().__init__()
        self.backbone = backbone
        h = backbone.bert.config.hidden_size
        self.text_head = _head(h, heads, ff, layers, dropout)
        self.image_head = _head(h, heads, ff, layers, dropout)
        self.config = {"layers": layers, "heads": heads, "ff": ff, "dropout": dropout, "object_tags": object_tags,
                       "freeze_backbone": freeze_backbone}
        self.object_tags, self.freeze_backbone = object_tags, freeze_backbone
        # tag name -> its word-piece ids: the model tokenises its own tags, so inference needs no tokenizer
        self.tag_vocab = {name: list(ids) for name, ids in (tag_vocab or {}).items()}
        self.sep_id = 102 if backbone.bert.config.vocab_size > 102 else 0
        if freeze_backbone:
            backbone.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()  # a frozen feature extractor: no dropout either
        return self

    def _backbone(self):
        return torch.no_grad() if self.freeze_backbone else contextlib.nullcontext()

    # ------------------------------------------------------------------ backbone passes
    def text_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """(B, T) tokens -> ((B, T, H) last-layer tokens, (B, T) mask of the words: real tokens but the
        first ([CLS]) and the last real one ([SEP]))."""
        with self._backbone():
            hidden = self.backbone.encode(self.backbone.text_embeddings(input_ids), attention_mask)  # (B, T, H)
        real = attention_mask.bool()
        last = real.sum(1, keepdim=True) - 1  # (B, 1): the [SEP] of each caption
        position = torch.arange(real.shape[1], device=real.device)[None]  # (1, T)
        words = real & (position > 0) & (position != last)
        return hidden, words

    def tag_tensors(self, tags: list[list[str]], device) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image, its tag names -> ((B, L) word-piece ids of the names in order, (B, L) mask), L >= 1."""
        unknown = sorted({t for names in tags for t in names} - set(self.tag_vocab))
        if unknown:
            raise ValueError(f"object tags {unknown[:5]} are not in this model's tag vocabulary (the tags of the "
                             "feature store it was trained on); search features of that store's detector, or retrain "
                             "on a store whose images show these classes")
        pieces = [[i for name in names for i in self.tag_vocab[name]] for names in tags]
        n = max(1, max(map(len, pieces), default=0))
        ids = torch.zeros(len(tags), n, dtype=torch.long)
        tag_mask = torch.zeros(len(tags), n, dtype=torch.long)
        for row, p in enumerate(pieces):
            ids[row, :len(p)], tag_mask[row, :len(p)] = torch.tensor(p, dtype=torch.long), 1
        return ids.to(device), tag_mask.to(device)

    def image_sequence(self, regions, geometry, mask, global_feat, tags=None):
        """The image pass's input: ((B, 1 + L + 1 + R, H) embeddings, (B, ...) mask, L + 1) where L tag tokens and a
        [SEP] follow [CLS] when object tags are on. ``tags``: per image, its tag names (FeatureStore.tags)."""
        emb, full_mask = self.backbone.image_embeddings(regions, geometry, mask, global_feat)  # [CLS], global, regions
        if not self.object_tags:
            return emb, full_mask, 0
        if tags is None:
            raise ValueError("this model reads object tags (object_tags=True) but none were given")
        tag_ids, tag_mask = self.tag_tensors(tags, emb.device)
        b, n = tag_ids.shape
        ids = torch.cat([tag_ids, torch.full((b, 1), self.sep_id, dtype=tag_ids.dtype, device=tag_ids.device)], 1)
        # positions 1..L after [CLS] (position 0); each image's [SEP] takes the position after its own last tag, so
        # an image embeds the same whatever the other images of its batch (padded tag slots are masked out)
        tag_positions = torch.arange(1, n + 1, device=ids.device).expand(b, -1)  # (B, L)
        sep_position = tag_mask.long().sum(1, keepdim=True) + 1  # (B, 1)
        words = self.backbone.bert.embeddings(input_ids=ids, token_type_ids=torch.ones_like(ids),
                                              position_ids=torch.cat([tag_positions, sep_position], 1))  # (B, L+1, H)
        sep_mask = tag_mask.new_ones(b, 1)
        seq = torch.cat([emb[:, :1], words, emb[:, 1:]], dim=1)
        seq_mask = torch.cat([full_mask[:, :1], tag_mask, sep_mask, full_mask[:, 1:]], dim=1)
        return seq, seq_mask, n + 1

    def image_tokens(self, regions, geometry, mask, global_feat, tags=None):
        """Image features -> ((B, 1 + R, H) last-layer tokens of the whole image and the regions, (B, 1 + R)
        mask of the real ones)."""
        seq, seq_mask, n_text = self.image_sequence(regions, geometry, mask, global_feat, tags)
        with self._backbone():
            hidden = self.backbone.encode(seq, seq_mask)
        start = 1 + n_text  # after [CLS] and the tags
        return hidden[:, start:], seq_mask[:, start:].bool()

    # ------------------------------------------------------------------ heads
    @staticmethod
    def alignment(image, image_mask, text, words) -> torch.Tensor:
        """(A images, C captions) alignment scores: Σ over each caption's words of the best region's cosine."""
        return local_similarity(F.normalize(image, dim=-1), image_mask, F.normalize(text, dim=-1), words, "sum")

    @staticmethod
    def pair_alignment(image, image_mask, text, words) -> torch.Tensor:
        """(P,) alignment scores of aligned pairs (image p, caption p)."""
        return pair_local_similarity(F.normalize(image, dim=-1), image_mask, F.normalize(text, dim=-1), words,
                                     "sum")

    def local_scores(self, image, image_mask, text, words) -> torch.Tensor:
        """The alignment of token sets (image_tokens, text_tokens): late interaction (itr.models.encode)."""
        return self.alignment(image, image_mask, text, words)

    def pair_scores(self, image, image_mask, text, words) -> torch.Tensor:
        return self.pair_alignment(image, image_mask, text, words)

    def match_text(self, hidden, attention_mask) -> torch.Tensor:
        """The matching head over a caption's backbone tokens -> (B, H) unit vector (its [CLS] slot)."""
        out = self.text_head(hidden, src_key_padding_mask=~attention_mask.bool())
        return F.normalize(out[:, 0], dim=-1)

    def match_image(self, hidden, image_mask) -> torch.Tensor:
        """The matching head over an image's backbone tokens -> (B, H) unit vector (its whole-image slot)."""
        out = self.image_head(hidden, src_key_padding_mask=~image_mask.bool())
        return F.normalize(out[:, 0], dim=-1)

    # ------------------------------------------------------------------ the retrieval interface (itr.models)
    def embed_text(self, input_ids, attention_mask) -> torch.Tensor:
        hidden, _ = self.text_tokens(input_ids, attention_mask)
        return self.match_text(hidden, attention_mask)

    def embed_image(self, regions, geometry, mask, global_feat, tags=None) -> torch.Tensor:
        return self.match_image(*self.image_tokens(regions, geometry, mask, global_feat, tags))

    def match_logits(self, input_ids, attention_mask, regions, geometry, mask, global_feat, tags=None):
        """(B,) alignment scores of pairs (caption b, image b): what the alignment head reranks with."""
        text, words = self.text_tokens(input_ids, attention_mask)
        image, image_mask = self.image_tokens(regions, geometry, mask, global_feat, tags)
        return self.pair_alignment(image, image_mask, text, words)

    def architecture(self) -> dict:
        """What rebuilds this model from a checkpoint without the original weights (itr.models)."""
        return {"name": "disentangled_encoder", "backbone": self.backbone.architecture(), **self.config,
                "tag_vocab": self.tag_vocab}

    @classmethod
    def from_architecture(cls, arch: dict) -> "DisentangledEncoder":
        return cls(MultimodalEncoder.from_architecture(arch["backbone"]), **{k: arch[k] for k in HEAD_KEYS},
                   tag_vocab=arch.get("tag_vocab"))


def tag_vocabulary(tokenizer, names) -> dict[str, list[int]]:
    """Each object tag name -> its word pieces (no [CLS]/[SEP]): the vocabulary a DisentangledEncoder keeps."""
    return {name: tokenizer(name, add_special_tokens=False)["input_ids"] for name in sorted(names)}


def from_checkpoint(path, store, cfg, text_encoder: dict) -> tuple[DisentangledEncoder, object]:
    """The model that fine-tunes the checkpoint at ``path`` -> (model, tokenizer).

    A single-stream checkpoint (``multimodal_encoder``, the CE/JOINT model) becomes the backbone under new matching
    heads; a ``disentangled_encoder`` checkpoint (say, variant A/ft, which T, D and A/ft + D/ft start from) keeps
    its heads too. ``cfg`` (a DisentangledConfig) sets the heads' shape and the switches (object tags, a frozen
    backbone); ``text_encoder``: the run's text encoder settings, which must be the checkpoint's (same tokenizer).
    """
    from itr.checkpoint import CheckpointError
    from itr.models import load_trained

    trained, tokenizer, ckpt = load_trained(path, store, "cpu")
    if ckpt["text_encoder"] != text_encoder:
        raise CheckpointError(f"{path} was trained with text encoder {ckpt['text_encoder']}, this run reads "
                              f"{text_encoder}; fine-tune with the checkpoint's text_encoder settings")
    if cfg.object_tags:
        store.tags([])  # raises, naming the fix, when the store records no object tags
    heads = {k: getattr(cfg, k) for k in HEAD_KEYS}
    vocab = tag_vocabulary(tokenizer, store.tag_names()) if cfg.object_tags else {}
    name = ckpt["architecture"]["name"]
    if name == "multimodal_encoder":
        return DisentangledEncoder(trained, **heads, tag_vocab=vocab), tokenizer
    if name != "disentangled_encoder":
        raise CheckpointError(f"{path} holds a {name} model; a disentangled model starts from a single-stream "
                              "(multimodal_encoder) or a disentangled_encoder checkpoint")
    shape = ("layers", "heads", "ff")
    if any(ckpt["architecture"][k] != heads[k] for k in shape):
        raise CheckpointError(f"{path} has matching heads {[ckpt['architecture'][k] for k in shape]} (layers, heads, "
                              f"ff), this config asks for {[heads[k] for k in shape]}; use the checkpoint's shape")
    model = DisentangledEncoder(trained.backbone, **heads, tag_vocab=vocab)
    model.load_state_dict(trained.state_dict())
    return model, tokenizer
