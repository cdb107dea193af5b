"""BERT in plain torch, and its fast tokenizer, reading Hugging Face checkpoint folders without importing transformers.

Why not transformers' BertModel: importing it costs about 3.5 s of CPU in every process (transformers pulls in
torch._dynamo, torch.distributed.tensor, sympy and its generation stack), and the workflow starts one process per job:
~160 jobs of the tiny CI build load a text tower, where that import was about 40 % of their CPU. The encoder itself is
the few modules below. Module and parameter names are Hugging Face's (``embeddings.word_embeddings.weight``,
``encoder.layer.0.attention.self.query.weight``, ...), so a checkpoint folder (``config.json``, ``model.safetensors``
or ``pytorch_model.bin``, ``tokenizer.json``) loads as it is, and the weights initialise as ``BertModel(config)``
initialises them. tests/test_bert.py checks outputs, initialisation and token ids against transformers itself.

Only what this project uses: absolute positions, no pooler, no cache, no cross-attention; ``gelu``/``relu``.

Example:
    >>> bert = BertModel.from_pretrained(resolve_text_encoder("minilm"))
    >>> tok = Tokenizer.from_pretrained(resolve_text_encoder("minilm"))
    >>> batch = tok(["a red circle", "two blue squares"], padding=True, truncation=True, max_length=32,
    ...             return_tensors="pt")
    >>> bert(batch["input_ids"], batch["attention_mask"]).last_hidden_state.shape
    torch.Size([2, 6, 384])
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}  # transformers' "gelu" is the exact (erf) GELU
DEFAULTS = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                max_position_embeddings=512, type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12,
                pad_token_id=0, position_embedding_type="absolute")


class BertConfig:
    """A BERT config: the keys of a Hugging Face ``config.json`` as attributes, every key kept (``to_dict``
    gives back what was read, with any edits), the encoder's keys defaulting as transformers defaults them."""

    def __init__(self, **keys):
        self.__dict__.update({**DEFAULTS, **keys})
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported; use one of {sorted(ACTIVATIONS)}")
        if self.position_embedding_type != "absolute":
            raise ValueError(f"position_embedding_type {self.position_embedding_type!r}: only absolute positions")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of {self.num_attention_heads} heads")

    @classmethod
    def from_dict(cls, keys: dict) -> "BertConfig":
        return cls(**copy.deepcopy(keys))

    def to_dict(self) -> dict:
        return copy.deepcopy(self.__dict__)


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor  # (B, T, H)


class BertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, LayerNorm, dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)  # (B, T, H)
        b, t = inputs_embeds.shape[:2]
        if position_ids is None:  # (1, T), broadcast: its gradient sums the batch before the gather's backward, as
            # transformers' does; (B, T) ids give the same forward but another summation order, so training drifts
            position_ids = torch.arange(t, device=inputs_embeds.device).unsqueeze(0)
        if token_type_ids is None:
            token_type_ids = torch.zeros((b, t), dtype=torch.long, device=inputs_embeds.device)
        x = inputs_embeds + self.token_type_embeddings(token_type_ids) + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.heads, h = config.num_attention_heads, config.hidden_size
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.dropout_prob = config.attention_probs_dropout_prob

    def forward(self, x: torch.Tensor, additive_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, h = x.shape
        split = lambda y: y.view(b, t, self.heads, h // self.heads).transpose(1, 2)  # noqa: E731  (B, heads, T, h/heads)
        out = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)),
                                             attn_mask=additive_mask,
                                             dropout_p=self.dropout_prob if self.training else 0.0)
        return out.transpose(1, 2).reshape(b, t, h)  # (B, T, H)


