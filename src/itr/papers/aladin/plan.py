"""What ALADIN asks of the workflow: its trained variants, rows and the cells of every table, from params.yaml.

Every variant is a disentangled model (itr.models.disentangled, ``itr train disentangled``) that fine-tunes a
trained checkpoint, as the paper fine-tunes VinVL's retrieval model: our analogue of VinVL is Retrieve Fast, Rerank
Smart's JOINT model (single-stream, trained for retrieval). The paper's training schedule (§3.4) is a chain:

    JOINT -> A/ft (alignment hinge, backbone fine-tuned) -> T, D (matching head, frozen) and A/ft + D/ft (both heads)
    JOINT -> T/ft (matching-head hinge, backbone fine-tuned), A (nothing trained: the alignment head on JOINT)

plus one ablation, A/ft without object tags. Rows (methods) of a variant's model:

* ``aladin_align``: the alignment head over every pair (late interaction: each caption and image encoded once);
* ``aladin_match``: the matching head's embeddings through the faiss index;
* ``aladin_match_align``: the matching head's top ``rerank.k``, re-ranked by the alignment head (the two-stage use
  the paper suggests in §4.4 but does not ship).

Protocol analogues (issue "ALADIN"): COCO 1K (the single first-1000 subset, Oscar's ``test_img_keys_1k``) ->
``subset``; COCO 5K -> ``full``. Nothing here imports torch or pandas: Snakemake parses it on every call.

Example:
    >>> p = plan(yaml.safe_load(open("params.yaml")))
    >>> p.tables["table2"].inputs[0]
    'results/metrics/aladin_var/t/aladin_match/shapes/subset.json'
"""
from __future__ import annotations

from itr.layout import EVAL_METRICS, INFERENCE_BENCHMARK, MODEL, main_dataset, on_data, on_dataset, table_stem
from itr.papers import Plan, TableSpec, Timing
from itr.papers.owners import owner, trained_by

METHOD = "disentangled"  # itr train disentangled (params section disentangled)
EMBEDDING_ROWS = {"aladin_match": METHOD}
RERANK_ROWS = {"aladin_align": (METHOD, None), "aladin_match_align": (METHOD, METHOD)}
MAIN = "aladin"  # A/ft + D/ft, the paper's best model
VARIANTS = "aladin_var"  # models/aladin_var/<name>/disentangled.pt: one directory for dvc.yaml
INIT = "joint_coop"  # every chain starts from the single-stream checkpoint that re-ranks this row (JOINT)
ALIGNMENT = {"alignment": 1.0, "triplet": 0.0, "distill": 0.0}
TRIPLET = {"alignment": 0.0, "triplet": 1.0, "distill": 0.0}
DISTILL = {"alignment": 0.0, "triplet": 0.0, "distill": 1.0}
# name -> (the variant it starts from: None = JOINT, the overrides of the disentangled section)
CHAIN = {
    "a": (None, {"epochs": 0, "freeze_backbone": True, "loss_weights": ALIGNMENT}),
    "a_ft": (None, {"loss_weights": ALIGNMENT}),
    "a_ft_notags": (None, {"loss_weights": ALIGNMENT, "object_tags": False}),
    "t": ("a_ft", {"loss_weights": TRIPLET, "freeze_backbone": True}),
    "d": ("a_ft", {"loss_weights": DISTILL, "freeze_backbone": True}),
    "t_ft": (None, {"loss_weights": TRIPLET}),
}
LABELS = {"a": "ALADIN A", "a_ft": "ALADIN A/ft.", "a_ft_notags": "ALADIN A/ft. (no object tags)", "t": "ALADIN T",
          "d": "ALADIN D", "t_ft": "ALADIN T/ft.", MAIN: "ALADIN A/ft. + D/ft."}
PROTOCOLS = {"1K": "subset", "5K": "full"}
TABLE1 = ["a", "a_ft", MAIN, "a_ft_notags"]  # the alignment head's rows
TABLE2 = ["t", "t_ft", "d", MAIN]  # the matching head's rows
# Table 1's entangled baselines (cross-attention over each pair: Retrieve Fast, Rerank Smart's rows) and Table 2's
# disentangled ones (an embedding each: BE, TGDT-G), as (variant, method); their cells are those papers'.
ENTANGLED = ("sep_coop", "joint_coop")  # (itr.papers.owners: the variant that trains each)
DISENTANGLED = ("be", "tgdt_g")
# Baselines measured on the 5K analogue too: embeddings are cheap there; cross-encoding shortlists or every pair of
# 1000 images and 5000 captions is not (120k to 5M pairs). Table 1's CE row is the benchmark run's (Figure 2).
EMBEDDING_ONLY = {"be", "tgdt_g"}
# Figure 2 and the comparison table: every method of every registered paper, timed whole in one run
# (benchmarks/inference_time.py) on the 1K analogue, in this order; each uses the models of the variant that
# trains it (itr.papers.owners), ALADIN's own those of OWN_TIMED. CUSA's row is its student (a) + CUSA over the
# detector's regions (the benchmark reads one feature store).
TIMED = ("be", "ce", "sep_coop", "joint_coop", "tgdt_g", "tgdt_l", "tgdt_gl", "aladin_align", "aladin_match",
         "aladin_match_align", "cusa_dual")
