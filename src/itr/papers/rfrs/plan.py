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

from itr.config import BEConfig, ConfigError, EvalConfig
from itr.data.sources import has_training_split
from itr.layout import (EVAL_METRICS, K_METRICS, FUSION_METRICS, LATENCY_BENCHMARK, MAIN_DATASET, MODEL, datasets,
                         main_dataset, on_data, on_dataset, table_stem)
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
# Tables of captions in four languages: on a real dataset, Multi30k's (Table 2: the main models, trained on every
# language; Table 7: models of the main recipe trained on English alone, variant <dataset>/rfrs_en).
MULTILINGUAL = ("table2", "table7")
ENGLISH_VARIANT = "rfrs_en"
# Tables 5 and 6 on a real dataset (params shift.real_test_sets): the paper's test sets, one collection of them all
TRANSFER = ("table5", "table6")


def _cells(variants, methods, collections, protocols) -> list[str]:
    """Metrics files of every combination (Snakemake's expand, in its order)."""
    return [EVAL_METRICS.format(variant=v, method=m, collection=c, protocol=p)
            for v in variants for m in methods for c in collections for p in protocols]


def plan(config: dict) -> Plan:
    """Every variant, collection and table cell of the paper under ``config`` (a validated params mapping)."""
    aux, ablations, shift, multi, rerank = (config[k] for k in ("auxiliary", "ablations", "shift", "multilingual",
                                                                  "rerank"))
    data = main_dataset(config)
    generated = data == MAIN_DATASET  # ShapeCaptions: its generated companions are planned too
    main, aux_variant, half, ance = (on_dataset(v, config) for v in (MAIN, AUX_VARIANT, HALF_VARIANT, ANCE_VARIANT))
    names = list(datasets(config))
    shift_dataset, multi_dataset = names[1], names[2]
    shift_variant, multi_variant = on_dataset(f"rfrs_{shift['domain']}", config), on_dataset(MULTI_VARIANT, config)
    budget = {"train_images": aux["train_images"]}
    # Figure 3's smaller training sets, one directory (models/rfrs_aux_sizes/n<N>/) whatever the sizes, for dvc.yaml
    size_variants = {n: on_dataset(f"rfrs_aux_sizes/n{n}", config) for n in ablations["sample_sizes"]}
    variants = {
        main: {"dataset": data, "overrides": {}},
        aux_variant: {"dataset": data, "overrides": budget},
        half: {"dataset": data, "overrides": budget, "text": {"layers": "every_other"}},  # Figure 4
        # appendix Tables 9-10: BE with T_BHE + T_ANCE, JOINT with T_BHE + T_ANCE + E_ANCE
        ance: {"dataset": data, "models": ["be", "joint"],
               "overrides": {**budget, "ance_triplet": True, "ance_p": ablations["ance_p"]}},
        **{v: {"dataset": data, "overrides": {"train_images": n}} for n, v in size_variants.items()},
    }
    # A collection is what the test queries search: a dataset's test split, optionally grown with distractors
    # (other splits' images and captions, never queries; Table 5), or one caption language (Tables 2 and 7).
    collections = {data: {"dataset": data, "distractors": []}}
    distracted = f"{MAIN_DATASET}_distractors"
    multi_collections = [f"{multi_dataset}_{lang}" for lang in multi["languages"]]
    if generated:
        variants |= {
            shift_variant: {"dataset": shift_dataset, "overrides": budget},  # Table 6
            multi_variant: {"dataset": multi_dataset,  # Table 2: the English steps over all languages' captions
                            "overrides": {**budget, "steps_per_epoch": multi["steps_per_epoch"]}},
        }
        collections |= {
            shift_dataset: {"dataset": shift_dataset, "distractors": []},
            distracted: {"dataset": MAIN_DATASET, "distractors": shift["distractors"]},
            **{c: {"dataset": multi_dataset, "distractors": [], "lang": lang}
               for c, lang in zip(multi_collections, multi["languages"])},
        }
    for spec in variants.values():
        spec.setdefault("models", MODELS)
    main_protocol, aux_protocol = rerank["protocol"], aux["protocol"]
    on_main = {"variants": [main], "collections": [data], "protocols": [main_protocol]}
    coop = [m for m, (_, first) in RERANK_ROWS.items() if first]
    # a real dataset's training-set size is not a param: its main models are then no point of Figure 3
    n_train = config["shapes"]["n_train"] if generated else None
    labels = {  # ablations: the variants each compares, and what they change (the label in the table)
        "figure3": {**{v: n for n, v in size_variants.items()}, aux_variant: aux["train_images"],
                    **({main: n_train} if generated else {})},
        "figure4": {aux_variant: "full", half: "half"},
        "appendix9": {aux_variant: "T_BHE", ance: "T_BHE + T_ANCE"},
        "appendix10": {aux_variant: "T_BHE + E", ance: "T_BHE + T_ANCE + E_ANCE"},
    }
    ablation_rows = {"figure3": PAPER_ROWS, "figure4": PAPER_ROWS, "appendix9": ["be"], "appendix10": ["joint_coop"]}
    notes = _notes(config, aux, multi, n_train)
    where = {"variant": main, "collection": data, "protocol": main_protocol}
    tables = {
        "table1": TableSpec(_cells(methods=[*EMBEDDING_ROWS, *RERANK_ROWS], **on_main), main_protocol),
        "table8": TableSpec([K_METRICS.format(method=m, k=k, **where) for m in coop for k in rerank["ks"]],
                            main_protocol),
        "table9": TableSpec(_cells(methods=coop, **on_main) + [
            FUSION_METRICS.format(method=m, fusion=f, lam=lam, **where)
            for m in coop for f in SCORE_FUSIONS for lam in rerank["lambdas"]], main_protocol),
    }
    searched = {(main, data)} | {(v, data) for by_variant in labels.values() for v in by_variant}
    refused = {}  # table -> why it cannot be built on this real dataset
    if generated:
        tables |= {
            # multilingual: models trained on all four languages (2) and on English only (7), tested per language
            "table2": TableSpec(_cells([multi_variant], PAPER_ROWS, multi_collections, [aux_protocol]),
                                aux_protocol, notes["table2"]),
            "table7": TableSpec(_cells([aux_variant], PAPER_ROWS, multi_collections, [aux_protocol]), aux_protocol,
                                notes["aux"]),
            # the main models on the main test queries, alone and among distractors
            "table5": TableSpec(_cells([main], ["be", "sep_coop", "joint_coop"], [MAIN_DATASET, distracted],
                                       [main_protocol]), main_protocol),
            # zero-shot in both directions, and the in-domain JOINT+COOP upper bound of each test domain
            "table6": TableSpec(
                [EVAL_METRICS.format(variant=v, method=m, collection=c, protocol=aux_protocol)
                 for v, c in ((aux_variant, shift_dataset), (shift_variant, MAIN_DATASET)) for m in PAPER_ROWS]
                + [EVAL_METRICS.format(variant=v, method="joint_coop", collection=variants[v]["dataset"],
                                       protocol=aux_protocol) for v in (aux_variant, shift_variant)],
                aux_protocol, notes["aux"]),
        }
        searched |= ({(main, distracted), (aux_variant, shift_dataset), (shift_variant, MAIN_DATASET),
                      (shift_variant, shift_dataset)}
                     | {(v, c) for v in (aux_variant, multi_variant) for c in multi_collections})
        why, main_recipe = "", set()
    else:
        more_variants, more_collections, more_tables, more_searched, why = _transfer(config, main, main_protocol)
        if config["datasets"][data]["format"] == "multi30k":
            *extras, refused = _multilingual(config, main, main_protocol)
            for more, extra in zip((more_variants, more_collections, more_tables, more_searched), extras):
                more |= extra
        variants |= more_variants
        main_recipe = set(more_variants)
        collections |= more_collections
        tables |= more_tables
        searched |= more_searched
    tables |= {
        "table3": TableSpec([on_data(LATENCY_BENCHMARK, config)]),
        "table4": TableSpec([on_data(LATENCY_BENCHMARK, config)]),
        **{name: TableSpec(_cells(list(labels[name]), ablation_rows[name], [data], [aux_protocol]),
                           aux_protocol, notes.get(name, notes["aux"]), labels[name]) for name in labels},
    }
    claimed = [name for name in ("table1", "table2", "table3", "table5", "table6", "table7", "table8", "table9",
                                 *labels) if name in tables]
    tables["claims"] = TableSpec([f"{table_stem('rfrs', name, config)}.json" for name in claimed])
    # subset<N>: the auxiliary variants index and cross-encode only the test split's first N images
    aux_images = EvalConfig.from_dict(config["evaluation"]).subset_images(aux_protocol)
    return Plan(
        variants=variants, collections=collections, embedding_rows=EMBEDDING_ROWS, rerank_rows=RERANK_ROWS,
        searched=sorted(searched), tables=tables,
        # the main models and the real data's other main-recipe ones (Table 6's in-domain, Table 7's English) search
        # whole test splits
        first_images={v: (None if v == main or v in main_recipe else aux_images) for v in variants},
        sweep=Sweep(main, data, main_protocol, coop, list(rerank["ks"]), list(SCORE_FUSIONS), list(rerank["lambdas"])),
        # the BE under every protocol (the record of the spine), beside the tables; SEP+COOP under `subset` too,
        # which TGDT's Table I compares with (itr.papers.tgdt.plan.BASELINES)
        extra_outputs=_cells([main], ["be"], [data], config["evaluation"]["protocols"])
        + [c for c in _cells([main], ["sep_coop"], [data], ["subset"]) if c not in tables["table1"].inputs],
        latency_models={"be": MODEL.format(variant=main, model="be"), "ce": MODEL.format(variant=main, model="ce")},
        galleries={"coop": ("sep_coop", "BE", "SEP+COOP")},
        unavailable={} if generated else {
            **{t: refused.get(t, f"it tests captions in four languages, which {data} does not have; set dataset: "
                                 "multi30k or shapes") for t in MULTILINGUAL if t not in tables},
            **{t: why for t in TRANSFER if why}},
    )


