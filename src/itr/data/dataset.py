"""The canonical on-disk dataset format every dataset is converted to.

A dataset directory holds:
    images/...           image files (any layout; the table gives each one's path)
    images.parquet       image_id, split, file, width, height, scene, twin_of, twin_type
    captions.parquet     image_id, caption_id, split, lang, text
    manifest.json        what the dataset is, sealed with the digests of both tables (itr.manifest);
                         written last, so it marks the dataset complete, and its digest is the dataset's identity

``scene`` is a JSON string (objects with kind/colour/size/box for generated data, "{}"
for real photos). Readers check columns and referential integrity so that a broken
import fails here, naming the file, rather than as a KeyError three stages later.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from itr.atomic import replacing
from itr.errors import InputError
from itr.manifest import ManifestError, read_sealed, rebuild_hint, verify_files, write_sealed

IMAGE_COLUMNS = ["image_id", "split", "file", "width", "height", "scene", "twin_of", "twin_type"]
CAPTION_COLUMNS = ["image_id", "caption_id", "split", "lang", "text"]
# A generated dataset also stores each caption's meaning (JSON; itr.data.truth), which its extended ground truth
# is computed from; imported datasets have none.
OPTIONAL_CAPTION_COLUMNS = ["meaning"]


TABLES = ("images.parquet", "captions.parquet")
REBUILD = "snakemake --forcerun shapes_generate data"  # every generated dataset (the hint of a damaged image)


class DatasetError(InputError, ValueError):
    """A dataset table is missing, malformed or inconsistent."""


def read_parquet(path: str | Path) -> pd.DataFrame:
    """A parquet table, read on the calling thread alone. pyarrow's default read starts thread pools whose teardown at
    interpreter exit now and then aborts a job that has done its work ("terminate called without an active exception",
    apache/arrow#34314); our tables are small enough for one thread.

    Example:
        >>> captions = read_parquet("data/shapes/captions.parquet")  # doctest: +SKIP
    """
    return pq.ParquetFile(path, pre_buffer=False).read(use_threads=False).to_pandas(use_threads=False)


def atomic_write_parquet(df: pd.DataFrame, path: Path) -> None:
    with replacing(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_dataset(out_dir: Path, image_rows: list[dict], caption_rows: list[dict], info: dict) -> dict:
    """Write both tables, then the sealed manifest (``info`` plus the tables' digests); returns the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = pd.DataFrame(image_rows, columns=IMAGE_COLUMNS)
    optional = [c for c in OPTIONAL_CAPTION_COLUMNS if caption_rows and c in caption_rows[0]]
    captions = pd.DataFrame(caption_rows, columns=CAPTION_COLUMNS + optional)
    _check(images, captions, out_dir)
    atomic_write_parquet(images, out_dir / "images.parquet")
    atomic_write_parquet(captions, out_dir / "captions.parquet")
    return write_sealed(out_dir / "manifest.json", info, out_dir, list(TABLES))


def dataset_manifest(data_dir: str | Path) -> dict:
    """The dataset's sealed manifest, its tables checked against it; ``["digest"]`` is the dataset's identity."""
    data_dir = Path(data_dir)
    try:
        hint = rebuild_hint(data_dir / "manifest.json")
        manifest = read_sealed(data_dir / "manifest.json", hint)
        verify_files(manifest, data_dir, hint)
    except ManifestError as e:
        raise DatasetError(str(e)) from e
    return manifest


def _check(images: pd.DataFrame, captions: pd.DataFrame, where: Path) -> None:
    if images["image_id"].duplicated().any():
        dup = images.loc[images["image_id"].duplicated(), "image_id"].iloc[0]
        raise DatasetError(f"{where}/images.parquet: duplicate image_id {dup!r}")
    if captions["caption_id"].duplicated().any():
        dup = captions.loc[captions["caption_id"].duplicated(), "caption_id"].iloc[0]
        raise DatasetError(f"{where}/captions.parquet: duplicate caption_id {dup!r}")
    orphans = set(captions["image_id"]) - set(images["image_id"])
    if orphans:
        raise DatasetError(f"{where}/captions.parquet: captions for unknown images, e.g. {sorted(orphans)[:3]}")


def read_dataset(data_dir: str | Path, split: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read (images, captions) of a dataset directory, optionally one split, validating both."""
    data_dir = Path(data_dir)
    dataset_manifest(data_dir)
    tables = []
    for name, cols in zip(TABLES, (IMAGE_COLUMNS, CAPTION_COLUMNS)):
        path = data_dir / name
        df = read_parquet(path)
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise DatasetError(f"{path}: missing columns {missing}; rebuild the dataset: "
                               f"{rebuild_hint(data_dir / 'manifest.json')}")
        tables.append(df)
    images, captions = tables
    _check(images, captions, data_dir)
    if split is not None:
        images = images[images["split"] == split].reset_index(drop=True)
        captions = captions[captions["split"] == split].reset_index(drop=True)
        if images.empty:
            raise DatasetError(f"{data_dir}: split {split!r} has no images")
    return images, captions


def dataset_info(data_dir: str | Path) -> dict:
    """Counts of a dataset: ``{"dataset", "digest", "splits": {split: {"images", "captions": {lang: n}}}}``."""
    images, captions = read_dataset(data_dir)
    splits = {split: {"images": int((images["split"] == split).sum()),
                      "captions": {lang: int(n) for lang, n in group.groupby("lang").size().items()}}
              for split, group in captions.groupby("split", sort=False)}
    manifest = dataset_manifest(data_dir)
    return {"dataset": manifest.get("dataset"), "digest": manifest["digest"], "splits": splits,
            "languages": sorted(captions["lang"].unique())}


def first_images(captions: pd.DataFrame, n: int) -> pd.DataFrame:
    """The captions of the first ``n`` distinct images (in file order); n = 0 keeps every image.

    Training on a prefix of the split is how the sample-efficiency runs (Figure 3 of Geigle et al.)
    and the small budgets of the auxiliary tables see less data; prefixes are nested, so the
    250-image set is part of the 500-image set.
    """
    if n == 0:
        return captions
    images = list(dict.fromkeys(captions["image_id"]))
    if n > len(images):
        raise ValueError(f"train_images={n}, but the split holds only {len(images)} images; lower it or set 0 (= all)")
    return captions[captions["image_id"].isin(set(images[:n]))].reset_index(drop=True)
