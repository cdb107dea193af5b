# Every registered paper's tables and figures: results/tables/<paper>_<target>.{md,csv,tex,json,html[,png]}
# (results/tables/<dataset>/... on a real dataset).
# The cells each one reads, its protocol and caption note come from the paper's plan (itr.papers);
# the builder is the one its registry entry names (`itr table <paper> <target>`).
TABLE_TARGETS = sorted({target for _, target in TABLES})
FIGURE_TARGETS = sorted({t.name for p in papers.PAPERS for t in papers.load(p).targets if t.png})


rule paper_table:
    input:
        table_inputs,
    output:
        reported_table_files(),
    wildcard_constraints:
        paper="|".join(papers.PAPERS),
        target="|".join(t for t in TABLE_TARGETS if t not in FIGURE_TARGETS),
    params:
        code=lambda wc: TABLE_CODE[wc.paper],
        upstream=upstream(table_inputs),
        spec=lambda wc: shlex.quote(json.dumps(TABLES[(wc.paper, wc.target)].spec(), sort_keys=True)),
        out=table_stem("{paper}", "{target}", config),
    conda:
        ITR_ENV
    log:
        "logs/table/{paper}_{target}.log",
    benchmark:
        "logs/benchmarks/table/{paper}_{target}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "itr table {wildcards.paper} {wildcards.target} --inputs {input} --spec {params.spec} --out {params.out}"
        " > {log} 2>&1"


use rule paper_table as paper_figure with:
    output:
        reported_table_files(png=True),
    wildcard_constraints:
        paper="|".join(papers.PAPERS),
        target="|".join(FIGURE_TARGETS),


# Every paper's models under the extended ground truth, side by side (snakemake eccv_all): R@1 of the single
# positive beside the extended one's on the same rankings, and ECCV Caption's mAP@R and R-P.
rule extended_report:
    input:
        sorted(EXTENDED_CELLS),
    output:
        [report(f, caption="../report/extended.rst", category="extended ground truth", subcategory="eccv_all")
         if f.endswith(".html") else f for f in EXTENDED_REPORT_FILES],
    params:
        code=CODE["extended_report"],
        upstream=upstream(lambda wc: sorted(EXTENDED_CELLS)),
        papers=shlex.quote(json.dumps(EXTENDED_CELLS, sort_keys=True)),
        out=lambda wc, output: os.path.splitext(output[0])[0],
    localrule: True
    conda:
        ITR_ENV
    log:
        "logs/table/eccv_all.log",
    benchmark:
        "logs/benchmarks/table/eccv_all.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "itr extended-report --inputs {input} --papers {params.papers} --out {params.out} > {log} 2>&1"


# A paper's retrieval galleries (results/galleries/<paper>_<name>.{png,html,json}): for a seeded sample of text
# queries and those the re-ranking hurt most, a first stage's top k beside its re-ranking, read from the row's scores
# file (no model runs), the ground truth marked. The HTML is self-contained and goes into the report.
rule gallery:
    input:
        scores=lambda wc: GALLERIES[gallery_stem(wc)]["scores"],
        data=lambda wc: f"{GALLERIES[gallery_stem(wc)]['data']}/manifest.json",
    output:
        multiext(on_data(GALLERY_STEM, config), ".png", ".json"),
        report(on_data(GALLERY_STEM, config) + ".html", caption="../report/gallery.rst", category="{paper}",
               subcategory="galleries"),
    wildcard_constraints:
        paper="|".join(papers.PAPERS),
        name=r"\w+",
    params:
        code=CODE["gallery"],
        upstream=upstream(lambda wc: [GALLERIES[gallery_stem(wc)]["scores"]]),
        spec=lambda wc: shlex.quote(json.dumps(GALLERIES[gallery_stem(wc)], sort_keys=True)),
        seed=config["seed"],
        out=lambda wc: gallery_stem(wc),
    localrule: True
    conda:
        ITR_ENV
    log:
        "logs/gallery/{paper}_{name}.log",
    benchmark:
        "logs/benchmarks/gallery/{paper}_{name}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "itr gallery --scores {input.scores} --data $(dirname {input.data}) --spec {params.spec} --seed {params.seed}"
        " --out {params.out} > {log} 2>&1"


