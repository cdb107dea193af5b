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

from itr.atomic import replacing, write_text


class IndexFileError(RuntimeError):
    """An index file is missing, or was built by a different model or with other settings."""


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def build_index(vectors: np.ndarray, factory: str, search_params: str = "") -> faiss.Index:
    """Index over L2-normalised vectors (N, d) with inner-product metric."""
    vectors = normalise(vectors)
    try:
        index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as e:
        raise IndexFileError(f"faiss cannot build factory string {factory!r}: {e}") from e
    if not index.is_trained:
        index.train(vectors)
    index.add(vectors)
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
            raise IndexFileError(f"{p} not found; build the index first (snakemake indexes).")
    meta = json.loads(meta_path.read_text())
    if meta["model_id"] != expected_model_id:
        raise IndexFileError(
            f"{index_path} was built from model {meta['model_id']}, but the embeddings being searched come from "
            f"model {expected_model_id}. Rebuild the index with the current checkpoint (snakemake indexes).")
    index = faiss.read_index(str(index_path))
    if index.ntotal != len(meta["ids"]):
        raise IndexFileError(f"{index_path}: {index.ntotal} vectors but {len(meta['ids'])} ids in {meta_path}; rebuild it.")
    if meta.get("search_params"):
        faiss.ParameterSpace().set_index_parameters(index, meta["search_params"])
    return index, meta