def _multilingual(config: dict, main: str, main_protocol: str) -> tuple[dict, dict, dict, set, dict]:
    """Tables 2 and 7 on Multi30k, one caption language at a time: the main models (trained on every language, as the
    paper's Table 2) and models of the main recipe trained on English alone (Table 7). Returns the variants,
    collections and tables to add, the (variant, collection) pairs searched, and why a table is refused (Table 2
    when a main model's section trains on some languages only)."""
    data = config["dataset"]
    languages = {f"{data}_{lang}": lang for lang in config["multilingual"]["languages"]}
    english = on_dataset(ENGLISH_VARIANT, config)
    narrowed = {m: config[m]["train_languages"] for m in MODELS if config[m]["train_languages"]}
    refused = {"table2": f"its main models train on every caption language, but params set train_languages {narrowed}: "
                         "leave them [] (Table 7's English-only models set [en] themselves)"} if narrowed else {}
    tables = {t: TableSpec(_cells([v], PAPER_ROWS, list(languages), [main_protocol]), main_protocol)
              for t, v in (("table2", main), ("table7", english)) if t not in refused}
    return ({english: {"dataset": data, "overrides": {"train_languages": ["en"]}, "models": MODELS}},
            {c: {"dataset": data, "distractors": [], "lang": lang} for c, lang in languages.items()}, tables,
            {(v, c) for v in (main, english) for c in languages}, refused)


