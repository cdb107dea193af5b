"""Checkpoints: atomic writes, safe loads, and resumable training state.

Checkpoints are plain dicts of tensors and JSON-like values, so they load with
``torch.load(weights_only=True)``: a checkpoint from elsewhere cannot run code.
Writes go to a temporary file that is renamed into place, so a killed job never
leaves a truncated checkpoint where the next run would trust it.
"""
from __future__ import annotations

from pathlib import Path

import torch

from itr.atomic import replacing
from itr.errors import InputError


class CheckpointError(InputError, RuntimeError):
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


def resume_state(path: Path, identity: dict, log=print) -> dict | None:
    """The saved training state at ``path`` if it was made from the same inputs, else None.

    ``identity`` names everything the job reads: its full config, the digests of its upstream artifacts
    (dataset and feature manifests), and the digest of its code (itr.provenance). A state saved under any
    other identity is discarded, and the log says which part differs: resuming it would publish a model of
    other settings (or of other data) as this job's result.
    """
    if not path.exists():
        return None
    state = load_checkpoint(path)
    saved = state.get("identity")
    if saved != identity:
        changed = sorted(k for k in set(identity) | set(saved or {}) if (saved or {}).get(k) != identity.get(k))
        log(f"discarding {path}: it was saved from other inputs (changed: {', '.join(changed)}); "
            "training from scratch")
        return None
    return state
