"""A sharded, memory-mapped store of region features.

Layout of a store directory::

    shard-00000.regions.npy    float16 (N, R, D)  box-head features of the top-R detections
    shard-00000.geometry.npy   float16 (N, R, 6)  x1, y1, x2, y2, w, h, normalised by image size
    shard-00000.mask.npy       bool    (N, R)     True where a detection exists (rest is padding)
    shard-00000.global.npy     float16 (N, D)     box-head feature of the whole-image box
    shard-00000.json           ids, shapes, array digests and source of the shard, and the detector's class name
                               of every kept region (object tags) when it has them; written last = commit marker
    manifest.json              all shards in order, sealed with the markers' digests (itr.manifest);
                               written once every shard is done

Every file is written to a temporary name and renamed, and a shard counts as done only
when its marker exists and matches the producer (``source``). So a killed extraction
resumes at the first unfinished shard, and a shard made by another detector is redone.
Readers check the manifest's seal, every marker against the manifest and every array against
its marker's digest, and fail naming the file and the command that rebuilds it.
The manifest's ``digest`` is the store's identity (recorded by training states).

Example:
    >>> store = FeatureStore("features/shapes")
    >>> batch = store.get(["test-000000", "test-000001"])
    >>> batch["regions"].shape           # (B, R, D)
    torch.Size([2, 10, 256])
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from itr.atomic import remove_stale_temporaries
from itr.errors import InputError
from itr.atomic import save_npy as _atomic_npy
from itr.atomic import write_json as _atomic_json
from itr.manifest import ManifestError, file_digest, read_sealed, rebuild_hint, verify_files, write_sealed

ARRAYS = ("regions", "geometry", "mask", "global")
PIXEL_PATCHES = "pixel_patches"  # the source "kind" of a store of raw-pixel patches (itr.features.patches)


class FeatureStoreError(InputError, RuntimeError):
    """A feature store file is missing, truncated or inconsistent with its marker."""


def _expected_shapes(n: int, r: int, d: int) -> dict:
    return {"regions": [n, r, d], "geometry": [n, r, 6], "mask": [n, r], "global": [n, d]}


class FeatureStoreWriter:
    """Writes shards of a fixed id order; `is_done(k, ids)` lets a restarted job skip work."""

    def __init__(self, root: str | Path, max_regions: int, dim: int, source: dict, data: str = "",
                 with_tags: bool = False):
        """``source``: the extractor (detector digest, features config), which a model trained on these features
        requires of every store it reads; ``data``: the identity of the images (the dataset's digest);
        ``with_tags``: the shards keep object tags. A shard made by another extractor, from other images, or
        without the tags this writer keeps is redone."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.root)  # a killed run's half-written files
        self.r, self.d, self.source, self.data, self.with_tags = max_regions, dim, source, data, with_tags

    def shard_name(self, k: int) -> str:
        return f"shard-{k:05d}"

    def is_done(self, k: int, ids: list[str]) -> bool:
        marker = self.root / f"{self.shard_name(k)}.json"
        if not marker.exists():
            return False
        meta = json.loads(marker.read_text())
        if meta.get("ids") != list(ids) or meta.get("source") != self.source or meta.get("data") != self.data:
            return False
        if self.with_tags and "tags" not in meta:  # extracted before tags were kept
            return False
        try:  # a marker without intact arrays (e.g. files deleted by hand) is not done
            _open_shard(self.root, self.shard_name(k), meta)
        except FeatureStoreError:
            return False
        return True

    def write(self, k: int, ids: list[str], arrays: dict[str, np.ndarray], tags: list[list[str]] | None = None
              ) -> None:
        """One shard; ``tags``: per image, the class names of its kept regions in order (object tags), if known."""
        name = self.shard_name(k)
        shapes = _expected_shapes(len(ids), self.r, self.d)
        for key in ARRAYS:
            arr = arrays[key].astype(bool if key == "mask" else np.float16)
            if list(arr.shape) != shapes[key]:
                raise FeatureStoreError(f"{name}.{key}: shape {list(arr.shape)} != expected {shapes[key]}")
            _atomic_npy(self.root / f"{name}.{key}.npy", arr)
        digests = {key: file_digest(self.root / f"{name}.{key}.npy") for key in ARRAYS}
        marker = {"ids": list(ids), "shapes": shapes, "digests": digests, "source": self.source, "data": self.data}
        if tags is not None:
            if len(tags) != len(ids):
                raise FeatureStoreError(f"{name}: {len(tags)} tag lists for {len(ids)} images")
            marker["tags"] = [list(t) for t in tags]
        _atomic_json(self.root / f"{name}.json", marker)

    def finalize(self, n_shards: int, extra: dict) -> Path:
        shards = [self.shard_name(k) for k in range(n_shards)]
        manifest = {"format": "itr-features/2", "max_regions": self.r, "dim": self.d,
                    "source": self.source, "data": self.data, "shards": shards, **extra}
        path = self.root / "manifest.json"
        write_sealed(path, manifest, self.root, [f"{name}.json" for name in shards])
        return path


def _open_shard(root: Path, name: str, meta: dict) -> dict[str, np.ndarray]:
    arrays = {}
    for key in ARRAYS:
        path = root / f"{name}.{key}.npy"
        if not path.exists():
            raise FeatureStoreError(f"{path} is missing; re-run feature extraction: {rebuild_hint(root / 'manifest.json')}")
        if file_digest(path) != meta.get("digests", {}).get(key):
            raise FeatureStoreError(f"{path} is not the array its marker {name}.json recorded (truncated, damaged "
                                    f"or replaced); re-run feature extraction: {rebuild_hint(root / 'manifest.json')}")
        arrays[key] = np.load(path, mmap_mode="r")  # the digest matched: these are the bytes the writer wrote
    return arrays


class FeatureStore:
    """Read-only view over a finished store: validates everything on open, then serves batches."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        try:
            hint = rebuild_hint(self.root / "manifest.json")
            self.manifest = read_sealed(self.root / "manifest.json", hint)
            verify_files(self.manifest, self.root, hint)
        except ManifestError as e:
            raise FeatureStoreError(str(e)) from e
        self.max_regions, self.dim = self.manifest["max_regions"], self.manifest["dim"]
        self._shards: list[dict[str, np.ndarray]] = []
        self._where: dict[str, tuple[int, int]] = {}
        self._tags: dict[str, list[str]] = {}
        for s, name in enumerate(self.manifest["shards"]):
            meta = json.loads((self.root / f"{name}.json").read_text())
            self._shards.append(_open_shard(self.root, name, meta))
            for row, image_id in enumerate(meta["ids"]):
                self._where[image_id] = (s, row)
            self._tags.update(zip(meta["ids"], meta.get("tags", [])))

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, image_id: str) -> bool:
        return image_id in self._where

    @property
    def ids(self) -> list[str]:
        return list(self._where)

    @property
    def holds_pixels(self) -> bool:
        """Whether the store holds raw-pixel patches (itr.features.patches) rather than a detector's regions."""
        return self.manifest["source"].get("kind") == PIXEL_PATCHES

    @property
    def has_tags(self) -> bool:
        """Whether every image has object tags (the class names of its regions)."""
        return len(self._tags) == len(self._where)

    def tags(self, image_ids: list[str]) -> list[list[str]]:
        """The object tags of the given images: the detector's class names of their regions, in order."""
        if not self.has_tags:
            raise FeatureStoreError(f"{self.root} records no object tags (extracted before tags were kept, or "
                                    f"imported from a release without them); re-extract it ("
                                    f"{rebuild_hint(self.root / 'manifest.json')}) or run without object tags")
        return [self._tags[i] for i in image_ids]

    def tag_names(self) -> list[str]:
        """Every object tag any image of the store has, sorted (a model's tag vocabulary)."""
        return sorted({t for tags in self._tags.values() for t in tags})

    def get(self, image_ids: list[str]) -> dict[str, torch.Tensor]:
        """Features of the given images as float32 tensors (mask as bool), in the given order."""
        missing = [i for i in image_ids if i not in self._where]
        if missing:
            raise FeatureStoreError(f"{self.root}: no features for {missing[:3]} (and {len(missing) - 3} more)"
                                    if len(missing) > 3 else f"{self.root}: no features for {missing}")
        out = {key: [] for key in ARRAYS}
        for image_id in image_ids:
            s, row = self._where[image_id]
            for key in ARRAYS:
                out[key].append(np.asarray(self._shards[s][key][row]))
        return {key: torch.from_numpy(np.stack(v)).float() if key != "mask" else torch.from_numpy(np.stack(v))
                for key, v in out.items()}