def _transfer(config: dict, main: str, main_protocol: str) -> tuple[dict, dict, dict, set, str]:
    """Tables 5 and 6 on a real dataset, as the paper builds them from its test sets (params shift.real_test_sets):
    Table 5 searches the configured dataset's test queries among every other set's test split (the paper's 20k
    collection: MSCOCO 5k, Flickr30k 1k, CC 14k); Table 6 tests the configured dataset's models on each other set
    (zero-shot), beside JOINT+COOP trained and tested on each set that has a training split (the upper bound). The CE
    row (every pair) is left out on a set without a training split, as the paper's Table 6 leaves it out on CC.

    Returns the variants, collections and tables to add, the (variant, collection) pairs searched, and why the tables
    cannot be built under this config ("" when they can)."""
    data, sets, entries = config["dataset"], config["shift"]["real_test_sets"], config["datasets"]
    unknown = [s for s in sets if s not in entries]
    if unknown:
        raise ConfigError(f"params shift.real_test_sets names {unknown}, which params datasets does not declare; "
                          f"name datasets among {sorted(entries)}")
    if data not in sets:
        return {}, {}, {}, set(), f"it tests on shift.real_test_sets {sets}; {data} is not one of them"
    others = [s for s in sets if s != data]
    distracted = f"{data}_distractors"
    collections = {s: {"dataset": s, "distractors": []} for s in others}
    collections[distracted] = {"dataset": data, "distractors": [{"dataset": s, "split": "test"} for s in others]}
    in_domain = {s: on_dataset(MAIN, {**config, "dataset": s}) for s in sets if has_training_split(entries[s])}
    variants = {v: {"dataset": s, "overrides": {}, "models": ["joint"]} for s, v in in_domain.items() if s != data}
    tables = {
        "table5": TableSpec(_cells([main], ["be", "sep_coop", "joint_coop"], [data, distracted], [main_protocol]),
                            main_protocol),
        "table6": TableSpec([c for s in others for c in _cells(
                                [main], [m for m in PAPER_ROWS if m != "ce" or has_training_split(entries[s])], [s],
                                [main_protocol])]
                            + [c for s, v in in_domain.items()
                               for c in _cells([v], ["joint_coop"], [s], [main_protocol])], main_protocol),
    }
    searched = {(main, c) for c in collections} | {(v, s) for s, v in in_domain.items()}
    return variants, collections, tables, searched, ""


def _notes(config: dict, aux: dict, multi: dict, n_train: int | None) -> dict[str, str]:
    """Captions' notes on reduced budgets (``n_train``: the main models' training images, None when not a param)."""
    every = f"all {n_train}" if n_train else "every training image"
    aux_note = (f"Auxiliary budget: trained on the first {aux['train_images']} training images "
                f"(auxiliary.train_images; the main models: {every}) for the same epochs "
                f"(BE {config['be']['epochs']}, CE {config['ce']['epochs']}, JOINT {config['joint']['epochs']}).")
    english_steps = BEConfig(batch_size=config["be"]["batch_size"]).full_pass_steps(
        aux["train_images"] * config["shapes"]["captions_per_image"])
    return {
        "aux": aux_note,
        "table2": f"{aux_note} The four-language models take {multi['steps_per_epoch']} steps per epoch "
                  f"(multilingual.steps_per_epoch; one English epoch at this budget is {english_steps} steps of "
                  f"{config['be']['batch_size']} captions).",
        "figure3": "Each point: the main recipe on the first N training images"
                   + (f"; {n_train} = the main models." if n_train else "."),
    }
