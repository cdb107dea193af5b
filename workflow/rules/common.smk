# Helpers shared by all rule files (config validation, paths, config sections as CLI JSON).
import json
import os
import re
import shlex

from itr import papers
from itr.config import SEEDED, TRAIN_METHODS, unread_keys
from itr.params import section_keys, validate_params
from itr.data import sources
from itr.expected import load_expected
from itr.errors import InputError
from itr.layout import (DATASET_MANIFEST, DOWNLOAD, EVAL_METRICS, EXTENDED_REPORT, EXTRACTED, GALLERY_STEM, CURVES, DETECTOR_CURVES, DETECTOR_HEADLINE, FEATURE_STORES, FEATURES_MANIFEST,
                        INDEX_DONE, PATCHES_MANIFEST, INFERENCE_BENCHMARK, LATENCY_BENCHMARK, MAIN_DATASET, MODEL, RERANK_SCORES,
                        SOFTLABEL_COST, TEXT_TEACHER, SEEDED_DETECTOR, SEEDED_DETECTOR_METRICS, SEEDED_DETECTOR_HISTORY, SEEDED_FEATURES,
                        seed_config, features_manifest, TRACKED_CELLS, UNIMODAL_METRICS, TRAIN_HISTORY, TRAIN_STATE, VARIANTS_DIR, cell_variants, datasets,
                        TABLE_FORMATS, main_dataset, on_data, table_files, table_stem)
from itr.layout import (DETECTOR as LAYOUT_DETECTOR, DETECTOR_HISTORY as LAYOUT_DETECTOR_HISTORY,
                        DETECTOR_METRICS as LAYOUT_DETECTOR_METRICS)
from itr.manifest import content_digest, files_identity
from itr.provenance import RULE_ENTRIES, code_digest, package_modules
from itr.shortlist import SCORE_FUSIONS

# Fail within seconds, naming the key, when params.yaml (or a --configfile) has a bad key.
validate_params(config, source="workflow config (params.yaml or --configfile)")

ITR_ENV = "../envs/itr.yaml"  # relative to workflow/rules

# Generated datasets (itr.layout.datasets): ShapeCaptions, a second visual domain, and the main images in every caption
# language; DATASET (ShapeCaptions) trains the detector that extracts their features. Real datasets: params
# `datasets` (rules/sources.smk). MAIN: the one every paper's targets train and test on (params `dataset`).
DATASET = MAIN_DATASET
DATASETS = datasets(config)
REAL_DATASETS = config["datasets"]
MAIN = main_dataset(config)
# Files with no dataset in their pattern, kept per dataset all the same (results/<kind>/<dataset>/ on real data)
LATENCY = on_data(LATENCY_BENCHMARK, config)
INFERENCE = on_data(INFERENCE_BENCHMARK, config)
TRACKED = on_data(TRACKED_CELLS, config)

# What the registered papers ask of the shared rules (itr.papers): variants to train, collections to
# search, rows, and the cells of every table. Merged over papers; two papers never share a name.
PAPER_PLANS = {name: papers.plan(name, config) for name in papers.PAPERS}


def merged(field):
    return papers.merged(PAPER_PLANS, field)


# The datasets the plans use (generated ones first), and whether any needs ShapeCaptions' detector.
_USED = {MAIN}.union(*(plan.datasets() for plan in PAPER_PLANS.values()))  # MAIN: fetched even where nothing trains
USED_DATASETS = [d for d in [*DATASETS, *REAL_DATASETS] if d in _USED]
GENERATED_USED = [d for d in USED_DATASETS if d in DATASETS]


# Runs with the other seeds of params `seeds` (snakemake <paper>_seeds; itr.layout.seed_config): each paper's plan
# under that seed, whose variants (seed<s>/<variant>) read a detector trained with that seed. Their variants join
# VARIANTS (the rules' lookup) with the seed among their overrides; PLANNED_VARIANTS, the layers' lists, leave them out.
SEED_PLANS = {(name, s): papers.plan(name, seed_config(config, s)) for name in papers.PAPERS
              if papers.load(name).headline for s in config["seeds"] if s != config["seed"]}
