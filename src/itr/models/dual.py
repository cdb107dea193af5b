"""Two homogeneous transformers, one per modality, whose outputs serve global *and* local retrieval.

Each side turns its input into a token sequence and runs the same transformer structure over it:

* text: the text tower's word tokens ([CLS] w_1 ... w_n [SEP]), projected to ``dim``;
* image: token 0 is the whole-image feature with the whole-image box, tokens 1..R the detected regions,
  each ``[feature ‖ box]`` projected to ``dim`` (Liu et al. 2023, §III-A: v_i = [f_i, b_i], b_0 = (0, 0, w, h)).

Output token 0 is the global embedding (L2-normalised: the global similarity S_g is a dot product, eq. 1);
the other real tokens are the local ones: the regions, and the words without [CLS], [SEP] and padding.
The local similarity S_l (eq. 3) aligns every word with its best region:

    S_l(X, Y) = scale · reduce_{j in Y} max_{i in X} <x̂_i, ŷ_j>,   reduce = mean (eq. 3) or sum (TERAN's MrSw)

Each side's transformer is two stages (``stage1_layers`` + ``stage2_layers``). ``detach_stage1`` stops the
gradient between them, as the released code does: then nothing below stage 2 (text tower, projections,
stage 1) learns. The paper trains end to end (``detach_stage1=False``).

Example:
    >>> model = DualTransformer(bert, region_dim=256, dim=256)
    >>> tokens, local = model.text_tokens(ids, mask)           # (B, T, 256) unit vectors, (B, T) bool
    >>> model.embed_text(ids, mask).shape                      # the global embedding: token 0
    torch.Size([B, 256])
    >>> local_similarity(*model.image_tokens(*images), tokens, local).shape   # (B_images, B_captions)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from itr.models.alignment import REDUCTIONS, local_similarity, pair_local_similarity
from itr.models.bert import BertConfig, BertModel

GEOMETRY_DIM = 6  # the feature store's box: x1, y1, x2, y2, w, h, normalised by the image size
WHOLE_IMAGE_BOX = (0.0, 0.0, 1.0, 1.0, 1.0, 1.0)


def _stage(dim: int, heads: int, ff: int, layers: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, ff, dropout, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class _Side(nn.Module):
    """One modality's transformer: stage 1, then stage 2 (optionally cut off from stage 1's gradient)."""

    def __init__(self, dim: int, heads: int, ff: int, stage1_layers: int, stage2_layers: int, dropout: float):
        super().__init__()
        self.stage1 = _stage(dim, heads, ff, stage1_layers, dropout)
        self.stage2 = _stage(dim, heads, ff, stage2_layers, dropout)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, detach_stage1: bool) -> torch.Tensor:
        padding = ~mask.bool()  # (B, T): True where there is no token
        hidden = self.stage1(tokens, src_key_padding_mask=padding)  # (B, T, dim)
        if detach_stage1:
            hidden = hidden.detach()
        return self.stage2(hidden, src_key_padding_mask=padding)  # (B, T, dim)


class DualTransformer(nn.Module):
    """Text tower + text transformer, region projection + image transformer, one embedding space."""

    late_interaction = True  # pairs are scored from token sets encoded once per item (itr.models.encode)

    def __init__(self, bert: BertModel, region_dim: int, dim: int = 256, heads: int = 4, ff: int = 512,
                 stage1_layers: int = 2, stage2_layers: int = 2, dropout: float = 0.1, detach_stage1: bool = False,
                 local_reduction: str = "mean", local_scale: float = 1.0):
        super().__init__()
        if local_reduction not in REDUCTIONS:
            raise ValueError(f"local_reduction={local_reduction!r}; choose one of {REDUCTIONS}")
        self.bert = bert
        self.config = {"region_dim": region_dim, "dim": dim, "heads": heads, "ff": ff, "stage1_layers": stage1_layers,
                       "stage2_layers": stage2_layers, "dropout": dropout, "detach_stage1": detach_stage1,
                       "local_reduction": local_reduction, "local_scale": local_scale}
        self.detach_stage1 = detach_stage1
        self.local_reduction, self.local_scale = local_reduction, local_scale
        self.text_proj = nn.Linear(bert.config.hidden_size, dim)
        self.image_proj = nn.Linear(region_dim + GEOMETRY_DIM, dim)
        self.text = _Side(dim, heads, ff, stage1_layers, stage2_layers, dropout)
        self.image = _Side(dim, heads, ff, stage1_layers, stage2_layers, dropout)

    # ------------------------------------------------------------------ token sets
    def text_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """(B, T) ids -> ((B, T, dim) unit tokens, (B, T) local mask: words only, no [CLS]/[SEP]/padding)."""
        words = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
        out = self.text(self.text_proj(words), attention_mask, self.detach_stage1)  # (B, T, dim)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None]  # (1, T)
        last = attention_mask.sum(1, keepdim=True) - 1  # (B, 1): [SEP], the last real token
        local = attention_mask.bool() & (positions > 0) & (positions < last)  # (B, T)
        return F.normalize(out, dim=-1), local

    def image_tokens(self, regions, geometry, mask, global_feat):
        """(B, R, D) regions -> ((B, 1 + R, dim) unit tokens, (B, 1 + R) local mask: the real regions)."""
        b = regions.shape[0]
        whole = geometry.new_tensor(WHOLE_IMAGE_BOX).expand(b, 1, GEOMETRY_DIM)  # (B, 1, 6)
        feats = torch.cat([global_feat[:, None], regions], dim=1)  # (B, 1 + R, D)
        boxes = torch.cat([whole, geometry], dim=1)  # (B, 1 + R, 6)
        attend = torch.cat([mask.new_ones(b, 1), mask], dim=1).bool()  # (B, 1 + R): token 0 always
        out = self.image(self.image_proj(torch.cat([feats, boxes], dim=-1)), attend, self.detach_stage1)
        local = torch.cat([mask.new_zeros(b, 1), mask], dim=1).bool()  # (B, 1 + R): regions only
        return F.normalize(out, dim=-1), local

    # ------------------------------------------------------------ global embeddings
    def embed_text(self, input_ids, attention_mask) -> torch.Tensor:
        """(B, T) tokens -> (B, dim) global caption embedding (output token 0, unit length)."""
        return self.text_tokens(input_ids, attention_mask)[0][:, 0]

    def embed_image(self, regions, geometry, mask, global_feat) -> torch.Tensor:
        """(B, R, D) regions -> (B, dim) global image embedding (output token 0, unit length)."""
        return self.image_tokens(regions, geometry, mask, global_feat)[0][:, 0]

    def local_scores(self, image, image_local, text, text_local) -> torch.Tensor:
        """S_l(image, caption) of every image and caption given as token sets. (A, C)"""
        return local_similarity(image, image_local, text, text_local, self.local_reduction, self.local_scale)

    def pair_scores(self, image, image_local, text, text_local) -> torch.Tensor:
        """S_l of aligned pairs: image token set p with caption token set p. (P,)"""
        return pair_local_similarity(image, image_local, text, text_local, self.local_reduction, self.local_scale)

    def architecture(self) -> dict:
        """What rebuilds this model from a checkpoint without the original weights (itr.models)."""
        return {"name": "dual_transformer", "bert_config": self.bert.config.to_dict(), **self.config}

    @classmethod
    def from_architecture(cls, arch: dict) -> "DualTransformer":
        bert = BertModel(BertConfig.from_dict(arch["bert_config"]))
        return cls(bert, **{k: v for k, v in arch.items() if k not in ("name", "bert_config")})


ARCHITECTURE_KEYS = ("dim", "heads", "ff", "stage1_layers", "stage2_layers", "dropout", "detach_stage1",
                     "local_reduction", "local_scale")


def load_dual(path: str, region_dim: int, cfg, layers: str = "all") -> tuple[DualTransformer, object]:
    """A dual transformer on a pretrained text tower (itr.models.encoder.load_text_tower) -> (model, tokenizer).

    ``cfg`` holds the architecture keys (``ARCHITECTURE_KEYS``; the dual transformer's params section has them).
    """
    from itr.models.encoder import load_text_tower, load_tokenizer

    arch = {k: getattr(cfg, k) for k in ARCHITECTURE_KEYS}
    return DualTransformer(load_text_tower(path, layers), region_dim, **arch), load_tokenizer(path)

