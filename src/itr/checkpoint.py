"""Checkpoints: atomic writes, safe loads, and resumable training state.

Checkpoints are plain dicts of tensors and JSON-like values, so they load with
``torch.load(weights_only=True)``: a checkpoint from elsewhere cannot run code.
Writes go to a temporary file that is renamed into place, so a killed job never
leaves a truncated checkpoint where the next run would trust it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from itr.atomic import replacing


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or belongs to a different configuration."""


def save_checkpoint(path: str | Path, state: dict) -> None:
    with replacing(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} not found; train the model first (see the README's targets).")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path} is not a readable checkpoint ({e}); delete it and rebuild its rule.") from e


def resume_state(path: Path, config: dict, log=print) -> dict | None:
    """The saved training state at `path` if it was made with the same config, else None.

    A state from another config is ignored, and said so, rather than resumed: resuming
    it would mix two experiments in one checkpoint.
    """
    if not path.exists():
        return None
    state = load_checkpoint(path)
    if state.get("config") != config:
        log(f"ignoring {path}: it was saved with a different config; starting from scratch")
        return None
    return state


def file_digest(path: str | Path) -> str:
    """sha256 of a file (first 16 hex digits): the identity of a model checkpoint."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]
