"""Total inference time of whole evaluations (TGDT Tables IV-V, Figures 1 and 7): every method ranks every query of
one protocol, in both directions, timed end to end in one run, and scored from that same run.

A method is a first stage (a model whose embeddings are indexed and searched), a second stage (a model that scores
(caption, image) pairs: a cross-encoder, or a dual transformer's local similarity), or both (the first stage's top
``k``, ranked by ``fusion`` of the two scores with weight ``lam`` on the first; itr.shortlist.fuse). Each method runs
the library calls the workflow's rules run, into a temporary directory, one method after another in one process
with a fixed thread count:

* ``index``  - itr.index.index_collection: load the model, encode the protocol's images and captions, build the index;
* ``search`` - itr.evaluate.evaluate_collection: rank by embedding similarity (a first stage alone);
* ``score``  - itr.rerank.score_collection: load the second stage, search the shortlists, score every listed pair
               (every pair of each group without a first stage); ``pairs_scored`` says how many;
* ``rank``   - itr.evaluate.evaluate_scores: fuse, sort and compute the metrics.

The collection holds only the protocol's images (its first N test images for ``subset<N>``), as an evaluation of
them needs. The metrics of each method are those of the workflow's cell on the same protocol (the same calls; the
integration test checks it), so a table can set time against quality measured in one run. Before the first timed
method, one untimed pass of the first method warms the page cache and the libraries up.

    python benchmarks/inference_time.py --data data/shapes --features features/shapes --protocol subset \\
        --methods '{"be": {"first_stage": "models/rfrs/be.pt"},
                    "ce": {"second_stage": "models/rfrs/ce.pt", "batch_size": 256, "precision": "fp32"}}' \\
        --eval-config '{...}' --index-config '{...}' \\
        --out results/benchmarks/tgdt_inference.json
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from itr.atomic import write_json
from itr.cli.common import benchmark_parser
from itr.collection import sources
from itr.config import ConfigError, EvalConfig, IndexConfig, RerankConfig, parse_section
from itr.data.dataset import first_images as captions_of_first, read_dataset
from itr.evaluate import evaluate_collection, evaluate_scores
from itr.index import index_collection
from itr.machine import fingerprint
from itr.rerank import score_collection

log = logging.getLogger("itr.benchmarks.inference_time")
SPEC_KEYS = {"first_stage", "second_stage", "k", "fusion", "lam", "batch_size", "precision"}


def check_methods(methods: dict) -> None:
    """Refuse a method spec the benchmark cannot run, naming the method and the fix."""
    for name, spec in methods.items():
        unknown = set(spec) - SPEC_KEYS
        if unknown or not (spec.get("first_stage") or spec.get("second_stage")):
            raise ConfigError(f"method {name!r}: give first_stage and/or second_stage (model paths), and optionally "
                              f"{sorted(SPEC_KEYS - {'first_stage', 'second_stage'})}; got {sorted(spec)}")
        needed = {"batch_size", "precision"} | ({"k"} if spec.get("first_stage") else set())
        if spec.get("second_stage") and not needed <= set(spec):
            raise ConfigError(f"method {name!r} scores pairs: give its {sorted(needed - set(spec))} "
                              "(itr.papers.timed_methods writes them from the row's settings)")


def run_method(spec: dict, target, protocol: str, first_images: int | None, cfgs: dict, tmp: Path,
               device) -> dict:
    """One whole evaluation of one method: its step times (s), metrics and pairs scored."""
    steps, index_dir, pairs, cross_seconds = {}, None, 0, None

    def timed(step, fn, *args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        steps[step] = round(time.perf_counter() - t0, 4)
        return out

    index_cfg, eval_cfg = cfgs["index"], cfgs["evaluation"]
    if spec.get("first_stage"):
        index_dir = tmp / "index"
        timed("index", index_collection, spec["first_stage"], target, [], None, first_images, index_cfg.factory,
              index_cfg.search_params, index_dir, device, log=log.info)
    if not spec.get("second_stage"):
        cell = timed("search", evaluate_collection, index_dir, eval_cfg, protocol)
    else:
        k, lam = spec.get("k", 1), spec.get("lam")
        rerank = parse_section(RerankConfig, {"k": k, "ks": [k], "lambdas": [0.5 if lam is None else lam],
                                              "protocol": protocol, "batch_size": spec["batch_size"],
                                              "precision": spec["precision"]})
        scores = tmp / "scores.npz"
        timed("score", score_collection, spec["second_stage"], str(index_dir) if index_dir else None, target, [],
              None, first_images, rerank, eval_cfg, protocol, scores, device, log=log.info)
        cell = timed("rank", evaluate_scores, scores, k, [k], rerank.lambdas, eval_cfg.ks, str(tmp / "cell.json"), {},
                     fusion=spec.get("fusion", "ce"), lam=lam)
        with np.load(scores) as z:  # the pair scoring alone, without loading the model or searching
            pairs, cross_seconds = cell["pairs_scored"], json.loads(str(z["meta"]))["cross_seconds"]
    return {"seconds": round(sum(steps.values()), 4), "steps": steps, "pairs_scored": pairs,
            "cross_seconds": cross_seconds, "protocol_label": cell["protocol_label"],
            "n_images": cell["n_images"], "n_groups": cell["n_groups"], "metrics": cell["metrics"], "spec": spec}


def main(argv: list[str] | None = None) -> int:
    ap = benchmark_parser(__doc__, ("--data", "--features", "--protocol", "--methods", "--eval-config", "--index-config", "--out"))
    args = ap.parse_args(argv)
    methods = json.loads(args.methods)
    check_methods(methods)
    cfgs = {"evaluation": parse_section(EvalConfig, args.eval_config),
            "index": parse_section(IndexConfig, args.index_config)}
    torch.set_num_threads(args.threads)  # faiss search: one thread, as in the cells (itr.index.pin_search_threads)
    device = torch.device(args.device)
    target, _ = sources(args.data, args.features, "test")
    first_images = cfgs["evaluation"].subset_images(args.protocol)
    _, captions = read_dataset(args.data, "test")
    text_queries = len(captions_of_first(captions, first_images or 0))  # each test caption of the protocol, once
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        first = next(iter(methods))
        log.info("warm-up: %s (untimed)", first)
        run_method(methods[first], target, args.protocol, first_images, cfgs, Path(tmp) / "warmup", device)
        for n, (name, spec) in enumerate(methods.items()):
            log.info("[%d/%d] %s", n + 1, len(methods), name)
            results[name] = run_method(spec, target, args.protocol, first_images, cfgs, Path(tmp) / name, device)
            log.info("%s: %.2f s %s, rsum %.1f", name, results[name]["seconds"], results[name]["steps"],
                     results[name]["metrics"]["rsum"])
    write_json(args.out, {
        "dataset": Path(args.data).name,
        "protocol": args.protocol, "protocol_label": next(iter(results.values()))["protocol_label"],
        "text_queries": text_queries,
        "machine": fingerprint(args.threads, str(device)),
        "methods": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
