# Embedding rows (BE, JOINT+BE): search the model's faiss index.
rule evaluate:
    input:
        lambda wc: INDEX_DONE.format(model=EMBEDDING_MODEL[wc.method]),
    output:
        EVAL_METRICS,
    wildcard_constraints:
        method="|".join(EMBEDDING_MODEL),
    params:
        cfg=section("evaluation"),
        tracking=section("tracking"),
        dataset=DATASET,
    conda:
        ITR_ENV
    log:
        "logs/evaluate/{method}_{protocol}.log",
    benchmark:
        "logs/benchmarks/evaluate/{method}_{protocol}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    shell:
        "itr evaluate --index $(dirname {input}) --config {params.cfg} --protocol {wildcards.protocol}"
        " --method {wildcards.method} --dataset {params.dataset} --out {output}"
        " --tracking {params.tracking} --run-name evaluate/method={wildcards.method},protocol={wildcards.protocol}"
        " > {log} 2>&1"


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
        cfg=section("rerank", drop=["lambdas", "protocol"]),
        eval_cfg=section("evaluation", drop=["protocols", "ks"]),  # only the group definitions matter here
        first_stage=lambda wc, input: f"--first-stage $(dirname {input.first_stage})" if "first_stage" in input.keys() else "",
    conda:
        ITR_ENV
    log:
        "logs/rerank_score/{method}_{protocol}.log",
    benchmark:
        "logs/benchmarks/rerank_score/{method}_{protocol}.tsv"
    threads: workflow.cores
    resources:
        mem_mb=6000,
        gpu=1,
    shell:
        "itr rerank score --reranker {input.reranker} {params.first_stage} --data $(dirname {input.data})"
        " --features $(dirname {input.features}) --config {params.cfg} --eval-config {params.eval_cfg}"
        " --protocol {wildcards.protocol} --out {output} --threads {threads} > {log} 2>&1"


# COOP rows: the k = rerank.k cell (Table 1) and the Table 8 (k) and Table 9 (fusion) cells.
rule rerank_evaluate_coop:
    input:
        RERANK_SCORES,
    output:
        main=EVAL_METRICS,
        variants=variant_metrics("{method}", "{protocol}"),
    wildcard_constraints:
        method="|".join(COOP_METHODS),
    params:
        cfg=section("rerank"),
        eval_cfg=section("evaluation", drop=["protocols"]),
        tracking=section("tracking"),
        variants="--variants-dir results/metrics/rfrs/{method}/{protocol}",
    conda:
        ITR_ENV
    log:
        "logs/rerank_evaluate/{method}_{protocol}.log",
    benchmark:
        "logs/benchmarks/rerank_evaluate/{method}_{protocol}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        RERANK_EVALUATE


# CE rows: every pair scored, so there is no k and no fusion.
rule rerank_evaluate_all_pairs:
    input:
        RERANK_SCORES,
    output:
        main=EVAL_METRICS,
    wildcard_constraints:
        method="|".join(m for m in RERANK if m not in COOP_METHODS),
    params:
        cfg=section("rerank"),
        eval_cfg=section("evaluation", drop=["protocols"]),
        tracking=section("tracking"),
        variants="",
    conda:
        ITR_ENV
    log:
        "logs/rerank_evaluate/{method}_{protocol}.log",
    benchmark:
        "logs/benchmarks/rerank_evaluate/{method}_{protocol}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        RERANK_EVALUATE
