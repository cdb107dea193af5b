"""A tiny randomly initialised BERT with a word-level vocabulary, built offline.

Used by tests and the CI config so the whole DAG runs in seconds without any pretrained
weights. The vocabulary covers every word ShapeCaptions can produce, in every language and domain.

Example:
    >>> make_tiny_bert("/tmp/tiny-bert")          # then text_encoder.path: /tmp/tiny-bert
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from itr.models.hf import BertConfig, BertModel, BertTokenizerFast

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def shapes_vocabulary() -> list[str]:
    from itr.data import shapes
    from itr.data.captions import vocabulary

    return sorted(vocabulary(shapes.KINDS, shapes.COLOURS, shapes.SIZES, shapes.DOMAINS)) + [",", ":"]


def make_tiny_bert(out_dir: str | Path, hidden: int = 32, layers: int = 2, seed: int = 0, dropout: float = 0.1) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL + shapes_vocabulary()
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(out / "vocab.txt"), do_lower_case=True).save_pretrained(out)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=64, type_vocab_size=2,
                     hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    BertModel(cfg, add_pooling_layer=False).save_pretrained(out)
    return out


if __name__ == "__main__":
    print(make_tiny_bert(sys.argv[1] if len(sys.argv) > 1 else ".test/tiny-bert"))
