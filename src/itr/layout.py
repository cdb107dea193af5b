"""Where every artifact lives: the one naming scheme of the workflow's files.

Snakemake rules, the CLI and the paper plans all build paths with these patterns and helpers, so a
file name is spelled once. Paths are relative to the project root; ``{name}`` fields are Snakemake
wildcards (and ``str.format`` fields).

    downloads/{dataset}/{file}                        a real dataset's file, fetched and hash-checked (itr.data.download)
    raw/{dataset}/{file}/                             an archive of those, extracted (itr.data.archives)
    data/{dataset}/                                   a dataset in the canonical format (itr.data.dataset)
    features/{dataset}/                               its region features (itr.features.store)
    features/{dataset}-patches/                       its raw-pixel patches, same store (itr.features.patches)
    models/{variant}/{model}.pt                       a trained checkpoint; variant = one set of trained models
                                                      (on a real dataset a variant is {dataset}/{paper's name})
    indexes/{variant}/{model}/{collection}/           faiss indexes of a model over a test collection
    scores/{variant}/{method}/{collection}/{protocol}.npz          cached cross-encoder scores
    results/metrics/{variant}/{method}/{collection}/{protocol}.json  one table cell
    results/metrics/.../{protocol}/k={k}.json, {fusion}_{lam}.json   its shortlist-depth and fusion variants
    results/tables/{paper}_{target}.{md,csv,tex,json,html[,png]}          a paper's table or figure (ShapeCaptions)
    results/tables/{dataset}/{paper}_{target}.*                       the same on a real dataset (params `dataset`)
    results/tracking/{paper}.json                                     MLflow runs mirroring its metrics files
    results/benchmarks/...                                            benchmark JSONs (latency, inference time, soft-label cost)

A seed other than params ``seed`` (one of params ``seeds``: ``snakemake <paper>_seeds``) puts every file it changes
under ``seed<s>/`` right after the kind folder: ``models/seed1/detector/shapes.pt``, ``features/seed1/shapes/``,
``models/seed1/<variant>/<model>.pt`` (variant ``seed1/<variant>``), ``results/metrics/seed1/...``, ``results/tables/seed1/...``.
The data is the benchmark and stays shared; the seed draws the method (the detector and every model after it).
    results/tables/seeds/{paper}_{target}.*                           a table over every seed: mean ± std (n)
    results/seeds/{paper}.json                                        every expected score's values by seed

Example:
    >>> cell_variants("results/metrics/v/sep_coop/shapes/subset", ks=[10, 20], fusions=["add"], lambdas=[0.5])
    ['results/metrics/v/sep_coop/shapes/subset/k=10.json', 'results/metrics/v/sep_coop/shapes/subset/k=20.json', \
'results/metrics/v/sep_coop/shapes/subset/add_0.5.json']
"""
from __future__ import annotations

MAIN_DATASET = "shapes"  # ShapeCaptions, the embedded benchmark; its detector extracts every generated dataset's features

DOWNLOAD = "downloads/{dataset}/{file}"
EXTRACTED = "raw/{dataset}/{file}"
DOWNLOAD_LOCK = "downloads/{dataset}/SHA256SUMS"  # sha256s pinned on first use, for files with none published

