"""What TGDT asks of the workflow: its trained variants, rows and the cells of every table, from params.yaml.

Rows (methods) of a dual transformer (itr.models.dual) trained with the CMC loss (``itr train cmc``):
* ``tgdt_g``: global similarity only, through the model's faiss index (TGDT-G);
* ``tgdt_l``: local similarity of every pair (TGDT-L);
* ``tgdt_gl``: two-stage, the top ``dual.k`` of the global search re-ranked by
  (1 - theta) S_g + theta S_l (TGDT-GL, eq. 8; the "mix" fusion with weight 1 - theta on S_g).

Protocol analogues (issue "TGDT"): Flickr30K 1K -> ``subset``, COCO 1K -> ``folds``, COCO 5K -> ``full``. The
ablations (Table VI, Figure 5) train on ``dual.ablation_train_images`` images for ``dual.ablation_epochs`` and are
measured on Table I's protocol. Nothing here imports torch or pandas: Snakemake parses it on every call.

Example:
    >>> p = plan(yaml.safe_load(open("params.yaml")))
    >>> p.tables["table1"].inputs[0]
    'results/metrics/tgdt/tgdt_g/shapes/subset.json'
"""
from __future__ import annotations

from itr.config import EvalConfig
from itr.layout import (EVAL_METRICS, FUSION_METRICS, INFERENCE_BENCHMARK, K_METRICS, RERANK_SCORES, main_dataset,
                         on_data, on_dataset, table_stem)
from itr.papers import Plan, Sweep, TableSpec, Timing
from itr.papers.owners import trained_by

MODEL = "cmc"  # itr train cmc: the dual transformer (params section dual)
EMBEDDING_ROWS = {"tgdt_g": MODEL}
RERANK_ROWS = {"tgdt_l": (MODEL, None), "tgdt_gl": (MODEL, MODEL)}
ROWS = ["tgdt_g", "tgdt_l", "tgdt_gl"]
MAIN = "tgdt"
ABLATION = "tgdt_abl"  # models/tgdt_abl/<name>/cmc.pt: one directory for dvc.yaml whatever the ablations
# Table VI: what each trained variant changes (loss_on: the similarities trained; intra: the intra-modal term)
ABLATIONS = {
    "global_none": {"loss_on": "global", "intra": "none"},  # Baseline-G: G alone, the plain hinge
    "local_none": {"loss_on": "local", "intra": "none"},  # Baseline-L
    "global_paper": {"loss_on": "global"},  # w/o JGLR: trained separately, with CMC
    "local_paper": {"loss_on": "local"},
    "both_none": {"intra": "none"},  # w/o CMC: trained jointly, the plain hinge
    "both_paper": {},  # TGDT at the ablation budget
    "released": {"detach_stage1": True},  # as released: stage 1 detached, so only stage 2 learns
}
TABLE6_ROWS = {  # row label -> (variant name in ABLATIONS, method)
    "Baseline-G": ("global_none", "tgdt_g"), "TGDT-G w/o JGLR": ("global_paper", "tgdt_g"),
    "TGDT-G w/o CMC": ("both_none", "tgdt_g"), "TGDT-G": ("both_paper", "tgdt_g"),
    "TGDT-G as released": ("released", "tgdt_g"),
    "Baseline-L": ("local_none", "tgdt_l"), "TGDT-L w/o JGLR": ("local_paper", "tgdt_l"),
    "TGDT-L w/o CMC": ("both_none", "tgdt_l"), "TGDT-L": ("both_paper", "tgdt_l"),
    "TGDT-L as released": ("released", "tgdt_l"),
}
# The protocol analogue of each results table (issue "TGDT"), and the baselines of this project beside TGDT.
PROTOCOLS = {"table1": "subset", "table2": "folds", "table3": "full"}
BASELINES = ("be", "sep_coop")  # Retrieve Fast, Rerank Smart's rows (itr.papers.owners: the variant that trains each)
# Tables IV-V, Figures 1 and 7: whole evaluations timed in one run (benchmarks/inference_time.py) on Table I's
# protocol; the cross-encoder (all pairs) plays VinVL, the paper's vision-language pre-trained model.
TIMED = (*ROWS, *BASELINES, "ce")
TIMING_TABLES = ("table4", "figure1", "figure7")


def lam_of(theta: float) -> float:
    """The mix fusion's weight of S_g for a theta of eq. 8 (S_gl = (1 - theta) S_g + theta S_l)."""
    return round(1.0 - theta, 6)


def slack_variant(slack: float) -> str:
    return f"{ABLATION}/slack{slack}"


def cell(variant: str, method: str, protocol: str, config: dict) -> str:
    """The metrics file of a method of a variant on the configured dataset."""
    return EVAL_METRICS.format(variant=variant, method=method, collection=main_dataset(config), protocol=protocol)


