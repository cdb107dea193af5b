"""itr index build | itr evaluate: a model's faiss indexes over a test collection, and their metrics;
itr unimodal: a soft-label student's and its teachers' image->image and caption-pair quality (itr.unimodal)."""
from __future__ import annotations

from pathlib import Path

from itr.cli.common import PROTOCOL_HELP, add_cell_names, add_collection, add_compute, cell_names, compute, log


def register(sub) -> None:
    p = sub.add_parser("index", help="faiss indexes").add_subparsers(dest="cmd", required=True).add_parser("build")
    for a in ("--model", "--config", "--out"):
        p.add_argument(a, required=True)
    add_collection(p)
    add_compute(p)
    p.set_defaults(func=build)
    p = sub.add_parser("evaluate", help="metrics of an indexed collection under a protocol")
    for a in ("--index", "--config", "--out", "--method"):
        p.add_argument(a, required=True)
    p.add_argument("--protocol", required=True, help=PROTOCOL_HELP)
    p.add_argument("--data", help="the generated dataset whose extended ground truth protocol 'extended' reads")
    add_cell_names(p)
    p.set_defaults(func=evaluate)
    p = sub.add_parser("unimodal", help="image->image retrieval and caption-pair grading of a soft-label student")
    for a in ("--model", "--data", "--features", "--teacher", "--config", "--out", "--variant"):
        p.add_argument(a, required=True)
    p.add_argument("--image-teacher", help="the feature store whose whole-image features are the image teacher "
                                           "(default: --features; a raw-pixel student's is its detector store)")
    add_compute(p)
    p.set_defaults(func=unimodal)


def build(args) -> int:
    from itr.collection import sources
    from itr.config import IndexConfig, parse_section
    from itr.index import index_collection

    cfg = parse_section(IndexConfig, args.config)
    device = compute(args)
    target, distractors = sources(args.data, args.features, args.split, args.distractors)
    index_collection(args.model, target, distractors, args.lang, args.first_images, cfg.factory, cfg.search_params,
                     args.out, device, log=log.info)
    return 0


def unimodal(args) -> int:
    import json

    from itr.atomic import write_json
    from itr.unimodal import unimodal_metrics

    cfg = json.loads(args.config)  # {"text_teacher", "sts_pairs", "seed"}: the softlabel keys it reads
    result = unimodal_metrics(args.model, args.data, args.features, args.teacher, cfg["text_teacher"],
                              cfg["sts_pairs"], cfg["seed"], compute(args), image_teacher_features=args.image_teacher)
    write_json(args.out, {**result, "variant": args.variant, "dataset": Path(args.data).name})
    log.info("%s: %s", args.variant, {k: round(v, 2) for k, v in result["metrics"].items()})
    return 0


def evaluate(args) -> int:
    from itr.atomic import write_json
    from itr.config import EvalConfig, parse_section
    from itr.evaluate import evaluate_collection

    cfg = parse_section(EvalConfig, args.config)
    data = Path(args.data) if args.data else None
    result = {**evaluate_collection(Path(args.index), cfg, args.protocol, data), **cell_names(args, args.method)}
    write_json(args.out, result)
    log.info("%s %s: %s", args.method, args.protocol, {k: round(v, 2) for k, v in result["metrics"].items()})
    return 0