PLANNED_VARIANTS = merged("variants")
VARIANTS = {**PLANNED_VARIANTS, **{v: {**spec, "overrides": {**spec["overrides"], "seed": s}}
                                   for (_, s), plan in SEED_PLANS.items() for v, spec in plan.variants.items()}}
COLLECTIONS = merged("collections")
EMBEDDING_MODEL = merged("embedding_rows")  # rows that rank by embedding similarity alone -> model
RERANK = merged("rerank_rows")  # rows that run the cross-encoder -> (reranker, first-stage model or None)
FIRST_IMAGES = {**merged("first_images"),  # variant -> test images its collections hold (None: all)
                **{v: n for plan in SEED_PLANS.values() for v, n in plan.first_images.items()}}
METHODS = list(EMBEDDING_MODEL) + list(RERANK)
MODELS = sorted({m for spec in VARIANTS.values() for m in spec["models"]})
COOP_METHODS = [m for m, (_, first) in RERANK.items() if first]
SEARCHED = sorted({pair for plan in PAPER_PLANS.values() for pair in plan.searched})
SWEEPS = {name: plan.sweep for name, plan in PAPER_PLANS.items() if plan.sweep}  # cells with k and fusion variants
RERANK_SETTINGS = merged("rerank_settings")  # rerank rows that do not use params.yaml's rerank section
ROW_FUSIONS = merged("row_fusions")  # rerank rows whose cells do not rank by the second-stage score alone
TIMINGS = {name: plan.timing for name, plan in PAPER_PLANS.items() if plan.timing}  # inference-time benchmarks
TABLES = {(name, target): spec for name, plan in PAPER_PLANS.items() for target, spec in plan.tables.items()}

DETECTOR = LAYOUT_DETECTOR.format(dataset=DATASET)  # one detector (trained on the main dataset) for every dataset
DETECTOR_METRICS = LAYOUT_DETECTOR_METRICS.format(dataset=DATASET)
DETECTOR_HISTORY = LAYOUT_DETECTOR_HISTORY.format(dataset=DATASET)
DETECTOR_FIGURE = DETECTOR_CURVES.format(dataset=DATASET)


def sweep_of(wc):
    """The Sweep (itr.papers) whose cell and rows include this job's, or None: its shortlist rows also get depth
    and fusion variants (Tables 8 and 9 of Retrieve Fast, Rerank Smart; Figure 6 of TGDT)."""
    for s in SWEEPS.values():
        if (s.variant, s.collection, s.protocol) == (wc.variant, wc.collection, wc.protocol) and wc.method in s.methods:
            return s
    return None


def rerank_section(wc, stage, **overrides):
    """The RerankConfig of a rerank row as the CLI's --config: the plan's settings for the row (RERANK_SETTINGS),
    else params.yaml's rerank section; less the keys ``stage`` does not read (itr.config.STAGE_UNREAD)."""
    values = {**RERANK_SETTINGS.get(wc.method, config["rerank"]), **overrides}
    unread = unread_keys(stage, "rerank")
    return shlex.quote(json.dumps({k: v for k, v in values.items() if k not in unread}, sort_keys=True))


def fusion_args(wc):
    """--fusion/--lam of a row whose cells rank by a fusion (ROW_FUSIONS); empty for the second stage alone."""
    f = ROW_FUSIONS.get(wc.method)
    return f"--fusion {f['fusion']} --lam {f['lam']}" if f else ""


def store_kind(variant):
    """Which feature store a variant's models read: "regions" (the detector's, the default) or "patches" (raw pixels,
    itr.features.patches); itr.layout.FEATURE_STORES."""
    return VARIANTS[variant].get("features", "regions")


def features_of(dataset, variant=None, kind=None):
    """The feature-store manifest of ``dataset`` that ``variant``'s models read (None: the detector store of params
    seed): ``kind`` (default: the variant's store_kind) "regions" is the detector's, that of the variant's seed run
    on generated data (SEEDED_FEATURES); "patches" (raw pixels) has no seed."""
    spec = VARIANTS[variant] if variant else {}
    kind = kind or spec.get("features", "regions")
    if kind == "regions":
        return features_manifest(dataset, seed_config(config, spec.get("overrides", {}).get("seed", config["seed"])))
    return FEATURE_STORES[kind].format(dataset=dataset)


