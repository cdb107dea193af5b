"""Per-query latency (Table 3) and full-evaluation cost (Table 4) of BE, COOP and CE.

What is timed, per text query, against collections grown to each size in ``sizes``
(itr.data.grow): ``encoded_images`` images go through the image tower (the real ShapeCaptions
test images, then recombinations of their regions); larger collections add normalised mixtures
of pairs of those embeddings, which borrow their first parent's regions for the cross-encoder:

* ``encode``   - the query caption through the text tower (batch 1), in ``query_precision``
                 (itr.models.serving: fp32, or int8 quantized and traced), and in fp32 beside it;
* ``search``   - the configured faiss index (a factory string, e.g. HNSW32) for each
                 ``search_params`` setting, with recall@10 against exact search with the same query
                 vectors: a result counts when its exact score reaches the exact 10th-best score
                 (``recall@10``; grown collections contain exact ties), and, stricter, by id
                 (``recall@10_ids``); ``recall@10_vs_fp32`` scores the same results against exact
                 search with the fp32 tower's vectors (what an int8 tower changes, on top of the index);
* ``quality``  - what the serving tower costs in accuracy: t2i R@1/5/10 of test captions over the
                 real test images (exact search), with the serving and with the fp32 tower;
* ``baseline`` - the paper's implementation of the first stage: exact search as a plain
                 PyTorch matrix product over all image embeddings plus top-k, in the same run;
* ``coop``     - encode + search the top k + cross-encode the k pairs + sort;
* ``ce``       - cross-encoding every image for one query, extrapolated from the measured
                 pair throughput (marked ``extrapolated``).

Table 4 (full evaluation: every caption and image of an n-image collection with 5 captions
per image, both directions) is computed from throughputs measured here: images/s and
captions/s through the towers, exact batched search, and CE pairs/s. Those rows are marked
as estimates from measured throughputs.

    python benchmarks/latency.py --be models/rfrs/be.pt --ce models/rfrs/ce.pt --data data/shapes \
        --features features/shapes --config '{"sizes": [50000, 1000000], ...}' --out results/benchmarks/latency.json
"""
from __future__ import annotations

import json
import logging
import platform
import resource
import sys
import time

import faiss
import numpy as np
import torch
from tqdm import tqdm

from itr.atomic import write_json
from itr.cli.common import benchmark_parser
from itr.data.grow import RecombinedFeatures, mix_embeddings
from itr.data.dataset import read_dataset
from itr.features.store import FeatureStore
from itr.index import build_index, normalise
from itr.metrics import hits_at_k
from itr.models import load_trained
from itr.models.serving import text_tower
from itr.models.encode import CaptionSet

log = logging.getLogger("itr.benchmarks.latency")
RECALL_AT = 10


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean()), "n": len(ms)}


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _device_of(model) -> torch.device:
    return next(model.parameters()).device


def _features(grown: RecombinedFeatures, ids: np.ndarray, device) -> tuple:
    f = grown.get(ids)
    return tuple(f[k].to(device) for k in ("regions", "geometry", "mask", "global"))


@torch.inference_mode()
def encode_collection(model, grown: RecombinedFeatures, n: int, batch: int, precision: str) -> tuple[np.ndarray, float]:
    """(n, H) normalised image embeddings of the grown collection, and images/s."""
    device = _device_of(model)
    out = np.empty((n, model.bert.config.hidden_size), dtype=np.float32)
    t0 = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        for s in tqdm(range(0, n, batch), desc=f"encoding {n} images", mininterval=30):
            emb = model.embed_image(*_features(grown, np.arange(s, min(n, s + batch)), device))
            out[s:s + len(emb)] = torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy()
    return out, n / (time.perf_counter() - t0)


@torch.inference_mode()
def encode_query(tower, captions: CaptionSet, row: int, device) -> np.ndarray:
    """(1, H) one caption through a text tower (itr.models.serving); returns on the host, so GPU time is included."""
    ids, mask = captions.batch([row])
    return tower(ids.to(device), mask.to(device)).float().cpu().numpy()