class BertResidual(nn.Module):
    """dense -> dropout -> LayerNorm(· + the sublayer's input): transformers' BertSelfOutput and BertOutput."""

    def __init__(self, config: BertConfig, inner: int):
        super().__init__()
        self.dense = nn.Linear(inner, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertResidual(config, config.hidden_size)

    def forward(self, x, additive_mask):
        return self.output(self.self(x, additive_mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, x):
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertResidual(config, config.intermediate_size)

    def forward(self, x, additive_mask):
        attended = self.attention(x, additive_mask)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> EncoderOutput:
        """(B, T, H) embeddings; ``attention_mask``: additive, broadcastable to (B, heads, T, T) (0 where attended,
        the dtype's minimum where not), as transformers' encoder takes it."""
        for layer in self.layer:
            hidden_states = layer(hidden_states, attention_mask)
        return EncoderOutput(hidden_states)


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) 1/0 mask of real tokens -> (B, 1, 1, T) additive attention mask."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class BertModel(nn.Module):
    """The BERT encoder (no pooler): ``model(input_ids, attention_mask).last_hidden_state`` is (B, T, H)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.apply(self._init_weights)  # as transformers' post_init: children first, in the order they were made

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
            module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    @property
    def device(self) -> torch.device:
        return self.embeddings.word_embeddings.weight.device

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> EncoderOutput:
        embeds = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)  # (B, T, H)
        mask = None if attention_mask is None else additive_mask(attention_mask, embeds.dtype)
        return self.encoder(embeds, attention_mask=mask)

    @classmethod
    def from_pretrained(cls, folder) -> "BertModel":
        """The encoder of a Hugging Face BERT checkpoint folder (a ``BertModel``'s, or a task model's: ``bert.``
        prefixes, the pooler and task heads are left out). The weights the models built on it add initialise
        as they would after transformers' ``from_pretrained``: the global random state is left as it was; and like
        that one it returns the model in eval mode."""
        folder = Path(folder)
        config = BertConfig.from_dict(json.loads((folder / "config.json").read_text()))
        with torch.random.fork_rng(devices=[]):  # the initial weights, overwritten below, draw on a forked state
            model = cls(config)
        weights = _read_weights(folder)
        # TensorFlow-era names (LayerNorm.gamma / .beta), renamed as transformers renames them
        state = {k.removeprefix("bert.").replace("LayerNorm.gamma", "LayerNorm.weight")
                 .replace("LayerNorm.beta", "LayerNorm.bias"): v for k, v in weights.items()}
        wanted = model.state_dict()
        missing = sorted(set(wanted) - set(state))
        if missing:
            raise ValueError(f"{folder}: not a BERT checkpoint this encoder reads: no {missing[:3]} "
                             f"({len(missing)} weights missing)")
        model.load_state_dict({k: state[k] for k in wanted})
        return model.eval()  # as transformers returns it: a training loop's model.train() turns dropout on


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    if (folder / "model.safetensors").exists():
        from safetensors.torch import load_file

        return load_file(folder / "model.safetensors")
    if (folder / "pytorch_model.bin").exists():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{folder}: no model.safetensors or pytorch_model.bin")


class Encoding(dict):
    """Token ids and attention mask of a batch (``encoding["input_ids"]``); ``.to(device)`` moves tensors."""

    def to(self, device) -> "Encoding":
        return Encoding({k: v.to(device) for k, v in self.items()})


class Tokenizer:
    """A fast tokenizer file (``tokenizer.json``, Hugging Face's ``tokenizers``) behind the calls this project makes:
    ``tok(texts, padding=True, truncation=True, max_length=L, return_tensors="pt")`` and
    ``tok(text, add_special_tokens=False)["input_ids"]``, as transformers' fast BERT tokenizer answers them."""

    def __init__(self, backend, pad_token: str = "[PAD]"):
        self.backend = backend
        self.backend.no_truncation()  # a saved file may carry its own settings: each call sets what it asks for
        self.backend.no_padding()
        self.pad_token, self.pad_id = pad_token, backend.token_to_id(pad_token)
        if self.pad_id is None:
            raise ValueError(f"the tokenizer has no {pad_token} token")

    @classmethod
    def from_pretrained(cls, folder) -> "Tokenizer":
        """The folder's ``tokenizer.json``, its normaliser set from ``tokenizer_config.json`` where the two disagree
        (lower-casing, accents, Chinese characters), and its pad token, as transformers' BertTokenizerFast loads it."""
        from tokenizers import Tokenizer as Backend, normalizers

        folder = Path(folder)
        if not (folder / "tokenizer.json").exists():
            raise FileNotFoundError(f"{folder}: no tokenizer.json (save the tokenizer with a fast tokenizer's "
                                    "save_pretrained)")
        backend = Backend.from_file(str(folder / "tokenizer.json"))
        config = _read_json(folder / "tokenizer_config.json")
        wanted = {"lowercase": config.get("do_lower_case", True), "strip_accents": config.get("strip_accents"),
                  "handle_chinese_chars": config.get("tokenize_chinese_chars", True)}
        state = json.loads(backend.normalizer.__getstate__()) if backend.normalizer is not None else None
        if state is not None and any(state.get(k, v) != v for k, v in wanted.items()):
            backend.normalizer = getattr(normalizers, state.pop("type"))(**{**state, **wanted})
        pad = _read_json(folder / "special_tokens_map.json").get("pad_token", config.get("pad_token", "[PAD]"))
        return cls(backend, pad["content"] if isinstance(pad, dict) else pad)

    def __call__(self, texts, padding: bool = False, truncation: bool = False, max_length: int | None = None,
                 return_tensors: str | None = None, add_special_tokens: bool = True) -> Encoding:
        single = isinstance(texts, str)
        if truncation:
            if max_length is None:
                raise ValueError("truncation needs max_length")
            self.backend.enable_truncation(max_length)
        else:
            self.backend.no_truncation()
        if padding:
            self.backend.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token)
        else:
            self.backend.no_padding()
        encoded = self.backend.encode_batch([texts] if single else list(texts), add_special_tokens=add_special_tokens)
        ids, mask = [e.ids for e in encoded], [e.attention_mask for e in encoded]
        if return_tensors == "pt":
            return Encoding(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask))
        if return_tensors is not None:
            raise ValueError(f"return_tensors={return_tensors!r}: only 'pt'")
        return Encoding(input_ids=ids[0], attention_mask=mask[0]) if single else Encoding(input_ids=ids,
                                                                                         attention_mask=mask)
