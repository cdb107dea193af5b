"""The text tower for answering one query at a time (the BE and COOP latency of Table 3).

A batch-1 forward of MiniLM-L6 on this 2-core CPU is bound by reading the fp32 weights of its
36 linear layers (~42 MB per query, more than the 32 MB L3 cache) and by Python's cost per op:
measured 9.8 ms p50 eager, 7.7 ms traced. ``precision="int8"`` quantizes every linear layer
dynamically (int8 weights per output channel, activations quantized on the fly), so the
weights fit the cache, and traces the result with TorchScript, which removes the per-op Python
cost: 2.0 ms p50. The embedding moves a little (cosine to fp32 0.99 on average on ShapeCaptions),
so benchmarks/latency.py scores the int8 tower's results against exact search with the fp32
tower's vectors. int8 runs on the CPU only (PyTorch's quantized kernels); on a GPU use fp32.

Example:
    >>> tower = text_tower(model, "int8", *captions.batch([0]))
    >>> tower(*captions.batch([3])).shape   # (1, H), L2-normalised
    torch.Size([1, 384])
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

QUERY_PRECISIONS = ("fp32", "int8")


class NormalisedTextTower(nn.Module):
    """(B, T) token ids and mask -> (B, H) L2-normalised text embeddings of a bi-encoder."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.embed_text(input_ids, attention_mask), dim=-1)


def text_tower(model: nn.Module, precision: str, example_ids: torch.Tensor,
               example_mask: torch.Tensor) -> nn.Module:
    """The model's text tower as a module for serving queries.

    Args:
        model: a trained MultimodalEncoder (left unchanged; int8 works on a copy).
        precision: "fp32" (the eager model) or "int8" (quantized and traced, CPU only).
        example_ids, example_mask: one tokenised query (1, T) to trace with; any other length
            works afterwards (the trace has no shape-dependent branches; a test checks it).
    """
    if precision not in QUERY_PRECISIONS:
        raise ValueError(f"query precision {precision!r}: use one of {QUERY_PRECISIONS}")
    tower = NormalisedTextTower(model).eval()
    if precision == "fp32":
        return tower
    if example_ids.device.type != "cpu" or next(model.parameters()).device.type != "cpu":
        raise ValueError("int8 query towers run on the CPU only (PyTorch's quantized kernels); "
                         "set benchmark.query_precision: fp32 for --device cuda")
    import copy

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao's notice that it moves to torchao (not pinned here)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantized = quantize_dynamic(copy.deepcopy(tower), {nn.Linear: per_channel_dynamic_qconfig})
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shapes are read, never branched on
        # TorchScript is deprecated for torch.compile, which measured 8.8 ms here (fp32; it does not
        # lower these quantized ops); it still works in the pinned torch, and a test holds it to fp32.
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.freeze(torch.jit.trace(quantized, (example_ids, example_mask), check_trace=False))
