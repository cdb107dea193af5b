"""What Retrieve Fast, Rerank Smart asks of the workflow: its trained variants, test collections, rows
and the cells of every table, computed from params.yaml.

Snakemake (workflow/rules/common.smk) and ``dvc.yaml`` read this through the registry
(``itr.papers.plan``); the shared rules then train, index and evaluate whatever it lists. Nothing
here imports torch or pandas: Snakemake parses it on every call.

Example:
    >>> p = plan(yaml.safe_load(open("params.yaml")))
    >>> p.tables["table1"].inputs[0]
    'results/metrics/rfrs/be/shapes/subset100.json'
"""
from __future__ import annotations

from itr.config import BEConfig, EvalConfig
from itr.layout import EVAL_METRICS, K_METRICS, FUSION_METRICS, LATENCY_BENCHMARK, MAIN_DATASET, MODEL, datasets
from itr.papers import Plan, Sweep, TableSpec
from itr.shortlist import SCORE_FUSIONS

# Trained checkpoints, and the rows of the tables built from them:
MODELS = ["be", "ce", "joint"]
EMBEDDING_ROWS = {"be": "be", "joint_be": "joint"}  # rows that rank by embedding similarity alone -> model
RERANK_ROWS = {  # rows that run the cross-encoder -> (reranker, first-stage index or None = every pair)
    "sep_coop": ("ce", "be"),
    "joint_coop": ("joint", "joint"),
    "ce": ("ce", None),
    "joint_ce": ("joint", None),
}
PAPER_ROWS = ["ce", "be", "sep_coop", "joint_coop"]  # the rows of the auxiliary tables and figures

# A variant is one set of trained models. "rfrs" is the paper's main setting; the auxiliary ones train on
# the first auxiliary.train_images images, for the same epochs (the 3-hour budget of rfrs_all; docs/rfrs.md).
MAIN = "rfrs"
AUX_VARIANT = "rfrs_aux"  # the main recipe at the auxiliary budget: Tables 6 and 7, and the ablations' baseline
MULTI_VARIANT = "rfrs_multi"
HALF_VARIANT = "rfrs_aux_half"
ANCE_VARIANT = "rfrs_aux_ance"


def _cells(variants, methods, collections, protocols) -> list[str]:
    """Metrics files of every combination (Snakemake's expand, in its order)."""
    return [EVAL_METRICS.format(variant=v, method=m, collection=c, protocol=p)
            for v in variants for m in methods for c in collections for p in protocols]


