# One model of one variant (VARIANTS: the papers' plans, merged in common.smk): its dataset, its overrides of the section.
rule train:
    input:
        unpack(train_inputs),
    output:
        model=MODEL,
        history=TRAIN_HISTORY,
    params:
        code=CODE["train"],
        upstream=upstream(train_inputs),
        # The method's params section (itr.config.TRAIN_METHODS: cmc trains with dual's)
        cfg=lambda wc: section(TRAIN_METHODS[wc.model].SECTION, stage="train", **VARIANTS[wc.variant]["overrides"]),
        text=lambda wc: section("text_encoder", **VARIANTS[wc.variant].get("text", {})),
        init=init_arg,
        tracking=section("tracking"),
        # Resumable state outside the declared outputs: Snakemake does not delete it when a job is killed.
        state=TRAIN_STATE,
    conda:
        ITR_ENV
    log:
        "logs/train/{variant}/{model}.log",
    benchmark:
        "logs/benchmarks/train/{variant}/{model}.tsv"
    threads: workflow.cores
    resources:
        mem_mb=8000,
        gpu=1,
    shell:
        "itr train {wildcards.model} --data $(dirname {input.data}) --features $(dirname {input.features})"
        " --config {params.cfg} --text-encoder {params.text} {params.init} --out {output.model} --history {output.history}"
        " --state-dir {params.state} --threads {threads} --processes {resources.gpu}"  # >1 GPU: torchrun ranks
        " --tracking {params.tracking} --run-name train/{wildcards.variant}/{wildcards.model} > {log} 2>&1"
