# ShapeCaptions in each domain (DATASETS in common.smk): the shapes section, plus the domain override.
rule shapes_generate:
    output:
        manifest=DATASET_MANIFEST,
        images="data/{dataset}/images.parquet",
        captions="data/{dataset}/captions.parquet",
    wildcard_constraints:
        dataset="|".join(DATASETS),
    params:
        code=CODE["shapes_generate"],
        cfg=lambda wc: section("shapes", **DATASETS[wc.dataset]),
    conda:
        ITR_ENV
    log:
        "logs/shapes_generate/{dataset}.log",
    benchmark:
        "logs/benchmarks/shapes_generate/{dataset}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        "itr data shapes --config {params.cfg} --out $(dirname {output.manifest}) > {log} 2>&1"
