"""itr search TEXT: one typed caption against the test collection, ranked as a row of the registry ranks it;
itr serve: the same on a local page, rows side by side (itr.serve)."""
from __future__ import annotations

from itr.cli.common import add_compute, compute

PARAMS = "params.yaml"  # both read the project's params file by default


def register(sub) -> None:
    p = sub.add_parser("search", help="rank the test images for a typed caption with a trained row of a registered "
                                      "paper (be, sep_coop, ...): top k with scores and per-step timings")
    p.add_argument("text")
    p.add_argument("--method", default="be", help="a row of a registered paper (itr.papers)")
    p.add_argument("--variant", help="whose trained models (default: the main models of the row's paper)")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--png", help="also write the hits as a PNG grid here")
    _add_config(p)
    add_compute(p)
    p.set_defaults(func=search)
    p = sub.add_parser("serve", help="a local search page: a query box, the first stage's top k beside the "
                                     "re-ranked, stage timings (Flask, bound to 127.0.0.1)")
    p.add_argument("--methods", help="comma-separated rows of registered papers (default: every row)")
    p.add_argument("--variant", help="whose trained models (default: the main models of each row's paper)")
    p.add_argument("--host", default="127.0.0.1", help="0.0.0.0 shows the page to your network: only on one you trust")
    p.add_argument("--port", type=int, default=8000)
    _add_config(p)
    add_compute(p)
    p.set_defaults(func=serve)


def _add_config(p) -> None:
    p.add_argument("--params", default=PARAMS, help="the params file that names the models and dataset")
    p.add_argument("--dataset", help="search this dataset's test images with its models (default: params dataset; "
                                     "as snakemake --config dataset=NAME builds them)")


def _build(args) -> str:
    """The command that builds a ``{target}`` the search reads (named in its errors); the target before --config,
    which takes every word after it as an entry."""
    return "snakemake {target}" + (f" --config dataset={args.dataset}" if args.dataset else "")


def _config(args) -> dict:
    """The params file, with ``--dataset`` in place of its ``dataset``, validated as a whole (an unknown name is an
    error listing the declared ones)."""
    from itr.params import read_yaml, validate_params

    params = read_yaml(args.params)
    if args.dataset:
        params["dataset"] = args.dataset
    return validate_params(params, source=f"{args.params}" + (f" with dataset={args.dataset}" if args.dataset else ""))


def search(args) -> int:
    from itr import papers
    from itr.search import Searcher, save_grid

    spec = {**papers.search_spec(args.method, _config(args), args.variant), "build": _build(args)}
    searcher = Searcher.from_spec(spec, compute(args), args.k)
    result = searcher(args.text, args.k)
    result.timings = {"load": searcher.load_seconds, **result.timings}
    for rank, hit in enumerate(result.hits, 1):
        first = "" if hit.first_score is None else f"  (first stage {hit.first_score:.4f})"
        print(f"{rank:2d}. {hit.image_id}  {hit.score:.4f}{first}")
    print("timings: " + ", ".join(f"{step} {seconds * 1000:.1f} ms" for step, seconds in result.timings.items()))
    if args.png:
        save_grid(result, spec["data"], args.png, args.text)
    return 0


def serve(args) -> int:
    from itr import papers
    from itr.serve import create_app

    config = _config(args)
    methods = args.methods.split(",") if args.methods else papers.search_rows(config)
    rows = {m: {**papers.search_spec(m, config, args.variant), "build": _build(args)} for m in methods}
    app = create_app(rows, next(iter(rows.values()))["data"], compute(args))
    print(f"itr serve: http://{args.host}:{args.port}/ ({len(rows)} rows; Ctrl-C stops)", flush=True)
    app.run(host=args.host, port=args.port, threaded=True)
    return 0
