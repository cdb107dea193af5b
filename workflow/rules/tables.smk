# Tables of Retrieve Fast, Rerank Smart by number: results/tables/rfrs_table<n>.{md,csv,tex,json}, and its
# ablations (Figures 3, 4, appendix Tables 9, 10): results/tables/rfrs_<name>.{md,csv,tex,json,png}
RERANK_CFG = config["rerank"]
MULTI_COLLECTIONS = [f"{MULTI_DATASET}_{lang}" for lang in MULTI["languages"]]
TABLE_PROTOCOLS = {"1": TABLE_PROTOCOL, "2": AUX_PROTOCOL, "5": TABLE_PROTOCOL, "6": AUX_PROTOCOL,
                   "7": AUX_PROTOCOL, "8": TABLE_PROTOCOL, "9": TABLE_PROTOCOL}
PAPER_ROWS = ["ce", "be", "sep_coop", "joint_coop"]  # the rows of the auxiliary tables and figures
TABLE_INPUTS = {
    "1": expand(EVAL_METRICS, method=METHODS, protocol=TABLE_PROTOCOL, **ON_MAIN),
    "8": expand(K_METRICS, method=COOP_METHODS, protocol=TABLE_PROTOCOL, k=RERANK_CFG["ks"], **ON_MAIN),
    "9": expand(EVAL_METRICS, method=COOP_METHODS, protocol=TABLE_PROTOCOL, **ON_MAIN)
    + expand(FUSION_METRICS, method=COOP_METHODS, protocol=TABLE_PROTOCOL, fusion=["add", "norm_add"],
             lam=RERANK_CFG["lambdas"], **ON_MAIN),
    # multilingual: models trained on all four languages (2) and on English only (7), tested per language
    "2": expand(EVAL_METRICS, variant=MULTI_VARIANT, method=PAPER_ROWS, collection=MULTI_COLLECTIONS,
                protocol=AUX_PROTOCOL),
    "7": expand(EVAL_METRICS, variant=AUX_VARIANT, method=PAPER_ROWS, collection=MULTI_COLLECTIONS,
                protocol=AUX_PROTOCOL),
    # the main models on the main test queries, alone and among distractors
    "5": expand(EVAL_METRICS, variant=MAIN, method=["be", "sep_coop", "joint_coop"], collection=[DATASET, DISTRACTED],
                protocol=TABLE_PROTOCOL),
    # zero-shot in both directions, and the in-domain JOINT+COOP upper bound of each test domain
    "6": [EVAL_METRICS.format(variant=v, method=m, collection=c, protocol=AUX_PROTOCOL)
          for v, c in ((AUX_VARIANT, SHIFT_DATASET), (SHIFT_VARIANT, DATASET)) for m in PAPER_ROWS]
    + [EVAL_METRICS.format(variant=v, method="joint_coop", collection=VARIANTS[v]["dataset"], protocol=AUX_PROTOCOL)
       for v in (AUX_VARIANT, SHIFT_VARIANT)],
}
# Ablations: the variants each one compares, what they change (the label in the table), and its rows.
N_TRAIN = config["shapes"]["n_train"]
ABLATION_LABELS = {
    "figure3": {**{v: n for n, v in SIZE_VARIANTS.items()}, AUX_VARIANT: AUX["train_images"], MAIN: N_TRAIN},
    "figure4": {AUX_VARIANT: "full", HALF_VARIANT: "half"},
    "appendix9": {AUX_VARIANT: "T_BHE", ANCE_VARIANT: "T_BHE + T_ANCE"},
    "appendix10": {AUX_VARIANT: "T_BHE + E", ANCE_VARIANT: "T_BHE + T_ANCE + E_ANCE"},
}
ABLATION_ROWS = {"figure3": PAPER_ROWS, "figure4": PAPER_ROWS, "appendix9": ["be"], "appendix10": ["joint_coop"]}
ABLATION_INPUTS = {name: expand(EVAL_METRICS, variant=list(ABLATION_LABELS[name]), method=ABLATION_ROWS[name],
                                collection=DATASET, protocol=AUX_PROTOCOL) for name in ABLATION_LABELS}
# (variant, collection) pairs the tables search: both embedding models get an index over each
SEARCHED = sorted({(MAIN, DATASET), (MAIN, DISTRACTED), (AUX_VARIANT, SHIFT_DATASET), (SHIFT_VARIANT, DATASET),
                   (SHIFT_VARIANT, SHIFT_DATASET)} | {(v, c) for v in (AUX_VARIANT, MULTI_VARIANT) for c in MULTI_COLLECTIONS}
                  | {(v, DATASET) for labels in ABLATION_LABELS.values() for v in labels})
