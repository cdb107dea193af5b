"""A dual encoder with two heads per side, the student of soft-label alignment (Huang et al. 2024).

The towers are the bi-encoder's (itr.models.encoder: one transformer reads a caption or an image alone), or, for a
detector-free student, the text tower beside an image tower of its own (``image_tower``: a small transformer from
scratch over raw-pixel patches, ``pixel_tower``; a ViT, since the encoder's region projection of a flattened patch
is a ViT's patch embedding). Each side ends in two heads, each ``LayerNorm -> Linear(H, H)`` with weights drawn from
N(0, 0.02) as released:

* the cross-modal head, whose embeddings retrieval uses (``embed_text``, ``embed_image``: the bi-encoder interface,
  so indexing, search and serving need nothing new);
* the uni-modal head, for caption->caption and image->image search (``uni_text``, ``uni_image``), trained by USA.

The learned temperatures live here too (they are trained with the weights): ITC's (init 0.05), CSA's student
temperature (0.45, one for both directions) and USA's image and text ones (0.45 each). ``clamp_temperatures``
keeps them in the release's ranges; the objective calls it before every step.

Example:
    >>> model = SoftLabelDualEncoder(MultimodalEncoder(bert, region_dim=256))
    >>> model.embed_text(ids, mask).shape, model.uni_text(ids, mask).shape   # (B, H) each
    (torch.Size([2, 384]), torch.Size([2, 384]))
"""
from __future__ import annotations

import torch
from torch import nn

from itr.models.encoder import MultimodalEncoder
from itr.models.bert import BertConfig, BertModel

# The release's clamp ranges (seed-code-notes §1, ``clamp_tau``): ITC, CSA's student, USA's students.
TEMPERATURE_RANGES = {"itc_tau": (0.01, 0.10), "csa_tau": (0.10, 0.99), "usa_image_tau": (0.10, 1.00),
                      "usa_text_tau": (0.10, 1.00)}


def head(width: int, eps: float) -> nn.Sequential:
    linear = nn.Linear(width, width)
    nn.init.normal_(linear.weight, std=0.02)
    nn.init.zeros_(linear.bias)
    return nn.Sequential(nn.LayerNorm(width, eps=eps), linear)


def pixel_tower(width: int, region_dim: int, layers: int, heads: int) -> MultimodalEncoder:
    """A randomly initialised transformer of ``layers`` layers and ``heads`` heads at ``width`` over ``region_dim``-d
    patch tokens: ``[CLS]``, the thumbnail and the patches, each ``LayerNorm(W_r . patch) + W_g . box`` (the
    encoder's image tokens), mean-pooled. ``width`` is the text tower's, so both sides' heads meet."""
    if width % heads:
        raise ValueError(f"softlabel.pixel_tower.heads = {heads} does not divide the text tower's width {width}; "
                         "pick a divisor")
    config = BertConfig(vocab_size=1, hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=4 * width, max_position_embeddings=8, type_vocab_size=2)
    return MultimodalEncoder(BertModel(config), region_dim)


class SoftLabelDualEncoder(nn.Module):
    """Bi-encoder towers with a cross-modal and a uni-modal head per side, and the learned temperatures of soft-label
    alignment. ``image_tower``: the images' own tower (None: ``towers`` read images too)."""

    def __init__(self, towers: MultimodalEncoder, itc_tau: float = 0.05, soft_tau: float = 0.45,
                 image_tower: MultimodalEncoder | None = None):
        super().__init__()
        if towers.match_head is not None:
            raise ValueError("a soft-label student is a dual encoder: build its towers without a match head")
        self.towers, self.image_tower = towers, image_tower
        h, eps = towers.bert.config.hidden_size, towers.bert.config.layer_norm_eps
        if image_tower is not None and image_tower.bert.config.hidden_size != h:
            raise ValueError(f"the image tower's width {image_tower.bert.config.hidden_size} is not the text tower's {h}")
        self.cross_text_head, self.cross_image_head = head(h, eps), head(h, eps)
        self.uni_text_head, self.uni_image_head = head(h, eps), head(h, eps)
        self.itc_tau = nn.Parameter(torch.tensor(itc_tau))
        self.csa_tau = nn.Parameter(torch.tensor(soft_tau))
        self.usa_image_tau = nn.Parameter(torch.tensor(soft_tau))
        self.usa_text_tau = nn.Parameter(torch.tensor(soft_tau))
        self.region_dim = (image_tower or towers).region_dim

    @torch.no_grad()
    def clamp_temperatures(self) -> None:
        for name, (lo, hi) in TEMPERATURE_RANGES.items():
            getattr(self, name).clamp_(lo, hi)

    def text_features(self, input_ids, attention_mask) -> torch.Tensor:
        """(B, T) tokens -> (B, H) the tower's pooled output, before either head."""
        return self.towers.embed_text(input_ids, attention_mask)

    def image_features(self, regions, geometry, mask, global_feat) -> torch.Tensor:
        """(B, R, D) regions -> (B, H) the tower's pooled output, before either head."""
        return (self.image_tower or self.towers).embed_image(regions, geometry, mask, global_feat)

    def embed_text(self, input_ids, attention_mask) -> torch.Tensor:
        """(B, H) cross-modal caption embeddings (retrieval)."""
        return self.cross_text_head(self.text_features(input_ids, attention_mask))

    def embed_image(self, regions, geometry, mask, global_feat) -> torch.Tensor:
        """(B, H) cross-modal image embeddings (retrieval)."""
        return self.cross_image_head(self.image_features(regions, geometry, mask, global_feat))

    def uni_text(self, input_ids, attention_mask) -> torch.Tensor:
        """(B, H) uni-modal caption embeddings (caption->caption search)."""
        return self.uni_text_head(self.text_features(input_ids, attention_mask))

    def uni_image(self, regions, geometry, mask, global_feat) -> torch.Tensor:
        """(B, H) uni-modal image embeddings (image->image search)."""
        return self.uni_image_head(self.image_features(regions, geometry, mask, global_feat))

    def architecture(self) -> dict:
        arch = {"name": "softlabel_dual_encoder", "towers": self.towers.architecture()}
        return arch | ({"image_tower": self.image_tower.architecture()} if self.image_tower is not None else {})

    @classmethod
    def from_architecture(cls, arch: dict) -> "SoftLabelDualEncoder":
        image = arch.get("image_tower")
        return cls(MultimodalEncoder.from_architecture(arch["towers"]),
                   image_tower=MultimodalEncoder.from_architecture(image) if image else None)