def data_inputs(dataset, variant=None):
    return {"data": DATASET_MANIFEST.format(dataset=dataset), "features": features_of(dataset, variant)}


def collection_inputs(collection, variant=None):
    """Manifests of a collection's test data and of every distractor dataset, in the stores ``variant`` reads."""
    c = COLLECTIONS[collection]
    sources = sorted({c["dataset"], *(d["dataset"] for d in c["distractors"])})
    return {f"{key}_{name}": path for name in sources for key, path in data_inputs(name, variant).items()}


def distractor_args(collection, variant=None):
    """--distractors DATA:FEATURES:SPLIT ... for the CLI."""
    sources = COLLECTIONS[collection]["distractors"]
    if not sources:
        return ""
    if variant and store_kind(variant) != "regions":
        raise InputError(f"collection {collection} draws distractors, which have detector features only; a "
                         f"{store_kind(variant)} variant searches collections without distractors")
    parts = [f"data/{s['dataset']}:{os.path.dirname(features_of(s['dataset'], variant))}:{s['split']}" for s in sources]
    return "--distractors " + " ".join(parts)


# The library code each job runs (itr.provenance), passed as a param; Snakemake reruns a job whose params
# changed, so a result goes stale when the code that made it changes (comments and docstrings aside).
CODE = {rule: code_digest(entry) for rule, entry in RULE_ENTRIES.items() if rule != "paper_table"}
# Not in RULE_ENTRIES: itr.provenance is in the training code's own closure (checkpoints record their code digest),
# so adding an entry there would make every result of every build stale once. Moving RULE_ENTRIES out is open work.
CODE["seed_spread"] = code_digest("itr.cli.report:seeds")
# A paper's builders are imported by name (itr.papers.builder): every module of its package counts, and the
# numbers it reports (reported.yaml) beside ours.
TABLE_CODE = {p: code_digest(RULE_ENTRIES["paper_table"], *package_modules(f"itr.papers.{p}"),
                             data=[papers.reported_file(p)]) for p in papers.PAPERS}


def upstream(inputs):
    """A params entry naming the content of a job's input files (itr.manifest.files_identity).

    ``inputs`` is what the rule's ``input:`` holds: a path pattern, or a function of the wildcards returning
    paths (a str, list or dict). Snakemake reruns a job whose params changed; with this entry, a job whose
    input was deleted by a failed upstream job, or rebuilt with other content, is stale even though its own
    output is still there (Snakemake alone reports it up to date). It takes the wildcards only: Snakemake
    does not compare params functions of ``input``.
    """
    def identity(wc):
        paths = inputs(wc) if callable(inputs) else inputs.format(**dict(wc.items()))
        paths = paths.values() if isinstance(paths, dict) else [paths] if isinstance(paths, str) else paths
        return files_identity(paths)

    return identity


def train_inputs(wc):
    """The variant's dataset and features, the checkpoint it fine-tunes if it starts from one (``init``), and the
    text-teacher file it reads if it has one (``teacher``)."""
    spec = VARIANTS[wc.variant]
    return {**data_inputs(spec["dataset"], wc.variant),
            **{key: spec[key] for key in ("init", "teacher", "image_teacher") if spec.get(key)}}


def image_teacher_arg(wc, input):
    """--image-teacher of a student taught by another store's whole-image features than the one it reads."""
    return f"--image-teacher $(dirname {input.image_teacher})" if "image_teacher" in input.keys() else ""


def reported_table_files(png=False):
    """A table's files; its HTML (and PNG) go into Snakemake's report: a category per paper, a subcategory per
    table or figure."""
    return [report(f, caption="../report/table.rst", category="{paper}", subcategory="{target}")
            if f.endswith((".html", ".png")) else f for f in table_files("{paper}", "{target}", config, png)]