def plan(config: dict) -> Plan:
    """Every variant and table cell of the paper under ``config`` (a validated params mapping)."""
    tgdt, rerank = config["dual"], config["rerank"]
    data, main = main_dataset(config), on_dataset(MAIN, config)
    budget = {"train_images": tgdt["ablation_train_images"], "epochs": tgdt["ablation_epochs"]}
    ablations = {on_dataset(f"{ABLATION}/{name}", config): {**budget, **change} for name, change in ABLATIONS.items()}
    main_slack = tgdt["slack"]
    slacks = {s: on_dataset(slack_variant(s) if s != main_slack else f"{ABLATION}/both_paper", config)
              for s in tgdt["slack_sweep"]}
    variants = {main: {"dataset": data, "overrides": {}, "models": [MODEL]},
                **{v: {"dataset": data, "overrides": o, "models": [MODEL]} for v, o in ablations.items()},
                **{v: {"dataset": data, "overrides": {**budget, "slack": s}, "models": [MODEL]}
                   for s, v in slacks.items() if v not in ablations}}
    ablation_protocol = PROTOCOLS["table1"]
    ablation_images = EvalConfig.from_dict(config["evaluation"]).subset_images(ablation_protocol)
    lam = lam_of(tgdt["theta"])
    settings = {"k": tgdt["k"], "ks": [tgdt["k"]], "lambdas": [lam], "batch_size": rerank["batch_size"],
                "precision": tgdt["precision"], "protocol": ablation_protocol}
    sweep = Sweep(main, data, ablation_protocol, ["tgdt_gl"], list(tgdt["k_sweep"]), ["mix"],
                  [lam_of(t) for t in tgdt["theta_sweep"]])
    where = {"variant": main, "method": "tgdt_gl", "collection": data, "protocol": ablation_protocol}
    tables = {
        name: TableSpec([cell(main, m, protocol, config) for m in ROWS]
                        + [cell(on_dataset(v, config), m, protocol, config) for m, v in trained_by(BASELINES).items()
                           if protocol == PROTOCOLS["table1"] or m == "be"],
                        protocol, _note(tgdt))
        for name, protocol in PROTOCOLS.items()
    }
    tables["table6"] = TableSpec([cell(on_dataset(f"{ABLATION}/{v}", config), m, ablation_protocol, config)
                                  for v, m in TABLE6_ROWS.values()],
                                 ablation_protocol, _ablation_note(tgdt), {"rows": list(TABLE6_ROWS)})
    tables["figure5"] = TableSpec([cell(v, m, ablation_protocol, config) for v in slacks.values()
                                   for m in ("tgdt_g", "tgdt_l")],
                                  ablation_protocol, _ablation_note(tgdt),
                                  {"slack": {v: s for s, v in slacks.items()}})
    tables["figure6"] = TableSpec(
        [K_METRICS.format(k=k, **where) for k in sweep.ks]
        + [FUSION_METRICS.format(fusion="mix", lam=lam_of(t), **where) for t in tgdt["theta_sweep"]],
        ablation_protocol, f"theta = {tgdt['theta']} in the K sweep, K = {tgdt['k']} in the theta sweep.",
        {"theta": {str(lam_of(t)): t for t in tgdt["theta_sweep"]}})
    tables["evaluator"] = TableSpec([cell(main, "tgdt_gl", p, config) for p in PROTOCOLS.values()]
                                    + [RERANK_SCORES.format(variant=main, method="tgdt_gl", collection=data,
                                                            protocol=p) for p in PROTOCOLS.values()], None, _note(tgdt))
    timing = Timing(PROTOCOLS["table1"], {m: on_dataset(v, config) for m, v in trained_by(TIMED).items()})
    benchmark = on_data(INFERENCE_BENCHMARK, config).format(paper="tgdt")
    for name in TIMING_TABLES:
        tables[name] = TableSpec([benchmark], timing.protocol, _timing_note(tgdt))
    tables["table5"] = TableSpec([cell(main, m, p, config) for p in (PROTOCOLS["table2"], PROTOCOLS["table3"])
                                  for m in ROWS]
                                 + [benchmark], None, _note(tgdt))
    claimed = ["table1", "table2", "table3", "table4", "table6", "figure5", "figure6"]
    tables["claims"] = TableSpec([f"{table_stem('tgdt', name, config)}.json" for name in claimed],
                                 labels={"k": tgdt["k"], "theta": tgdt["theta"], "slack": main_slack})
    return Plan(
        variants=variants, collections={data: {"dataset": data, "distractors": []}},
        embedding_rows=EMBEDDING_ROWS, rerank_rows=RERANK_ROWS,
        searched=sorted((v, data) for v in variants), tables=tables,
        first_images={v: (None if v == main else ablation_images) for v in variants},
        sweep=sweep, rerank_settings={m: settings for m in RERANK_ROWS},
        row_fusions={"tgdt_gl": {"fusion": "mix", "lam": lam}}, timing=timing,
        galleries={"gl": ("tgdt_gl", "TGDT-G", "TGDT-GL")},
    )


def _note(tgdt: dict) -> str:
    return (f"TGDT-GL: the global top K = {tgdt['k']} re-ranked by (1 - theta) S_g + theta S_l, theta = {tgdt['theta']} "
            "(the released code: no theta, the plain sum S_g + S_l, and K = 50 for i2t).")


def _timing_note(tgdt: dict) -> str:
    return (f"Each method evaluated whole in one run of benchmarks/inference_time.py: model loading, encoding, search "
            f"and pair scoring, with the metrics of that run; TGDT-GL reranks the global top K = {tgdt['k']}.")


def _ablation_note(tgdt: dict) -> str:
    return (f"Ablation budget: trained on the first {tgdt['ablation_train_images']} training images for "
            f"{tgdt['ablation_epochs']} epoch(s) (dual.ablation_train_images, dual.ablation_epochs).")
