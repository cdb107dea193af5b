"""Atomic file writes: write a temporary sibling, then rename it over the target.

A killed job therefore never leaves a half-written file under a name the DAG trusts.
Every writer in the library goes through ``replacing``.

Example:
    >>> with replacing("models/x.pt") as tmp:
    ...     torch.save(state, tmp)
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def replacing(path: str | Path, suffix: str = ""):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    ``suffix`` is appended to the temporary name for writers that insist on an extension
    (``np.save`` adds ``.npy`` to names without it). On failure the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}{suffix}")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def save_npy(path: str | Path, arr: np.ndarray) -> None:
    with replacing(path, ".npy") as tmp:
        np.save(tmp, arr)


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    with replacing(path, ".npz") as tmp:
        np.savez(tmp, **arrays)
