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
import re
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


TEMPORARY = re.compile(r"\.tmp(\d+)")  # replacing()'s names: <name>.tmp<pid>[suffix]


def remove_stale_temporaries(root: str | Path) -> int:
    """Delete the temporary files that killed writers left under ``root`` (a SIGKILL skips ``replacing``'s
    cleanup); files of live processes are kept. A job calls it on the directory it writes. Returns the count."""
    removed = 0
    for path in Path(root).rglob("*.tmp*") if Path(root).is_dir() else []:
        match = TEMPORARY.search(path.name)
        if match and path.is_file() and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
