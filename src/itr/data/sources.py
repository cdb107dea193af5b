"""Where a real dataset's files come from and where each part of them lands: the ``datasets`` section of params.yaml.

Each real dataset declares its files (mirrors, published hash or none, how to get one by hand), which of them hold
the captions and the images, and where its region features come from. A file is fetched to
``downloads/<name>/<file>`` (itr.data.download), checked against its hash (which also covers a file placed there by
hand) and then extracted to ``raw/<name>/<file>/`` when it is an archive (itr.data.archives), or linked to
``raw/<name>/<file>`` when it is not. Entries name what they need as ``<file>[/<path inside it>]``; this module turns those into
paths, so the Snakemake rules (workflow/rules/sources.smk) and tests spell them once. No paper knows of it: a paper
asks for ``params.dataset`` and the shared rules build it.

Example:
    >>> entry = {"files": {"caption_datasets.zip": {...}}, "annotations": "caption_datasets.zip/dataset_coco.json", ...}
    >>> resolve("coco", entry, entry["annotations"])
    'raw/coco/caption_datasets.zip/dataset_coco.json'
    >>> needed("coco", entry, [entry["annotations"]])
    ['raw/coco/caption_datasets.zip']
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path

from itr.errors import InputError
from itr.layout import DOWNLOAD_LOCK, EXTRACTED

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def has_training_split(entry: dict) -> bool:
    """Whether a real dataset (its params ``datasets`` entry) has images to train on: a URL list (Conceptual Captions'
    validation set) holds one split only, ``url_list.split``."""
    return entry["format"] != "url-list" or entry["url_list"]["split"] == "train"


def is_archive(file: str) -> bool:
    return file.endswith(ARCHIVE_SUFFIXES)


def _split(dataset: str, entry: dict, ref: str) -> tuple[str, str]:
    file, _, inside = ref.partition("/")
    if file not in entry["files"]:
        raise InputError(f"datasets.{dataset}: {ref!r} names file {file!r}, which is not under its files "
                         f"({sorted(entry['files'])}); add it there or fix the path")
    if inside and not is_archive(file):
        raise InputError(f"datasets.{dataset}: {ref!r} looks inside {file!r}, which is not an archive "
                         f"({', '.join(ARCHIVE_SUFFIXES)})")
    return file, inside


def unpacked(dataset: str, file: str) -> str:
    """What the rules produce for one checked file: its extraction folder (archives) or its checked link."""
    return EXTRACTED.format(dataset=dataset, file=file)


def file_names(datasets: dict, archives: bool | None = None) -> list[str]:
    """Every file the real datasets declare (only the archives, or only the others, when ``archives`` says)."""
    names = {f for entry in datasets.values() for f in entry["files"]}
    return sorted(f for f in names if archives is None or is_archive(f) == archives)


def resolve(dataset: str, entry: dict, ref: str) -> str:
    """The path of ``<file>[/<path inside it>]`` once its file is fetched and extracted."""
    file, inside = _split(dataset, entry, ref)
    return unpacked(dataset, file) + (f"/{inside}" if inside else "")


def needed(dataset: str, entry: dict, refs: list[str]) -> list[str]:
    """The rule outputs (extraction folders, downloads) that ``refs`` live in, once each, in order."""
    return list(dict.fromkeys(unpacked(dataset, _split(dataset, entry, ref)[0]) for ref in refs))


def pinned(dataset: str, entry: dict, refs: list[str]) -> str:
    """One digest of the sha256s pinned for the files ``refs`` live in (``absent`` before they are pinned): a job's
    upstream identity, read from the pin file instead of hashing archives of many GB at every Snakemake call."""
    from itr.data.download import read_lock
    from itr.manifest import content_digest

    pins = read_lock(Path(DOWNLOAD_LOCK.format(dataset=dataset)))
    return content_digest({f: pins.get(f, "absent") for f in sorted({_split(dataset, entry, r)[0] for r in refs})})


def fetch_args(dataset: str, entry: dict, file: str) -> str:
    """``itr data fetch``'s options for one file: its mirrors, its published hash, the pin file, the hand-made way."""
    spec = entry["files"][file]
    args = [arg for url in spec["urls"] for arg in ("--url", url)]
    if spec["hash"]:
        args += ["--hash", spec["hash"]]
    args += ["--lock", DOWNLOAD_LOCK.format(dataset=dataset)]
    if spec.get("place"):
        args += ["--place", spec["place"]]
    return shlex.join(args)


def verify_args(dataset: str, entry: dict, file: str) -> str:
    """The check of a file before it is used (``itr data extract`` / ``itr data verify``): its published hash, and
    the pin file (a file placed by hand is pinned here)."""
    spec = entry["files"][file]
    return shlex.join((["--hash", spec["hash"]] if spec["hash"] else []) + ["--lock", DOWNLOAD_LOCK.format(dataset=dataset)])


def import_refs(entry: dict) -> list[str]:
    """What a dataset's import reads: its caption file, then its image folders (``<file>[/<path inside it>]``)."""
    return [entry["annotations"], *entry["images"]]


def import_args(dataset: str, entry: dict) -> str:
    """``itr data import``'s options: the format, the caption file, every image folder, and restval; for a URL list
    (no image folders: img2dataset fetches them), its split and downloader settings."""
    annotations, *images = (resolve(dataset, entry, ref) for ref in import_refs(entry))
    args = ["--format", entry["format"], "--annotations", annotations]
    if entry["format"] == "url-list":
        if images or not entry.get("url_list"):
            raise InputError(f"datasets.{dataset}: format url-list fetches its images itself: set images: [] and "
                             "url_list: {split, threads, timeout, retries}")
        settings = dict(entry["url_list"])
        return shlex.join(args + ["--split", settings.pop("split"), "--downloader", json.dumps(settings, sort_keys=True)])
    if not images:
        raise InputError(f"datasets.{dataset}: format {entry['format']} reads its images from files: list them under "
                         "images (<file>[/<folder>])")
    args += [arg for path in images for arg in ("--images", path)]
    return shlex.join(args + ["--restval", entry["restval"]])


def features_source(dataset: str, entry: dict) -> str | None:
    """The released feature file or folder to import, or None where features are extracted (``pretrained``)."""
    features = entry["features"]
    if features["format"] == "pretrained":
        if features["source"] is not None:
            raise InputError(f"datasets.{dataset}.features: 'pretrained' extracts features from the images; "
                             "'source' is for released feature files (butd-tsv, vinvl-tsv, scan-npy, teran)")
        return None
    if features["source"] is None:
        raise InputError(f"datasets.{dataset}.features: format {features['format']!r} imports released features; "
                         "say where they are with 'source: <file>[/<path inside it>]'")
    return resolve(dataset, entry, features["source"])