def init_arg(wc):
    """--init of a variant that fine-tunes a trained checkpoint, --teacher of one that reads a text-teacher file
    (train_inputs' ``init`` and ``teacher``); empty otherwise."""
    spec = VARIANTS[wc.variant]
    return " ".join(f"--{key} {spec[key]}" for key in ("init", "teacher") if spec.get(key))


def teacher_dataset(wc):
    """The dataset whose captions the text-teacher file of variant ``wc.variant`` embeds."""
    return DATASET_MANIFEST.format(dataset=VARIANTS[wc.variant]["dataset"])


def index_inputs(wc):
    return {"model": MODEL.format(variant=wc.variant, model=wc.model),
            **collection_inputs(wc.collection, wc.variant)}


def evaluate_input(wc):
    """The cell's index; protocol ``extended`` also reads the dataset (its captions' meanings and scenes)."""
    index = {"index": INDEX_DONE.format(variant=wc.variant, model=EMBEDDING_MODEL[wc.method], collection=wc.collection)}
    if wc.protocol == "extended":
        index["data"] = DATASET_MANIFEST.format(dataset=COLLECTIONS[wc.collection]["dataset"])
    return index


def unimodal_inputs(wc):
    """A soft-label student's checkpoint, its collection's data and features, and the text-teacher file its
    uni-modal evaluation reads (the variant's ``eval_teacher``)."""
    spec, collection = VARIANTS[wc.variant], COLLECTIONS[wc.collection]
    if "eval_teacher" not in spec:
        raise InputError(f"variant {wc.variant} declares no eval_teacher: only soft-label students get itr unimodal")
    if collection["distractors"] or collection.get("lang") or collection.get("first_images"):
        raise InputError(f"collection {wc.collection} is grown, one language of several, or cut: itr unimodal reads "
                         "a whole test split")
    # the teacher row's image features are the collection's detector store's, whatever store the student reads
    teacher_store = {} if store_kind(wc.variant) == "regions" else {
        "image_teacher": features_of(collection["dataset"], wc.variant, kind="regions")}
    return {"model": MODEL.format(variant=wc.variant, model=spec["models"][0]), "teacher": spec["eval_teacher"],
            **data_inputs(collection["dataset"], wc.variant), **teacher_store}


def softlabel_cost_inputs(wc):
    """A soft-label variant's dataset and detector store, the detector (its on-the-fly image teacher) and the
    text-teacher file its students read."""
    spec = VARIANTS[wc.variant]
    if "eval_teacher" not in spec or spec["dataset"] not in DATASETS:
        raise InputError(f"variant {wc.variant}: the soft-label cost benchmark times a soft-label variant on generated "
                         "data (its on-the-fly image teacher is ShapeCaptions' detector)")
    return {**data_inputs(spec["dataset"]), "detector": DETECTOR, "teacher": spec["eval_teacher"]}


def unimodal_config(wc):
    """The softlabel keys itr unimodal reads (the text teacher, the STS analogue's pairs) and the seed."""
    s = {**config["softlabel"], **VARIANTS[wc.variant]["overrides"]}
    return shlex.quote(json.dumps({"text_teacher": s["text_teacher"], "sts_pairs": s["sts_pairs"],
                                   "seed": config["seed"]}, sort_keys=True))


def data_arg(wc, input):
    """--data of an evaluation that reads the dataset (protocol ``extended``); empty otherwise."""
    return f"--data $(dirname {input.data})" if "data" in input.keys() else ""


def table_inputs(wc):
    return TABLES[(wc.paper, wc.target)].inputs


# Threads of build_index and rerank_score. At full scale these are mostly short jobs (an auxiliary
# index: 50 images and 250 captions; an auxiliary CE cell: 6k-12.5k pairs) in which importing torch and
# loading a model (single-threaded) is a large share, so two run side by side. A GPU node's profile
# can raise them with set-threads.
SHORT_JOB_THREADS = 1


