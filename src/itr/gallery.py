"""Retrieval galleries: what a first stage and its re-ranking put on top, for a seeded sample of text queries.

A table says how often the right image is on top; a gallery shows which images were there instead. It reads a
re-ranked row's scores file (``itr rerank score``: each caption query's first-stage shortlist, its first-stage
scores and the second stage's), so it shows exactly the rankings the row's cells score, with no model loaded:

* the first stage's top k, in shortlist order, with its scores;
* the same shortlist re-sorted by the row's fusion (itr.shortlist.fuse), with the fused scores;
* the ground-truth image marked in both, and its rank in each (``None``: not on the shortlist, a miss for both,
  since re-ranking never brings an image in).

Queries: the ``n_worst`` whose ground truth the re-ranking moved down the most (the largest rank loss; fewer when
fewer lost any), then ``n_random`` more drawn with ``seed`` from the rest. Only text-to-image queries of the
first protocol group (the collection's first images: the whole test split under ``full``).

Example:
    >>> g = select_queries(Shortlist.from_arrays(np.load("scores/<variant>/<row>/shapes/full.npz"), "g0/"),
    ...                    k=5, fusion="ce", lam=0.0, n_random=4, n_worst=4, seed=0)
    >>> g[0]["kind"], g[0]["first_rank"], g[0]["reranked_rank"]
    ('worst', 1, 9)
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from itr.errors import InputError
from itr.shortlist import Shortlist, fuse


class GalleryError(InputError, ValueError):
    """A scores file a gallery cannot show (no first stage, or queries that are not the dataset's)."""


def _rank(ranking: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """1-based rank of each query's ground truth in its ranking (Q, K), 0 where it is not there. (Q,)"""
    hit = ranking == truth[:, None]  # (Q, K)
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)


def select_queries(shortlist: Shortlist, k: int, fusion: str, lam: float, n_random: int, n_worst: int,
                   seed: int, depth: int | None = None) -> list[dict]:
    """The gallery's queries (caption positions of the group), each with both rankings' top ``k``: a list of
    {"query", "kind", "first", "first_scores", "reranked", "reranked_scores", "first_rank", "reranked_rank"}
    (image positions; ranks within the shortlist of ``depth``, None off it)."""
    cand = shortlist.t2i_candidates[:, :depth]  # (Q, K) image positions, first-stage order
    fused = fuse(shortlist.t2i_first[:, :depth], shortlist.t2i_cross[:, :depth], fusion, lam)  # (Q, K)
    # sorted as itr.shortlist.rerank sorts (ties keep first-stage order, empty slots last), keeping the order
    order = np.argsort(-np.where(cand >= 0, np.nan_to_num(fused, nan=-np.inf), -np.inf), axis=1, kind="stable")
    reranked = np.take_along_axis(cand, order, axis=1)  # (Q, K)
    truth = shortlist.caption_image[:len(cand)]  # (Q,)
    first_rank, reranked_rank = _rank(cand, truth), _rank(reranked, truth)
    loss = np.where(first_rank > 0, reranked_rank - first_rank, 0)  # (Q,) > 0: the re-ranking moved it down
    worst = [int(q) for q in np.argsort(-loss, kind="stable")[:n_worst] if loss[q] > 0]
    rest = np.setdiff1d(np.arange(len(cand)), worst)
    rng = np.random.default_rng(seed)
    drawn = sorted(int(q) for q in rng.choice(rest, size=min(n_random, len(rest)), replace=False))
    out = []
    for kind, queries in (("worst", worst), ("random", drawn)):
        for q in queries:
            out.append({"query": q, "kind": kind,
                        "first": cand[q, :k].tolist(), "first_scores": shortlist.t2i_first[q, :k].tolist(),
                        "reranked": reranked[q, :k].tolist(),
                        "reranked_scores": np.take_along_axis(fused[q], order[q], axis=0)[:k].tolist(),
                        "first_rank": int(first_rank[q]) or None, "reranked_rank": int(reranked_rank[q]) or None})
    return out


def build_gallery(scores, data, spec: dict, seed: int, out_stem) -> dict:
    """Select the queries of a scores file (``spec``: k, n_random, n_worst, fusion, lam, depth, first, second:
    the two methods' names) and write ``out_stem``.{json,png,html}. Returns the JSON's content."""
    from itr.atomic import write_text
    from itr.data.dataset import read_dataset

    with np.load(scores, allow_pickle=False) as z:
        meta, shortlist = json.loads(str(z["meta"])), Shortlist.from_arrays(z, "g0/")
    if not meta.get("first_stage"):
        raise GalleryError(f"{scores} scores every pair (no first stage): a gallery sets a first stage beside its "
                           "re-ranking; give the scores of a re-ranked row (e.g. sep_coop)")
    images, captions = read_dataset(data, meta["split"])
    if meta.get("lang"):
        captions = captions[captions["lang"] == meta["lang"]].reset_index(drop=True)
    pos = {iid: n for n, iid in enumerate(images["image_id"])}
    group = captions[captions["image_id"].map(pos) < len(shortlist.i2t_candidates)].reset_index(drop=True)
    if not np.array_equal(group["image_id"].map(pos).to_numpy(), shortlist.caption_image):
        raise GalleryError(f"{scores}: its queries are not the captions of {data}'s {meta['split']} split in order; "
                           "score it again from this dataset (snakemake --forcerun rerank_score ...)")
    chosen = select_queries(shortlist, spec["k"], spec["fusion"], spec["lam"], spec["n_random"], spec["n_worst"],
                            seed, spec.get("depth"))
    ids = list(images["image_id"])
    for q in chosen:
        row = group.iloc[q["query"]]
        q.update(caption_id=row["caption_id"], text=row["text"], truth=row["image_id"],
                 first=[ids[p] for p in q["first"] if p >= 0], reranked=[ids[p] for p in q["reranked"] if p >= 0])
    result = {"scores": str(scores), "protocol": meta["protocol_label"], "methods": [spec["first"], spec["second"]],
              "fusion": spec["fusion"], "lam": spec["lam"], "depth": spec.get("depth") or meta["k_max"],
              "seed": seed, "queries": chosen}
    files = dict(zip(images["image_id"], images["file"]))
    out_stem = Path(out_stem)
    _save_png(result, data, files, out_stem.with_suffix(".png"))
    write_text(out_stem.with_suffix(".html"), _html(result, data, files))
    write_text(out_stem.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    return result


def _rows(q: dict, methods) -> list[tuple[str, list[str], list[float], int | None]]:
    return [(methods[0], q["first"], q["first_scores"], q["first_rank"]),
            (methods[1], q["reranked"], q["reranked_scores"], q["reranked_rank"])]


def _rank_label(rank) -> str:
    return f"rank {rank}" if rank else "not on the shortlist"


def _save_png(result: dict, data, files: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from itr.atomic import replacing

    queries, k = result["queries"], max([len(q["first"]) for q in result["queries"]] + [1])
    fig, axes = plt.subplots(2 * max(len(queries), 1), k, figsize=(1.6 * k, 1.9 * 2 * max(len(queries), 1)),
                             squeeze=False, gridspec_kw={"hspace": 0.45})
    for ax in axes.flat:
        ax.axis("off")
    for n, q in enumerate(queries):
        for r, (method, hits, scores, rank) in enumerate(_rows(q, result["methods"])):
            row = axes[2 * n + r]
            for c, (image_id, score) in enumerate(zip(hits, scores)):
                with Image.open(Path(data) / files[image_id]) as im:
                    row[c].imshow(im.convert("RGB"))
                right = image_id == q["truth"]
                row[c].set_title(f"{score:.3f}" + (" (truth)" if right else ""), fontsize=7,
                                 color="green" if right else "black")
                if right:  # a frame around the ground truth
                    row[c].axis("on"), row[c].set_xticks([]), row[c].set_yticks([])
                    for spine in row[c].spines.values():
                        spine.set(color="green", linewidth=3)
            row[0].text(-0.08, 0.5, f"{method}\n{_rank_label(rank)}", transform=row[0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=7)
        axes[2 * n][0].text(0, 1.35, f"[{q['kind']}] {q['text']}", transform=axes[2 * n][0].transAxes, fontsize=8)
    with replacing(out) as tmp:
        fig.savefig(tmp, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)


def _html(result: dict, data, files: dict) -> str:
    """One self-contained page (images inlined): Snakemake's report shows it as it is."""
    from PIL import Image

    inlined: dict[str, str] = {}

    def img(image_id: str, truth: bool) -> str:
        if image_id not in inlined:  # a 96-px JPEG: the generated images' pixel noise makes PNGs ~40 kB each
            with Image.open(Path(data) / files[image_id]) as im:
                buf = io.BytesIO()
                im.convert("RGB").resize((96, 96)).save(buf, format="JPEG", quality=85)
            inlined[image_id] = base64.b64encode(buf.getvalue()).decode()
        border = "3px solid green" if truth else "1px solid #ccc"
        return (f'<img src="data:image/jpeg;base64,{inlined[image_id]}" alt="{html.escape(image_id)}" '
                f'width="96" height="96" style="border:{border}">')


    parts = [f"<h2>{html.escape(' vs '.join(result['methods']))}</h2>",
             f"<p>{html.escape(result['protocol'])}; shortlist of {result['depth']}, re-ranked by "
             f"{html.escape(result['fusion'])} (λ = {result['lam']}); queries: the largest rank losses, then random "
             f"(seed {result['seed']}). A green frame marks the ground truth.</p>"]
    for q in result["queries"]:
        parts.append(f"<h3>[{q['kind']}] {html.escape(q['text'])} <small>({html.escape(q['caption_id'])})</small></h3>"
                     "<table>")
        for method, hits, scores, rank in _rows(q, result["methods"]):
            cells = "".join(f"<td>{img(i, i == q['truth'])}<br><small>{html.escape(i)} {s:.3f}</small></td>"
                            for i, s in zip(hits, scores))
            parts.append(f"<tr><th>{html.escape(method)}<br><small>{_rank_label(rank)}</small></th>{cells}</tr>")
        parts.append("</table>")
    return "<!doctype html><html><head><meta charset='utf-8'><title>gallery</title></head><body>" \
           + "\n".join(parts) + "</body></html>\n"