OWN_TIMED = {"aladin_align": f"{VARIANTS}/a_ft", "aladin_match": MAIN, "aladin_match_align": MAIN}


def variant_name(name: str) -> str:
    return MAIN if name == MAIN else f"{VARIANTS}/{name}"


def cell(variant: str, method: str, protocol: str, config: dict) -> str:
    """The metrics file of a method of a variant on the configured dataset."""
    return EVAL_METRICS.format(variant=on_dataset(variant, config), method=method, collection=main_dataset(config),
                               protocol=protocol)


def plan(config: dict) -> Plan:
    """Every variant and table cell of the paper under ``config`` (a validated params mapping)."""
    data = main_dataset(config)

    def model_of(name):
        variant, model = owner(INIT) if name is None else (variant_name(name), METHOD)
        return MODEL.format(variant=on_dataset(variant, config), model=model)

    chain = {**CHAIN, MAIN: ("a_ft", {})}  # the main model: the section's own keys, from the A/ft warm-up
    variants = {on_dataset(variant_name(n), config): {"dataset": data, "overrides": o, "models": [METHOD],
                                                      "init": model_of(start)}
                for n, (start, o) in chain.items()}
    tables = {}
    timed = {m: OWN_TIMED[m] if m in OWN_TIMED else owner(m)[0] for m in TIMED}
    timing = Timing(PROTOCOLS["1K"], {m: on_dataset(v, config) for m, v in timed.items()})
    benchmark = on_data(INFERENCE_BENCHMARK, config).format(paper="aladin")
    for target, names, row, baselines in (("table1", TABLE1, "aladin_align", ENTANGLED),
                                          ("table2", TABLE2, "aladin_match", DISENTANGLED)):
        inputs = [cell(variant_name(n), row, p, config) for p in PROTOCOLS.values() for n in names]
        trained = trained_by(baselines)
        inputs += [cell(v, m, PROTOCOLS["1K"], config) for m, v in trained.items()]
        inputs += [cell(v, m, PROTOCOLS["5K"], config) for m, v in trained.items() if m in EMBEDDING_ONLY]
        rows = {on_dataset(variant_name(n), config): LABELS[n] for n in names}
        tables[target] = TableSpec(inputs + ([benchmark] if target == "table1" else []), None, _note(config),
                                   {"rows": rows})
    tables["figure2"] = TableSpec([benchmark], timing.protocol, _timing_note(config))
    tables["comparison_efficiency"] = TableSpec([benchmark], timing.protocol, _timing_note(config))
    claimed = ["table1", "table2", "figure2"]
    tables["claims"] = TableSpec([f"{table_stem('aladin', name, config)}.json" for name in claimed])
    return Plan(
        variants=variants, collections={data: {"dataset": data, "distractors": []}},
        embedding_rows=EMBEDDING_ROWS, rerank_rows=RERANK_ROWS,
        searched=sorted((on_dataset(variant_name(n), config), data) for n in TABLE2), tables=tables,  # matching rows
        first_images={v: None for v in variants}, timing=timing,
        galleries={"match_align": ("aladin_match_align", "matching head", "+ alignment head re-ranking")},
    )


def _note(config: dict) -> str:
    d = config["disentangled"]
    return (f"Every ALADIN row but A fine-tunes Retrieve Fast, Rerank Smart's JOINT model (our VinVL) for "
            f"{d['epochs']} epoch(s) per stage at batch {d['batch_size']}; 1K = the first "
            f"{config['evaluation']['subset_size']} test images (a single subset, as the release's test_img_keys_1k; "
            "the paper's text says a 5-fold mean), 5K = the whole test split.")


def _timing_note(config: dict) -> str:
    return (f"The matching head's shortlist re-ranked by alignment is its top {config['rerank']['k']} (rerank.k); "
            f"TGDT-GL re-ranks its global top {config['dual']['k']} (dual.k).")
