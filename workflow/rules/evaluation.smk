# The cells below write metrics files only; rule track_cells mirrors a paper's into MLflow at once.

# Embedding rows (BE, JOINT+BE): search the model's faiss index.
rule evaluate:
    input:
        unpack(evaluate_input),
    output:
        EVAL_METRICS,
    wildcard_constraints:
        method="|".join(EMBEDDING_MODEL),
    params:
        code=CODE["evaluate"],
        upstream=upstream(evaluate_input),
        cfg=section("evaluation"),
        trained_on=lambda wc: VARIANTS[wc.variant]["dataset"],
        data=data_arg,
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
        "itr evaluate --index $(dirname {input.index}) {params.data} --config {params.cfg} --protocol {wildcards.protocol}"
        " --method {wildcards.method} --dataset {wildcards.collection} --trained-on {params.trained_on}"
        " --variant {wildcards.variant} --out {output} > {log} 2>&1"


# A soft-label student's and its teachers' uni-modal quality on the test split (CUSA's appendix Tables 10-11).
rule unimodal_evaluate:
    input:
        unpack(unimodal_inputs),
    output:
        UNIMODAL_METRICS,
    params:
        code=CODE["unimodal_evaluate"],
        upstream=upstream(unimodal_inputs),
        cfg=unimodal_config,
        image_teacher=image_teacher_arg,
    conda:
        ITR_ENV
    log:
        "logs/unimodal/{variant}/{collection}.log",
    benchmark:
        "logs/benchmarks/unimodal/{variant}/{collection}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    shell:
        "itr unimodal --model {input.model} --data $(dirname {input.data}) --features $(dirname {input.features})"
        " --teacher {input.teacher} {params.image_teacher} --config {params.cfg} --variant {wildcards.variant} --out {output}"
        " --threads {threads} > {log} 2>&1"


# Rerank rows: second-stage scores (a cross-encoder's, or a dual transformer's local similarity) of every
# shortlisted pair (COOP, TGDT-GL) or of every pair (CE, JOINT+CE, TGDT-L). The expensive part, paid once: where a
# table also builds the reranker's all-pairs row on the same collection and protocol, the shortlists' scores are
# read from its file (input pair_scores; itr.rerank.shortlists_from_all_pairs). The cells
# below are computed from its output in seconds.
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
        # Shortlists as deep as the deepest k a table reads: a sweep's ks (Table 8 of Retrieve Fast, Rerank
        # Smart; Figure 6 of TGDT) in its cell, the row's k elsewhere.
        cfg=lambda wc: rerank_section(wc, "rerank_score", ks=sweep_of(wc).ks if sweep_of(wc) else
                                      [RERANK_SETTINGS.get(wc.method, config["rerank"])["k"]]),
        eval_cfg=section("evaluation", stage="rerank_score"),  # only the group definitions matter here
        first_stage=lambda wc, input: f"--first-stage $(dirname {input.first_stage})" if "first_stage" in input.keys() else "",
        pair_scores=lambda wc, input: f"--pair-scores {input.pair_scores}" if "pair_scores" in input.keys() else "",
        test=test_dirs,
        distractors=lambda wc: distractor_args(wc.collection, wc.variant),
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
        "itr rerank score --reranker {input.reranker} {params.first_stage} {params.pair_scores} {params.test} {params.distractors}"
        " --config {params.cfg} --eval-config {params.eval_cfg}"
        " --protocol {wildcards.protocol} --out {output} --threads {threads} > {log} 2>&1"


# Every rerank cell: the top k of the row's shortlists ranked by its second-stage score, or by the row's fusion
# (ROW_FUSIONS); every pair for an all-pairs row (no k, no fusion).
rule rerank_evaluate:
    input:
        RERANK_SCORES,
    output:
        EVAL_METRICS,
    wildcard_constraints:
        method="|".join(RERANK),
    params:
        code=CODE["rerank_evaluate"],
        upstream=upstream(RERANK_SCORES),
        cfg=lambda wc: rerank_section(wc, "rerank_evaluate"),  # reads k only
        eval_cfg=section("evaluation", stage="rerank_evaluate"),
        fusion=fusion_args,
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
        "itr rerank evaluate --scores {input} --config {params.cfg} --eval-config {params.eval_cfg} {params.fusion}"
        " --method {wildcards.method} --dataset {wildcards.collection} --trained-on {params.trained_on}"
        " --variant {wildcards.variant} --out {output} > {log} 2>&1"


# A sweep's depth and fusion variants of its cell (itr.papers.Sweep): one rule per paper with a sweep, since
# each has its own files (Tables 8 and 9 of Retrieve Fast, Rerank Smart; Figure 6 of TGDT).
for _paper, _sweep in SWEEPS.items():

    rule:
        name:
            f"rerank_evaluate_variants_{_paper}"
        input:
            RERANK_SCORES,
        output:
            cell_variants(VARIANTS_DIR, _sweep.ks, _sweep.fusions, _sweep.lambdas),
        wildcard_constraints:
            method="|".join(_sweep.methods),
            variant=re.escape(_sweep.variant),
            collection=re.escape(_sweep.collection),
            protocol=re.escape(_sweep.protocol),
        params:
            code=CODE["rerank_evaluate"],
            upstream=upstream(RERANK_SCORES),
            cfg=lambda wc, s=_sweep: rerank_section(wc, "rerank_evaluate_variants", ks=s.ks, lambdas=s.lambdas),
            eval_cfg=section("evaluation", stage="rerank_evaluate_variants"),
            fusion=lambda wc, s=_sweep: f"{fusion_args(wc)} --variant-fusions {','.join(s.fusions)}",
            variants_dir=VARIANTS_DIR,
            trained_on=lambda wc: VARIANTS[wc.variant]["dataset"],
        conda:
            ITR_ENV
        log:
            "logs/rerank_evaluate_variants/{variant}/{method}/{collection}/{protocol}.log",
        benchmark:
            "logs/benchmarks/rerank_evaluate_variants/{variant}/{method}/{collection}/{protocol}.tsv"
        threads: 1
        resources:
            mem_mb=2000,
        shell:
            "itr rerank evaluate --scores {input} --config {params.cfg} --eval-config {params.eval_cfg} {params.fusion}"
            " --method {wildcards.method} --dataset {wildcards.collection} --trained-on {params.trained_on}"
            " --variant {wildcards.variant} --variants-dir {params.variants_dir} > {log} 2>&1"
