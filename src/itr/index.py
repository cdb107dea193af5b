"""faiss indexes described by factory strings, saved with the identity of their model.

The index type is configuration, not code: ``Flat`` (exact), ``HNSW32`` or ``IVF64,Flat``
come from params.yaml, with an optional faiss ParameterSpace string for search-time
settings (``efSearch=128``, ``nprobe=16``). Vectors are L2-normalised and searched by
inner product, i.e. cosine similarity.

An index is saved as ``<name>.faiss`` plus ``<name>.json`` (ids in index order, factory,
dimension, and ``model_id``, the digest of the checkpoint that made the vectors). Loading
with a different expected model id is an error: an index built by another model returns
confident nonsense.

Example:
    >>> index = build_index(np.eye(4, dtype="float32"), "Flat")
    >>> search(index, np.eye(4, dtype="float32")[:1], k=2)[1]
    array([[0, 1]])
"""
from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
from tqdm import tqdm

from itr.atomic import remove_stale_temporaries, replacing, save_npy, write_text
from itr.errors import InputError
from itr.manifest import ManifestError, read_sealed, rebuild_hint, verify_files, write_sealed

# The files of a saved collection besides collection.json, which is sealed with their digests.
COLLECTION_FILES = ("images.vectors.npy", "captions.vectors.npy", "images.faiss", "images.json",
                    "captions.faiss", "captions.json")


class IndexFileError(InputError, RuntimeError):
    """An index file is missing, or was built by a different model or with other settings."""


class CollectionMismatchError(IndexFileError):
    """An index holds another collection (other images, captions or distractors) than the one asked for."""


def pin_search_threads() -> None:
    """One faiss thread for evaluation: exact search sums scores in a thread-count-dependent order, and
    near-tied items (twin images) can swap places between 1 and 2 threads. Pinning it makes metrics
    independent of the machine and of OMP_NUM_THREADS; these searches take well under a second either way."""
    faiss.omp_set_num_threads(1)


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


ADD_CHUNK = 65_536  # vectors per faiss add: a progress step at 1M


def build_index(vectors: np.ndarray, factory: str, search_params: str = "") -> faiss.Index:
    """Index over L2-normalised vectors (N, d) with inner-product metric."""
    vectors = normalise(vectors)
    try:
        index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as e:
        raise IndexFileError(f"faiss cannot build factory string {factory!r}: {e}") from e
    if not index.is_trained:
        index.train(vectors)
    # added in chunks, so that a million vectors show progress (the same index as one add, but for HNSW, whose
    # graph depends on the order of insertion: deterministic either way)
    for start in tqdm(range(0, len(vectors), ADD_CHUNK), desc=f"index {factory}", mininterval=10,
                      disable=len(vectors) <= 4 * ADD_CHUNK):
        index.add(vectors[start:start + ADD_CHUNK])
    if search_params:
        faiss.ParameterSpace().set_index_parameters(index, search_params)
    return index


