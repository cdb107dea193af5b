"""Raw-pixel patches in the feature store: the input of an image tower that has no detector (a ViT's patch tokens).

A ViT cuts an image into p x p patches, flattens each and projects it linearly. Here the cutting is done once per
dataset (``write_patch_store``) into the same sharded store the detector's regions go to, and the projection is the
tower's own (itr.models.encoder's region projection), so a detector-free student is indexed, searched and evaluated
by the code that serves the region-feature ones. Per image (3, S, S):

* regions: the (S/p)^2 patches in row-major order, each flattened channel-first to 3 p^2 pixel values in [0, 1]
  (float16 keeps 8-bit pixels to within 2.5e-4);
* geometry: each patch's box normalised by the image size (x1, y1, x2, y2, w, h), the tower's position signal;
* mask: every slot is a real patch;
* global: the image average-pooled to p x p, flattened the same way (a thumbnail, the tower's whole-image token).

Nothing here is learnt: the store's ``source`` names the patch size and nothing else.

Example:
    >>> out = patchify(torch.rand(3, 128, 128), patch=16)
    >>> out["regions"].shape, out["geometry"].shape, out["global"].shape   # (P, 3 p^2), (P, 6), (3 p^2,)
    (torch.Size([64, 768]), torch.Size([64, 6]), torch.Size([768]))
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from itr.data.images import ImageError, load_image
from itr.features.store import PIXEL_PATCHES, FeatureStoreWriter


def patch_source(patch: int) -> dict:
    """The ``source`` of a patch store (FeatureStore.holds_pixels): what a tower trained on it requires of every store
    it reads."""
    return {"kind": PIXEL_PATCHES, "patch": patch}


def patchify(image: torch.Tensor, patch: int) -> dict[str, torch.Tensor]:
    """One (3, S, S) image -> regions (P, 3 p^2), geometry (P, 6) and global (3 p^2,), P = (S / p)^2."""
    c, h, w = image.shape
    if h % patch or w % patch:
        raise ImageError(f"a {h}x{w} image does not split into {patch}-pixel patches; pick a patch size that divides "
                         f"both sides (softlabel.pixel_tower.patch)")
    rows, cols = h // patch, w // patch
    tiles = image.reshape(c, rows, patch, cols, patch).permute(1, 3, 0, 2, 4)  # (rows, cols, 3, p, p)
    regions = tiles.reshape(rows * cols, c * patch * patch)  # (P, 3 p^2), row-major
    y, x = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    x1, y1 = x.flatten().float() / cols, y.flatten().float() / rows  # (P,) each
    pw, ph = torch.full_like(x1, 1 / cols), torch.full_like(y1, 1 / rows)
    geometry = torch.stack([x1, y1, x1 + pw, y1 + ph, pw, ph], dim=1)  # (P, 6)
    thumbnail = F.adaptive_avg_pool2d(image[None], (patch, patch))[0]  # (3, p, p)
    return {"regions": regions, "geometry": geometry, "global": thumbnail.flatten()}


def write_patch_store(data, out, patch: int, shard_size: int = 1000, log=print) -> dict:
    """Every image of a dataset directory cut into ``patch``-pixel patches, into a feature store at ``out``
    (resumable: finished shards are kept). Returns a summary."""
    from itr.data.dataset import dataset_manifest, read_dataset

    images, _ = read_dataset(data)
    ids, paths = list(images["image_id"]), [Path(data) / f for f in images["file"]]
    first = patchify(load_image(paths[0]), patch)
    n_patches, dim = first["regions"].shape
    writer = FeatureStoreWriter(out, n_patches, dim, patch_source(patch), data=dataset_manifest(data)["digest"])
    n_shards = (len(ids) + shard_size - 1) // shard_size
    resumed = 0
    for k in tqdm(range(n_shards), desc="patch shards"):
        shard_ids, shard_paths = ids[k * shard_size:(k + 1) * shard_size], paths[k * shard_size:(k + 1) * shard_size]
        if writer.is_done(k, shard_ids):
            resumed += 1
            continue
        parts = [patchify(load_image(p), patch) for p in shard_paths]
        if any(p["regions"].shape != (n_patches, dim) for p in parts):
            raise ImageError(f"{data}: images of different sizes; a patch store needs one size (the first image "
                             f"gives {n_patches} patches of {dim} values)")
        arrays = {key: torch.stack([p[key] for p in parts]).numpy() for key in ("regions", "geometry", "global")}
        arrays["mask"] = np.ones((len(parts), n_patches), bool)
        writer.write(k, shard_ids, arrays)
    if resumed:
        log(f"resumed: {resumed} of {n_shards} shards were already cut and were kept")
    writer.finalize(n_shards, {"n_images": len(ids)})
    summary = {"n_images": len(ids), "n_shards": n_shards, "patches_per_image": n_patches, "dim": dim}
    log(f"patches: {summary}")
    return summary
