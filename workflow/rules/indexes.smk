# A model's faiss indexes over one collection (COLLECTIONS in common.smk): a test split, grown with
# distractors for Table 5, or the other domain's test split for Table 6.
rule build_index:
    input:
        unpack(index_inputs),
    output:
        collection=INDEX_DONE,
        images="indexes/{variant}/{model}/{collection}/images.faiss",
        captions="indexes/{variant}/{model}/{collection}/captions.faiss",
    wildcard_constraints:
        model="|".join(set(EMBEDDING_MODEL.values())),
    params:
        code=CODE["build_index"],
        upstream=upstream(index_inputs),
        cfg=section("index"),
        test=test_dirs,
        distractors=lambda wc: distractor_args(wc.collection, wc.variant),
    conda:
        ITR_ENV
    log:
        "logs/build_index/{variant}/{model}/{collection}.log",
    benchmark:
        "logs/benchmarks/build_index/{variant}/{model}/{collection}.tsv"
    threads: SHORT_JOB_THREADS
    resources:
        mem_mb=8000,
    shell:
        "itr index build --model {input.model} {params.test} --split test {params.distractors}"
        " --config {params.cfg} --out $(dirname {output.collection}) --threads {threads} > {log} 2>&1"