AUX_BUDGET_NOTE = (f"Auxiliary budget: trained on the first {AUX['train_images']} training images "
                   f"(auxiliary.train_images; the main models: all {N_TRAIN}) for the same epochs "
                   f"(BE {config['be']['epochs']}, CE {config['ce']['epochs']}, JOINT {config['joint']['epochs']}).")
# steps of one English epoch at the auxiliary budget, as itr.training counts them (ceil(captions / batch))
ENGLISH_AUX_STEPS = -(-AUX["train_images"] * config["shapes"]["captions_per_image"] // config["be"]["batch_size"])
TABLE_NOTES = {  # reduced budgets, said in the caption
    "2": f"{AUX_BUDGET_NOTE} The four-language models take {MULTI['steps_per_epoch']} steps per epoch "
    f"(multilingual.steps_per_epoch; one English epoch at this budget is {ENGLISH_AUX_STEPS} steps of "
    f"{config['be']['batch_size']} captions).",
    "6": AUX_BUDGET_NOTE,
    "7": AUX_BUDGET_NOTE,
    "figure3": f"Each point: the main recipe on the first N training images; {N_TRAIN} = the main models.",
    "figure4": AUX_BUDGET_NOTE,
    "appendix9": AUX_BUDGET_NOTE,
    "appendix10": AUX_BUDGET_NOTE,
}


rule paper_table:
    input:
        lambda wc: TABLE_INPUTS[wc.n],
    output:
        table_outputs("rfrs_table{n}"),
    wildcard_constraints:
        n="|".join(TABLE_INPUTS),
    params:
        protocol=lambda wc: TABLE_PROTOCOLS[wc.n],
        note=lambda wc: f"--note {shlex.quote(TABLE_NOTES[wc.n])}" if wc.n in TABLE_NOTES else "",
    conda:
        ITR_ENV
    log:
        "logs/table/rfrs{n}.log",
    benchmark:
        "logs/benchmarks/table/rfrs{n}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "itr table rfrs{wildcards.n} --metrics {input} --protocol {params.protocol} {params.note}"
        " --out results/tables/rfrs_table{wildcards.n} > {log} 2>&1"


rule ablation_table:
    input:
        lambda wc: ABLATION_INPUTS[wc.name],
    output:
        table_outputs("rfrs_{name}"),
        png="results/tables/rfrs_{name}.png",
    wildcard_constraints:
        name="figure3|figure4",
    params:
        protocol=AUX_PROTOCOL,
        labels=lambda wc: shlex.quote(json.dumps(ABLATION_LABELS[wc.name])),
        note=lambda wc: shlex.quote(TABLE_NOTES[wc.name]),
    conda:
        ITR_ENV
    log:
        "logs/table/rfrs_{name}.log",
    benchmark:
        "logs/benchmarks/table/rfrs_{name}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "itr table {wildcards.name} --metrics {input} --protocol {params.protocol} --labels {params.labels}"
        " --note {params.note} --out results/tables/rfrs_{wildcards.name} > {log} 2>&1"


use rule ablation_table as appendix_table with:
    output:
        table_outputs("rfrs_{name}"),
    wildcard_constraints:
        name="appendix9|appendix10",


CLAIM_TABLES = [f"table{n}" for n in ("1", "2", "3", "5", "6", "7", "8", "9")] + list(ABLATION_LABELS)


rule claims_table:
    input:
        [f"results/tables/rfrs_{name}.json" for name in CLAIM_TABLES],
    output:
        table_outputs("rfrs_claims"),
    conda:
        ITR_ENV
    log:
        "logs/table/claims.log",
    benchmark:
        "logs/benchmarks/table/claims.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "itr table claims --metrics {input} --out results/tables/rfrs_claims > {log} 2>&1"


rule check_scores:
    input:
        expected="workflow/expected_scores.yaml",
        scored=EXPECTED_FILES,  # every metrics file the expectations name
    output:
        "results/checks/expected_scores.md",
    conda:
        ITR_ENV
    log:
        "logs/check_scores.log",
    benchmark:
        "logs/benchmarks/check_scores.tsv"
    threads: 1
    resources:
        mem_mb=500,
    shell:
        "itr check-scores --expected {input.expected} --out {output} > {log} 2>&1"
