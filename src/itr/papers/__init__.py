"""The paper registry: every paper this workflow reproduces, and what each one builds.

A paper is a package ``itr.papers.<name>`` whose ``__init__`` declares ``PAPER`` (a :class:`Paper`): its targets
(tables and figures, each built by one function of the package) and its plan (a function of the params mapping that
lists the variants to train, the collections to search and the cells of every table). Everything else is generated
from this registry, never kept in a second list:

* Snakemake's target rules (``<paper>_all``, ``<paper>_<target>``), the table rules' inputs, and the DVC stages;
* the ``itr table <paper> <target>`` builders (itr.cli), and
* the expected scores checked by ``snakemake check_scores`` (each package's ``expected_scores.yaml``).

Example:
    >>> [t.name for t in load("tgdt").targets][:3], plan("tgdt", params).tables["table1"].protocol
    (['table1', 'table2', 'table3'], 'subset')
"""
from __future__ import annotations

import dataclasses
import importlib
import re
from importlib import resources
from typing import Callable

from itr import eccv, layout
from itr.config import ConfigError
from itr.data.sources import has_training_split
from itr.errors import InputError
from itr.protocols import EXTENDED, protocol_problems

PAPERS = ("rfrs", "tgdt", "aladin", "cusa")  # the registry: one entry per package under itr.papers


class UnknownPaperError(InputError, LookupError):
    """A paper or target that the registry does not have (or declares inconsistently)."""


@dataclasses.dataclass(frozen=True)
class Target:
    """One result of a paper: ``results/tables/<paper>_<name>.{md,csv,tex,json,html}``, plus a PNG for figures.
    ``builder``: a function of the package (``"module:function"``) imported when the table is built, called as
    ``builder(input_paths, out_stem, **spec)`` with the spec of the plan's TableSpec."""
    name: str
    builder: str
    png: bool = False


