rule train_be:
    input:
        data=DATASET_MANIFEST,
        features=FEATURES_MANIFEST,
    output:
        model="models/rfrs/be.pt",
        history="results/train/rfrs/be.csv",
    params:
        cfg=section("be"),
        text=section("text_encoder"),
        tracking=section("tracking"),
        state="models/rfrs/.state/be",
    conda:
        ITR_ENV
    log:
        "logs/train_be.log",
    benchmark:
        "logs/benchmarks/train_be.tsv"
    threads: workflow.cores
    resources:
        mem_mb=8000,
        gpu=1,
    shell:
        "itr train be --data $(dirname {input.data}) --features $(dirname {input.features})"
        " --config {params.cfg} --text-encoder {params.text} --out {output.model} --history {output.history}"
        " --state-dir {params.state} --threads {threads}"
        " --tracking {params.tracking} --run-name train_be/method=be > {log} 2>&1"
