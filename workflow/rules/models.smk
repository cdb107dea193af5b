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
        image_teacher=image_teacher_arg,
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
        " --config {params.cfg} --text-encoder {params.text} {params.init} {params.image_teacher} --out {output.model}"
        " --history {output.history}"
        " --state-dir {params.state} --threads {threads} --processes {resources.gpu}"  # >1 GPU: torchrun ranks
        " --tracking {params.tracking} --run-name train/{wildcards.variant}/{wildcards.model} > {log} 2>&1"


# A soft-label student's text teacher (CUSA): every caption of a student's dataset embedded once (itr.teachers); the students read it
# (train_inputs' "teacher"). The image teacher is a detector store's whole-image features, already on disk (train_inputs'
# "image_teacher" when the student reads another store).
rule text_teacher:
    input:
        data=teacher_dataset,
    output:
        TEXT_TEACHER,
    params:
        code=CODE["text_teacher"],
        teacher=lambda wc: config["softlabel"]["text_teacher"],
    conda:
        ITR_ENV
    log:
        "logs/text_teacher/{variant}.log",
    benchmark:
        "logs/benchmarks/text_teacher/{variant}.tsv"
    threads: workflow.cores
    resources:
        mem_mb=4000,
    shell:
        "itr teachers --data $(dirname {input.data}) --text-teacher {params.teacher} --out {output} --threads {threads}"
        " > {log} 2>&1"
