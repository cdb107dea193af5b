"""Released region features into the feature store (itr.features.store), for the images of one dataset.

Four formats, each read as a stream of (image_id, boxes or geometry, features) rows:

- ``butd-tsv``: bottom-up-attention's TSV, no header: ``image_id, image_w, image_h, num_boxes, boxes, features``;
  boxes and features base64 float32, boxes in pixels (x1, y1, x2, y2).
- ``vinvl-tsv``: VinVL/Oscar's ``features.tsv`` rows ``image_id, num_boxes, base64 float32 (n, 2054)`` = the feature
  then 6 geometry values already in our form; ``predictions.tsv`` beside it gives each image's object classes,
  kept as object tags (in the store's shard markers, ``FeatureStore.tags``: the words VinVL's and Oscar's models
  read beside the image).
- ``scan-npy``: SCAN / VSE∞ ``{split}_ims.npy`` (N, 36, 2048), one row per image in the split's order (checked
  against ``{split}_ids.txt`` where VSE∞ ships one); no boxes, so geometry is zero. ``dev`` is our ``val``;
  ``testall`` (COCO's 5k) is our ``test`` where present.
- ``teran``: ``bu_att/<id>.npz`` (``feat``, 36 x 2048) and ``bu_box/<id>.npy`` (36 x 4 pixel boxes).

Geometry becomes the project's 6-d form (x1, y1, x2, y2, w, h, divided by the image size); the region count R
is the largest the source has (rows with fewer are masked) and the feature size D is the source's, which models
read from the store. Released features carry no whole-image feature; the global feature is the mean of an
image's regions (as the bottom-up-attention papers pool them). A corrupt row fails naming its line or image id,
and the store is written to ``<out>.partial`` and renamed only when complete, so no half store is left.

Example:
    >>> import_features("butd-tsv", "trainval_36/trainval_resnet101_faster_rcnn_genome_36.tsv", "data/coco",
    ...                 "features/coco")
    {'n_images': 123287, 'max_regions': 36, 'dim': 2048, 'format': 'butd-tsv'}
"""
from __future__ import annotations

import base64
import binascii
import csv
import json
import shutil
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from itr.features.store import FeatureStoreError, FeatureStoreWriter

FORMATS = ("butd-tsv", "vinvl-tsv", "scan-npy", "teran")
SCAN_SPLITS = {"train": "train", "dev": "val", "test": "test", "testall": "test"}  # SCAN's name: ours
SHARD_SIZE = 1000


class FeatureImportError(FeatureStoreError):
    """A released feature file is malformed: the message names the file and the line or image."""


def import_features(fmt: str, source: str | Path, data: str | Path, out: str | Path,
                    shard_size: int = SHARD_SIZE, log=print) -> dict:
    """Write the feature store ``out`` for every image of the dataset ``data`` from released features."""
    from itr.data.dataset import dataset_manifest, read_dataset
    from itr.manifest import file_digest

    if fmt not in FORMATS:
        raise FeatureImportError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    source, out = Path(source), Path(out)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder; fetch or place the released features there")
    images, _ = read_dataset(data)
    sizes = {i: (w, h) for i, w, h in zip(images["image_id"], images["width"], images["height"])}
    rows, max_regions = _READERS[fmt](source, images)
    identity = {"format": fmt, "file": source.name,
                "digest": file_digest(source) if source.is_file() else _folder_digest(source)}
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        seen, dim = _write_store(rows(sizes), sizes, partial, max_regions, identity, dataset_manifest(data)["digest"],
                                 shard_size, source, data)
        if out.exists():
            shutil.rmtree(out)
        partial.rename(out)
    finally:  # a corrupt row or a kill leaves no half store behind
        shutil.rmtree(partial, ignore_errors=True)
    summary = {"n_images": len(seen), "max_regions": max_regions, "dim": dim, "format": fmt}
    log(f"imported {summary} from {source} into {out}")
    return summary


