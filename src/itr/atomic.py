"""Atomic file writes: write a temporary sibling, then rename it over the target.

A killed job therefore never leaves a half-written file under a name the DAG trusts.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def _tmp(path: Path, suffix: str = "") -> Path:
    return path.with_name(f"{path.name}.tmp{os.getpid()}{suffix}")


def write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    tmp.write_text(text)
    tmp.replace(path)


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def save_npy(path: str | Path, arr: np.ndarray) -> None:
    path = Path(path)
    tmp = _tmp(path, ".npy")  # np.save appends .npy to names without it
    np.save(tmp, arr)
    tmp.replace(path)
