# Seeds as a DAG axis (snakemake <paper>_seeds): each paper's headline table with every seed of params `seeds`.
# The run with params `seed` is the ordinary build; another seed's run (itr.layout.seed_config; its plans and variants
# are merged in common.smk as SEED_PLANS) trains its own detector and every model after it, under seed<s>/, on the
# same data. Then the table over seeds, each claim's verdict per seed and every expected score's spread (itr.seeds).

# Each paper's headline table over params `seeds` (snakemake <paper>_seeds): paper -> seed -> the table's JSON in
# that seed's run; the TableSpec of each seed run's table.
SEEDS = {name: {s: papers.seed_table(name, config, s) for s in config["seeds"]} for name in papers.PAPERS
         if papers.load(name).headline in PAPER_PLANS[name].tables}
SEED_TABLES = {(name, s): plan.tables[papers.load(name).headline] for (name, s), plan in SEED_PLANS.items()
               if name in SEEDS}
SEED_TABLE_STEM = table_stem("{paper}", "{target}", seed_config(config, "{seed}"))  # results/tables/seed{seed}/...


# seed -> each expected-score file a seed run re-measures -> that seed's copy
SEED_SCORES = {name: papers.seed_files(name, PAPER_PLANS[name], config) for name in SEEDS}
SEED_OUTPUTS = {name: papers.seed_outputs(name, config) for name in SEEDS}  # what <paper>_seeds builds
SEED_TRACKED = TRACKED.format(paper="seeds/{paper}")  # the MLflow mirror of <paper>_seeds, named as its tables run


# A seed run's detector and its features (snakemake <paper>_seeds; itr.layout.seed_config): the same command with
# that seed, its files under seed<s>/. The data stays params seed's: the seed draws the method, not the benchmark.
use rule train_detector as train_detector_seeded with:
    output:
        model=SEEDED_DETECTOR.replace("{dataset}", DATASET),
        metrics=SEEDED_DETECTOR_METRICS.replace("{dataset}", DATASET),
        history=SEEDED_DETECTOR_HISTORY.replace("{dataset}", DATASET),
    wildcard_constraints:
        seed=r"\d+",
    params:
        cfg=lambda wc: section("detector", seed=int(wc.seed)),
        state=f"models/seed{{seed}}/detector/.state/{DATASET}",
        run_name=f"train_detector/seed={{seed}}/dataset={DATASET}",
    log:
        "logs/train_detector/seed{seed}.log",
    benchmark:
        "logs/benchmarks/train_detector/seed{seed}.tsv"


use rule extract_features as extract_features_seeded with:
    input:
        data=DATASET_MANIFEST,
        detector=SEEDED_DETECTOR.replace("{dataset}", DATASET),
    output:
        SEEDED_FEATURES,
    wildcard_constraints:
        dataset="|".join(DATASETS),
        seed=r"\d+",
    params:
        upstream=upstream(lambda wc: [DATASET_MANIFEST.format(dataset=wc.dataset),
                                      SEEDED_DETECTOR.format(seed=wc.seed, dataset=DATASET)]),
    log:
        "logs/extract_features/seed{seed}/{dataset}.log",
    benchmark:
        "logs/benchmarks/extract_features/seed{seed}/{dataset}.tsv"


# A seed run's headline table (snakemake <paper>_seeds): the paper's builder over that run's cells.
use rule paper_table as seed_table with:
    input:
        lambda wc: SEED_TABLES[(wc.paper, int(wc.seed))].inputs,
    output:
        [f"{SEED_TABLE_STEM}.{ext}" for ext in TABLE_FORMATS],
    wildcard_constraints:
        paper="|".join(SEEDS),
        target="|".join(sorted({papers.load(name).headline for name in SEEDS})),
        seed=r"\d+",
    params:
        upstream=upstream(lambda wc: SEED_TABLES[(wc.paper, int(wc.seed))].inputs),
        spec=lambda wc: shlex.quote(json.dumps(SEED_TABLES[(wc.paper, int(wc.seed))].spec(), sort_keys=True)),
        out=lambda wc, output: os.path.splitext(output[0])[0],
    log:
        "logs/table/seed{seed}/{paper}_{target}.log",
    benchmark:
        "logs/benchmarks/table/seed{seed}/{paper}_{target}.tsv"


# A paper's headline table over params `seeds`: mean ± std per cell, each claim's verdict per seed ("undecided" when
# they disagree), and every expected score's spread (what check_scores' statistical mode is derived from).
for _paper, _tables in SEEDS.items():  # one job per paper

    rule:
        name:
            f"seed_spread_{_paper}"
        input:
            tables=list(_tables.values()),
            scores=sorted({f for files in SEED_SCORES[_paper].values() for f in files.values()}),
        output:
            **{k: v for k, v in SEED_OUTPUTS[_paper].items() if v},
        params:
            code=CODE["seed_spread"],
            paper=_paper,
            upstream=upstream(lambda wc, p=_paper: [*SEEDS[p].values(),
                                                    *sorted({f for fs in SEED_SCORES[p].values() for f in fs.values()})]),
            tables=" ".join(f"{s}={t}" for s, t in _tables.items()),
            scores=shlex.quote(json.dumps(SEED_SCORES[_paper], sort_keys=True)),
            out_table=lambda wc, output: os.path.splitext(output.table[0])[0],
            claims=lambda wc, output: (f"--out-claims {os.path.splitext(output.claims[0])[0]}"
                                       if "claims" in output.keys() else ""),
        localrule: True
        conda:
            ITR_ENV
        log:
            f"logs/seeds/{_paper}.log",
        threads: 1
        resources:
            mem_mb=1000,
        shell:
            "itr seeds --paper {params.paper} --tables {params.tables} --scores {params.scores}"
            " --out-table {params.out_table} {params.claims} --out-spread {output.spread} > {log} 2>&1"


# MLflow mirrors <paper>_seeds as track_cells does a paper: every seed run's headline cells (tagged with the headline
# and seeds/<headline>: itr runs compare --paper <paper> --table seeds/<headline>) and, as artifacts of the run
# seeds/<paper>, the table and claims over seeds.
use rule track_cells as track_seeds with:
    input:
        cells=lambda wc: list(papers.seed_cells(wc.paper, config)),
        tables=lambda wc: [f for key in ("table", "claims") for f in SEED_OUTPUTS[wc.paper][key]
                           if f.endswith((".md", ".csv"))],
    output:
        SEED_TRACKED,
    wildcard_constraints:
        paper="|".join(SEEDS),
    params:
        upstream=upstream(lambda wc: [*papers.seed_cells(wc.paper, config),
                                      *(f for key in ("table", "claims") for f in SEED_OUTPUTS[wc.paper][key])]),
        tables=lambda wc: shlex.quote(json.dumps(papers.seed_cells(wc.paper, config), sort_keys=True)),
        tables_run=lambda wc: f"seeds/{wc.paper}",
    log:
        "logs/track_cells/seeds/{paper}.log",
    benchmark:
        "logs/benchmarks/track_cells/seeds/{paper}.tsv"
