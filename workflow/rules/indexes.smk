rule build_index:
    input:
        model=MODEL,
        data=DATASET_MANIFEST,
        features=FEATURES_MANIFEST,
    output:
        collection=INDEX_DONE,
        images="indexes/rfrs/{model}/images.faiss",
        captions="indexes/rfrs/{model}/captions.faiss",
    wildcard_constraints:
        model="|".join(set(EMBEDDING_MODEL.values())),
    params:
        cfg=section("index"),
    conda:
        ITR_ENV
    log:
        "logs/build_index/{model}.log",
    benchmark:
        "logs/benchmarks/build_index/{model}.tsv"
    threads: workflow.cores
    resources:
        mem_mb=8000,
    shell:
        "itr index build --model {input.model} --data $(dirname {input.data}) --features $(dirname {input.features})"
        " --split test --config {params.cfg} --out $(dirname {output.collection}) --threads {threads} > {log} 2>&1"