def plan(config: dict) -> Plan:
    """Every variant, collection and table cell of the paper under ``config`` (a validated params mapping)."""
    aux, ablations, shift, multi, rerank = (config[k] for k in ("auxiliary", "ablations", "shift", "multilingual",
                                                                  "rerank"))
    names = list(datasets(config))
    shift_dataset, multi_dataset = names[1], names[2]
    shift_variant = f"rfrs_{shift['domain']}"
    budget = {"train_images": aux["train_images"]}
    # Figure 3's smaller training sets, one directory (models/rfrs_aux_sizes/n<N>/) whatever the sizes, for dvc.yaml
    size_variants = {n: f"rfrs_aux_sizes/n{n}" for n in ablations["sample_sizes"]}
    variants = {
        MAIN: {"dataset": MAIN_DATASET, "overrides": {}},
        AUX_VARIANT: {"dataset": MAIN_DATASET, "overrides": budget},
        shift_variant: {"dataset": shift_dataset, "overrides": budget},  # Table 6
        MULTI_VARIANT: {"dataset": multi_dataset,  # Table 2: the English steps over all languages' captions
                        "overrides": {**budget, "steps_per_epoch": multi["steps_per_epoch"]}},
        HALF_VARIANT: {"dataset": MAIN_DATASET, "overrides": budget, "text": {"layers": "every_other"}},  # Figure 4
        # appendix Tables 9-10: BE with T_BHE + T_ANCE, JOINT with T_BHE + T_ANCE + E_ANCE
        ANCE_VARIANT: {"dataset": MAIN_DATASET, "models": ["be", "joint"],
                       "overrides": {**budget, "ance_triplet": True, "ance_p": ablations["ance_p"]}},
        **{v: {"dataset": MAIN_DATASET, "overrides": {"train_images": n}} for n, v in size_variants.items()},
    }
    for spec in variants.values():
        spec.setdefault("models", MODELS)
    # A collection is what the test queries search: a dataset's test split, optionally grown with distractors
    # (other splits' images and captions, never queries; Table 5), or one caption language (Tables 2 and 7).
    distracted = f"{MAIN_DATASET}_distractors"
    multi_collections = [f"{multi_dataset}_{lang}" for lang in multi["languages"]]
    collections = {
        MAIN_DATASET: {"dataset": MAIN_DATASET, "distractors": []},
        shift_dataset: {"dataset": shift_dataset, "distractors": []},
        distracted: {"dataset": MAIN_DATASET, "distractors": shift["distractors"]},
        **{c: {"dataset": multi_dataset, "distractors": [], "lang": lang}
           for c, lang in zip(multi_collections, multi["languages"])},
    }
    main_protocol, aux_protocol = rerank["protocol"], aux["protocol"]
    main = {"variants": [MAIN], "collections": [MAIN_DATASET], "protocols": [main_protocol]}
    coop = [m for m, (_, first) in RERANK_ROWS.items() if first]
    n_train = config["shapes"]["n_train"]
    labels = {  # ablations: the variants each compares, and what they change (the label in the table)
        "figure3": {**{v: n for n, v in size_variants.items()}, AUX_VARIANT: aux["train_images"], MAIN: n_train},
        "figure4": {AUX_VARIANT: "full", HALF_VARIANT: "half"},
        "appendix9": {AUX_VARIANT: "T_BHE", ANCE_VARIANT: "T_BHE + T_ANCE"},
        "appendix10": {AUX_VARIANT: "T_BHE + E", ANCE_VARIANT: "T_BHE + T_ANCE + E_ANCE"},
    }
    ablation_rows = {"figure3": PAPER_ROWS, "figure4": PAPER_ROWS, "appendix9": ["be"], "appendix10": ["joint_coop"]}
    notes = _notes(config, aux, multi, n_train)
    where = {"variant": MAIN, "collection": MAIN_DATASET, "protocol": main_protocol}
    tables = {
        "table1": TableSpec(_cells(methods=[*EMBEDDING_ROWS, *RERANK_ROWS], **main), main_protocol),
        "table8": TableSpec([K_METRICS.format(method=m, k=k, **where) for m in coop for k in rerank["ks"]],
                            main_protocol),
        "table9": TableSpec(_cells(methods=coop, **main) + [
            FUSION_METRICS.format(method=m, fusion=f, lam=lam, **where)
            for m in coop for f in SCORE_FUSIONS for lam in rerank["lambdas"]], main_protocol),
        # multilingual: models trained on all four languages (2) and on English only (7), tested per language
        "table2": TableSpec(_cells([MULTI_VARIANT], PAPER_ROWS, multi_collections, [aux_protocol]), aux_protocol,
                            notes["table2"]),
        "table7": TableSpec(_cells([AUX_VARIANT], PAPER_ROWS, multi_collections, [aux_protocol]), aux_protocol,
                            notes["aux"]),
        # the main models on the main test queries, alone and among distractors
        "table5": TableSpec(_cells([MAIN], ["be", "sep_coop", "joint_coop"], [MAIN_DATASET, distracted],
                                   [main_protocol]), main_protocol),
        # zero-shot in both directions, and the in-domain JOINT+COOP upper bound of each test domain
        "table6": TableSpec(
            [EVAL_METRICS.format(variant=v, method=m, collection=c, protocol=aux_protocol)
             for v, c in ((AUX_VARIANT, shift_dataset), (shift_variant, MAIN_DATASET)) for m in PAPER_ROWS]
            + [EVAL_METRICS.format(variant=v, method="joint_coop", collection=variants[v]["dataset"],
                                   protocol=aux_protocol) for v in (AUX_VARIANT, shift_variant)],
            aux_protocol, notes["aux"]),
        "table3": TableSpec([LATENCY_BENCHMARK]),
        "table4": TableSpec([LATENCY_BENCHMARK]),
        **{name: TableSpec(_cells(list(labels[name]), ablation_rows[name], [MAIN_DATASET], [aux_protocol]),
                           aux_protocol, notes.get(name, notes["aux"]), labels[name]) for name in labels},
    }
    claimed = ["table1", "table2", "table3", "table5", "table6", "table7", "table8", "table9", *labels]
    tables["claims"] = TableSpec([f"results/tables/rfrs_{name}.json" for name in claimed])
    searched = sorted({(MAIN, MAIN_DATASET), (MAIN, distracted), (AUX_VARIANT, shift_dataset),
                       (shift_variant, MAIN_DATASET), (shift_variant, shift_dataset)}
                      | {(v, c) for v in (AUX_VARIANT, MULTI_VARIANT) for c in multi_collections}
                      | {(v, MAIN_DATASET) for by_variant in labels.values() for v in by_variant})
    # subset<N>: the auxiliary variants index and cross-encode only the test split's first N images
    aux_images = EvalConfig.from_dict(config["evaluation"]).subset_images(aux_protocol)
    return Plan(
        variants=variants, collections=collections, embedding_rows=EMBEDDING_ROWS, rerank_rows=RERANK_ROWS,
        searched=searched, tables=tables,
        first_images={v: (None if v == MAIN else aux_images) for v in variants},
        sweep=Sweep(MAIN, MAIN_DATASET, main_protocol, coop, list(rerank["ks"]), list(SCORE_FUSIONS),
                    list(rerank["lambdas"])),
        # the BE under every protocol (the record of the spine), beside the tables; SEP+COOP under `subset` too,
        # which TGDT's Table I compares with (itr.papers.tgdt.plan.BASELINES)
        extra_outputs=_cells([MAIN], ["be"], [MAIN_DATASET], config["evaluation"]["protocols"])
        + [c for c in _cells([MAIN], ["sep_coop"], [MAIN_DATASET], ["subset"]) if c not in tables["table1"].inputs],
        latency_models={"be": MODEL.format(variant=MAIN, model="be"), "ce": MODEL.format(variant=MAIN, model="ce")},
    )


def _notes(config: dict, aux: dict, multi: dict, n_train: int) -> dict[str, str]:
    """Captions' notes on reduced budgets."""
    aux_note = (f"Auxiliary budget: trained on the first {aux['train_images']} training images "
                f"(auxiliary.train_images; the main models: all {n_train}) for the same epochs "
                f"(BE {config['be']['epochs']}, CE {config['ce']['epochs']}, JOINT {config['joint']['epochs']}).")
    english_steps = BEConfig(batch_size=config["be"]["batch_size"]).full_pass_steps(
        aux["train_images"] * config["shapes"]["captions_per_image"])
    return {
        "aux": aux_note,
        "table2": f"{aux_note} The four-language models take {multi['steps_per_epoch']} steps per epoch "
                  f"(multilingual.steps_per_epoch; one English epoch at this budget is {english_steps} steps of "
                  f"{config['be']['batch_size']} captions).",
        "figure3": f"Each point: the main recipe on the first N training images; {n_train} = the main models.",
    }
