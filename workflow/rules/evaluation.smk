# Embedding rows (BE, JOINT+BE): search the model's faiss index.
rule evaluate:
    input:
        evaluate_input,
    output:
        EVAL_METRICS,
    wildcard_constraints:
        method="|".join(EMBEDDING_MODEL),
    params:
        code=CODE["evaluate"],
        upstream=upstream(evaluate_input),
        cfg=section("evaluation"),
        tracking=section("tracking"),
        run_name=RUN_NAME,
        trained_on=lambda wc: VARIANTS[wc.variant]["dataset"],
    conda:
        ITR_ENV
    log:
        "logs/evaluate/{variant}/{method}/{collection}/{protocol}.log",
    benchmark:
        "logs/benchmarks/evaluate/{variant}/{method}/{collection}/{protocol}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    shell:
        "itr evaluate --index $(dirname {input}) --config {params.cfg} --protocol {wildcards.protocol}"
        " --method {wildcards.method} --dataset {wildcards.collection} --trained-on {params.trained_on}"
        " --variant {wildcards.variant} --out {output}"
        " --tracking {params.tracking} --run-name {params.run_name} > {log} 2>&1"


# Cross-encoder rows: CE scores of every shortlisted pair (COOP) or of every pair (CE, JOINT+CE).
# The expensive part; the cells below are computed from its output in seconds.
rule rerank_score:
    input:
        unpack(rerank_inputs),
    output:
        RERANK_SCORES,
    wildcard_constraints:
        method="|".join(RERANK),
    params:
        code=CODE["rerank_score"],
        upstream=upstream(rerank_inputs),
        # Shortlists as deep as the deepest k a table reads: rerank.ks on the main test set (Table 8), rerank.k elsewhere.
        cfg=lambda wc: section("rerank", stage="rerank_score",
                               **({} if is_sweep(wc) else {"ks": [config["rerank"]["k"]]})),
        eval_cfg=section("evaluation", stage="rerank_score"),  # only the group definitions matter here
        first_stage=lambda wc, input: f"--first-stage $(dirname {input.first_stage})" if "first_stage" in input.keys() else "",
        test=test_dirs,
        distractors=lambda wc: distractor_args(wc.collection),
    conda:
        ITR_ENV
    log:
        "logs/rerank_score/{variant}/{method}/{collection}/{protocol}.log",
    benchmark:
        "logs/benchmarks/rerank_score/{variant}/{method}/{collection}/{protocol}.tsv"
    threads: SHORT_JOB_THREADS
    resources:
        mem_mb=6000,
        gpu=1,
    shell:
        "itr rerank score --reranker {input.reranker} {params.first_stage} {params.test} {params.distractors}"
        " --config {params.cfg} --eval-config {params.eval_cfg}"
        " --protocol {wildcards.protocol} --out {output} --threads {threads} > {log} 2>&1"


# COOP rows of the main models on the main test set under rerank.protocol: the k = rerank.k cell
# (Table 1) and the Table 8 (k) and Table 9 (fusion) cells.
rule rerank_evaluate_coop:
    input:
        RERANK_SCORES,
    output:
        main=EVAL_METRICS,
        variants=cell_variants(VARIANTS_DIR, config["rerank"]["ks"], SCORE_FUSIONS, config["rerank"]["lambdas"]),
    wildcard_constraints:
        method="|".join(COOP_METHODS),
        variant="|".join(sorted({s["variant"] for s in SWEEPS})),
        collection="|".join(sorted({s["collection"] for s in SWEEPS})),
        protocol="|".join(sorted({s["protocol"] for s in SWEEPS})),
    params:
        code=CODE["rerank_evaluate"],
        upstream=upstream(RERANK_SCORES),
        cfg=section("rerank"),
        eval_cfg=section("evaluation", stage="rerank_evaluate_coop"),
        tracking=section("tracking"),
        variants=f"--variants-dir {VARIANTS_DIR}",
        run_name=RUN_NAME,
        trained_on=lambda wc: VARIANTS[wc.variant]["dataset"],
    conda:
        ITR_ENV
    log:
        "logs/rerank_evaluate/{variant}/{method}/{collection}/{protocol}.log",
    benchmark:
        "logs/benchmarks/rerank_evaluate/{variant}/{method}/{collection}/{protocol}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        RERANK_EVALUATE


# Every other cross-encoder cell: CE rows (every pair scored, so no k and no fusion), and COOP rows
# elsewhere (k = rerank.k only): Tables 5 and 6, and the main models' auxiliary.protocol cells (Figure 3).
rule rerank_evaluate:
    input:
        RERANK_SCORES,
    output:
        main=EVAL_METRICS,
    wildcard_constraints:
        method="|".join(RERANK),
    params:
        code=CODE["rerank_evaluate"],
        upstream=upstream(RERANK_SCORES),
        cfg=section("rerank", stage="rerank_evaluate"),  # reads k only
        eval_cfg=section("evaluation", stage="rerank_evaluate"),
        tracking=section("tracking"),
        variants="",
        run_name=RUN_NAME,
        trained_on=lambda wc: VARIANTS[wc.variant]["dataset"],
    conda:
        ITR_ENV
    log:
        "logs/rerank_evaluate/{variant}/{method}/{collection}/{protocol}.log",
    benchmark:
        "logs/benchmarks/rerank_evaluate/{variant}/{method}/{collection}/{protocol}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        RERANK_EVALUATE


ruleorder: rerank_evaluate_coop > rerank_evaluate
