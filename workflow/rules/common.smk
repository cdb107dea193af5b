# Helpers shared by all rule files (config validation, paths, config sections as CLI JSON).
import json
import shlex

import yaml

from itr.config import validate_params

# Fail within seconds, naming the key, when params.yaml (or a --configfile) has a bad key.
validate_params(config, source="workflow config (params.yaml or --configfile)")

DATASET = "shapes"
ITR_ENV = "../envs/itr.yaml"  # relative to workflow/rules
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
TABLE_PROTOCOL = config["rerank"]["protocol"]  # every row of Tables 1, 8, 9 is measured on this protocol

DATASET_DIR = f"data/{DATASET}"
DATASET_MANIFEST = f"{DATASET_DIR}/manifest.json"
DETECTOR = f"models/detector/{DATASET}.pt"
DETECTOR_METRICS = f"results/metrics/detector/{DATASET}.json"
FEATURES_DIR = f"features/{DATASET}"
FEATURES_MANIFEST = f"{FEATURES_DIR}/manifest.json"
MODEL = "models/rfrs/{model}.pt"
TRAIN_HISTORY = "results/train/rfrs/{model}.csv"
INDEX_DONE = "indexes/rfrs/{model}/collection.json"
RERANK_SCORES = "scores/rfrs/{method}/{protocol}.npz"
EVAL_METRICS = "results/metrics/rfrs/{method}/{protocol}.json"
# Table 8 / 9 cells of the COOP rows, next to their k = rerank.k headline cell
K_METRICS = "results/metrics/rfrs/{method}/{protocol}/k={k}.json"
FUSION_METRICS = "results/metrics/rfrs/{method}/{protocol}/{fusion}_{lam}.json"


def variant_metrics(method, protocol):
    """Table 8 and 9 cells of one COOP row."""
    r = config["rerank"]
    return expand(K_METRICS, method=method, protocol=protocol, k=r["ks"]) + expand(
        FUSION_METRICS, method=method, protocol=protocol, fusion=["add", "norm_add"], lam=r["lambdas"])


# Sections whose code draws random numbers get the global seed.
SEEDED = {"shapes", "detector", "be", "ce", "joint", "benchmark"}


def section(name, drop=()):
    """A params.yaml section as one shell-quoted JSON argument (the CLI's --config).

    ``drop`` removes keys the rule does not read, so editing them does not rerun it.
    """
    value = {k: v for k, v in config[name].items() if k not in drop}
    if name in SEEDED:
        value["seed"] = config["seed"]
    return shlex.quote(json.dumps(value, sort_keys=True))


def table_outputs(name):
    return [f"results/tables/{name}.{ext}" for ext in ("md", "csv", "tex", "json")]


def rerank_inputs(wc):
    """Inputs of a cross-encoder row: its reranker, and the first-stage index of COOP rows."""
    reranker, first_stage = RERANK[wc.method]
    inputs = {"reranker": MODEL.format(model=reranker), "data": DATASET_MANIFEST, "features": FEATURES_MANIFEST}
    if first_stage:
        inputs["first_stage"] = INDEX_DONE.format(model=first_stage)
    return inputs


RERANK_EVALUATE = (
    "itr rerank evaluate --scores {input} --config {params.cfg} --eval-config {params.eval_cfg}"
    " --method {wildcards.method} --out {output.main} {params.variants} --tracking {params.tracking}"
    " --run-name evaluate/method={wildcards.method},protocol={wildcards.protocol} > {log} 2>&1"
)


# Metrics files with reference scores (snakemake check_scores builds and compares them).
with open("workflow/expected_scores.yaml") as f:
    EXPECTED_FILES = sorted(yaml.safe_load(f)["expected"])
