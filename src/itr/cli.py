"""The ``itr`` command line: one subcommand per workflow stage, each a thin shell over the library.

Snakemake rules call these; tests call ``main([...])`` directly. Each stage takes its config
section as a JSON object (``--config '{"lr": 5e-5, ...}'``) so hyperparameters reach the code
only through Snakemake's params, and writes its outputs atomically.

    itr params check params.yaml
    itr data shapes --config JSON --out data/shapes
    itr detector train --data data/shapes --config JSON --out models/detector/shapes.pt --metrics M.json
    itr features extract --data data/shapes --detector D.pt --config JSON --out features/shapes
    itr train {be,ce,joint} --data data/shapes --features features/shapes --config JSON --text-encoder JSON --out M.pt
    itr index build --model M.pt --data data/shapes --features features/shapes --split test --config JSON --out DIR
    itr evaluate --index DIR --config JSON --protocol folds --out results/metrics/....json
    itr rerank score --reranker CE.pt [--first-stage DIR] --data ... --protocol subset --out scores.npz
    itr rerank evaluate --scores scores.npz --config JSON --method sep_coop --out M.json [--variants-dir D]
    itr table <paper> <target> --inputs a.json b.json --spec JSON --out results/tables/<paper>_<target>
    itr runs compare
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from itr.atomic import write_json as _write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
log = logging.getLogger("itr")


def _device(name: str):
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _tracking(args):
    from itr.config import TrackingConfig, parse_section

    return parse_section(TrackingConfig, args.tracking) if args.tracking else None


def _tracker(args, run_name: str, params: dict, tags: dict):
    """An MLflow Tracker, or a do-nothing context when --tracking is not given."""
    import contextlib

    from itr.tracking import Tracker

    cfg = _tracking(args)
    return Tracker(cfg, run_name, params, tags) if cfg else contextlib.nullcontext(None)


# ----------------------------------------------------------------------------- stages

def cmd_params_check(args) -> int:
    from itr.config import load_params

    load_params(args.params)
    print(f"{args.params}: ok")
    return 0


def cmd_data_shapes(args) -> int:
    from itr.config import ShapesConfig, parse_section
    from itr.data.shapes import build

    summary = build(parse_section(ShapesConfig, args.config), args.out)
    _write_json(Path(args.out) / "manifest.json", summary)
    log.info("ShapeCaptions: %s", {k: v for k, v in summary.items() if k != "config"})
    return 0


def cmd_detector_train(args) -> int:
    import torch

    from itr.checkpoint import save_checkpoint
    from itr.config import DetectorConfig, parse_section
    from itr.data import shapes
    from itr.data.dataset import read_dataset
    from itr.features.detector import targets_from_scenes, train_detector

    cfg = parse_section(DetectorConfig, args.config)
    torch.set_num_threads(max(1, args.threads))
    data = Path(args.data)
    tr, _ = read_dataset(data, "train")
    va, _ = read_dataset(data, "val")
    size = int(tr["width"].iloc[0])
    labels = shapes.detection_labels()
    with _tracker(args, args.run_name, cfg.to_dict(), {"rule": "train_detector"}) as run:
        track = (lambda epoch, m: run.log(m, epoch)) if run else None
        model, metrics = train_detector(
            cfg, [data / f for f in tr["file"]], targets_from_scenes(tr, shapes.label_of),
            [data / f for f in va["file"]], targets_from_scenes(va, shapes.label_of), len(labels), size,
            Path(args.state_dir), _device(args.device), log=log.info, on_epoch=track)
        if run:
            run.log({"val/mAP_0.5": metrics["mAP@0.5"]}, cfg.epochs)
    save_checkpoint(args.out, {"model": model.state_dict(), "config": cfg.to_dict(), "labels": labels,
                               "image_size": size})
    _write_json(args.metrics, {"dataset": data.name, "split": "val", "iou_threshold": 0.5,
                               "mAP@0.5": metrics["mAP@0.5"], "n_val_images": len(va),
                               "per_class_AP": {labels[c]: ap for c, ap in metrics["per_class_AP"].items()}})
    log.info("detector val mAP@0.5 = %.4f", metrics["mAP@0.5"])
    return 0


def cmd_features_extract(args) -> int:
    import torch

    from itr.checkpoint import file_digest, load_checkpoint
    from itr.config import DetectorConfig, FeaturesConfig, parse_section
    from itr.data.dataset import read_dataset
    from itr.features.detector import build_detector
    from itr.features.extract import extract_to_store
    from itr.features.store import FeatureStoreWriter

    cfg = parse_section(FeaturesConfig, args.config)
    torch.set_num_threads(max(1, args.threads))
    device = _device(args.device)
    ckpt = load_checkpoint(args.detector)
    det = build_detector(DetectorConfig.from_dict(ckpt["config"]), len(ckpt["labels"]), ckpt["image_size"])
    det.load_state_dict(ckpt["model"])
    det.to(device).eval()
    images, _ = read_dataset(args.data)
    source = {"detector": file_digest(args.detector), "features": cfg.to_dict()}
    writer = FeatureStoreWriter(args.out, cfg.max_regions, det.roi_heads.box_head.fc7.out_features, source)
    summary = extract_to_store(det, list(images["image_id"]), [Path(args.data) / f for f in images["file"]],
                               cfg, writer, device, log=log.info)
    # Only deterministic facts go into the manifest (not how many shards were resumed), so a resumed
    # extraction leaves byte-identical files and DVC sees no change.
    writer.finalize(summary["n_shards"], {"n_images": summary["n_images"]})
    log.info("features: %s", summary)
    return 0


def cmd_train(args) -> int:
    import torch

    from itr.config import BEConfig, CEConfig, JointConfig, TextEncoderConfig, parse_section
    from itr.data.dataset import first_images, read_dataset
    from itr.features.store import FeatureStore
    from itr.models.encoder import load_encoder
    from itr.models.encode import CaptionSet
    from itr.training import publish_best, train_model

    method = args.method
    cfg = parse_section({"be": BEConfig, "ce": CEConfig, "joint": JointConfig}[method], args.config)
    text_cfg = parse_section(TextEncoderConfig, args.text_encoder)
    torch.set_num_threads(max(1, args.threads))
    device = _device(args.device)
    store = FeatureStore(args.features)
    torch.manual_seed(cfg.seed)  # the new image-embedding layers (and the CE head) are initialised here
    model, tokenizer = load_encoder(text_cfg.path, store.dim, match_head=method != "be", layers=text_cfg.layers)
    model.to(device)
    _, train_caps = read_dataset(args.data, "train")
    train_caps = first_images(train_caps, cfg.train_images)
    _, val_caps = read_dataset(args.data, "val")
    train = CaptionSet.from_frame(train_caps, tokenizer, text_cfg.max_text_len)
    val = CaptionSet.from_frame(val_caps, tokenizer, text_cfg.max_text_len)
    extra = {"method": method, "architecture": model.architecture(), "text_encoder": text_cfg.to_dict(),
             "features": store.manifest["source"]}
    params = {method: cfg.to_dict(), "text_encoder": text_cfg.to_dict()}
    with _tracker(args, args.run_name, params, {"rule": f"train_{method}", "method": method}) as run:
        result = train_model(method, cfg, model, train, val, store, Path(args.state_dir), device, extra,
                             log=log.info, track=run.log if run else None)
        if run:
            run.set_tags({"best_epoch": result["best_epoch"]})
    publish_best(Path(args.state_dir), Path(args.out))
    import pandas as pd

    from itr.atomic import write_text

    write_text(args.history, pd.DataFrame(result["history"]).to_csv(index=False))
    log.info("%s: best epoch %d, val rsum %.2f", method, result["best_epoch"], result["best_val_rsum"])
    return 0


def cmd_index_build(args) -> int:
    from itr.checkpoint import file_digest
    from itr.config import IndexConfig, parse_section
    from itr.index import save_collection
    from itr.models.encode import embed_captions, embed_images

    cfg = parse_section(IndexConfig, args.config)
    device, store, model, _, image_ids, captions, n_targets = _model_and_split(args, args.model)
    img = embed_images(model, store, image_ids, 256, device)
    cap = embed_captions(model, captions, 256, device)
    save_collection(args.out, img, cap, image_ids, captions.caption_ids, cfg.factory, cfg.search_params, {
        "model": str(args.model), "model_id": file_digest(args.model), "split": args.split,
        "caption_image_ids": captions.image_ids, "factory": cfg.factory, "n_targets": n_targets,
        "distractors": args.distractors, "lang": args.lang, "first_images": args.first_images})
    log.info("indexed %d images (%d distractors) and %d captions with %s", len(image_ids),
             len(image_ids) - n_targets, len(captions), cfg.factory)
    return 0


def cmd_evaluate(args) -> int:
    from itr.config import EvalConfig, parse_section
    from itr.evaluate import evaluate_collection

    cfg = parse_section(EvalConfig, args.config)
    result = evaluate_collection(Path(args.index), cfg, args.protocol)
    result.update({"method": args.method, "dataset": args.dataset, "trained_on": args.trained_on,
                   "variant": args.variant})
    with _tracker(args, args.run_name, {"evaluation": cfg.to_dict(), "protocol": args.protocol},
                  {"rule": "evaluate", "method": args.method, "protocol": args.protocol}) as run:
        if run:
            run.log(result["metrics"])
    _write_json(args.out, result)
    log.info("%s %s: %s", args.method, args.protocol, {k: round(v, 2) for k, v in result["metrics"].items()})
    return 0


def _model_and_split(args, model_path):
    """The checkpoint at model_path with its tokenizer, and the test collection: the split's images and
    captions, then those of any ``--distractors`` sources. (device, store, model, ckpt, image_ids, captions,
    n_targets): the first n_targets images are the split's."""
    import torch

    from itr.collection import Source, read_collection
    from itr.models.encoder import load_trained
    from itr.models.encode import CaptionSet

    torch.set_num_threads(max(1, args.threads))
    device = _device(args.device)
    distractors = [Source.parse(text) for text in args.distractors]
    images, caps, store, n_targets = read_collection(Source(args.data, args.features, args.split), distractors,
                                                     args.lang, args.first_images)
    model, tokenizer, ckpt = load_trained(model_path, store, device)
    captions = CaptionSet.from_frame(caps, tokenizer, ckpt["text_encoder"]["max_text_len"])
    return device, store, model, ckpt, list(images["image_id"]), captions, n_targets


