"""Test collections: one split's images and captions, optionally grown with distractors.

Table 5 of Geigle et al. searches the usual test queries in a larger space: the test split
plus images (and their captions) from other splits and another visual domain. Those
*distractors* are never queries and never relevant. A collection lists the test split's
images and captions first and the distractors after them, so every protocol group keeps its
queries as the first rows (itr.metrics.evaluate_rankings relies on that).

A source is named on the command line as ``DATA_DIR:FEATURES_DIR:SPLIT``. Distractor image ids
get the prefix ``<data dir name>/`` so they never collide with test ids (both ShapeCaptions
domains number their images ``test-000000`` ...).

Example:
    >>> Source.parse("data/shapes_sketch:features/shapes_sketch:test").prefix
    'shapes_sketch/'
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import torch

from itr.features.store import FeatureStore, FeatureStoreError


@dataclasses.dataclass(frozen=True)
class Source:
    """One split of a dataset directory, with the feature store of its images."""
    data: str
    features: str
    split: str

    @classmethod
    def parse(cls, text: str) -> "Source":
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"distractor source {text!r} must read DATA_DIR:FEATURES_DIR:SPLIT, "
                             "say data/shapes_sketch:features/shapes_sketch:test")
        return cls(*parts)

    @property
    def prefix(self) -> str:
        return f"{Path(self.data).name}/"

    @property
    def spec(self) -> str:
        """DATA_DIR:FEATURES_DIR:SPLIT, as ``parse`` reads it."""
        return f"{self.data}:{self.features}:{self.split}"


def sources(data: str, features: str, split: str, distractors=()) -> tuple[Source, list[Source]]:
    """The test split and its distractor sources (``DATA:FEATURES:SPLIT`` each), as the CLI names them."""
    return Source(data, features, split), [Source.parse(text) for text in distractors]


class StackedStore:
    """Several feature stores behind one ``get``: ids with a known prefix go to that store.

    All stores must come from the same extractor (manifest ``source``): a model reads the
    features it was trained on, or none.
    """

    def __init__(self, target: FeatureStore, distractors: dict[str, FeatureStore]):
        for prefix, store in distractors.items():
            if store.manifest["source"] != target.manifest["source"]:
                raise FeatureStoreError(
                    f"distractor features {store.root} were extracted by {store.manifest['source']}, the test "
                    f"features {target.root} by {target.manifest['source']}; extract both with one detector.")
        self.target, self.distractors = target, distractors
        self.root, self.manifest, self.dim = target.root, target.manifest, target.dim

    def _route(self, image_id: str) -> tuple[FeatureStore, str]:
        prefix = image_id.split("/", 1)[0] + "/" if "/" in image_id else ""
        if prefix in self.distractors:
            return self.distractors[prefix], image_id[len(prefix):]
        return self.target, image_id

    @property
    def has_tags(self) -> bool:
        return all(store.has_tags for store in (self.target, *self.distractors.values()))

    def tags(self, image_ids: list[str]) -> list[list[str]]:
        """The object tags of the given images, each from its own store (FeatureStore.tags)."""
        out = []
        for image_id in image_ids:
            store, local_id = self._route(image_id)
            out.extend(store.tags([local_id]))
        return out

    def get(self, image_ids: list[str]) -> dict[str, torch.Tensor]:
        if not self.distractors:
            return self.target.get(image_ids)
        by_store: dict[int, tuple[FeatureStore, list[int], list[str]]] = {}
        for n, image_id in enumerate(image_ids):
            store, local_id = self._route(image_id)
            by_store.setdefault(id(store), (store, [], []))
            by_store[id(store)][1].append(n)
            by_store[id(store)][2].append(local_id)
        parts = [(rows, store.get(ids)) for store, rows, ids in by_store.values()]
        order = torch.argsort(torch.tensor([n for rows, _ in parts for n in rows]))  # back to the asked order
        return {key: torch.cat([arrays[key] for _, arrays in parts])[order] for key in parts[0][1]}


def read_collection(target: Source, distractors: list[Source], lang: str | None = None,
                    first_images: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, StackedStore, int]:
    """(images, captions, store, n_targets): the test split, then each distractor source with prefixed ids;
    the first ``n_targets`` images are the test split's. ``lang`` keeps the test captions in one language
    (a multilingual dataset is searched one language at a time, Tables 2 and 7). ``first_images`` keeps
    only the split's first N images and their captions: all that a ``subset<N>`` protocol reads, so the
    auxiliary models do not encode the 95 % of the test split their tables never look at."""
    from itr.data.dataset import dataset_manifest, read_dataset

    images, captions = read_dataset(target.data, target.split)
    if first_images is not None:
        if not 0 < first_images <= len(images):
            raise ValueError(f"--first-images {first_images}: the {target.split} split of {target.data} has "
                             f"{len(images)} images; pass 1..{len(images)}")
        images = images.iloc[:first_images]
        captions = captions[captions["image_id"].isin(set(images["image_id"]))]
    if lang is not None:
        if lang not in set(captions["lang"]):
            imported = "source" in dataset_manifest(target.data)  # imported datasets name their source; shapes do not
            fix = (f"search only the languages it has (params multilingual.languages)" if imported
                   else f"generate it with shapes.languages including {lang!r}")
            raise ValueError(f"{target.data} has no {target.split} captions in {lang!r} (it has "
                             f"{sorted(set(captions['lang']))}); {fix}")
        captions = captions[captions["lang"] == lang]
    frames_i, frames_c, stores = [images], [captions], {}
    for src in distractors:
        if src.prefix in stores and Path(stores[src.prefix].root) != Path(src.features):
            raise ValueError(f"distractors from {src.data} named with two feature stores; use one per data directory")
        img, cap = read_dataset(src.data, src.split)
        img = img.assign(image_id=src.prefix + img["image_id"])
        cap = cap.assign(image_id=src.prefix + cap["image_id"], caption_id=src.prefix + cap["caption_id"])
        frames_i.append(img)
        frames_c.append(cap)
        if src.prefix not in stores:
            stores[src.prefix] = FeatureStore(src.features)
    store = StackedStore(FeatureStore(target.features), stores)
    return pd.concat(frames_i, ignore_index=True), pd.concat(frames_c, ignore_index=True), store, len(images)