def section(name, stage=None, **overrides):
    """A params.yaml section as one shell-quoted JSON argument (the CLI's --config).

    ``stage`` (the rule's name, a key of itr.config.STAGE_UNREAD) leaves out the keys that rule does not
    read, so editing them does not rerun it; the CLI refuses any other missing key. ``overrides`` replace
    values (a dataset's domain, a variant's training budget).
    """
    unread = unread_keys(stage, name)
    value = {k: v for k, v in config[name].items() if k not in unread}
    value.update({k: v for k, v in overrides.items() if k in section_keys(name)})  # e.g. ance_p: ce/joint only
    if name in SEEDED:
        value["seed"] = overrides.get("seed", config["seed"])  # a seed run's variant (SEED_PLANS) overrides it
    return shlex.quote(json.dumps(value, sort_keys=True))


def paper_outputs(paper):
    """Every file a paper's <paper>_all target builds: its tables and figures (those its plan can build on this
    dataset), its files beside them, and the MLflow runs mirroring its metrics files; an error saying why when its
    plan builds none here (a dataset with no training split)."""
    if not PAPER_PLANS[paper].tables:
        raise InputError(f"{paper}_all builds nothing on dataset {MAIN}: {unbuilt_reasons([paper])}")
    return ([f for t in papers.load(paper).targets if t.name in PAPER_PLANS[paper].tables
             for f in table_outputs(paper, t.name)]
            + PAPER_PLANS[paper].extra_outputs + [TRACKED.format(paper=paper)])


def all_outputs(wc):
    """What ``snakemake all`` builds: every paper's outputs where its plan has tables on this dataset; an error saying
    why when no paper's has."""
    built = [p for p in papers.PAPERS if PAPER_PLANS[p].tables]
    if not built:
        raise InputError(f"all builds nothing on dataset {MAIN}: {unbuilt_reasons(papers.PAPERS)}")
    return [f for p in built for f in paper_outputs(p)]


def unbuilt_reasons(names):
    """Why the plans of the papers ``names`` cannot build their targets here, each reason once."""
    return "; ".join(sorted({why for p in names for why in PAPER_PLANS[p].unavailable.values()}))


def paper_cells(wc):
    """Every metrics file a paper's tables read, and those it builds beside them."""
    return metrics_files(PAPER_PLANS[wc.paper])


def paper_tables(wc):
    """The Markdown, CSV and PNG files of a paper's tables and figures (its table-building run's MLflow artifacts)."""
    return [f for t in papers.load(wc.paper).targets if t.name in PAPER_PLANS[wc.paper].tables
            for f in table_outputs(wc.paper, t.name) if f.endswith((".md", ".csv", ".png"))]


def metrics_files(plan):
    return sorted({f for spec in plan.tables.values() for f in [*spec.inputs, *plan.extra_outputs]
                   if f.startswith("results/metrics/")})


PLANNED_CELLS = {f for plan in [*PAPER_PLANS.values(), *SEED_PLANS.values()] for f in metrics_files(plan)}


# Every paper's models under the extended ground truth (itr.papers.extended_cells), by cell -> its paper: eccv_all.
EXTENDED_CELLS = {cell: name for name, plan in PAPER_PLANS.items() for cell in papers.extended_cells(plan, config)}
EXTENDED_REPORT_FILES = ([f"{on_data(EXTENDED_REPORT, config)}.{ext}" for ext in TABLE_FORMATS]  # per dataset
                         if EXTENDED_CELLS else [])
# Every paper's headline files (itr.papers.headline_files; in the plans' extra_outputs): paper -> {file: cell}
HEADLINES = {name: files for name, plan in PAPER_PLANS.items() if (files := papers.headline_files(name, plan, config))}
# Every paper's retrieval galleries (itr.papers.gallery_specs; their files are in the plans' extra_outputs): stem -> spec
GALLERIES = {stem: spec for name, plan in PAPER_PLANS.items()
             for stem, spec in papers.gallery_specs(name, plan, config).items()}


def seeds_unavailable(paper):
    """<paper>_seeds of a paper whose headline table is not built here: an error saying why."""
    raise InputError(f"{paper}_seeds: the paper's headline table ({papers.load(paper).headline or 'none declared'}) is "
                     f"not built on dataset {MAIN}")


