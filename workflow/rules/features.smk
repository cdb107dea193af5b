rule train_detector:
    input:
        DATASET_MANIFEST.format(dataset=DATASET),
    output:
        model=DETECTOR,
        metrics=DETECTOR_METRICS,
        history=DETECTOR_HISTORY,
    params:
        code=CODE["train_detector"],
        upstream=upstream(DATASET_MANIFEST.format(dataset=DATASET)),
        cfg=section("detector"),
        tracking=section("tracking"),
        # Resumable state lives outside the declared outputs, so Snakemake does not delete it
        # when a run is killed; a restarted job continues from the last finished epoch.
        state=f"models/detector/.state/{DATASET}",
        run_name=f"train_detector/dataset={DATASET}",
    conda:
        ITR_ENV
    log:
        "logs/train_detector.log",
    benchmark:
        "logs/benchmarks/train_detector.tsv"
    threads: workflow.cores
    resources:
        mem_mb=6000,
        gpu=1,
    shell:
        "itr detector train --data $(dirname {input}) --config {params.cfg} --out {output.model}"
        " --metrics {output.metrics} --history {output.history} --state-dir {params.state} --threads {threads}"
        " --tracking {params.tracking} --run-name {params.run_name} > {log} 2>&1"


# Every dataset goes through the one detector, as the paper's datasets all go through one
# Visual Genome Faster R-CNN: the other domain is new to the detector too.
rule extract_features:
    input:
        data=DATASET_MANIFEST,
        detector=DETECTOR,
    output:
        FEATURES_MANIFEST,
    wildcard_constraints:
        dataset="|".join(DATASETS),
    params:
        code=CODE["extract_features"],
        upstream=upstream(lambda wc: [DATASET_MANIFEST.format(dataset=wc.dataset), DETECTOR]),
        cfg=section("features"),
    conda:
        ITR_ENV
    log:
        "logs/extract_features/{dataset}.log",
    benchmark:
        "logs/benchmarks/extract_features/{dataset}.tsv"
    threads: workflow.cores
    resources:
        mem_mb=6000,
        gpu=1,
    shell:
        "itr features extract --data $(dirname {input.data}) --detector {input.detector}"
        " --config {params.cfg} --out $(dirname {output}) --threads {threads} > {log} 2>&1"


# Raw-pixel patches of every image of a generated dataset, for a student whose image tower has no detector (CUSA's
# student (b), softlabel.image_tower: pixels). Nothing is learnt: only the patch size is read.
rule patch_features:
    input:
        data=DATASET_MANIFEST,
    output:
        PATCHES_MANIFEST,
    wildcard_constraints:
        dataset="|".join(DATASETS),
    params:
        code=CODE["patch_features"],
        upstream=upstream(DATASET_MANIFEST),
        patch=lambda wc: config["softlabel"]["pixel_tower"]["patch"],
    conda:
        ITR_ENV
    log:
        "logs/patch_features/{dataset}.log",
    benchmark:
        "logs/benchmarks/patch_features/{dataset}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    shell:
        "itr features patches --data $(dirname {input.data}) --patch {params.patch} --out $(dirname {output})"
        " > {log} 2>&1"


# The detector's validation AP per class, its mAP in the title (results/curves/detector/<dataset>.png): the report's
# "detector".
rule detector_curves:
    input:
        metrics=DETECTOR_METRICS,
        history=DETECTOR_HISTORY,
    output:
        figure=report(DETECTOR_FIGURE, caption="../report/detector.rst", category="detector", subcategory=DATASET),
        headline=DETECTOR_HEADLINE.format(dataset=DATASET),
    params:
        code=CODE["detector_curves"],
    localrule: True
    conda:
        ITR_ENV
    log:
        f"logs/curves/detector_{DATASET}.log",
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "itr curves --detector {input.metrics} --detector-history {input.history} --out {output.figure}"
        " --headline {output.headline} > {log} 2>&1"
