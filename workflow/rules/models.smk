rule train:
    input:
        data=DATASET_MANIFEST,
        features=FEATURES_MANIFEST,
    output:
        model=MODEL,
        history=TRAIN_HISTORY,
    params:
        cfg=lambda wc: section(wc.model),
        text=section("text_encoder"),
        tracking=section("tracking"),
        # Resumable state outside the declared outputs: Snakemake does not delete it when a job is killed.
        state="models/rfrs/.state/{model}",
    conda:
        ITR_ENV
    log:
        "logs/train/{model}.log",
    benchmark:
        "logs/benchmarks/train/{model}.tsv"
    threads: workflow.cores
    resources:
        mem_mb=8000,
        gpu=1,
    shell:
        "itr train {wildcards.model} --data $(dirname {input.data}) --features $(dirname {input.features})"
        " --config {params.cfg} --text-encoder {params.text} --out {output.model} --history {output.history}"
        " --state-dir {params.state} --threads {threads}"
        " --tracking {params.tracking} --run-name train/model={wildcards.model} > {log} 2>&1"
