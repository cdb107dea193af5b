"""Model architectures by name: a checkpoint records its architecture, and ``load_trained`` builds it.

Every trainable model class provides ``architecture() -> dict`` (its ``"name"`` in ``ARCHITECTURES`` and
whatever rebuilds it without the original weights) and a classmethod ``from_architecture(dict)``; retrieval
uses ``embed_text``/``embed_image``, reranking ``match_logits``. The serving tower (itr.models.serving) and
the index identity check (the checkpoint's digest, itr.index) need nothing more, so a new paper's model
slots in with one line here.

Example:
    >>> model, tokenizer, ckpt = load_trained("models/<variant>/be.pt", FeatureStore("features/shapes"), "cpu")
    >>> ckpt["architecture"]["name"]
    'multimodal_encoder'
"""
from __future__ import annotations

import importlib

ARCHITECTURES = {  # name -> "module:class" (imported when a checkpoint names it)
    "multimodal_encoder": "itr.models.encoder:MultimodalEncoder",
    "dual_transformer": "itr.models.dual:DualTransformer",
    "disentangled_encoder": "itr.models.disentangled:DisentangledEncoder",
    "softlabel_dual_encoder": "itr.models.softlabel:SoftLabelDualEncoder",
}


def architecture_class(name: str):
    if name not in ARCHITECTURES:
        raise KeyError(f"unknown model architecture {name!r}; known: {sorted(ARCHITECTURES)} (itr.models)")
    module, cls = ARCHITECTURES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build(architecture: dict):
    """An untrained model of the architecture a checkpoint records (load its state dict into it)."""
    return architecture_class(architecture["name"]).from_architecture(architecture)


def load_trained(path, store, device) -> tuple[object, object, dict]:
    """A checkpoint written by ``itr train`` -> (model in eval mode, tokenizer, checkpoint dict).

    Refuses a checkpoint trained on other region features than ``store`` (an itr FeatureStore) holds:
    its image layers would read features they were never trained on; and one that records no
    architecture name (written before the architecture registry): retrain it.
    """
    from itr.checkpoint import CheckpointError, load_checkpoint
    from itr.models.encoder import load_tokenizer

    ckpt = load_checkpoint(path)
    if ckpt["features"] != store.manifest["source"]:
        raise CheckpointError(f"{path} was trained on features {ckpt['features']}, but {store.root} holds "
                              f"{store.manifest['source']}; retrain the model or point at the right feature store.")
    if "name" not in ckpt["architecture"]:
        raise CheckpointError(f"{path} records no architecture name (it predates itr.models.ARCHITECTURES); "
                              "retrain it (snakemake models).")
    model = build(ckpt["architecture"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), load_tokenizer(ckpt["text_encoder"]["path"]), ckpt