@torch.inference_mode()
def cross_scores(model, captions: CaptionSet, row: int, grown: RecombinedFeatures, ids: np.ndarray) -> np.ndarray:
    """CE logits of one caption against the given images, in one batch (returned on the host)."""
    device = _device_of(model)
    tok, mask = captions.batch([row] * len(ids))
    return model.match_logits(tok.to(device), mask.to(device), *_features(grown, ids, device)).float().cpu().numpy()


def exact_torch(queries: torch.Tensor, items: torch.Tensor, k: int) -> np.ndarray:
    """The paper's first stage: a dense matrix product over every item, then top-k. (Q, k) positions."""
    return torch.topk(queries @ items.T, k, dim=1).indices.cpu().numpy()  # .cpu() waits for a GPU


def tie_aware_recall(queries: np.ndarray, items: np.ndarray, found: np.ndarray, truth: np.ndarray) -> float:
    """recall@10 against exact search, counting a returned item as correct when its exact score reaches the
    10th-best exact score: items with equal scores are interchangeable (a grown collection has exact ties)."""
    kth = np.einsum("qd,qd->q", queries, items[truth[:, -1]])  # (Q,) exact 10th-best score
    got = np.einsum("qd,qkd->qk", queries, items[np.clip(found, 0, None)])  # (Q, 10) exact scores of the results
    return float(np.mean(((got >= kth[:, None] - 1e-6) & (found >= 0)).sum(1) / found.shape[1]))


def bench_size(cfg: dict, size: int, emb: np.ndarray, query_vecs: np.ndarray, reference_vecs: np.ndarray,
               encode_s: dict[str, list[float]], coop_fn, device) -> dict:
    """One collection size. query_vecs: the serving tower's (searched); reference_vecs: the fp32 tower's;
    encode_s: per tower ("serving", "fp32"), the encoding time of each query."""
    items = emb[:size]
    items_t = torch.from_numpy(items).to(device)
    q_t = torch.from_numpy(query_vecs).to(device)
    truth = exact_torch(q_t, items_t, RECALL_AT)  # (Q, 10) ground truth for recall
    truth_fp32 = exact_torch(torch.from_numpy(reference_vecs).to(device), items_t, RECALL_AT)  # the fp32 tower's
    baseline = [timed(exact_torch, q_t[i:i + 1], items_t, cfg["k"])[1] for i in range(len(query_vecs))]
    index, build_s = timed(build_index, items, cfg["factory"])
    result = {"size": size, "baseline_torch_exact": percentiles(baseline), "factory": cfg["factory"],
              "build_s": round(build_s, 1), "index_bytes": int(faiss.serialize_index(index).size), "settings": []}
    for params in cfg["search_params"]:
        if params:
            faiss.ParameterSpace().set_index_parameters(index, params)
        lat, found = [], []
        for i in range(len(query_vecs)):
            (_, pos), dt = timed(index.search, query_vecs[i:i + 1], cfg["k"])
            lat.append(dt)
            found.append(pos[0, :RECALL_AT])
        recall = tie_aware_recall(query_vecs, items, np.stack(found), truth)
        recall_fp32 = tie_aware_recall(reference_vecs, items, np.stack(found), truth_fp32)
        search = percentiles(lat)
        be = percentiles([e + s for e, s in zip(encode_s["serving"], lat)])
        be_fp32 = percentiles([e + s for e, s in zip(encode_s["fp32"], lat)])
        id_recall = float(np.mean([len(set(f) & set(g)) / RECALL_AT for f, g in zip(found, truth)]))
        result["settings"].append({"search_params": params, "recall@10": recall, "recall@10_ids": id_recall,
                                   "recall@10_vs_fp32": recall_fp32,
                                   "search": search, "be": be, "be_fp32_tower": be_fp32,
                                   "speedup_vs_baseline_p50": result["baseline_torch_exact"]["p50_ms"] / search["p50_ms"]})
        log.info("%d images, %s %s: search p50 %.2f ms, BE (encode+search) p50 %.2f ms, recall@10 %.3f",
                 size, cfg["factory"], params, search["p50_ms"], be["p50_ms"], recall)
    chosen = next((s for s in result["settings"] if s["recall@10"] >= cfg["min_recall"]), result["settings"][-1])
    if chosen["search_params"]:
        faiss.ParameterSpace().set_index_parameters(index, chosen["search_params"])
    result["chosen"] = chosen["search_params"]
    result["coop"] = percentiles([coop_fn(index, i) for i in range(min(cfg["coop_queries"], len(query_vecs)))])
    return result


