rule build_index:
    input:
        model=MODEL,
        data=DATASET_MANIFEST,
        features=FEATURES_MANIFEST,
    output:
        collection=INDEX_DONE,
        images="indexes/rfrs/{method}/images.faiss",
        captions="indexes/rfrs/{method}/captions.faiss",
    params:
        cfg=section("index"),
    conda:
        ITR_ENV
    log:
        "logs/build_index/{method}.log",
    benchmark:
        "logs/benchmarks/build_index/{method}.tsv"
    threads: workflow.cores
    resources:
        mem_mb=8000,
    shell:
        "itr index build --model {input.model} --data $(dirname {input.data}) --features $(dirname {input.features})"
        " --split test --config {params.cfg} --out $(dirname {output.collection}) --threads {threads} > {log} 2>&1"
