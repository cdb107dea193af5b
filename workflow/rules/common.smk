# Helpers shared by all rule files (config validation, paths, config sections as CLI JSON).
import json
import shlex

from itr.config import validate_params

# Fail within seconds, naming the key, when params.yaml (or a --configfile) has a bad key.
validate_params(config, source="workflow config (params.yaml or --configfile)")

DATASET = "shapes"
ITR_ENV = "../envs/itr.yaml"  # relative to workflow/rules
METHODS = ["be"]  # Retrieve Fast, Rerank Smart methods with a trainable checkpoint

DATASET_DIR = f"data/{DATASET}"
DATASET_MANIFEST = f"{DATASET_DIR}/manifest.json"
DETECTOR = f"models/detector/{DATASET}.pt"
DETECTOR_METRICS = f"results/metrics/detector/{DATASET}.json"
FEATURES_DIR = f"features/{DATASET}"
FEATURES_MANIFEST = f"{FEATURES_DIR}/manifest.json"
MODEL = "models/rfrs/{method}.pt"
TRAIN_HISTORY = "results/train/rfrs/{method}.csv"
INDEX_DONE = "indexes/rfrs/{method}/collection.json"
EVAL_METRICS = "results/metrics/rfrs/{method}/{protocol}.json"

# Sections whose code draws random numbers get the global seed.
SEEDED = {"shapes", "detector", "be"}


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