# Validation curves of every model a paper trains (results/curves/<paper>.png): the report's "training curves" of
# each paper.
rule training_curves:
    input:
        lambda wc: list(papers.histories(PAPER_PLANS[wc.paper]).values()),
    output:
        report(on_data(CURVES, config), caption="../report/curves.rst", category="{paper}",
               subcategory="training curves"),
    wildcard_constraints:
        paper="|".join(papers.PAPERS),
    params:
        code=CODE["training_curves"],
        histories=lambda wc: " ".join(f"{label}={path}"
                                      for label, path in papers.histories(PAPER_PLANS[wc.paper]).items()),
    localrule: True
    conda:
        ITR_ENV
    log:
        "logs/curves/{paper}.log",
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "itr curves --histories {params.histories} --title {wildcards.paper} --out {output} > {log} 2>&1"


# A paper's headline numbers, one flat file per cell of its headline table (results/headline/<paper>/...): what
# `dvc metrics show` and `dvc metrics diff` print, one row per cell, the same seven columns for every paper.
for _paper, _files in HEADLINES.items():  # one job per paper (outputs are its own files, not a pattern)

    rule:
        name:
            f"headline_{_paper}"
        input:
            list(_files.values()),
        output:
            list(_files),
        params:
            code=CODE["headline"],
        localrule: True
        conda:
            ITR_ENV
        log:
            f"logs/headline/{_paper}.log",
        threads: 1
        resources:
            mem_mb=500,
        shell:
            "itr headline --cells {input} --out {output} > {log} 2>&1"


rule check_scores:
    input:
        expected=list(EXPECTED.values()),
        scored=CHECKED_FILES,  # the metrics files with reference scores built so far, at least the quick target's
    output:
        "results/checks/expected_scores.md",
    params:
        code=CODE["check_scores"],
        upstream=upstream(lambda wc: [*EXPECTED.values(), *CHECKED_FILES]),
        present="--present",
    localrule: True
    conda:
        ITR_ENV
    log:
        "logs/check_scores.log",
    benchmark:
        "logs/benchmarks/check_scores.tsv"
    threads: 1
    resources:
        mem_mb=500,
    shell:
        "itr check-scores --expected {input.expected} {params.present} --out {output} > {log} 2>&1"


# Every expected score: builds every metrics file the expectations name (each paper's models), then compares.
use rule check_scores as check_scores_all with:
    input:
        expected=list(EXPECTED.values()),
        scored=EXPECTED_FILES,
    output:
        "results/checks/expected_scores_all.md",
    params:
        code=CODE["check_scores"],
        upstream=upstream(lambda wc: [*EXPECTED.values(), *EXPECTED_FILES]),
        present="",
    log:
        "logs/check_scores_all.log",
    benchmark:
        "logs/benchmarks/check_scores_all.tsv"


# MLflow mirrors a paper's metrics files once they are written: one run per file whose content has no run yet
# (itr.tracking.mirror_cells), so the cells' own jobs never import MLflow or wait on its store lock.
rule track_cells:
    input:
        cells=paper_cells,
        tables=paper_tables,
    output:
        TRACKED,
    wildcard_constraints:
        paper="|".join(papers.PAPERS),
    params:
        code=CODE["track_cells"],
        upstream=upstream(lambda wc: [*paper_cells(wc), *paper_tables(wc)]),
        tracking=section("tracking"),
        tables=lambda wc: shlex.quote(json.dumps(papers.cell_tables(PAPER_PLANS[wc.paper]), sort_keys=True)),
        tables_run=lambda wc: f"tables/{wc.paper}",
    conda:
        ITR_ENV
    log:
        "logs/track_cells/{paper}.log",
    benchmark:
        "logs/benchmarks/track_cells/{paper}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        "itr runs mirror --tracking {params.tracking} --paper {wildcards.paper} --tables {params.tables}"
        " --cells {input.cells} --artifacts {input.tables} --tables-run {params.tables_run} --out {output} > {log} 2>&1"
