"""Ad-hoc search: one typed caption against a test collection, as the workflow's rows rank it.

The first stage embeds the text with a trained model and searches that model's faiss index of the collection
(``itr index build``); a second stage, when given, scores the (text, image) pairs of the first stage's top
``shortlist`` (or of every image, without a first stage) and ranks them by ``fusion`` (itr.shortlist.fuse). Each
step is timed. Nothing here knows a paper: ``itr search`` resolves a row's models and index from the registry.

A caption with words the text tower never saw still works: its tokenizer splits them into word pieces (or
[UNK]), as for any other caption.

Example:
    >>> result = search_text("two red circles above a square", "models/<variant>/be.pt", "indexes/<variant>/be/shapes",
    ...                      "data/shapes", "features/shapes", k=5)
    >>> result.hits[0].image_id, result.timings["search"]
    ('test-000412', 0.0004)
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from itr.errors import InputError
from itr.index import search as search_index


class SearchError(InputError, RuntimeError):
    """A search cannot run as asked (a missing index or model); the message names what builds it."""


@dataclasses.dataclass
class Hit:
    image_id: str
    score: float  # what the hits are ranked by
    first_score: float | None  # the first stage's (embedding) score, when there is a first stage


@dataclasses.dataclass
class SearchResult:
    hits: list[Hit]
    first_stage: list[Hit]  # the first stage's own top k (empty without one), to set beside the final ranking
    timings: dict[str, float]  # seconds per step: load, encode, search, rerank


def search_text(text: str, first_stage, index_dir, data, features, k: int = 5, second_stage=None,
                shortlist: int = 20, fusion: str = "ce", lam: float = 0.0, device="cpu",
                batch_size: int = 256) -> SearchResult:
    """Rank the collection's images for ``text``: through ``first_stage``'s index in ``index_dir`` (or, with
    ``first_stage`` None, every image), re-ranked by ``second_stage`` over the top ``shortlist`` when given
    (``batch_size`` pairs at a time, in fp32: a row that scores in bf16 may differ in the last digits).
    One query: the models load, then search (``timings["load"]`` says how long loading took)."""
    searcher = Searcher(first_stage, index_dir, data, features, second_stage, shortlist, fusion, lam, device,
                        batch_size)
    result = searcher(text, k)
    result.timings = {"load": searcher.load_seconds, **result.timings}
    return result


class Searcher:
    """A row's models and index, loaded once, ranking one typed caption per call (as ``itr serve`` does for
    each query of its page). The arguments are :func:`search_text`'s.

    Example:
        >>> searcher = Searcher("models/<variant>/be.pt", "indexes/<variant>/be/shapes", "data/shapes",
        ...                     "features/shapes")
        >>> [h.image_id for h in searcher("a red circle", k=2).hits]
        ['test-000107', 'test-000412']
    """

    def __init__(self, first_stage, index_dir, data, features, second_stage=None, shortlist: int = 20,
                 fusion: str = "ce", lam: float = 0.0, device="cpu", batch_size: int = 256,
                 build: str = "snakemake {target}"):
        from itr.features.store import FeatureStore
        from itr.manifest import file_digest
        from itr.models import load_trained

        if first_stage is None and second_stage is None:
            raise SearchError("give a first stage (an embedding model and its index), a second stage, or both")
        for path in (first_stage, second_stage):
            if path is not None and not Path(path).exists():
                raise SearchError(f"no model at {path}; train it with `{build.format(target=path)}`")
        t0 = time.perf_counter()
        self.data, self.store, self.device, self.batch_size = data, FeatureStore(features), device, batch_size
        self.shortlist, self.fusion, self.lam, self.reranks = shortlist, fusion, lam, second_stage is not None
        self.collection = _collection(index_dir, file_digest(first_stage), build) if first_stage is not None else None
        self.models = {name: load_trained(path, self.store, device) for name, path in (("first", first_stage),
                                                                                       ("second", second_stage)) if path}
        self.load_seconds = time.perf_counter() - t0

    @classmethod
    def from_spec(cls, spec: dict, device="cpu", default_shortlist: int = 20) -> Searcher:
        """A registry row's searcher (``itr.papers.search_spec``'s dict: models, index, data, features, and the
        row's shortlist ``k``, fusion and lam when it re-ranks; ``build``: the command its error messages name,
        with ``{target}``)."""
        return cls(spec.get("first_stage"), spec.get("index"), spec["data"], spec["features"], spec.get("second_stage"),
                   spec.get("k", default_shortlist), spec.get("fusion", "ce"), spec.get("lam") or 0.0, device,
                   spec.get("batch_size", 256), spec.get("build", "snakemake {target}"))

    def __call__(self, text: str, k: int = 5) -> SearchResult:
        import pandas as pd

        from itr.data.dataset import read_dataset
        from itr.models.encode import CaptionSet, embed_captions, score_pairs
        from itr.shortlist import fuse

        timings: dict[str, float] = {}
        query = pd.DataFrame({"text": [text], "caption_id": ["query"], "image_id": ["query"]})
        firsts: list[Hit] = []
        if self.collection is not None:
            model, tokenizer, ckpt = self.models["first"]
            t0 = time.perf_counter()
            vec = embed_captions(model, CaptionSet.from_frame(query, tokenizer, ckpt["text_encoder"]["max_text_len"]),
                                 1, self.device)  # (1, H)
            timings["encode"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            scores, positions = search_index(self.collection.image_index, vec,
                                             max(k, self.shortlist if self.reranks else k))
            timings["search"] = time.perf_counter() - t0
            firsts = [Hit(self.collection.image_ids[p], float(s), float(s))
                      for s, p in zip(scores[0], positions[0]) if p >= 0]
        if not self.reranks:
            return SearchResult(firsts[:k], firsts[:k], timings)
        model, tokenizer, ckpt = self.models["second"]
        candidates = firsts[:self.shortlist] if firsts else [Hit(i, 0.0, None)
                                                             for i in read_dataset(self.data, "test")[0]["image_id"]]
        t0 = time.perf_counter()
        captions = CaptionSet.from_frame(query, tokenizer, ckpt["text_encoder"]["max_text_len"])
        cross = score_pairs(model, captions, np.zeros(len(candidates), dtype=int), self.store,
                            [h.image_id for h in candidates], self.batch_size, self.device)  # (n,)
        first = np.array([h.first_score or 0.0 for h in candidates])
        final = fuse(first[None], cross[None], self.fusion if firsts else "ce", self.lam)[0]
        timings["rerank"] = time.perf_counter() - t0
        order = np.argsort(-final, kind="stable")[:k]
        hits = [Hit(candidates[i].image_id, float(final[i]), candidates[i].first_score) for i in order]
        return SearchResult(hits, firsts[:k], timings)


def _collection(index_dir, model_id: str, build: str = "snakemake {target}"):
    """The indexed collection, refused unless the first-stage model built it (``build``: the command that builds a
    ``{target}``, in the messages)."""
    from itr.index import IndexedCollection
    from itr.manifest import rebuild_hint

    done = Path(index_dir) / "collection.json"
    if not done.exists():
        raise SearchError(f"no index at {index_dir}; build it with `{build.format(target=done)}`")
    collection = IndexedCollection(Path(index_dir))
    if collection.model_id != model_id:
        raise SearchError(f"{index_dir} was built from another model than the one searching it; rebuild it with "
                          f"`{build.format(target=rebuild_hint(done).removeprefix('snakemake '))}`")
    return collection


def save_grid(result: SearchResult, data, out, text: str) -> None:
    """A PNG of the hits (and, beside a second stage, the first stage's own top k above them), scores shown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from itr.atomic import replacing
    from itr.data.dataset import read_dataset

    images, _ = read_dataset(data)
    file_of = dict(zip(images["image_id"], images["file"]))
    rows = [("first stage", result.first_stage), ("re-ranked", result.hits)] \
        if result.first_stage and result.hits != result.first_stage else [("top", result.hits)]
    k = max(len(hits) for _, hits in rows)
    fig, axes = plt.subplots(len(rows), k, figsize=(2 * k, 2.3 * len(rows)), squeeze=False)
    for r, (label, hits) in enumerate(rows):
        for c in range(k):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(hits):
                with Image.open(Path(data) / file_of[hits[c].image_id]) as im:
                    ax.imshow(im.convert("RGB"))
                ax.set_title(f"{hits[c].image_id}\n{hits[c].score:.3f}", fontsize=7)
        axes[r][0].text(-0.1, 0.5, label, transform=axes[r][0].transAxes, rotation=90, va="center", ha="right",
                        fontsize=8)
    fig.suptitle(text, fontsize=9)
    with replacing(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
