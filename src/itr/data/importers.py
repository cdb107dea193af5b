"""Released caption datasets into the canonical format (itr.data.dataset): Karpathy splits and Multi30k.

**Karpathy splits** (``dataset_coco.json``, ``dataset_flickr30k.json``): ``{"images": [{filename, imgid, split,
sentences: [{raw, sentid}], ...}]}``; COCO entries add ``filepath`` (train2014/val2014) and ``cocoid``. ``restval``
(30,504 COCO val2014 images outside val and test) is train by the usual convention (VSE++, SCAN, TERAN), or
dropped. Each image keeps its first five captions, as those papers do (a few COCO images have six or seven).
Images stay where they were extracted: ``file`` is their path relative to the dataset folder, and each one is
opened (its header only) for its size, so a missing or unreadable image fails the import with its name.

**Multi30k** (``multi30k/dataset`` ``data/task1/raw/{split}.{lang}.gz``, one caption per line, line i describing
image i of ``{split}_images.txt``): the German, French and Czech translations of Flickr30k's English captions,
added as ``lang`` rows beside English (one caption per image and language). Czech exists only for train, val,
test_2016_flickr and test_2018_flickr. The test split is test_2016_flickr (1,000 images, as in Geigle et al.'s
Tables 2 and 7) unless another is chosen.

Example:
    >>> import_karpathy("dataset_flickr30k.json", "data/raw/flickr30k/flickr30k-images", "data/flickr30k")
    {'dataset': 'flickr30k', 'images': 31014, 'captions': 155070, 'splits': {'train': 29000, ...}, ...}
"""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from itr.data.dataset import DatasetError, write_dataset

SPLITS = {"train": "train", "val": "val", "test": "test"}  # Karpathy's names are ours; restval per --restval
CAPTIONS_PER_IMAGE = 5
MULTI30K_LANGUAGES = ("en", "de", "fr", "cs")
MULTI30K_CZECH_SPLITS = ("train", "val", "test_2016_flickr", "test_2018_flickr")  # no Czech for the 2017 test sets
MULTI30K_SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}  # ours: Multi30k's (test: selectable)


def import_karpathy(annotations: str | Path, images, out: str | Path, restval: str = "train",
                    name: str | None = None) -> dict:
    """Write ``out`` (the canonical dataset) from a Karpathy split JSON and the folder its images were extracted to
    (or several: COCO's train2014 and val2014 archives, each extracted apart; an image is taken from the first
    folder that has it)."""
    roots = [Path(images)] if isinstance(images, (str, Path)) else [Path(p) for p in images]
    annotations, out = Path(annotations), Path(out)
    if restval not in ("train", "drop"):
        raise DatasetError(f"restval={restval!r}: use 'train' (the usual convention) or 'drop'")
    try:
        entries = json.loads(annotations.read_text())["images"]
    except (ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{annotations}: not a Karpathy split file ({type(e).__name__}: {e}); expected "
                           "{'images': [{'filename', 'split', 'sentences', ...}]}") from e
    image_rows, caption_rows = [], []
    for n, entry in enumerate(entries):
        where = f"{annotations}: images[{n}]"
        try:
            split = "train" if entry["split"] == "restval" and restval == "train" else SPLITS.get(entry["split"])
            if split is None:
                if entry["split"] != "restval":
                    raise DatasetError(f"{where}: unknown split {entry['split']!r}")
                continue
            path = _first_existing(roots, Path(entry.get("filepath", "")) / entry["filename"])
            image_id = str(entry.get("cocoid", Path(entry["filename"]).stem))
            sentences = entry["sentences"][:CAPTIONS_PER_IMAGE]
        except KeyError as e:
            raise DatasetError(f"{where}: no {e} field; is this a Karpathy split file?") from e
        if len(sentences) < CAPTIONS_PER_IMAGE:
            raise DatasetError(f"{where} ({entry['filename']}): {len(sentences)} captions, expected "
                               f"{CAPTIONS_PER_IMAGE}")
        image_rows.append(image_row(path, image_id, split, out, where))
        caption_rows += [{"image_id": image_id, "caption_id": str(s["sentid"]), "split": split, "lang": "en",
                          "text": s["raw"].strip()} for s in sentences]
    splits = {s: sum(r["split"] == s for r in image_rows) for s in SPLITS}
    info = {"dataset": name or out.name, "source": f"karpathy:{annotations.name}", "restval": restval,
            "images": len(image_rows), "captions": len(caption_rows), "splits": splits, "languages": ["en"]}
    write_dataset(out, image_rows, caption_rows, info)
    return info


def import_multi30k(task1: str | Path, images: str | Path, out: str | Path, languages=MULTI30K_LANGUAGES,
                    test_split: str = "test_2016_flickr", name: str | None = None) -> dict:
    """Write ``out`` from Multi30k's ``data/task1`` folder (``raw/``, ``image_splits/``) and the Flickr30k images.

    A language missing from a split (Czech outside MULTI30K_CZECH_SPLITS) is left out of that split only; the
    manifest's ``languages_by_split`` says which split has which.
    """
    task1, images, out = Path(task1), Path(images), Path(out)
    image_rows, caption_rows, by_split = [], [], {}
    for split, source in (MULTI30K_SPLITS | {"test": test_split}).items():
        listing = task1 / "image_splits" / f"{source}.txt"
        if not listing.exists():
            raise DatasetError(f"{listing}: not found; is {task1} Multi30k's data/task1 folder?")
        files = listing.read_text().split()
        by_split[split] = [lang for lang in languages if lang != "cs" or source in MULTI30K_CZECH_SPLITS]
        for lang in by_split[split]:
            texts = _read_captions(task1 / "raw" / f"{source}.{lang}.gz")
            if len(texts) != len(files):
                raise DatasetError(f"{task1}/raw/{source}.{lang}.gz: {len(texts)} captions for the {len(files)} "
                                   f"images of {listing}; the files are from different releases: fetch both again")
            caption_rows += [{"image_id": Path(f).stem, "caption_id": f"{Path(f).stem}-{lang}", "split": split,
                              "lang": lang, "text": t.strip()} for f, t in zip(files, texts)]
        image_rows += [image_row(images / f, Path(f).stem, split, out, f"{listing}:{n + 1}")
                       for n, f in enumerate(files)]
    info = {"dataset": name or out.name, "source": f"multi30k:{test_split}", "images": len(image_rows),
            "captions": len(caption_rows), "splits": {s: sum(r["split"] == s for r in image_rows) for s in by_split},
            "languages": list(languages), "languages_by_split": by_split}
    write_dataset(out, image_rows, caption_rows, info)
    return info


def _first_existing(roots: list[Path], relative: Path) -> Path:
    """``relative`` under the first root that has it; under the first root when none does (its error names it)."""
    return next((root / relative for root in roots if (root / relative).exists()), roots[0] / relative)


def _read_captions(path: Path) -> list[str]:
    if not path.exists():
        raise DatasetError(f"{path}: not found; fetch Multi30k's raw files (itr data fetch, or the dataset's rule)")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def image_row(path: Path, image_id: str, split: str, out: Path, where: str) -> dict:
    """An image's row; its header is read for the size, so a missing or broken file fails here, named."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            width, height = im.size
    except (FileNotFoundError, OSError) as e:
        raise DatasetError(f"{where}: image {path} is missing or unreadable ({type(e).__name__}); "
                           "extract the dataset's images there, or pass the folder that holds them") from e
    return {"image_id": image_id, "split": split, "file": os.path.relpath(path, out), "width": width,
            "height": height, "scene": "{}", "twin_of": None, "twin_type": None}