def cmd_rerank_score(args) -> int:
    import time

    import numpy as np
    import torch

    from itr.atomic import save_npz
    from itr.checkpoint import file_digest
    from itr.config import EvalConfig, RerankConfig, parse_section
    from itr.evaluate import distractor_label, protocol_groups
    from itr.index import IndexedCollection, pin_search_threads
    from itr.rerank import cross_score_groups, first_stage_groups

    cfg = parse_section(RerankConfig, args.config, stage="rerank_score")
    eval_cfg = parse_section(EvalConfig, args.eval_config, stage="rerank_score")
    device, store, model, _, image_ids, captions, n_targets = _model_and_split(args, args.reranker)
    pos_of = {iid: n for n, iid in enumerate(image_ids)}
    caption_image_pos = np.array([pos_of[i] for i in captions.image_ids])
    pin_search_threads()
    collection, k_max = None, max((cfg.k, *cfg.ks))
    if args.first_stage:
        collection = IndexedCollection(Path(args.first_stage))
        collection.require(image_ids, captions.image_ids,
                           f"the {args.split} split of {args.data} with distractors {args.distractors}")
    groups, label = protocol_groups(n_targets, eval_cfg, args.protocol, args.first_images)
    t0 = time.time()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
        shortlists, n_pairs = cross_score_groups(model, captions, store, image_ids,
                                                 first_stage_groups(groups, caption_image_pos, k_max, collection,
                                                                    np.arange(n_targets, len(image_ids))),
                                                 cfg.batch_size, device)
    seconds = time.time() - t0
    label += distractor_label(len(image_ids) - n_targets)
    meta = {"split": args.split, "protocol": args.protocol, "protocol_label": label, "n_groups": len(groups),
            "distractors": args.distractors or None, "lang": args.lang,
            "n_images": int(sum(len(g) for g in groups) // len(groups)), "k_max": k_max if collection else None,
            "first_stage": ({"index": collection.factory, "model_id": collection.model_id} if collection else None),
            "reranker_model_id": file_digest(args.reranker), "pairs_scored": int(n_pairs), "precision": cfg.precision,
            "cross_seconds": round(seconds, 1)}
    arrays = {}
    for n, s in enumerate(shortlists):
        arrays.update(s.to_arrays(f"g{n}/"))
    save_npz(args.out, meta=np.array(json.dumps(meta)), **arrays)
    log.info("cross-encoded %d pairs in %.0f s (%.0f pairs/s)", n_pairs, seconds, n_pairs / max(seconds, 1e-9))
    return 0


def cmd_rerank_evaluate(args) -> int:

    import numpy as np

    from itr.config import EvalConfig, RerankConfig, parse_section
    from itr.metrics import average_metrics
    from itr.layout import fusion_cell, k_cell
    from itr.shortlist import SCORE_FUSIONS, Shortlist, rerank_metrics

    # The workflow runs this command in two rules: with --variants-dir (Table 8 and 9 cells), without (k = rerank.k).
    stage = "rerank_evaluate_coop" if args.variants_dir else "rerank_evaluate"
    cfg = parse_section(RerankConfig, args.config, stage=stage)
    eval_cfg = parse_section(EvalConfig, args.eval_config, stage=stage)
    with np.load(args.scores, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        groups = [Shortlist.from_arrays(z, f"g{n}/") for n in range(meta["n_groups"])]
    all_pairs = meta["first_stage"] is None
    cells = [(args.out, None if all_pairs else cfg.k, "ce", None)]
    if args.variants_dir and not all_pairs:
        d = args.variants_dir
        cells += [(k_cell(d, k), k, "ce", None) for k in cfg.ks]
        cells += [(fusion_cell(d, how, lam), cfg.k, how, lam) for how in SCORE_FUSIONS for lam in cfg.lambdas]
    for out, k, how, lam in cells:
        per_group = rerank_metrics(groups, k, how, lam or 0.0, eval_cfg.ks)
        result = {**{key: meta[key] for key in ("split", "protocol", "protocol_label", "n_images", "n_groups",
                                                  "first_stage", "reranker_model_id", "pairs_scored")},
                  "distractors": meta.get("distractors"), "lang": meta.get("lang"), "method": args.method, "dataset": args.dataset, "trained_on": args.trained_on,
                  "variant": args.variant, "k": k,
                  "fusion": how, "lambda": lam, "metrics": average_metrics(per_group),
                  "per_group": per_group if len(per_group) > 1 else None}
        _write_json(out, result)
    m = json.loads(Path(args.out).read_text())["metrics"]
    log.info("%s %s: %s", args.method, meta["protocol"], {k: round(v, 2) for k, v in m.items()})
    with _tracker(args, args.run_name, {"rerank": cfg.to_dict(), "protocol": meta["protocol"]},
                  {"rule": "rerank_evaluate", "method": args.method, "protocol": meta["protocol"]}) as run:
        if run:
            run.log(m)
    return 0


def cmd_table(args) -> int:
    from itr import papers

    build = papers.builder(args.paper, args.target)
    build([Path(p) for p in args.inputs], Path(args.out), **json.loads(args.spec))
    return 0


def cmd_check_scores(args) -> int:
    import pandas as pd

    from itr.atomic import write_text
    from itr.expected import check, load_expected

    rows = [row for path in args.expected for row in check(load_expected(path), root=args.root)]
    table = pd.DataFrame(rows).to_markdown(index=False)
    print(table)
    failed = [r for r in rows if r["status"] != "OK"]
    if failed:
        print(f"itr: {len(failed)} score(s) outside their tolerance or missing; see {' '.join(args.expected)}",
              file=sys.stderr)
        return 1
    if args.out:
        write_text(args.out, table + "\n")
    return 0


def cmd_runs_compare(args) -> int:
    from itr.config import TrackingConfig
    from itr.tracking import compare_runs

    df = compare_runs(TrackingConfig(uri=args.uri, experiment=args.experiment), args.metric_prefix)
    print("no finished runs" if df.empty else df.to_markdown(index=False, floatfmt=".2f"))
    return 0


# ----------------------------------------------------------------------------- parser

def _common(p: argparse.ArgumentParser, tracked: bool = False, compute: bool = False) -> None:
    if compute:
        p.add_argument("--device", default="auto", help="auto (cuda if present), cpu or cuda[:N]")
        p.add_argument("--threads", type=int, default=2)
    if tracked:
        p.add_argument("--tracking", help="JSON of the tracking section; omit to skip MLflow")
        p.add_argument("--run-name", default="manual")


PROTOCOL_HELP = "full, folds, subset or subset<N> (itr.evaluate)"


def _collection_options(p: argparse.ArgumentParser) -> None:
    """Options that define the test collection beyond --data/--features/--split."""
    p.add_argument("--distractors", nargs="*", default=[], metavar="DATA:FEATURES:SPLIT",
                   help="grow the collection with these splits' images and captions (never queries; Table 5)")
    p.add_argument("--lang", help="keep only the test captions in this language (Tables 2 and 7)")
    p.add_argument("--first-images", type=int, metavar="N",
                   help="keep only the split's first N images and their captions (enough for subset<M>, M <= N)")


def _cell_names(p: argparse.ArgumentParser) -> None:
    """What a metrics file records about its cell (the workflow's wildcards)."""
    p.add_argument("--dataset", required=True, help="name of the test collection")
    p.add_argument("--trained-on", required=True, help="name of the dataset the model was trained on")
    p.add_argument("--variant", required=True, help="name of the set of trained models (the workflow's {variant})")


def build_parser() -> argparse.ArgumentParser:
    from itr.papers import PAPERS

    ap = argparse.ArgumentParser(prog="itr", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="group", required=True)

    p = sub.add_parser("params").add_subparsers(dest="cmd", required=True).add_parser("check")
    p.add_argument("params", nargs="?", default="params.yaml")
    p.set_defaults(func=cmd_params_check)

    p = sub.add_parser("data").add_subparsers(dest="cmd", required=True).add_parser("shapes")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_data_shapes)

    p = sub.add_parser("detector").add_subparsers(dest="cmd", required=True).add_parser("train")
    for a in ("--data", "--config", "--out", "--metrics", "--state-dir"):
        p.add_argument(a, required=True)
    _common(p, tracked=True, compute=True)
    p.set_defaults(func=cmd_detector_train)

    p = sub.add_parser("features").add_subparsers(dest="cmd", required=True).add_parser("extract")
    for a in ("--data", "--detector", "--config", "--out"):
        p.add_argument(a, required=True)
    _common(p, compute=True)
    p.set_defaults(func=cmd_features_extract)

    p = sub.add_parser("train", help="train be (bi-encoder), ce (cross-encoder) or joint (both, shared weights)")
    p.add_argument("method", choices=["be", "ce", "joint"])
    for a in ("--data", "--features", "--config", "--text-encoder", "--out", "--history", "--state-dir"):
        p.add_argument(a, required=True)
    _common(p, tracked=True, compute=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("index").add_subparsers(dest="cmd", required=True).add_parser("build")
    for a in ("--model", "--data", "--features", "--config", "--out"):
        p.add_argument(a, required=True)
    p.add_argument("--split", default="test")
    _collection_options(p)
    _common(p, compute=True)
    p.set_defaults(func=cmd_index_build)

    p = sub.add_parser("evaluate")
    for a in ("--index", "--config", "--out"):
        p.add_argument(a, required=True)
    p.add_argument("--protocol", required=True, help=PROTOCOL_HELP)
    p.add_argument("--method", required=True)
    _cell_names(p)
    _common(p, tracked=True)
    p.set_defaults(func=cmd_evaluate)

    rr = sub.add_parser("rerank", help="retrieve-and-rerank: cross-encode shortlists, then score cells")
    rsub = rr.add_subparsers(dest="cmd", required=True)
    p = rsub.add_parser("score", help="CE scores of the first stage's top-k (or, without --first-stage, all pairs)")
    for a in ("--reranker", "--data", "--features", "--config", "--eval-config", "--out"):
        p.add_argument(a, required=True)
    p.add_argument("--first-stage", help="index directory of the bi-encoder; omit to score every pair")
    p.add_argument("--protocol", required=True, help=PROTOCOL_HELP)
    p.add_argument("--split", default="test")
    _collection_options(p)
    _common(p, compute=True)
    p.set_defaults(func=cmd_rerank_score)
    p = rsub.add_parser("evaluate", help="metrics of reranked shortlists: k = rerank.k, plus Table 8/9 variants")
    for a in ("--scores", "--config", "--eval-config", "--method", "--out"):
        p.add_argument(a, required=True)
    p.add_argument("--variants-dir", help="also write k=<k>.json and <fusion>_<lambda>.json cells here")
    _cell_names(p)
    _common(p, tracked=True)
    p.set_defaults(func=cmd_rerank_evaluate)

    p = sub.add_parser("table", help="build one table or figure of a registered paper (itr.papers)")
    p.add_argument("paper", help="a registered paper: " + ", ".join(PAPERS))
    p.add_argument("target", help="one of its targets, e.g. table1 (itr.papers.<paper>.PAPER)")
    p.add_argument("--inputs", nargs="+", required=True, help="metrics files (or the JSON) the table reads")
    p.add_argument("--spec", default="{}", help="JSON: protocol, note, labels (the paper plan's TableSpec)")
    p.add_argument("--out", required=True, help="output path without extension; writes .md .csv .tex .json")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("check-scores", help="compare metrics files with a paper's expected_scores.yaml")
    p.add_argument("--expected", nargs="+", required=True, help="expected-score files (itr.papers.expected_scores)")
    p.add_argument("--root", default=".")
    p.add_argument("--out", help="write the report here when every score is OK")
    p.set_defaults(func=cmd_check_scores)

    p = sub.add_parser("runs").add_subparsers(dest="cmd", required=True).add_parser("compare")
    p.add_argument("--uri", default="sqlite:///mlflow.db")
    p.add_argument("--experiment", default="itr")
    p.add_argument("--metric-prefix", default="")
    p.set_defaults(func=cmd_runs_compare)
    return ap


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    args = build_parser().parse_args(argv)
    from itr.errors import USER_ERRORS

    try:
        return args.func(args)
    except USER_ERRORS as e:  # bad input: a clear message, no traceback noise
        print(f"itr: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
