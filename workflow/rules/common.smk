# Helpers shared by all rule files (config validation, paths, config sections as CLI JSON).
import json
import shlex

import yaml

from itr.config import EvalConfig, section_keys, unread_keys, validate_params

# Fail within seconds, naming the key, when params.yaml (or a --configfile) has a bad key.
validate_params(config, source="workflow config (params.yaml or --configfile)")

ITR_ENV = "../envs/itr.yaml"  # relative to workflow/rules

# Datasets: ShapeCaptions, and the same generator in a second visual domain (Tables 5 and 6).
DATASET = "shapes"
SHIFT = config["shift"]
SHIFT_DATASET = f"shapes_{SHIFT['domain']}"
MULTI = config["multilingual"]
MULTI_DATASET = f"{DATASET}_multi"  # the main images, captioned in every language of multilingual.languages
DATASETS = {  # overrides of the shapes section
    DATASET: {},
    SHIFT_DATASET: {"domain": SHIFT["domain"]},
    MULTI_DATASET: {"languages": MULTI["languages"]},
}

# Retrieve Fast, Rerank Smart. Trained checkpoints, and the rows of its tables built from them:
MODELS = ["be", "ce", "joint"]
EMBEDDING_MODEL = {"be": "be", "joint_be": "joint"}  # rows that rank by embedding similarity alone
RERANK = {  # rows that run the cross-encoder: (reranker, first-stage index or None = every pair)
    "sep_coop": ("ce", "be"),
    "joint_coop": ("joint", "joint"),
    "ce": ("ce", None),
    "joint_ce": ("joint", None),
}
METHODS = list(EMBEDDING_MODEL) + list(RERANK)
COOP_METHODS = [m for m, (_, first) in RERANK.items() if first]
TABLE_PROTOCOL = config["rerank"]["protocol"]  # every row of Tables 1, 8, 9 (and 5) is measured on this protocol

# A variant is one set of trained models: the dataset it trains on, its overrides of the be/ce/joint
# sections (a key a section does not have is left out of it) and of text_encoder. "rfrs" is the
# paper's main setting; the auxiliary ones train on the first auxiliary.train_images images, for the
# same epochs (the 3-hour budget of the aggregate target; README "Budgets").
MAIN = "rfrs"
AUX = config["auxiliary"]
ABLATIONS = config["ablations"]
AUX_PROTOCOL = AUX["protocol"]  # every auxiliary table and figure is measured on this protocol
# subset<N>: the auxiliary variants index and cross-encode only the test split's first N images (None: all)
AUX_IMAGES = EvalConfig.from_dict(config["evaluation"]).subset_images(AUX_PROTOCOL)
AUX_BUDGET = {"train_images": AUX["train_images"]}
AUX_VARIANT = "rfrs_aux"  # the main recipe at the auxiliary budget: Tables 6 and 7, and the baseline of the ablations
SHIFT_VARIANT = f"rfrs_{SHIFT['domain']}"
MULTI_VARIANT = "rfrs_multi"
HALF_VARIANT = "rfrs_aux_half"
ANCE_VARIANT = "rfrs_aux_ance"
# Figure 3's smaller training sets, one directory (models/rfrs_aux_sizes/n<N>/) whatever the sizes, for dvc.yaml
SIZE_VARIANTS = {n: f"rfrs_aux_sizes/n{n}" for n in ABLATIONS["sample_sizes"]}
VARIANTS = {
    MAIN: {"dataset": DATASET, "overrides": {}},
    AUX_VARIANT: {"dataset": DATASET, "overrides": AUX_BUDGET},
    SHIFT_VARIANT: {"dataset": SHIFT_DATASET, "overrides": AUX_BUDGET},  # Table 6
    MULTI_VARIANT: {"dataset": MULTI_DATASET,  # Table 2: the English steps over all languages' captions
                    "overrides": {**AUX_BUDGET, "steps_per_epoch": MULTI["steps_per_epoch"]}},
    HALF_VARIANT: {"dataset": DATASET, "overrides": AUX_BUDGET, "text": {"layers": "every_other"}},  # Figure 4
    # appendix Tables 9-10: BE with T_BHE + T_ANCE, JOINT with T_BHE + T_ANCE + E_ANCE
    ANCE_VARIANT: {"dataset": DATASET, "overrides": {**AUX_BUDGET, "ance_triplet": True, "ance_p": ABLATIONS["ance_p"]},
                   "models": ["be", "joint"]},
    **{v: {"dataset": DATASET, "overrides": {"train_images": n}} for n, v in SIZE_VARIANTS.items()},  # Figure 3
}
# A collection is what the test queries search: a dataset's test split, optionally grown with
# distractors (other splits' images and captions, never queries; Table 5).
DISTRACTED = f"{DATASET}_distractors"
COLLECTIONS = {
    DATASET: {"dataset": DATASET, "distractors": []},
    SHIFT_DATASET: {"dataset": SHIFT_DATASET, "distractors": []},
    DISTRACTED: {"dataset": DATASET, "distractors": SHIFT["distractors"]},
    # Tables 2 and 7: the multilingual test split searched one caption language at a time
    **{f"{MULTI_DATASET}_{lang}": {"dataset": MULTI_DATASET, "distractors": [], "lang": lang} for lang in MULTI["languages"]},
}