def _params_with_selector(index: faiss.Index, selector) -> faiss.SearchParameters:
    """Search parameters restricting results to a subset, keeping the index's own settings."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        return faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe)
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=inner.hnsw.efSearch)
    if isinstance(inner, (faiss.IndexFlat, faiss.IndexFlatIP)):
        return faiss.SearchParameters(sel=selector)
    raise IndexFileError(f"restricting search to a subset is supported for Flat, HNSW and IVF indexes, "
                      f"not {type(inner).__name__}; use one of those factories for fold protocols.")


def search(index: faiss.Index, queries: np.ndarray, k: int, subset: np.ndarray | None = None):
    """Top-k (scores, positions) for each query; positions are -1 where fewer than k items exist.

    ``subset``: optional positions to search within (the COCO-1k fold protocol uses this).
    """
    queries = normalise(queries)
    k = min(k, index.ntotal if subset is None else len(subset))
    if subset is None:
        return index.search(queries, k)
    selector = faiss.IDSelectorBatch(np.ascontiguousarray(subset, dtype=np.int64))
    return index.search(queries, k, params=_params_with_selector(index, selector))


def save_index(path_stem: str | Path, index: faiss.Index, ids: list[str], model_id: str, factory: str,
               search_params: str) -> None:
    """Write <stem>.faiss and <stem>.json atomically (the json, written last, marks completion)."""
    stem = Path(path_stem)
    with replacing(stem.with_suffix(".faiss")) as tmp:
        faiss.write_index(index, str(tmp))
    meta = {"ids": list(ids), "model_id": model_id, "factory": factory, "search_params": search_params,
            "dim": index.d, "ntotal": index.ntotal}
    write_text(stem.with_suffix(".json"), json.dumps(meta))


def load_index(path_stem: str | Path, expected_model_id: str) -> tuple[faiss.Index, dict]:
    """Load an index and check that the given model made its vectors."""
    stem = Path(path_stem)
    meta_path, index_path = stem.with_suffix(".json"), stem.with_suffix(".faiss")
    for p in (meta_path, index_path):
        if not p.exists():
            raise IndexFileError(f"{p} not found; build the index: {rebuild_hint(stem.parent / 'collection.json')}")
    meta = json.loads(meta_path.read_text())
    if meta["model_id"] != expected_model_id:
        raise IndexFileError(
            f"{index_path} was built from model {meta['model_id']}, but the embeddings being searched come from "
            f"model {expected_model_id}. Rebuild the index with the current checkpoint: "
            f"{rebuild_hint(stem.parent / 'collection.json')}")
    index = faiss.read_index(str(index_path))
    if index.ntotal != len(meta["ids"]):
        raise IndexFileError(f"{index_path}: {index.ntotal} vectors but {len(meta['ids'])} ids in {meta_path}; rebuild it.")
    if meta.get("search_params"):
        faiss.ParameterSpace().set_index_parameters(index, meta["search_params"])
    return index, meta


def save_collection(out: str | Path, image_vecs: np.ndarray, caption_vecs: np.ndarray, image_ids: list[str],
                    caption_ids: list[str], factory: str, search_params: str, meta: dict) -> None:
    """Both indexes of a test collection and their query vectors (the other modality), tagged with the model.

    ``meta`` (model_id, split, caption_image_ids, n_targets, distractors, lang, first_images, ...) is written
    as ``collection.json``, last: its presence marks the collection complete. It is sealed with the digests of
    the other six files (itr.manifest), so an index or vector file swapped in from another build is refused.
    """
    model_id = meta["model_id"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # a killed run's half-written files
    save_npy(out / "images.vectors.npy", image_vecs)
    save_npy(out / "captions.vectors.npy", caption_vecs)
    save_index(out / "images", build_index(image_vecs, factory, search_params), image_ids, model_id, factory,
               search_params)
    save_index(out / "captions", build_index(caption_vecs, factory, search_params), caption_ids, model_id, factory,
               search_params)
    write_sealed(out / "collection.json", meta, out, list(COLLECTION_FILES))


def index_collection(model_path, target, distractors, lang: str | None, first_images: int | None, factory: str,
                     search_params: str, out, device="cpu", log=print) -> None:
    """Encode a test collection (itr.collection.Source, distractor Sources) with a trained model and save
    both indexes with the query vectors (save_collection), tagged with the checkpoint's digest."""
    from itr.manifest import file_digest
    from itr.models.encode import embed_captions, embed_images, load_on_collection

    c = load_on_collection(model_path, target, distractors, lang, first_images, device)
    img = embed_images(c.model, c.store, c.image_ids, 256, device)
    cap = embed_captions(c.model, c.captions, 256, device)
    save_collection(out, img, cap, c.image_ids, c.captions.caption_ids, factory, search_params, {
        "model": str(model_path), "model_id": file_digest(model_path), "split": target.split,
        "caption_image_ids": c.captions.image_ids, "factory": factory, "n_targets": c.n_targets,
        "distractors": [s.spec for s in distractors], "lang": lang, "first_images": first_images})
    log(f"indexed {len(c.image_ids)} images ({len(c.image_ids) - c.n_targets} distractors) and "
        f"{len(c.captions)} captions with {factory}")


