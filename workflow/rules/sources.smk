# Real datasets (params `datasets`, itr.data.sources): fetched from their mirrors (or placed by hand), checked,
# extracted, imported into the canonical format, and given region features by torchvision's COCO Faster R-CNN
# or imported from a released feature file. `snakemake <target> --config dataset=<name>` runs a paper on one.
# Inputs here are archives of many GB: jobs name them by their pinned sha256 (downloads/<name>/SHA256SUMS), not
# by hashing them again at every Snakemake call.


# A download is named by its hash, not by the code that fetched it: an edit of itr.data.download does not fetch
# 13 GB again. A file without mirrors (Flickr30k's images) is placed by hand at this path; the job then only
# fails, saying where to get it.
rule fetch_file:
    output:
        DOWNLOAD,
    localrule: True  # on a cluster, downloads run where Snakemake runs: compute nodes often have no internet
    wildcard_constraints:
        dataset="|".join(REAL_DATASETS) or "(?!)",
        file="|".join(map(re.escape, sources.file_names(REAL_DATASETS))) or "(?!)",
    params:
        args=lambda wc: sources.fetch_args(wc.dataset, REAL_DATASETS[wc.dataset], wc.file),
    conda:
        ITR_ENV
    log:
        "logs/fetch/{dataset}/{file}.log",
    threads: 1
    resources:
        downloads=1,
    shell:
        "itr data fetch {params.args} --out {output} > {log} 2>&1"


# An archive is checked (published hash, else the pinned one; a hand-placed file is pinned here) and extracted.
rule unpack_file:
    input:
        DOWNLOAD,
    output:
        directory(EXTRACTED),
    wildcard_constraints:
        dataset="|".join(REAL_DATASETS) or "(?!)",
        file="|".join(map(re.escape, sources.file_names(REAL_DATASETS, archives=True))) or "(?!)",
    params:
        code=CODE["unpack_file"],
        check=lambda wc: sources.verify_args(wc.dataset, REAL_DATASETS[wc.dataset], wc.file),
    conda:
        ITR_ENV
    log:
        "logs/unpack/{dataset}/{file}.log",
    threads: 1
    shell:
        "itr data extract --archive {input} --out {output} {params.check} > {log} 2>&1"


# A file that is no archive (a caption JSON, a feature TSV) is checked the same way, then linked where it is read.
rule check_file:
    input:
        DOWNLOAD,
    output:
        EXTRACTED,
    wildcard_constraints:
        dataset="|".join(REAL_DATASETS) or "(?!)",
        file="|".join(map(re.escape, sources.file_names(REAL_DATASETS, archives=False))) or "(?!)",
    params:
        check=lambda wc: sources.verify_args(wc.dataset, REAL_DATASETS[wc.dataset], wc.file),
    conda:
        ITR_ENV
    log:
        "logs/check/{dataset}/{file}.log",
    threads: 1
    shell:
        "itr data verify --file {input} {params.check} > {log} 2>&1"
        " && (ln -f {input} {output} 2> /dev/null || cp {input} {output})"


rule import_dataset:
    input:
        lambda wc: sources.needed(wc.dataset, REAL_DATASETS[wc.dataset],
                                  sources.import_refs(REAL_DATASETS[wc.dataset])),
    output:
        manifest=DATASET_MANIFEST,
        images="data/{dataset}/images.parquet",
        captions="data/{dataset}/captions.parquet",
    wildcard_constraints:
        dataset="|".join(REAL_DATASETS) or "(?!)",
    params:
        code=CODE["import_dataset"],
        upstream=lambda wc: sources.pinned(wc.dataset, REAL_DATASETS[wc.dataset],
                                           sources.import_refs(REAL_DATASETS[wc.dataset])),
        args=lambda wc: sources.import_args(wc.dataset, REAL_DATASETS[wc.dataset]),
    conda:
        ITR_ENV
    log:
        "logs/import_dataset/{dataset}.log",
    benchmark:
        "logs/benchmarks/import_dataset/{dataset}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
    shell:
        "itr data import {params.args} --out $(dirname {output.manifest}) > {log} 2>&1"


rule fetch_detector_weights:
    output:
        PRETRAINED["weights"],
    localrule: True
    params:
        urls=" ".join(f"--url {shlex.quote(u)}" for u in PRETRAINED["weights_urls"]),
    conda:
        ITR_ENV
    log:
        "logs/fetch/detector_weights.log",
    threads: 1
    resources:
        downloads=1,
    shell:
        "itr data fetch {params.urls} --out {output} > {log} 2>&1"


rule pretrained_features:
    input:
        data=DATASET_MANIFEST,
        weights=PRETRAINED["weights"],
    output:
        FEATURES_MANIFEST,
    wildcard_constraints:
        dataset="|".join(d for d, e in REAL_DATASETS.items() if e["features"]["format"] == "pretrained") or "(?!)",
    params:
        code=CODE["pretrained_features"],
        upstream=upstream(lambda wc: [DATASET_MANIFEST.format(dataset=wc.dataset), PRETRAINED["weights"]]),
        cfg=section("pretrained_features", stage="pretrained_features"),
    conda:
        ITR_ENV
    log:
        "logs/pretrained_features/{dataset}.log",
    benchmark:
        "logs/benchmarks/pretrained_features/{dataset}.tsv"
    threads: workflow.cores
    resources:
        mem_mb=16000,
        gpu=1,
    shell:
        "itr features pretrained --data $(dirname {input.data}) --config {params.cfg} --out $(dirname {output})"
        " --threads {threads} > {log} 2>&1"


rule import_features:
    input:
        data=DATASET_MANIFEST,
        source=lambda wc: sources.needed(wc.dataset, REAL_DATASETS[wc.dataset],
                                         [REAL_DATASETS[wc.dataset]["features"]["source"]]),
    output:
        FEATURES_MANIFEST,
    wildcard_constraints:
        dataset="|".join(d for d, e in REAL_DATASETS.items() if e["features"]["format"] != "pretrained") or "(?!)",
    params:
        code=CODE["import_features"],
        upstream=lambda wc: content_digest([
            files_identity([DATASET_MANIFEST.format(dataset=wc.dataset)]),
            sources.pinned(wc.dataset, REAL_DATASETS[wc.dataset], [REAL_DATASETS[wc.dataset]["features"]["source"]])]),
        format=lambda wc: REAL_DATASETS[wc.dataset]["features"]["format"],
        source=lambda wc: sources.features_source(wc.dataset, REAL_DATASETS[wc.dataset]),
    conda:
        ITR_ENV
    log:
        "logs/import_features/{dataset}.log",
    benchmark:
        "logs/benchmarks/import_features/{dataset}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
    shell:
        "itr features import --format {params.format} --source {params.source} --dataset $(dirname {input.data})"
        " --out $(dirname {output}) > {log} 2>&1"
