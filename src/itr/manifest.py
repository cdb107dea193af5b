"""Sealed manifests: the commit marker of a directory artifact, carrying the digests of its files and of itself.

A dataset directory or a feature store is done when its ``manifest.json`` exists. Sealing adds

* ``files``: the sha256 of each file the artifact consists of (or of each part's own marker), and
* ``digest``: the sha256 of everything else in the manifest,

so a manifest edited by hand (``"dim": 128``) no longer matches its digest and is refused on read, a file
swapped in from another build no longer matches ``files``, and ``digest`` is the artifact's identity:
checkpoints and resumable training states record it, and refuse to mix with another.

Example:
    >>> m = write_sealed(root / "manifest.json", {"dataset": "shapes"}, root, ["images.parquet"])
    >>> read_sealed(root / "manifest.json", rebuild_hint(root / "manifest.json"))["digest"] == m["digest"]
    True
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from itr.atomic import write_json


class ManifestError(RuntimeError):
    """A manifest is missing, edited, or does not match the files it describes."""


def file_digest(path: str | Path) -> str:
    """sha256 of a file (first 16 hex digits): the identity of a checkpoint or of one file of an artifact."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def content_digest(obj) -> str:
    """sha256 (16 hex digits) of a JSON-able value, independent of key order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def rebuild_hint(marker: str | Path) -> str:
    """The command that rebuilds the artifact whose manifest (the rule's declared output) is ``marker``."""
    return f"snakemake --force {marker}"


def seal(content: dict, root: str | Path, files: list[str]) -> dict:
    """``content`` plus the digests of ``files`` (names relative to ``root``) and its own ``digest``."""
    body = {**content, "files": {name: file_digest(Path(root) / name) for name in files}}
    return {**body, "digest": content_digest(body)}


def write_sealed(path: str | Path, content: dict, root: str | Path, files: list[str]) -> dict:
    """Seal ``content`` and write it atomically to ``path`` (last, so it marks the artifact complete)."""
    sealed = seal(content, root, files)
    write_json(path, sealed)
    return sealed


def read_sealed(path: str | Path, rebuild: str) -> dict:
    """A manifest whose digest matches its content; ``rebuild`` is the command that remakes it, for errors."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path} not found; the job that writes it did not finish. Build it: {rebuild}")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as e:
        raise ManifestError(f"{path} is not valid JSON ({e}); rebuild it: {rebuild}") from e
    if not isinstance(manifest, dict) or "digest" not in manifest or "files" not in manifest:
        raise ManifestError(f"{path} carries no digest (written by an older itr or by hand); rebuild it: {rebuild}")
    body = {k: v for k, v in manifest.items() if k != "digest"}
    if content_digest(body) != manifest["digest"]:
        raise ManifestError(f"{path} was edited after it was written (its content no longer matches its digest "
                            f"{manifest['digest']}); rebuild it: {rebuild}")
    return manifest


def verify_files(manifest: dict, root: str | Path, rebuild: str, names: list[str] | None = None) -> None:
    """Check that the files of a sealed manifest (all, or ``names``) still have the digests it recorded."""
    for name in manifest["files"] if names is None else names:
        path = Path(root) / name
        if not path.exists():
            raise ManifestError(f"{path} is missing; rebuild it: {rebuild}")
        if file_digest(path) != manifest["files"][name]:
            raise ManifestError(f"{path} is not the file its manifest recorded (digest {file_digest(path)}, "
                                f"recorded {manifest['files'][name]}): it was replaced or damaged; rebuild it: {rebuild}")


def files_identity(paths) -> str:
    """One digest naming the content of ``paths`` as they are now, with ``absent`` for a missing file.

    The workflow passes it to every job as a param (``upstream``): Snakemake reruns a job whose params
    changed, so a job whose input was deleted by a failed upstream job (Snakemake removes a failed job's
    outputs) or rebuilt with other content is stale, even when its own output is still there. A sealed
    manifest is named by its ``digest``; any other file by its content, cached on (path, size, mtime).
    """
    names = {}
    for path in sorted(map(str, paths)):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            names[path] = "absent"
            continue
        names[path] = _identity(path, st.st_size, st.st_mtime_ns)
    return content_digest(names)


@functools.lru_cache(maxsize=None)
def _identity(path: str, size: int, mtime_ns: int) -> str:
    if path.endswith(".json") and size < 1 << 20:
        try:
            digest = json.loads(Path(path).read_text()).get("digest")
        except (ValueError, AttributeError):
            digest = None
        if isinstance(digest, str):
            return digest
    return file_digest(path)