def _write_store(rows, sizes: dict, partial: Path, max_regions: int, identity: dict, data_digest: str,
                 shard_size: int, source: Path, data) -> tuple[set, int]:
    """Shards of ``shard_size`` images in the source's order, then the sealed manifest; returns (ids, dim)."""
    writer, buffer, shards, seen, dim = None, [], 0, set(), None
    for image_id, geometry, feats, row_tags in rows:
        if image_id not in sizes:  # features of images outside the dataset (other splits, restval) are skipped
            continue
        if image_id in seen:
            raise FeatureImportError(f"{source}: image {image_id} has two rows; the file joins two releases")
        if len(feats) > max_regions:
            raise FeatureImportError(f"{source}: image {image_id} has {len(feats)} regions, the first had "
                                     f"{max_regions}; the folder mixes two releases")
        if writer is None:
            dim = feats.shape[1]
            writer = FeatureStoreWriter(partial, max_regions, dim, identity, data=data_digest)
        if feats.shape[1] != dim:
            raise FeatureImportError(f"{source}: image {image_id}: {feats.shape[1]}-d features, the others "
                                     f"{dim}-d; the file mixes two releases")
        seen.add(image_id)
        buffer.append((image_id, geometry, feats, row_tags))
        if len(buffer) == shard_size:
            _write_shard(writer, shards, buffer, max_regions)
            shards, buffer = shards + 1, []
    missing = [i for i in sizes if i not in seen]
    if missing:
        raise FeatureImportError(f"{source}: no features for {len(missing)} of the {len(sizes)} images of {data}, "
                                 f"e.g. {missing[:3]}; is it the release for this dataset and split?")
    if buffer:
        _write_shard(writer, shards, buffer, max_regions)
        shards += 1
    writer.finalize(shards, {"n_images": len(seen), "imported": identity["format"]})
    return seen, dim


def _write_shard(writer, k: int, buffer: list, r: int) -> None:
    n, d = len(buffer), buffer[0][2].shape[1]
    arrays = {"regions": np.zeros((n, r, d), np.float32), "geometry": np.zeros((n, r, 6), np.float32),
              "mask": np.zeros((n, r), bool), "global": np.zeros((n, d), np.float32)}
    for i, (_, geometry, feats, _) in enumerate(buffer):
        m = len(feats)
        arrays["regions"][i, :m], arrays["geometry"][i, :m], arrays["mask"][i, :m] = feats, geometry, True
        arrays["global"][i] = feats.mean(0)  # released features have no whole-image feature: the regions' mean
    tags = [b[3] for b in buffer]  # object tags (VinVL's predictions.tsv), or None per row
    writer.write(k, [b[0] for b in buffer], arrays, tags=None if any(t is None for t in tags) else tags)


