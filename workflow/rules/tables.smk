# Tables of Retrieve Fast, Rerank Smart by number: results/tables/rfrs_table<n>.{md,csv,tex,json}
TABLE_INPUTS = {
    "1": expand(EVAL_METRICS, method=METHODS, protocol=TABLE_PROTOCOL),
    "8": [f for m in COOP_METHODS for f in expand(K_METRICS, method=m, protocol=TABLE_PROTOCOL, k=config["rerank"]["ks"])],
    "9": expand(EVAL_METRICS, method=COOP_METHODS, protocol=TABLE_PROTOCOL)
    + expand(FUSION_METRICS, method=COOP_METHODS, protocol=TABLE_PROTOCOL, fusion=["add", "norm_add"],
             lam=config["rerank"]["lambdas"]),
}


rule paper_table:
    input:
        lambda wc: TABLE_INPUTS[wc.n],
    output:
        table_outputs("rfrs_table{n}"),
    wildcard_constraints:
        n="|".join(TABLE_INPUTS),
    params:
        protocol=TABLE_PROTOCOL,
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
        "itr table rfrs{wildcards.n} --metrics {input} --protocol {params.protocol}"
        " --out results/tables/rfrs_table{wildcards.n} > {log} 2>&1"


rule claims_table:
    input:
        [f"results/tables/rfrs_table{n}.json" for n in ("1", "3", "8", "9")],
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
