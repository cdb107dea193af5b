"""A caption dataset released as a list of image URLs (Conceptual Captions) into the canonical format.

Conceptual Captions ships no images: its TSV files hold one ``caption<TAB>url`` line per image, and many of the URLs
are dead (Geigle et al. found 14k of the validation set's 15.8k images still online). img2dataset fetches them
(threads, retries, timeouts, resumable shards) and records every URL's outcome; a URL that fails is recorded in
``failures.csv`` beside the dataset, never fatal, and the manifest counts both. Each image keeps its original bytes
(no re-encoding: the feature extractor resizes) and has one caption; its id is its line number in the TSV, so the
same list gives the same ids whatever failed.

Example:
    >>> import_url_list("raw/cc/Validation_GCC-1.1.0-Validation.tsv", "data/cc", split="test")
    {'dataset': 'cc', 'urls': 15840, 'images': 14012, 'failed': 1828, ...}
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

from itr.data.dataset import DatasetError, read_parquet, write_dataset
from itr.data.importers import image_row

def read_url_list(path: str | Path) -> list[tuple[str, str]]:
    """(caption, url) per line of a Conceptual Captions TSV; a line without both fails naming its number."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for n, fields in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if len(fields) != 2 or not fields[0].strip() or not fields[1].startswith(("http://", "https://")):
                raise DatasetError(f"{path}:{n}: expected 'caption<TAB>http(s) url', got {fields!r}")
            rows.append((fields[0].strip(), fields[1].strip()))
    if not rows:
        raise DatasetError(f"{path}: no lines; is it Conceptual Captions' caption<TAB>url file?")
    return rows


def import_url_list(annotations: str | Path, out: str | Path, split: str = "test", name: str | None = None,
                    threads: int = 16, timeout: int = 10, retries: int = 2) -> dict:
    """Fetch every URL of ``annotations`` into ``out/images/`` with img2dataset and write the canonical dataset of
    those that arrived, all in ``split``; the others go to ``out/failures.csv`` (line, url, error)."""
    import pandas as pd

    annotations, out = Path(annotations), Path(out)
    rows = read_url_list(annotations)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    listing = images / "urls.parquet"  # img2dataset reads parquet with named columns; ours carry the line number
    pd.DataFrame({"caption": [c for c, _ in rows], "url": [u for _, u in rows],
                  "line": range(1, len(rows) + 1)}).to_parquet(listing, index=False)
    _download(listing, images, threads, timeout, retries)
    status = pd.concat([read_parquet(p) for p in sorted(images.glob("*.parquet")) if p != listing],
                       ignore_index=True)
    image_rows, caption_rows = [], []
    for r in status[status["status"] == "success"].sort_values("line").itertuples():
        image_id = str(r.line)
        path = images / r.key[:5] / f"{r.key}.{_extension(images, r.key)}"  # img2dataset: <shard>/<key>.<ext>
        image_rows.append(image_row(path, image_id, split, out, f"{annotations}:{r.line} ({r.url})"))
        caption_rows.append({"image_id": image_id, "caption_id": image_id, "split": split, "lang": "en",
                             "text": r.caption})
    failed = status[status["status"] != "success"].sort_values("line")
    failed[["line", "url", "error_message"]].to_csv(out / "failures.csv", index=False)
    if not image_rows:
        raise DatasetError(f"{annotations}: none of its {len(rows)} URLs could be fetched (see {out}/failures.csv); "
                           "is this node online?")
    info = {"dataset": name or out.name, "source": f"url-list:{annotations.name}", "urls": len(rows),
            "images": len(image_rows), "failed": len(failed), "failures": "failures.csv",
            "captions": len(caption_rows), "splits": {split: len(image_rows)}, "languages": ["en"]}
    write_dataset(out, image_rows, caption_rows, info)
    return info


def _download(listing: Path, images: Path, threads: int, timeout: int, retries: int) -> None:
    """img2dataset over the listing: original bytes, one process, per-URL outcomes in its shard parquet files."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations checks PyPI on import otherwise
    from img2dataset import download

    download(url_list=str(listing), input_format="parquet", url_col="url", caption_col="caption",
             save_additional_columns=["line"], output_format="files", output_folder=str(images),
             processes_count=1, thread_count=threads, timeout=timeout, retries=retries,
             disable_all_reencoding=True, resize_mode="no", extract_exif=False, compute_hash=None,
             enable_wandb=False, incremental_mode="incremental")


def _extension(images: Path, key: str) -> str:
    """The saved image's extension (img2dataset keeps the original format without re-encoding)."""
    shard = images / key[:5]
    found = [p.suffix.lstrip(".") for p in shard.glob(f"{key}.*") if p.suffix not in (".txt", ".json")]
    if len(found) != 1:
        raise DatasetError(f"{shard}: expected one image file for key {key}, found {found}")
    return found[0]
