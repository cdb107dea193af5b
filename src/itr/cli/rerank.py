"""itr rerank score | itr rerank evaluate: cross-encode shortlists (or every pair), then score the cells."""
from __future__ import annotations

from itr.cli.common import PROTOCOL_HELP, add_cell_names, add_collection, add_compute, cell_names, compute, log


def register(sub) -> None:
    rsub = sub.add_parser("rerank", help="retrieve-and-rerank: cross-encode shortlists, then score cells")
    rsub = rsub.add_subparsers(dest="cmd", required=True)
    p = rsub.add_parser("score", help="CE scores of the first stage's top-k (or, without --first-stage, all pairs)")
    for a in ("--reranker", "--config", "--eval-config", "--out"):
        p.add_argument(a, required=True)
    p.add_argument("--first-stage", help="index directory of the bi-encoder; omit to score every pair")
    p.add_argument("--pair-scores", help="the reranker's all-pairs scores of the same collection and protocol: "
                   "the shortlists' scores are read from it, and the reranker is not run")
    p.add_argument("--protocol", required=True, help=PROTOCOL_HELP)
    add_collection(p)
    add_compute(p)
    p.set_defaults(func=score)
    p = rsub.add_parser("evaluate", help="metrics of reranked shortlists: k = rerank.k, plus Table 8/9 variants")
    for a in ("--scores", "--config", "--eval-config", "--method"):
        p.add_argument(a, required=True)
    p.add_argument("--out", help="the cell's metrics file")
    p.add_argument("--variants-dir", help="write the cell's k and fusion variants here (itr.layout)")
    p.add_argument("--fusion", default="ce", help="how the cell ranks a shortlist (itr.shortlist.FUSIONS; "
                   "ce: the second-stage score alone)")
    p.add_argument("--lam", type=float, help="the fusion's weight of the first-stage score")
    p.add_argument("--variant-fusions", default="add,norm_add", help="fusions of the --variants-dir weight cells")
    add_cell_names(p)
    p.set_defaults(func=evaluate)


def score(args) -> int:
    from itr.collection import sources
    from itr.config import EvalConfig, RerankConfig, parse_section
    from itr.rerank import score_collection

    cfg = parse_section(RerankConfig, args.config, stage="rerank_score")
    eval_cfg = parse_section(EvalConfig, args.eval_config, stage="rerank_score")
    device = compute(args)
    target, distractors = sources(args.data, args.features, args.split, args.distractors)
    score_collection(args.reranker, args.first_stage, target, distractors, args.lang, args.first_images, cfg,
                     eval_cfg, args.protocol, args.out, device, log=log.info, pair_scores=args.pair_scores)
    return 0


def evaluate(args) -> int:
    from itr.config import EvalConfig, RerankConfig, parse_section
    from itr.evaluate import evaluate_scores

    # The workflow runs this command in two rules: --out (the cell, k = rerank.k), --variants-dir (a sweep's cells).
    stage = "rerank_evaluate_variants" if args.variants_dir else "rerank_evaluate"
    cfg = parse_section(RerankConfig, args.config, stage=stage)
    eval_cfg = parse_section(EvalConfig, args.eval_config, stage=stage)
    cell = evaluate_scores(args.scores, cfg.k, cfg.ks, cfg.lambdas, eval_cfg.ks, args.out,
                           cell_names(args, args.method), args.variants_dir, args.fusion, args.lam,
                           args.variant_fusions.split(","))
    log.info("%s %s: %s", args.method, cell["protocol"], {k: round(v, 2) for k, v in cell["metrics"].items()})
    return 0
