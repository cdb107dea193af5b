rule evaluate:
    input:
        INDEX_DONE,
    output:
        EVAL_METRICS,
    params:
        cfg=section("evaluation", drop=["table_protocol"]),
        tracking=section("tracking"),
        dataset=DATASET,
    conda:
        ITR_ENV
    log:
        "logs/evaluate/{method}_{protocol}.log",
    benchmark:
        "logs/benchmarks/evaluate/{method}_{protocol}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    shell:
        "itr evaluate --index $(dirname {input}) --config {params.cfg} --protocol {wildcards.protocol}"
        " --method {wildcards.method} --dataset {params.dataset} --out {output}"
        " --tracking {params.tracking} --run-name evaluate/method={wildcards.method},protocol={wildcards.protocol}"
        " > {log} 2>&1"