DATASET_MANIFEST = "data/{dataset}/manifest.json"
FEATURES_MANIFEST = "features/{dataset}/manifest.json"
PATCHES_MANIFEST = "features/{dataset}-patches/manifest.json"
FEATURE_STORES = {"regions": FEATURES_MANIFEST, "patches": PATCHES_MANIFEST}  # a variant's "features" -> its store
DETECTOR = "models/detector/{dataset}.pt"
DETECTOR_METRICS = "results/metrics/detector/{dataset}.json"
DETECTOR_HISTORY = "results/train/detector/{dataset}.csv"  # its mean training loss per epoch (dvc plots)
MODEL = "models/{variant}/{model}.pt"
TRAIN_HISTORY = "results/train/{variant}/{model}.csv"
TRAIN_STATE = "models/{variant}/.state/{model}"  # resumable state, outside the declared outputs
INDEX_DONE = "indexes/{variant}/{model}/{collection}/collection.json"
RERANK_SCORES = "scores/{variant}/{method}/{collection}/{protocol}.npz"
EVAL_METRICS = "results/metrics/{variant}/{method}/{collection}/{protocol}.json"
VARIANTS_DIR = "results/metrics/{variant}/{method}/{collection}/{protocol}"  # a cell's k and fusion variants
K_METRICS = VARIANTS_DIR + "/k={k}.json"
FUSION_METRICS = VARIANTS_DIR + "/{fusion}_{lam}.json"
TABLE_STEM = "results/tables/{paper}_{target}"
GALLERY_STEM = "results/galleries/{paper}_{name}"  # itr.gallery: a first stage beside its re-ranking, per query
GALLERY_FORMATS = ("png", "html", "json")
HEADLINE = "results/headline/{paper}/{cell}.json"  # a headline cell's recalls and rsum (dvc metrics show)
DETECTOR_HEADLINE = "results/headline/detector/{dataset}.json"  # the detector's mAP alone (dvc metrics show)
CURVES = "results/curves/{paper}.png"  # itr.curves: validation curves of every model a paper trains
DETECTOR_CURVES = "results/curves/detector/{dataset}.png"  # itr.curves: the detector's AP per class
EXTENDED_REPORT = "results/tables/eccv_all"  # every paper's models under the extended ground truth (stem)
TABLE_FORMATS = ("md", "csv", "tex", "json", "html")
LATENCY_BENCHMARK = "results/benchmarks/latency.json"
TRACKED_CELLS = "results/tracking/{paper}.json"  # the MLflow runs mirroring a paper's metrics files
INFERENCE_BENCHMARK = "results/benchmarks/{paper}_inference.json"  # benchmarks/inference_time.py of a Plan.timing
UNIMODAL_METRICS = "results/metrics/{variant}/unimodal/{collection}.json"  # itr unimodal (a soft-label student)
TEXT_TEACHER = "models/{variant}/text_teacher.npz"  # itr teachers: the text teacher of a soft-label student (itr.teachers)
# benchmarks/softlabel_cost.py: what a soft-label variant's teachers and losses cost in training (its config, teacher file)
SOFTLABEL_COST = "results/benchmarks/softlabel_cost/{variant}.json"
# A seed run (seed_config): the detector chain under seed<s>/, and what is built over every seed
SEEDED_DETECTOR = "models/seed{seed}/detector/{dataset}.pt"
SEEDED_DETECTOR_METRICS = "results/metrics/seed{seed}/detector/{dataset}.json"
SEEDED_DETECTOR_HISTORY = "results/train/seed{seed}/detector/{dataset}.csv"
SEEDED_FEATURES = "features/seed{seed}/{dataset}/manifest.json"
SPREAD_TABLE_STEM = "results/tables/seeds/{paper}_{target}"  # itr.seeds: a table's cells as mean ± std over seeds
SPREAD_CLAIMS_STEM = "results/tables/seeds/{paper}_claims"  # itr.seeds: each claim's verdict in every seed
SEED_SPREAD = "results/seeds/{paper}.json"  # itr.seeds: every expected score's value in every seed, mean and std


def main_dataset(config: dict) -> str:
    """The dataset every paper's targets train and test on (params ``dataset``): ``shapes`` or a real one."""
    return config["dataset"]


def seed_config(config: dict, seed: int) -> dict:
    """``config`` for a run with another seed: its files go under ``seed<s>/`` (on_dataset, on_data); the same
    ``config`` when ``seed`` is params ``seed`` (that run's files are the unprefixed ones)."""
    return config if seed == config["seed"] else {**config, "seed": seed, "seed_run": True}