def pixel_geometry(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """(n, 4) pixel boxes x1, y1, x2, y2 -> (n, 6) x1, y1, x2, y2, w, h divided by the image size."""
    norm = boxes / np.array([width, height, width, height], np.float32)  # (n, 4)
    return np.concatenate([norm, norm[:, 2:3] - norm[:, 0:1], norm[:, 3:4] - norm[:, 1:2]], axis=1)


def _b64(field: str, n: int, where: str, what: str) -> np.ndarray:
    """A base64 float32 field reshaped to (n, -1)."""
    try:
        flat = np.frombuffer(base64.b64decode(field, validate=True), np.float32)
    except (binascii.Error, ValueError) as e:
        raise FeatureImportError(f"{where}: {what} is not base64 float32 ({e})") from e
    if n <= 0 or flat.size % n:
        raise FeatureImportError(f"{where}: {what} holds {flat.size} floats, not a multiple of num_boxes={n}")
    return flat.reshape(n, -1)


def _tsv(path: Path) -> Iterator[tuple[int, list[str]]]:
    csv.field_size_limit(sys.maxsize)  # one row holds a whole image's features
    with open(path, newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t"), 1):
            yield n, row


def _int(value: str, where: str, what: str) -> int:
    try:
        return int(value)
    except ValueError as e:
        raise FeatureImportError(f"{where}: {what} {value!r} is not an integer") from e


def _butd(source: Path, images):
    counts = [_int(row[3], f"{source}:{n}", "num_boxes") for n, row in _tsv(source) if len(row) == 6]

    def rows(sizes):
        for n, row in _tsv(source):
            where = f"{source}:{n}"
            if len(row) != 6:
                raise FeatureImportError(f"{where}: {len(row)} fields, expected 6 (image_id, image_w, image_h, "
                                         "num_boxes, boxes, features)")
            k = _int(row[3], where, "num_boxes")
            boxes = _b64(row[4], k, where, "boxes")
            if boxes.shape[1] != 4:
                raise FeatureImportError(f"{where}: boxes hold {boxes.shape[1] * k} floats for num_boxes={k}, "
                                         f"expected {4 * k}")
            w, h = float(row[1]), float(row[2])
            yield str(_int(row[0], where, "image_id")), pixel_geometry(boxes, w, h), _b64(row[5], k, where,
                                                                                         "features"), None
    return rows, max(counts, default=0)


def _vinvl(source: Path, images):
    predictions = source.with_name("predictions.tsv")
    counts = [_int(row[1], f"{source}:{n}", "num_boxes") for n, row in _tsv(source) if len(row) == 3]

    def rows(sizes):
        tags = {}
        if predictions.exists():
            for n, row in _tsv(predictions):
                try:
                    tags[str(int(row[0]))] = [o["class"] for o in json.loads(row[1])["objects"]]
                except (ValueError, KeyError, IndexError, TypeError) as e:
                    raise FeatureImportError(f"{predictions}:{n}: not an (image_id, {{objects: [{{class}}]}}) "
                                             f"row ({type(e).__name__}: {e})") from e
        for n, row in _tsv(source):
            where = f"{source}:{n}"
            if len(row) != 3:
                raise FeatureImportError(f"{where}: {len(row)} fields, expected 3 (image_id, num_boxes, features)")
            k = _int(row[1], where, "num_boxes")
            packed = _b64(row[2], k, where, "features")
            if packed.shape[1] <= 6:
                raise FeatureImportError(f"{where}: {packed.shape[1]} values per box, expected feature + 6 geometry")
            image_id = str(_int(row[0], where, "image_id"))
            yield image_id, packed[:, -6:], packed[:, :-6], tags.get(image_id) if tags else None
    return rows, max(counts, default=0)


def _scan(source: Path, images):
    splits = {ours: name for name, ours in SCAN_SPLITS.items() if (source / f"{name}_ims.npy").exists()}
    if (source / "testall_ims.npy").exists():
        splits["test"] = "testall"
    if not splits:
        raise FeatureImportError(f"{source}: no {{train,dev,test,testall}}_ims.npy; is it SCAN's precomp folder?")
    arrays = {ours: np.load(source / f"{name}_ims.npy", mmap_mode="r") for ours, name in splits.items()}

    def rows(sizes):
        for ours, name in splits.items():
            ids = list(images.loc[images["split"] == ours, "image_id"])
            ims, listed = arrays[ours], source / f"{name}_ids.txt"
            if ims.ndim != 3 or len(ims) != len(ids):
                raise FeatureImportError(f"{source}/{name}_ims.npy: shape {ims.shape}, but the dataset's {ours} "
                                         f"split has {len(ids)} images; the release and the split do not match")
            if listed.exists():  # VSE∞ lists the image of each row: check the order instead of trusting it
                theirs = [str(int(float(x))) for x in listed.read_text().split()]
                if theirs != ids:
                    bad = next(i for i, (a, b) in enumerate(zip(theirs + [None] * len(ids), ids)) if a != b)
                    raise FeatureImportError(f"{listed}: row {bad} is image {theirs[bad] if bad < len(theirs) else None}"
                                             f", the dataset's {ours} split has {ids[bad]} there; the release and "
                                             "the split do not match")
            for image_id, feats in zip(ids, ims):
                yield image_id, np.zeros((len(feats), 6), np.float32), np.asarray(feats, np.float32), None
    return rows, max(a.shape[1] for a in arrays.values())


def _teran(source: Path, images):
    att, box = source / "bu_att", source / "bu_box"
    if not att.is_dir() or not box.is_dir():
        raise FeatureImportError(f"{source}: expected bu_att/ and bu_box/ (TERAN's features_36 folder)")
    first = next(iter(sorted(att.glob("*.npz"))), None)
    r = np.load(first)["feat"].shape[0] if first else 0

    def rows(sizes):
        for image_id in sizes:
            where = f"{source}: image {image_id}"
            try:
                feats = np.load(att / f"{image_id}.npz")["feat"].astype(np.float32)
                boxes = np.load(box / f"{image_id}.npy").astype(np.float32)
            except FileNotFoundError:
                continue  # reported with every other missing image after the pass
            except (ValueError, KeyError, OSError) as e:
                raise FeatureImportError(f"{where}: unreadable ({type(e).__name__}: {e})") from e
            if boxes.shape != (len(feats), 4):
                raise FeatureImportError(f"{where}: {boxes.shape[0]} boxes for {len(feats)} regions")
            yield image_id, pixel_geometry(boxes, *sizes[image_id]), feats, None
    return rows, r


def _folder_digest(folder: Path) -> str:
    """Identity of a folder source: its file names and sizes (hashing 120k files would take longer than the import)."""
    from itr.manifest import content_digest

    return content_digest(sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*")
                                 if p.is_file()))


_READERS = {"butd-tsv": _butd, "vinvl-tsv": _vinvl, "scan-npy": _scan, "teran": _teran}
