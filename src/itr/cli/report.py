"""itr table | itr extended-report | itr gallery | itr check-scores | itr runs compare | itr runs mirror: paper tables, expected scores, MLflow runs
side by side, and metrics files mirrored into MLflow."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def register(sub) -> None:
    from itr.papers import PAPERS

    p = sub.add_parser("table", help="build one table or figure of a registered paper (itr.papers)")
    p.add_argument("paper", help="a registered paper: " + ", ".join(PAPERS))
    p.add_argument("target", help="one of its targets, e.g. table1 (itr.papers.<paper>.PAPER)")
    p.add_argument("--inputs", nargs="+", required=True, help="metrics files (or the JSON) the table reads")
    p.add_argument("--spec", default="{}", help="JSON: protocol, note, labels (the paper plan's TableSpec)")
    p.add_argument("--out", required=True, help="output path without extension; writes .md .csv .tex .json .html")
    p.set_defaults(func=table)
    p = sub.add_parser("extended-report", help="every paper's models under the extended ground truth, side by side")
    p.add_argument("--inputs", nargs="+", required=True, help="protocol-extended metrics files")
    p.add_argument("--papers", required=True, help="JSON: each input -> the paper whose plan has it")
    p.add_argument("--out", required=True, help="output path without extension; writes .md .csv .tex .json .html")
    p.set_defaults(func=extended_report)
    _register_figures(sub)
    _register_checks(sub)
    runs = sub.add_parser("runs", help="MLflow runs").add_subparsers(dest="cmd", required=True)
    p = runs.add_parser("compare", help="finished runs side by side")
    p.add_argument("--uri", default="sqlite:///mlflow.db")
    p.add_argument("--experiment", default="itr")
    p.add_argument("--metric-prefix", default="")
    p.add_argument("--name", help="only runs whose name is LIKE this, %% the wildcard (e.g. 'variant/be/%%')")
    p.add_argument("--paper", help="a paper's cells, from its own experiment (<experiment>/<paper>)")
    p.add_argument("--table", help="with --paper: only the cells of this table (e.g. table1)")
    p.set_defaults(func=runs_compare)
    p = runs.add_parser("mirror", help="one MLflow run per metrics file whose content has no run yet")
    p.add_argument("--tracking", required=True, help="JSON of the tracking section")
    p.add_argument("--cells", nargs="+", required=True, help="metrics files (results/metrics/...json)")
    p.add_argument("--paper", required=True, help="the paper whose experiment (<experiment>/<paper>) gets them")
    p.add_argument("--tables", required=True, help="JSON: each cell -> the tables that read it (run tags)")
    p.add_argument("--artifacts", nargs="*", default=[], help="table and figure files: the tables/<paper> run's")
    p.add_argument("--tables-run", help="the name of the run holding the artifacts (default tables/<paper>)")
    p.add_argument("--out", required=True, help="JSON written when done: the runs' ids")
    p.set_defaults(func=runs_mirror)


def _register_checks(sub) -> None:
    p = sub.add_parser("check-scores", help="compare metrics files with a paper's expected_scores.yaml")
    p.add_argument("--expected", nargs="+", required=True, help="expected-score files (itr.papers.expected_scores)")
    p.add_argument("--root", default=".")
    p.add_argument("--out", help="write the report here when every score is OK")
    p.add_argument("--present", action="store_true", help="check only the metrics files already built")
    p.add_argument("--record-spread", metavar="JSON", help="instead of checking, write the seed std of each expected "
                   "score from this spread (results/seeds/<paper>.json) into the --expected file")
    p.set_defaults(func=check_scores)


def _register_figures(sub) -> None:
    p = sub.add_parser("gallery", help="a retrieval gallery: a first stage's top k beside its re-ranking, per query")
    p.add_argument("--scores", required=True, help="a re-ranked row's scores file (itr rerank score)")
    p.add_argument("--data", required=True, help="the dataset folder the scores were computed on")
    p.add_argument("--spec", required=True, help="JSON: k, n_worst, n_random, fusion, lam, depth, first, second "
                                                 "(itr.papers.gallery_specs)")
    p.add_argument("--seed", type=int, required=True, help="draws the random queries")
    p.add_argument("--out", required=True, help="output path without extension; writes .png .html .json")
    p.set_defaults(func=gallery)
    p = sub.add_parser("curves", help="figures of training: validation curves of trained models, or the detector's AP")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--histories", nargs="+", metavar="LABEL=CSV", help="training histories (results/train/...)")
    source.add_argument("--detector", help="a detector metrics file (results/metrics/detector/<dataset>.json)")
    p.add_argument("--headline", help="with --detector: also write its mAP alone here (dvc metrics show)")
    p.add_argument("--detector-history", help="with --detector: its training loss by epoch (results/train/detector/)")
    p.add_argument("--title", default="training")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.set_defaults(func=curves)
    p = sub.add_parser("seeds", help="a paper's headline table over seeds: mean ± std, claims per seed, score spread")
    p.add_argument("--paper", required=True, help="a registered paper (its headline table and claims)")
    p.add_argument("--tables", nargs="+", required=True, metavar="SEED=JSON", help="each seed's headline table JSON")
    p.add_argument("--scores", required=True, help="JSON: seed -> expected-score file -> the seed run's copy")
    p.add_argument("--out-table", required=True, help="the table over seeds, without extension")
    p.add_argument("--out-claims", help="the claims over seeds, without extension (papers declaring headline claims)")
    p.add_argument("--out-spread", required=True, help="JSON: every expected score's values by seed, mean, std")
    p.set_defaults(func=seeds)
    p = sub.add_parser("headline", help="each headline cell's recalls and rsum as a flat JSON (dvc metrics show)")
    p.add_argument("--cells", nargs="+", required=True, help="retrieval metrics files (results/metrics/...)")
    p.add_argument("--out", nargs="+", required=True, help="one file to write per cell, in the same order")
    p.set_defaults(func=headline)


def seeds(args) -> int:
    from itr import papers
    from itr.seeds import build_seed_report

    tables = {int(seed): Path(path) for seed, path in (t.split("=", 1) for t in args.tables)}
    scores = {int(seed): files for seed, files in json.loads(args.scores).items()}
    paper = papers.load(args.paper)
    check = papers.headline_claims(args.paper)
    if args.out_claims and check is None:
        raise papers.UnknownPaperError(f"paper {args.paper} declares no headline_claims; drop --out-claims")
    result = build_seed_report(tables, scores, check, f"{paper.title}, {paper.headline}", Path(args.out_table),
                               Path(args.out_claims) if args.out_claims else None, Path(args.out_spread))
    print(f"seeds {result['seeds']}: {args.out_table}.*, {args.out_spread}")
    return 0


def extended_report(args) -> int:
    from itr.tables import build_extended_report

    build_extended_report(args.inputs, Path(args.out), json.loads(args.papers))
    return 0


def gallery(args) -> int:
    from itr.gallery import build_gallery

    result = build_gallery(args.scores, args.data, json.loads(args.spec), args.seed, args.out)
    print(f"{len(result['queries'])} queries of {args.scores}: {args.out}.png, .html, .json")
    return 0


def curves(args) -> int:
    from itr.curves import plot_detector, plot_histories

    if args.detector:
        plot_detector(args.detector, args.out, args.headline, args.detector_history)
    else:
        plot_histories(dict(h.split("=", 1) for h in args.histories), args.out, args.title)
    print(f"wrote {args.out}")
    return 0


def headline(args) -> int:
    from itr.tables import write_headline

    write_headline(args.cells, args.out)
    return 0


def table(args) -> int:
    from itr import papers

    build = papers.builder(args.paper, args.target)
    build([Path(p) for p in args.inputs], Path(args.out), **json.loads(args.spec))
    return 0


def check_scores(args) -> int:
    from itr.expected import check_files

    if args.record_spread:
        from itr.expected import record_spread

        (path,) = args.expected
        print(f"{path}: spread recorded for", record_spread(path, json.loads(Path(args.record_spread).read_text())))
        return 0
    report, failed = check_files(args.expected, args.root, args.out, args.present)
    print(report)
    if failed:
        print(f"itr: {failed} score(s) outside their tolerance, missing, or with no measured seed spread (NO SPREAD: "
              f"run snakemake <paper>_seeds and record it); see {' '.join(args.expected)}",
              file=sys.stderr)
        return 1
    return 0


def runs_compare(args) -> int:
    from itr.config import TrackingConfig
    from itr.mirror import compare_paper
    from itr.tracking import compare_runs

    cfg = TrackingConfig(uri=args.uri, experiment=args.experiment)
    df = compare_paper(cfg, args.paper, args.table, args.metric_prefix) if args.paper else compare_runs(
        cfg, args.metric_prefix, name=args.name)
    print("no finished runs" if df.empty else df.to_markdown(index=False, floatfmt=".2f"))
    return 0


def runs_mirror(args) -> int:
    from itr.atomic import write_json
    from itr.cli.common import log
    from itr.config import TrackingConfig, parse_section
    from itr.mirror import mirror_paper

    tables = json.loads(args.tables)
    runs = mirror_paper(parse_section(TrackingConfig, args.tracking), args.paper,
                        {c: tables.get(c, []) for c in args.cells}, args.artifacts, log=log.info,
                        tables_run=args.tables_run)
    write_json(args.out, runs)
    return 0