DATASET_DIR = "data/{dataset}"
DATASET_MANIFEST = "data/{dataset}/manifest.json"
DETECTOR = f"models/detector/{DATASET}.pt"  # one detector (trained on the main dataset) for every dataset
DETECTOR_METRICS = f"results/metrics/detector/{DATASET}.json"
FEATURES_MANIFEST = "features/{dataset}/manifest.json"
MODEL = "models/{variant}/{model}.pt"
TRAIN_HISTORY = "results/train/{variant}/{model}.csv"
INDEX_DONE = "indexes/{variant}/{model}/{collection}/collection.json"
RERANK_SCORES = "scores/{variant}/{method}/{collection}/{protocol}.npz"
EVAL_METRICS = "results/metrics/{variant}/{method}/{collection}/{protocol}.json"
# Table 8 / 9 cells of the COOP rows, next to their k = rerank.k headline cell
VARIANTS_DIR = "results/metrics/{variant}/{method}/{collection}/{protocol}"
K_METRICS = "results/metrics/{variant}/{method}/{collection}/{protocol}/k={k}.json"
FUSION_METRICS = "results/metrics/{variant}/{method}/{collection}/{protocol}/{fusion}_{lam}.json"
ON_MAIN = {"variant": MAIN, "collection": DATASET}  # the main models on the main test set (Tables 1, 8, 9)


def is_main(wc):
    """The main models on the main test set under rerank.protocol: the only cells with Table 8 and 9 variants."""
    return wc.variant == MAIN and wc.collection == DATASET and wc.protocol == TABLE_PROTOCOL


def data_inputs(dataset):
    return {"data": DATASET_MANIFEST.format(dataset=dataset), "features": FEATURES_MANIFEST.format(dataset=dataset)}


def collection_inputs(collection):
    """Manifests of a collection's test data and of every distractor dataset."""
    c = COLLECTIONS[collection]
    sources = sorted({c["dataset"], *(d["dataset"] for d in c["distractors"])})
    return {f"{kind}_{name}": path for name in sources for kind, path in data_inputs(name).items()}


def distractor_args(collection):
    """--distractors DATA:FEATURES:SPLIT ... for the CLI."""
    sources = COLLECTIONS[collection]["distractors"]
    if not sources:
        return ""
    parts = [f"data/{s['dataset']}:features/{s['dataset']}:{s['split']}" for s in sources]
    return "--distractors " + " ".join(parts)


def variant_metrics(method, protocol, variant=MAIN, collection=DATASET):
    """Table 8 and 9 cells of one COOP row."""
    r = config["rerank"]
    where = {"variant": variant, "collection": collection}
    return expand(K_METRICS, method=method, protocol=protocol, k=r["ks"], **where) + expand(
        FUSION_METRICS, method=method, protocol=protocol, fusion=["add", "norm_add"], lam=r["lambdas"], **where)


# Threads of build_index and rerank_score. At full scale these are mostly short jobs (an auxiliary
# index: 50 images and 250 captions; an auxiliary CE cell: 6k-12.5k pairs) in which importing torch and
# loading a model (single-threaded) is a large share, so two run side by side. A GPU node's profile
# can raise them with set-threads.
SHORT_JOB_THREADS = 1

# Sections whose code draws random numbers get the global seed.
SEEDED = {"shapes", "detector", "be", "ce", "joint", "benchmark"}
RUN_NAME = "{variant}/{method}/{collection}/{protocol}"  # MLflow run name of an evaluation cell


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
        value["seed"] = config["seed"]
    return shlex.quote(json.dumps(value, sort_keys=True))


def table_outputs(name):
    return [f"results/tables/{name}.{ext}" for ext in ("md", "csv", "tex", "json")]


def rerank_inputs(wc):
    """Inputs of a cross-encoder row: its reranker, the collection, and the first-stage index of COOP rows."""
    reranker, first_stage = RERANK[wc.method]
    inputs = {"reranker": MODEL.format(variant=wc.variant, model=reranker), **collection_inputs(wc.collection)}
    if first_stage:
        inputs["first_stage"] = INDEX_DONE.format(variant=wc.variant, model=first_stage, collection=wc.collection)
    return inputs


def test_dirs(wc):
    """--data/--features of a collection's test split (the directories of its manifests), its language,
    and for the auxiliary variants (measured on auxiliary.protocol only) the images that protocol reads."""
    c = COLLECTIONS[wc.collection]
    args = "--data data/{0} --features features/{0}".format(c["dataset"]) + (f" --lang {c['lang']}" if "lang" in c else "")
    return args + (f" --first-images {AUX_IMAGES}" if wc.variant != MAIN and AUX_IMAGES else "")


RERANK_EVALUATE = (
    "itr rerank evaluate --scores {input} --config {params.cfg} --eval-config {params.eval_cfg}"
    " --method {wildcards.method} --dataset {wildcards.collection} --trained-on {params.trained_on}"
    " --variant {wildcards.variant}"
    " --out {output.main} {params.variants}"
    " --tracking {params.tracking} --run-name {params.run_name} > {log} 2>&1"
)


# Metrics files with reference scores (snakemake check_scores builds and compares them).
with open("workflow/expected_scores.yaml") as f:
    EXPECTED_FILES = sorted(yaml.safe_load(f)["expected"])
