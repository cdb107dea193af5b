rule shapes_generate:
    output:
        manifest=DATASET_MANIFEST,
        images=f"{DATASET_DIR}/images.parquet",
        captions=f"{DATASET_DIR}/captions.parquet",
    params:
        cfg=section("shapes"),
    conda:
        ITR_ENV
    log:
        "logs/shapes_generate.log",
    benchmark:
        "logs/benchmarks/shapes_generate.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        "itr data shapes --config {params.cfg} --out $(dirname {output.manifest}) > {log} 2>&1"