def to_local(positions: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Global index positions -> positions within ``members`` (sorted), -1 where not a member.

    Search returns positions in the whole index; a group is scored in its own numbering.
    """
    idx = np.clip(np.searchsorted(members, positions), 0, len(members) - 1)
    return np.where(members[idx] == positions, idx, -1)


class IndexedCollection:
    """A test collection as saved by ``itr index build``: both faiss indexes and the query vectors."""

    def __init__(self, index_dir: Path):
        self.index_dir = Path(index_dir)
        try:
            hint = rebuild_hint(self.index_dir / "collection.json")
            collection = read_sealed(self.index_dir / "collection.json", hint)
            verify_files(collection, self.index_dir, hint)
        except ManifestError as e:
            raise IndexFileError(str(e)) from e
        self.split, self.model_id = collection["split"], collection["model_id"]
        self.image_index, image_meta = load_index(Path(index_dir) / "images", self.model_id)
        self.caption_index, caption_meta = load_index(Path(index_dir) / "captions", self.model_id)
        self.factory = image_meta["factory"]
        self.image_vecs = np.load(Path(index_dir) / "images.vectors.npy")
        self.caption_vecs = np.load(Path(index_dir) / "captions.vectors.npy")
        self.image_ids: list[str] = image_meta["ids"]
        self.caption_image_ids: list[str] = collection["caption_image_ids"]
        self.caption_ids: list[str] = caption_meta["ids"]
        pos_of = {iid: n for n, iid in enumerate(self.image_ids)}
        self.caption_image_pos = np.array([pos_of[i] for i in self.caption_image_ids])  # (N_captions,)
        # Test images come first, distractors (if any) after them, and likewise their captions.
        self.n_targets = collection.get("n_targets", len(self.image_ids))
        self.distractor_sources = collection.get("distractors", [])
        self.lang = collection.get("lang")  # captions of one language only (None: all the split has)
        self.first_images = collection.get("first_images")  # only the split's first N images (None: all)

    def group_captions(self, images: np.ndarray) -> np.ndarray:
        """Caption rows (sorted) whose image is among the given image positions."""
        return np.flatnonzero(np.isin(self.caption_image_pos, images))

    def members(self, group: np.ndarray) -> np.ndarray:
        """A protocol group's search space: its test images, then every distractor. Sorted."""
        return np.concatenate([group, np.arange(self.n_targets, len(self.image_ids))])

    def first_stage(self, group: np.ndarray, k: int):
        """Search restricted to one protocol group, both directions, in the group's own numbering.

        Queries are the group's test images and their captions; the search space adds the
        distractors. Returns (t2i_scores, t2i_positions, i2t_scores, i2t_positions):
        (n_query_captions, k) and (len(group), k); positions index ``members(group)`` /
        ``group_captions(members(group))``, -1 = no result.
        """
        images = self.members(group)
        captions = self.group_captions(images)
        queries = captions[:len(self.group_captions(group))]  # the test captions come first
        full = len(images) == len(self.image_ids)
        t2i_s, t2i = search(self.image_index, self.caption_vecs[queries], k, None if full else images)
        i2t_s, i2t = search(self.caption_index, self.image_vecs[group], k, None if full else captions)
        return t2i_s, to_local(t2i, images), i2t_s, to_local(i2t, captions)

    def require(self, image_ids: list[str], caption_image_ids: list[str], what: str) -> None:
        """Refuse to serve another collection than ``what`` (the images and captions the caller scores)."""
        if self.image_ids != image_ids or self.caption_image_ids != caption_image_ids:
            raise CollectionMismatchError(
                f"{self.index_dir} indexes another collection than {what}; rebuild the index (snakemake indexes) "
                "or pass the same --distractors, --lang and --first-images.")