def gallery_stem(wc):
    """The stem of a gallery's files; an error naming the galleries when the paper declares none by that name."""
    stem = on_data(GALLERY_STEM, config).format(paper=wc.paper, name=wc.name)
    if stem not in GALLERIES:
        raise InputError(f"no gallery {wc.paper}_{wc.name}; the registry declares {sorted(GALLERIES)}")
    return stem


def extended_report_outputs(wc):
    """eccv_all's files; on a real dataset, an error saying why there are none."""
    if not EXTENDED_CELLS:
        raise InputError(f"eccv_all is not built on dataset {MAIN}: the extended ground truth judges captions by their "
                         "meanings, which generated ShapeCaptions stores, or by ECCV Caption's re-judged positives, "
                         "which cover COCO's 5K test split only; set dataset: shapes or coco")
    return EXTENDED_REPORT_FILES


def table_outputs(paper, target):
    """The files of one registered table: md, csv, tex, json, and a PNG for figures."""
    why = PAPER_PLANS[paper].unavailable.get(target)
    if why:
        raise InputError(f"{paper}_{target} is not built on dataset {MAIN}: {why}")
    return table_files(paper, target, config, png=papers.load(paper).target(target).png)


def rerank_inputs(wc):
    """Inputs of a cross-encoder row: its reranker, the collection, the first-stage index of COOP rows, and the
    reranker's all-pairs scores of the same collection and protocol where a table builds them (itr.papers.all_pairs_row)."""
    reranker, first_stage = RERANK[wc.method]
    inputs = {"reranker": MODEL.format(variant=wc.variant, model=reranker), **collection_inputs(wc.collection, wc.variant)}
    if first_stage:
        inputs["first_stage"] = INDEX_DONE.format(variant=wc.variant, model=first_stage, collection=wc.collection)
    every_pair = papers.all_pairs_row(wc.method, RERANK, RERANK_SETTINGS, config["rerank"])
    cell = dict(variant=wc.variant, method=every_pair, collection=wc.collection, protocol=wc.protocol)
    if every_pair and EVAL_METRICS.format(**cell) in PLANNED_CELLS:  # built anyway: read the shortlists' scores from it
        inputs["pair_scores"] = RERANK_SCORES.format(**cell)
    return inputs


def timed_methods(wc):
    """The inference-time benchmark's spec of each method a paper times (itr.papers.timed_methods)."""
    return papers.timed_methods(TIMINGS[wc.paper], PAPER_PLANS, config["rerank"])


def timing_models(wc):
    return papers.timed_models(timed_methods(wc))


def test_dirs(wc):
    """--data/--features of a collection's test split (the directories of its manifests), its language,
    and for variants measured on a subset only (FIRST_IMAGES) the images that subset reads."""
    c = COLLECTIONS[wc.collection]
    features = os.path.dirname(features_of(c["dataset"], wc.variant))
    args = f"--data data/{c['dataset']} --features {features}" + (f" --lang {c['lang']}" if "lang" in c else "")
    first = FIRST_IMAGES[wc.variant]
    return args + (f" --first-images {first}" if first else "")




# Metrics files with reference scores, per paper (snakemake check_scores_all builds and compares them all).
EXPECTED = {name: papers.expected_scores(name) for name in papers.PAPERS}
EXPECTED_FILES = sorted({f for path in EXPECTED.values() for f in load_expected(path)["expected"]})
# snakemake check_scores compares the ones built so far, and at least the README's first look (the bi-encoder on the
# full test set, with the detector before it): checking a first build must not build every paper. A file built later
# changes the rule's input set, so Snakemake (rerun trigger "input") checks again.
QUICK_TARGET = "results/metrics/rfrs/be/shapes/full.json"
CHECKED_FILES = sorted({QUICK_TARGET, *(f for f in EXPECTED_FILES if os.path.exists(f))})


# Real datasets (rules/sources.smk)
PRETRAINED = config["pretrained_features"]

