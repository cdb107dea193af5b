# Tables of Retrieve Fast, Rerank Smart by number: results/tables/rfrs_table<n>.{md,csv,tex,json}
RERANK_CFG = config["rerank"]
SHIFT_PROTOCOL = SHIFT["protocol"]
MULTI_PROTOCOL = MULTI["protocol"]
MULTI_COLLECTIONS = [f"{MULTI_DATASET}_{lang}" for lang in MULTI["languages"]]
TABLE_PROTOCOLS = {"1": TABLE_PROTOCOL, "2": MULTI_PROTOCOL, "5": TABLE_PROTOCOL, "6": SHIFT_PROTOCOL,
                   "7": MULTI_PROTOCOL, "8": TABLE_PROTOCOL, "9": TABLE_PROTOCOL}
MULTI_METHODS = ["ce", "be", "sep_coop", "joint_coop"]
TABLE_INPUTS = {
    "1": expand(EVAL_METRICS, method=METHODS, protocol=TABLE_PROTOCOL, **ON_MAIN),
    "8": expand(K_METRICS, method=COOP_METHODS, protocol=TABLE_PROTOCOL, k=RERANK_CFG["ks"], **ON_MAIN),
    "9": expand(EVAL_METRICS, method=COOP_METHODS, protocol=TABLE_PROTOCOL, **ON_MAIN)
    + expand(FUSION_METRICS, method=COOP_METHODS, protocol=TABLE_PROTOCOL, fusion=["add", "norm_add"],
             lam=RERANK_CFG["lambdas"], **ON_MAIN),
    # multilingual: models trained on all four languages (2) and on English only (7), tested per language
    "2": expand(EVAL_METRICS, variant=MULTI_VARIANT, method=MULTI_METHODS, collection=MULTI_COLLECTIONS,
                protocol=MULTI_PROTOCOL),
    "7": expand(EVAL_METRICS, variant=MAIN, method=MULTI_METHODS, collection=MULTI_COLLECTIONS, protocol=MULTI_PROTOCOL),
    # the main models on the main test queries, alone and among distractors
    "5": expand(EVAL_METRICS, variant=MAIN, method=["be", "sep_coop", "joint_coop"], collection=[DATASET, DISTRACTED],
                protocol=TABLE_PROTOCOL),
    # zero-shot in both directions, and the in-domain JOINT+COOP upper bound of each test domain
    "6": [EVAL_METRICS.format(variant=v, method=m, collection=c, protocol=SHIFT_PROTOCOL)
          for v, c in ((MAIN, SHIFT_DATASET), (SHIFT_VARIANT, DATASET)) for m in ["ce", "be", "sep_coop", "joint_coop"]]
    + [EVAL_METRICS.format(variant=v, method="joint_coop", collection=VARIANTS[v]["dataset"], protocol=SHIFT_PROTOCOL)
       for v in (MAIN, SHIFT_VARIANT)],
}
# (variant, collection) pairs the tables search: both embedding models get an index over each
SEARCHED = [(MAIN, DATASET), (MAIN, DISTRACTED), (MAIN, SHIFT_DATASET), (SHIFT_VARIANT, DATASET),
            (SHIFT_VARIANT, SHIFT_DATASET)] + [(v, c) for v in (MAIN, MULTI_VARIANT) for c in MULTI_COLLECTIONS]
TABLE_NOTES = {  # reduced budgets, said in the caption
    "2": f"Models trained on all four languages: {MULTI['epochs']} epoch(s) of {MULTI['steps_per_epoch']} steps each "
    f"(multilingual.*; one English epoch is 157 steps, the English models train {config['be']['epochs']} epochs).",
    "6": f"Models trained on {SHIFT_DATASET}: {SHIFT['epochs']} epoch(s) each (shift.epochs; the {DATASET} models: "
    f"BE {config['be']['epochs']}, CE {config['ce']['epochs']}, JOINT {config['joint']['epochs']}).",
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


rule claims_table:
    input:
        [f"results/tables/rfrs_table{n}.json" for n in ("1", "2", "3", "5", "6", "7", "8", "9")],
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