@torch.inference_mode()
def tower_quality(towers: dict, captions: CaptionSet, image_ids: list[str], image_vecs: np.ndarray, n: int,
                  seed: int, device) -> dict:
    """t2i R@1/5/10 (percent) of n random test captions over the given images, exact search, per tower."""
    position = {iid: i for i, iid in enumerate(image_ids)}
    pool = [r for r, iid in enumerate(captions.image_ids) if iid in position]  # captions of encoded images
    rows = np.random.default_rng([seed, 2]).choice(pool, min(n, len(pool)), replace=False)
    gt = np.array([position[captions.image_ids[r]] for r in rows])
    out = {}
    for name, tower in towers.items():
        q = np.concatenate([encode_query(tower, captions, int(r), device) for r in rows])
        ranked = exact_torch(torch.from_numpy(q), torch.from_numpy(image_vecs), RECALL_AT)
        out[name] = {f"t2i/R@{k}": v for k, v in hits_at_k(ranked, gt, (1, 5, RECALL_AT)).items()}
    return {"n_images": len(image_ids), "n_captions": len(rows), "towers": out}


def main(argv: list[str] | None = None) -> int:
    ap = benchmark_parser(__doc__, ("--be", "--ce", "--data", "--features", "--config", "--out"))
    args = ap.parse_args(argv)
    cfg = json.loads(args.config)
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    torch.manual_seed(0)
    store = FeatureStore(args.features)
    device = torch.device(args.device)
    be, tokenizer, be_ckpt = load_trained(args.be, store, device)
    ce, ce_tokenizer, ce_ckpt = load_trained(args.ce, store, device)
    images, caps = read_dataset(args.data, "test")
    grown = RecombinedFeatures(store.get(list(images["image_id"])), seed=cfg["seed"])
    captions = CaptionSet.from_frame(caps, tokenizer, be_ckpt["text_encoder"]["max_text_len"])
    ce_captions = CaptionSet.from_frame(caps, ce_tokenizer, ce_ckpt["text_encoder"]["max_text_len"])
    rows = np.random.default_rng(cfg["seed"]).choice(len(captions), cfg["queries"], replace=False)

    # Query encoding, batch 1, timed per query (warm-up first: the first calls allocate), with the
    # serving tower and with the fp32 one (the reference the recall is measured against).
    example = [t.to(device) for t in captions.batch([int(rows[0])])]
    towers = {"fp32": text_tower(be, "fp32", *example), "serving": text_tower(be, cfg["query_precision"], *example)}
    encode_s, vecs = {}, {}
    for name, tower in towers.items():
        for r in rows[:5]:
            encode_query(tower, captions, int(r), device)
        encoded = [timed(encode_query, tower, captions, int(r), device) for r in rows]
        vecs[name], encode_s[name] = np.concatenate([v for v, _ in encoded]), [dt for _, dt in encoded]
    query_vecs, reference_vecs = vecs["serving"], vecs["fp32"]
    cosine = np.einsum("qd,qd->q", query_vecs, reference_vecs)  # (Q,) how far the serving tower moves a query

    n_max = max(cfg["sizes"])
    n_encoded = min(cfg["encoded_images"], n_max)
    encoded, images_per_s = encode_collection(be, grown, n_encoded, cfg["encode_batch"], cfg["encode_precision"])
    emb, parent = mix_embeddings(encoded, n_max, cfg["seed"])  # parent: whose regions an item has
    n_test = len(images)  # the first embeddings are the real test images, in order (itr.data.grow)
    quality = tower_quality(towers, captions, list(images["image_id"][:min(n_test, n_encoded)]),
                            encoded[:min(n_test, n_encoded)], 1000, cfg["seed"], device)
    log.info("t2i recall of test captions by query tower: %s", quality)

    # CE throughput: pairs/s at the batch size the rerank rules use.
    ce_autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg["ce_precision"] == "bf16")
    pair_ids = np.arange(cfg["throughput_pairs"]) % n_encoded
    with ce_autocast:
        cross_scores(ce, ce_captions, int(rows[0]), grown, pair_ids[:cfg["ce_batch"]])  # warm-up
        t0 = time.perf_counter()
        for s in range(0, len(pair_ids), cfg["ce_batch"]):
            cross_scores(ce, ce_captions, int(rows[0]), grown, pair_ids[s:s + cfg["ce_batch"]])
        pairs_per_s = len(pair_ids) / (time.perf_counter() - t0)

    def coop(index, i: int) -> float:
        t = time.perf_counter()
        q = encode_query(towers["serving"], captions, int(rows[i]), device)
        _, pos = index.search(q, cfg["k"])
        cand = pos[0][pos[0] >= 0]
        with ce_autocast:
            order = np.argsort(-cross_scores(ce, ce_captions, int(rows[i]), grown, parent[cand]), kind="stable")
        _ = cand[order]
        return time.perf_counter() - t

    # Caption tower throughput (batched), for Table 4.
    n_caps = min(5000, len(captions))
    t0 = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, n_caps, 256):
            ids, mask = captions.batch(slice(s, min(n_caps, s + 256)))
            be.embed_text(ids.to(device), mask.to(device)).cpu()
    captions_per_s = n_caps / (time.perf_counter() - t0)
    # Exact batched search throughput (query-item dot products per second), for Table 4.
    q = normalise(np.repeat(query_vecs, max(1, 5000 // len(query_vecs)), axis=0)[:5000])
    flat = build_index(emb[:5000], "Flat")
    _, dt = timed(flat.search, q, 10)
    dots_per_s = len(q) * 5000 / dt

    sizes = [bench_size(cfg, size, emb, query_vecs, reference_vecs, encode_s, coop, device)
             for size in cfg["sizes"]]
    for s in sizes:
        s["ce_extrapolated"] = {"seconds_per_query": s["size"] / pairs_per_s, "extrapolated": True}
    full_eval = []
    for n in cfg["eval_sizes"]:
        n_caps = 5 * n
        encode = n / images_per_s + n_caps / captions_per_s
        search = 2 * n * n_caps / dots_per_s  # t2i: 5n queries x n items; i2t: n queries x 5n items
        coop_pairs = cfg["k"] * (n_caps + n)
        full_eval.append({"n_images": n, "n_captions": n_caps, "be_s": encode + search,
                          "coop_s": encode + search + coop_pairs / pairs_per_s, "coop_pairs": coop_pairs,
                          "ce_s": n * n_caps / pairs_per_s, "ce_pairs": n * n_caps,
                          "estimated_from_throughputs": True})
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "threads": args.threads, "torch": torch.__version__, "faiss": faiss.__version__,
                    "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device)},
        "config": cfg, "models": {"be": str(args.be), "ce": str(args.ce)},
        "collection": (f"{n_encoded:,} images through the image tower (the ShapeCaptions test images, then "
                       "recombinations of their detector regions), and beyond that mixtures of pairs of their "
                       "embeddings (itr.data.grow)"),
        "query_precision": cfg["query_precision"],
        "encode_query": percentiles(encode_s["serving"]),
        "encode_query_fp32": percentiles(encode_s["fp32"]),
        "query_cosine_to_fp32": {"mean": float(cosine.mean()), "min": float(cosine.min())},
        "query_tower_quality": quality,
        "throughput": {"images_per_s": images_per_s, "captions_per_s": captions_per_s,
                       "ce_pairs_per_s": pairs_per_s, "exact_dots_per_s": dots_per_s,
                       "image_precision": cfg["encode_precision"], "ce_precision": cfg["ce_precision"]},
        "sizes": sizes, "full_evaluation": full_eval,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    write_json(args.out, result)
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