@dataclasses.dataclass(frozen=True)
class Paper:
    """A registered paper: its targets, and the params.yaml keys its plan and rules read (its DVC stage's params)."""
    name: str
    title: str
    targets: tuple[Target, ...]
    params: tuple[str, ...]
    headline: str = ""  # the target whose retrieval cells are the paper's headline numbers (headline_files)
    # "module:function": the headline table's claims from its flat JSON as (claim, holds or None, evidence, margin
    # past the threshold), what snakemake <paper>_seeds checks in every seed (itr.seeds)
    headline_claims: str = ""

    def target(self, name: str) -> Target:
        for t in self.targets:
            if t.name == name:
                return t
        raise UnknownPaperError(f"paper {self.name!r} has no target {name!r}; its targets: "
                                f"{[t.name for t in self.targets]}")


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """What one table reads (metrics files, a benchmark JSON or other tables' JSON) and how it is captioned."""
    inputs: list[str]
    protocol: str | None = None  # every metrics file must have been measured with it
    note: str | None = None  # appended to the caption (say, a reduced training budget)
    labels: dict | None = None  # ablations: what each variant changes

    def spec(self) -> dict:
        """Keyword arguments of the builder (the fields that are set)."""
        return {k: v for k, v in (("protocol", self.protocol), ("note", self.note), ("labels", self.labels))
                if v is not None}


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A cell whose shortlist rows also get a file per depth in ``ks`` (ranked like the cell) and per fusion of
    ``fusions`` and weight in ``lambdas`` (layout.cell_variants)."""
    variant: str
    collection: str
    protocol: str
    methods: list
    ks: list
    fusions: list
    lambdas: list


@dataclasses.dataclass(frozen=True)
class Timing:
    """Rows one run of benchmarks/inference_time.py times on a protocol: method (any paper's; timed_methods) -> the
    variant of its models."""
    protocol: str
    methods: dict


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a paper asks of the shared rules under one params mapping.

    variants: variant -> {"dataset", "overrides" (of the training section), "text" (of text_encoder), "models",
    "init" (optional: the trained model file its models fine-tune, itr train --init)}.
    collections: collection -> {"dataset", "distractors": [{"dataset", "split"}], "lang" (optional)}.
    embedding_rows: method -> the model whose index ranks it; rerank_rows: method -> (reranker, first-stage
    model or None for every pair). searched: the (variant, collection) pairs indexed. first_images: variant ->
    the test images its collections hold (None: all). sweep: a Sweep, or None. extra_outputs: files the paper
    builds beside its tables. latency_models: {"be": path, "ce": path} for the latency benchmark, or None.
    rerank_settings: rerank row -> its RerankConfig values (k, ks, lambdas, batch_size, precision, protocol),
    for rows that do not use params.yaml's ``rerank`` section. row_fusions: rerank row -> {"fusion", "lam"}, how
    its cells rank a shortlist (itr.shortlist.fuse), for rows that do not rank by the second stage alone.
    timing: a Timing (the inference-time benchmark, layout.INFERENCE_BENCHMARK), or None. unavailable: target ->
    why the plan cannot build it under this config (a table of ShapeCaptions' generated companions, on real data).
    galleries: name -> (a re-ranked row, the first stage's label, the row's label): retrieval galleries of the
    paper's main models (itr.gallery; their files join extra_outputs, their specs come from gallery_specs).
    """
    variants: dict
    collections: dict
    embedding_rows: dict
    rerank_rows: dict
    searched: list
    tables: dict[str, TableSpec]
    first_images: dict
    sweep: Sweep | None = None
    extra_outputs: list = dataclasses.field(default_factory=list)
    latency_models: dict | None = None
    rerank_settings: dict = dataclasses.field(default_factory=dict)
    row_fusions: dict = dataclasses.field(default_factory=dict)
    timing: Timing | None = None
    unavailable: dict[str, str] = dataclasses.field(default_factory=dict)
    galleries: dict[str, tuple[str, str, str]] = dataclasses.field(default_factory=dict)

    def datasets(self) -> set[str]:
        """Every dataset the plan trains on, searches, or draws distractors from."""
        return {v["dataset"] for v in self.variants.values()} | {
            d for c in self.collections.values() for d in (c["dataset"], *(s["dataset"] for s in c["distractors"]))}


def load(name: str) -> Paper:
    """The declaration of a registered paper."""
    if name not in PAPERS:
        raise UnknownPaperError(f"unknown paper {name!r}; registered: {list(PAPERS)} (itr.papers.PAPERS)")
    return importlib.import_module(f"itr.papers.{name}").PAPER


def plan(name: str, config: dict) -> Plan:
    """The paper's plan under a validated params mapping (its ``plan.plan``): a table for each registered target."""
    paper = load(name)
    result = importlib.import_module(f"itr.papers.{name}.plan").plan(config)
    declared, planned = {t.name for t in paper.targets}, set(result.tables) | set(result.unavailable)
    if declared != planned or set(result.tables) & set(result.unavailable):
        raise UnknownPaperError(f"itr.papers.{name}: targets {sorted(declared ^ planned)} are in only one of PAPER.targets "
                                "and the plan's tables (or unavailable); declare each target in both")
    data = config["dataset"]
    if data != layout.MAIN_DATASET and not has_training_split(config["datasets"][data]):
        return _nothing_to_train(paper, result, data)
    extra = [f for f in extended_cells(result, config) if f not in result.extra_outputs
             and all(f not in spec.inputs for spec in result.tables.values())]
    extra += [f"{stem}.{ext}" for stem in gallery_specs(name, result, config) for ext in layout.GALLERY_FORMATS]
    extra += [layout.on_data(layout.CURVES, config).format(paper=name)] if histories(result) else []
    extra += list(headline_files(name, result, config))
    result = dataclasses.replace(result, extra_outputs=result.extra_outputs + extra)
    # the test split's size is a param on ShapeCaptions; on a real dataset the evaluation checks it when it runs
    problems = [] if config["dataset"] != layout.MAIN_DATASET else protocol_problems(
        config, [spec.protocol for spec in result.tables.values() if spec.protocol])
    if problems:
        raise ConfigError(f"params do not fit the tables of {name}:\n  - " + "\n  - ".join(problems))
    return result


def _nothing_to_train(paper: Paper, result: Plan, data: str) -> Plan:
    """The plan on a dataset with no training split: every paper trains on params ``dataset``, so nothing is planned
    and each target is unavailable, saying why (its test split can still be another dataset's shift.real_test_sets)."""
    why = (f"{data} has no training split (its datasets entry fetches one split, for testing), and every paper trains "
           f"on params dataset: set dataset to one that has one; {data}'s test split joins the tables that test on "
           "shift.real_test_sets")
    return dataclasses.replace(result, variants={}, collections={}, searched=[], tables={}, first_images={}, sweep=None,
                               extra_outputs=[], latency_models=None, timing=None, galleries={},
                               unavailable={t.name: why for t in paper.targets})


def extended_cells(result: Plan, config: dict) -> list[str]:
    """The metrics file, under the extended ground truth, of every embedding row of every model the plan trains and
    searches on the whole test split: each paper reports its models under it beside its own tables, and
    ``snakemake eccv_all`` sets them side by side (how much the single positive of R@K undercounts each).

    On ShapeCaptions the ground truth is itr.data.truth's (protocol ``extended``); on COCO (itr.eccv.judges) it is
    ECCV Caption's, which protocol ``full`` cells carry (``eccv/*``), the re-ranked rows' too where the plan's tables
    re-rank the 5K test split; on any other real dataset there is none."""
    data = config["dataset"]
    if data != layout.MAIN_DATASET and not eccv.judges(config["datasets"][data]):
        return []
    protocol = EXTENDED if data == layout.MAIN_DATASET else "full"
    tabled = {f for spec in result.tables.values() for f in spec.inputs}
    cells = []
    for variant, collection in result.searched:
        c = result.collections.get(collection)
        if (variant not in result.variants or c is None or c["dataset"] != data or c["distractors"]
                or c.get("lang") or result.first_images.get(variant)):
            continue  # another paper's variant, or a grown, cut or one-language collection: not a whole test split
        models = result.variants[variant]["models"]
        cells += [layout.EVAL_METRICS.format(variant=variant, method=method, collection=collection, protocol=protocol)
                  for method, model in result.embedding_rows.items() if model in models]
        reranked = [layout.EVAL_METRICS.format(variant=variant, method=method, collection=collection, protocol=protocol)
                    for method, (reranker, first) in result.rerank_rows.items() if first and {reranker, first} <= set(models)]
        cells += [f for f in reranked if protocol == "full" and f in tabled]  # scored for a table: not scored here
    return cells


def headline_files(name: str, result: Plan, config: dict) -> dict[str, str]:
    """One file (layout.HEADLINE, a ``dvc metrics show`` row) per retrieval cell of the headline table -> the cell."""
    target = load(name).headline
    if target not in result.tables:  # not declared, or not built on this dataset
        return {}
    cells = [c for c in result.tables[target].inputs if c.startswith("results/metrics/")]
    return {layout.on_data(layout.HEADLINE, config).format(
        paper=name, cell=c.removeprefix("results/metrics/").removesuffix(".json").replace("/", ".")): c for c in cells}


def cell_tables(result: Plan) -> dict[str, list[str]]:
    """Every metrics file the plan's tables read or it builds beside them -> the tables that read it (MLflow tags)."""
    cells = {f for spec in result.tables.values() for f in spec.inputs} | set(result.extra_outputs)
    return {c: sorted(t for t, spec in result.tables.items() if c in spec.inputs)
            for c in sorted(cells) if c.startswith("results/metrics/")}


def histories(result: Plan) -> dict[str, str]:
    """The training history of every model the plan trains, by "<variant>/<model>" (what its curves figure plots)."""
    return {f"{variant}/{model}": layout.TRAIN_HISTORY.format(variant=variant, model=model)
            for variant, v in sorted(result.variants.items()) for model in v["models"]}


def gallery_specs(name: str, result: Plan, config: dict) -> dict[str, dict]:
    """Each gallery of the plan by file stem (``itr gallery --spec``): its row's scores file on the main collection
    (at the protocol and depth of the row's cells), how the row ranks it, and params ``gallery`` (k, n_worst, ...)."""
    variant, data = layout.on_dataset(name, config), layout.main_dataset(config)
    specs = {}
    for gallery, (row, first, second) in result.galleries.items():
        settings = result.rerank_settings.get(row, config["rerank"])
        specs[layout.on_data(layout.GALLERY_STEM.format(paper=name, name=gallery), config)] = {
            "scores": layout.RERANK_SCORES.format(variant=variant, method=row, collection=data,
                                                  protocol=settings["protocol"]),
            "data": layout.DATASET_MANIFEST.format(dataset=data).rsplit("/", 1)[0], "first": first, "second": second,
            "depth": settings["k"], **result.row_fusions.get(row, {"fusion": "ce", "lam": 0.0}), **config["gallery"]}
    return specs


def seed_files(name: str, result: Plan, config: dict) -> dict[int, dict[str, str]]:
    """What the seed runs re-measure of a paper's expected scores (snakemake <paper>_seeds), for each seed of params
    ``seeds``: the detector's file, and each plain cell of the paper's main variant that its plan ``result`` builds
    -> that seed's copy (itr.layout.seed_config; the same file for params seed)."""
    from itr.expected import load_expected

    main = re.escape(layout.on_dataset(name, config))
    plain = re.compile(rf"results/metrics/(detector/[^/]+|{main}/[^/]+/[^/]+/[^/]+)\.json")
    built = {f for spec in result.tables.values() for f in spec.inputs} | set(result.extra_outputs)
    files = [f for f in load_expected(expected_scores(name))["expected"]
             if plain.fullmatch(f) and (f in built or f.startswith("results/metrics/detector/"))]
    prefixes = {s: layout.seed_prefix(layout.seed_config(config, s)) for s in config["seeds"]}
    return {s: {f: f.replace("results/metrics/", f"results/metrics/{prefix}", 1) for f in files}
            for s, prefix in prefixes.items()}


def seed_cells(name: str, config: dict) -> dict[str, list[str]]:
    """The metrics files of the headline table in every seed's run (params seed's too) -> the tables that read them,
    as MLflow tags (itr.mirror): the headline and the table over seeds, ``seeds/<headline>``."""
    headline = load(name).headline
    cells = {f for s in config["seeds"] for f in plan(name, layout.seed_config(config, s)).tables[headline].inputs}
    return {f: [headline, f"seeds/{headline}"] for f in sorted(cells) if f.startswith("results/metrics/")}


def seed_table(name: str, config: dict, seed: int) -> str:
    """The headline table's JSON in the run with ``seed`` (params seed's own, or the seed run's under seed<s>/)."""
    return f"{layout.table_stem(name, load(name).headline, layout.seed_config(config, seed))}.json"


def seed_outputs(name: str, config: dict) -> dict:
    """What ``snakemake <paper>_seeds`` builds (itr.seeds): the headline table over params ``seeds`` ("table": its
    files), the claims over seeds ("claims": their files; none when the paper declares no headline_claims) and
    every expected score's spread ("spread": one JSON)."""
    spread = layout.on_data(layout.SPREAD_TABLE_STEM, config).format(paper=name, target=load(name).headline)
    claims = layout.on_data(layout.SPREAD_CLAIMS_STEM, config).format(paper=name)
    return {"table": [f"{spread}.{ext}" for ext in layout.TABLE_FORMATS],
            "claims": [f"{claims}.{ext}" for ext in layout.TABLE_FORMATS] if load(name).headline_claims else [],
            "spread": layout.on_data(layout.SEED_SPREAD, config).format(paper=name)}


def headline_claims(name: str) -> Callable | None:
    """The function checking the paper's headline claims in one table (Paper.headline_claims), or None."""
    if not load(name).headline_claims:
        return None
    module, function = load(name).headline_claims.split(":")
    return getattr(importlib.import_module(f"itr.papers.{name}.{module}"), function)


def builder(paper: str, target: str) -> Callable:
    """The function that builds one target's table."""
    module, function = load(paper).target(target).builder.split(":")
    return getattr(importlib.import_module(f"itr.papers.{paper}.{module}"), function)


def reported_file(name: str) -> str:
    """Path of the numbers the paper reports (its tables print them beside ours)."""
    return str(resources.files(f"itr.papers.{name}").joinpath("reported.yaml"))


def expected_scores(name: str) -> str:
    """Path of the paper's expected scores (checked both ways by ``snakemake check_scores``)."""
    return str(resources.files(f"itr.papers.{name}").joinpath("expected_scores.yaml"))


def merged(plans: dict[str, Plan], field: str) -> dict:
    """One field of every paper's plan (a mapping) merged; two papers never give one name two meanings."""
    out = {}
    for name, plan in plans.items():
        for key, value in getattr(plan, field).items():
            if key in out and out[key] != value:
                raise UnknownPaperError(f"papers disagree on {field} {key!r} (itr.papers.{name}.plan); rename one")
            out[key] = value
    return out


def all_pairs_row(method: str, rows: dict, settings: dict, rerank: dict) -> str | None:
    """The row that scores every pair with a shortlist row's reranker, at its precision; None for an all-pairs row.
    Where a table builds both on one collection and protocol, the shortlist row's scores are read from that row's
    file (itr.rerank.shortlists_from_all_pairs) rather than computed twice. ``rows``: merged rerank_rows;
    ``settings``: merged rerank_settings; ``rerank``: params.yaml's rerank section.

    >>> all_pairs_row("sep_coop", {"sep_coop": ("ce", "be"), "ce": ("ce", None)}, {}, {"precision": "fp32"})
    'ce'
    """
    reranker, first_stage = rows[method]
    if first_stage is None:
        return None
    precision = settings.get(method, rerank)["precision"]
    return next((m for m, (r, first) in rows.items()
                 if r == reranker and first is None and settings.get(m, rerank)["precision"] == precision), None)


def timed_models(specs: dict) -> list[str]:
    """Every model the timed methods (timed_methods) load."""
    return sorted({path for spec in specs.values() for key, path in spec.items() if key.endswith("_stage")})


def timed_methods(timing: Timing, plans: dict[str, Plan], rerank: dict) -> dict:
    """benchmarks/inference_time.py's spec of each timed row, as the row's cells run it: its models
    (itr.layout.MODEL), and for a second stage how pairs are scored, the shortlist depth and the fusion (the row's
    rerank_settings, else params.yaml's ``rerank`` section, and its row_fusions). ``plans``: every paper's plan, as
    a paper may time another's rows.

    >>> timed_methods(Timing("subset", {"tgdt_g": "tgdt"}), plans, params["rerank"])
    {'tgdt_g': {'first_stage': 'models/tgdt/cmc.pt'}}
    """
    embedding, reranked, settings, fusions = (merged(plans, f) for f in ("embedding_rows", "rerank_rows",
                                                                          "rerank_settings", "row_fusions"))
    out = {}
    for method, variant in timing.methods.items():
        def model(name: str) -> str:
            return layout.MODEL.format(variant=variant, model=name)

        if method in embedding:
            out[method] = {"first_stage": model(embedding[method])}
        elif method in reranked:
            second, first = reranked[method]
            s = settings.get(method, rerank)
            out[method] = {"second_stage": model(second), "batch_size": s["batch_size"], "precision": s["precision"]}
            if first:
                out[method].update(first_stage=model(first), k=s["k"], **fusions.get(method, {"fusion": "ce"}))
        else:
            raise UnknownPaperError(f"the timed method {method!r} is no row of a registered paper's plan")
    return out


def search_rows(config: dict) -> list[str]:
    """Every row ``itr search`` and ``itr serve`` can rank: each paper's embedding and re-ranking rows, in order."""
    plans = [plan(name, config) for name in PAPERS]
    return list(dict.fromkeys(r for p in plans for r in (*p.embedding_rows, *p.rerank_rows)))


def search_spec(method: str, config: dict, variant: str | None = None) -> dict:
    """How ``itr search`` runs a row, as its cells rank (timed_methods): models, first-stage index, shortlist depth,
    fusion, the dataset and features searched. ``variant``: whose models (default: the row's paper's, on the data)."""
    plans = {name: plan(name, config) for name in PAPERS}
    owner = [name for name, p in plans.items() if method in p.embedding_rows or method in p.rerank_rows]
    if not owner:
        rows = sorted(r for p in plans.values() for r in (*p.embedding_rows, *p.rerank_rows))
        raise UnknownPaperError(f"no registered paper has the row {method!r}; rows: {rows}")
    variant = variant or layout.on_dataset(owner[0], config)
    spec = timed_methods(Timing("search", {method: variant}), plans, config["rerank"])[method]
    first = merged(plans, "embedding_rows").get(method) or merged(plans, "rerank_rows")[method][1]
    data = layout.main_dataset(config)
    spec["data"] = layout.DATASET_MANIFEST.format(dataset=data).rsplit("/", 1)[0]
    spec["features"] = layout.FEATURES_MANIFEST.format(dataset=data).rsplit("/", 1)[0]
    if first:
        spec["index"] = layout.INDEX_DONE.format(variant=variant, model=first, collection=data).rsplit("/", 1)[0]
    return spec
