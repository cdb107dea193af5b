# Tables 3 and 4: latency and full-evaluation cost, measured by benchmarks/latency.py (JSON first).
rule benchmark_latency:
    input:
        be=MODEL.format(variant=MAIN, model="be"),
        ce=MODEL.format(variant=MAIN, model="ce"),
        **data_inputs(DATASET),
        script="benchmarks/latency.py",
    output:
        "results/benchmarks/latency.json",
    params:
        cfg=section("benchmark"),
    conda:
        ITR_ENV
    log:
        "logs/benchmark_latency.log",
    benchmark:
        "logs/benchmarks/benchmark_latency.tsv"
    threads: workflow.cores
    resources:
        mem_mb=16000,
    shell:
        "python {input.script} --be {input.be} --ce {input.ce} --data $(dirname {input.data})"
        " --features $(dirname {input.features}) --config {params.cfg} --out {output} --threads {threads}"
        " > {log} 2>&1"


rule latency_table:
    input:
        "results/benchmarks/latency.json",
    output:
        table_outputs("rfrs_table{n}"),
    wildcard_constraints:
        n="3|4",
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
        "itr table rfrs{wildcards.n} --metrics {input} --out results/tables/rfrs_table{wildcards.n} > {log} 2>&1"