def seed_prefix(config: dict) -> str:
    """``seed<s>/`` in a seed run's config (seed_config), else empty."""
    return f"seed{config['seed']}/" if config.get("seed_run") else ""


def features_manifest(dataset: str, config: dict) -> str:
    """The detector store of ``dataset`` in the run ``config`` describes: a seed run's own on generated data
    (SEEDED_FEATURES), else FEATURES_MANIFEST (real data's features have no seed of ours)."""
    if config.get("seed_run") and dataset in datasets(config):
        return SEEDED_FEATURES.format(seed=config["seed"], dataset=dataset)
    return FEATURES_MANIFEST.format(dataset=dataset)


def on_dataset(name: str, config: dict) -> str:
    """A variant's (or table's) name under the configured dataset: unchanged on ShapeCaptions, ``{dataset}/{name}``
    on a real one, so each dataset's models, metrics and tables live side by side; ``seed<s>/`` before it in a
    seed run (seed_config)."""
    return seed_prefix(config) + (name if config["dataset"] == MAIN_DATASET else f"{config['dataset']}/{name}")


def datasets(config: dict) -> dict[str, dict]:
    """Every generated dataset the workflow builds, as overrides of the ``shapes`` section: ShapeCaptions,
    the same generator in a second visual domain (``shift.domain``), and the main images captioned in
    every language of ``multilingual.languages``."""
    return {
        MAIN_DATASET: {},
        f"{MAIN_DATASET}_{config['shift']['domain']}": {"domain": config["shift"]["domain"]},
        f"{MAIN_DATASET}_multi": {"languages": config["multilingual"]["languages"]},
    }


def k_cell(variants_dir, k: int) -> str:
    """The metrics file of a COOP cell reranking the top ``k``."""
    return f"{variants_dir}/k={k}.json"


def fusion_cell(variants_dir, fusion: str, lam: float) -> str:
    """The metrics file of a COOP cell ranking the top k by a fusion of first-stage and CE scores."""
    return f"{variants_dir}/{fusion}_{lam}.json"


def cell_variants(variants_dir, ks, fusions, lambdas) -> list[str]:
    """Every k and fusion variant of one COOP cell (Tables 8 and 9 of Retrieve Fast, Rerank Smart)."""
    return [k_cell(variants_dir, k) for k in ks] + [fusion_cell(variants_dir, f, lam) for f in fusions for lam in lambdas]


def on_data(path: str, config: dict) -> str:
    """A ``results/<kind>/...`` file (or pattern) of the configured dataset: unchanged on ShapeCaptions,
    ``results/<kind>/<dataset>/...`` on a real one (tables, benchmarks, the MLflow mirror's record)."""
    dataset = "" if config["dataset"] == MAIN_DATASET else f"{config['dataset']}/"
    top, kind, rest = path.split("/", 2)
    return f"{top}/{kind}/{seed_prefix(config)}{dataset}{rest}"


def table_stem(paper: str, target: str, config: dict) -> str:
    """A paper table's path without extension, under the configured dataset."""
    return on_data(TABLE_STEM.format(paper=paper, target=target), config)


def table_dataset(stem) -> str:
    """The dataset a table under ``results/tables/`` (ShapeCaptions) or ``results/tables/<dataset>/`` is of (a seed
    run's ``seed<s>/`` and the spread tables' ``seeds/`` aside)."""
    import re
    from pathlib import Path

    parent = Path(stem).parent
    while re.fullmatch(r"seed\d+|seeds", parent.name):
        parent = parent.parent
    return MAIN_DATASET if parent.name == "tables" else parent.name


def table_files(paper: str, target: str, config: dict, png: bool = False) -> list[str]:
    """The files of one paper table (and its PNG when it is a figure)."""
    stem = table_stem(paper, target, config)
    return [f"{stem}.{ext}" for ext in TABLE_FORMATS] + ([f"{stem}.png"] if png else [])
