rule table_rfrs1:
    input:
        expand(EVAL_METRICS, method=METHODS, protocol=config["evaluation"]["table_protocol"]),
    output:
        table_outputs("rfrs_table1"),
    params:
        protocol=config["evaluation"]["table_protocol"],
    conda:
        ITR_ENV
    log:
        "logs/table_rfrs1.log",
    benchmark:
        "logs/benchmarks/table_rfrs1.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "itr table rfrs1 --metrics {input} --protocol {params.protocol} --out results/tables/rfrs_table1"
        " > {log} 2>&1"


rule check_scores:
    input:
        expected="workflow/expected_scores.yaml",
        metrics=expand(EVAL_METRICS, method=METHODS, protocol=config["evaluation"]["protocols"]),
        detector=DETECTOR_METRICS,
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
