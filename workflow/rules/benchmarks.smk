# Query latency and full-evaluation cost of a BE and a CE (the models a paper's plan names as
# latency_models), measured by benchmarks/latency.py (JSON first).
LATENCY_MODELS = [plan.latency_models for plan in PAPER_PLANS.values() if plan.latency_models]
if len(LATENCY_MODELS) > 1:
    raise ValueError("two papers ask for the latency benchmark: give LATENCY_BENCHMARK a file per paper first")


rule benchmark_latency:
    input:
        **(LATENCY_MODELS[0] if LATENCY_MODELS else {}),
        **data_inputs(MAIN),
        script="benchmarks/latency.py",
    output:
        LATENCY,
    params:
        code=CODE["benchmark_latency"],
        upstream=upstream(lambda wc: [*(LATENCY_MODELS[0].values() if LATENCY_MODELS else []),
                                      *data_inputs(MAIN).values()]),
        cfg=section("benchmark"),
    conda:
        ITR_ENV
    log:
        "logs/benchmark_latency.log",
    benchmark:
        "logs/benchmarks/benchmark_latency.tsv"
    threads: workflow.cores
    resources:
        mem_mb=16000,
    shell:
        "python {input.script} --be {input.be} --ce {input.ce} --data $(dirname {input.data})"
        " --features $(dirname {input.features}) --config {params.cfg} --out {output} --threads {threads}"
        " > {log} 2>&1"



# Total inference time of whole evaluations (a paper's Plan.timing: its rows, on one protocol), every method
# timed and scored in one run by benchmarks/inference_time.py (JSON first).
rule benchmark_inference_time:
    input:
        models=timing_models,
        **data_inputs(MAIN),
        script="benchmarks/inference_time.py",
    output:
        INFERENCE,
    wildcard_constraints:
        paper="|".join(TIMINGS) or "(?!)",  # (?!): no paper times anything
    params:
        code=CODE["benchmark_inference_time"],
        upstream=upstream(lambda wc: [*timing_models(wc), *data_inputs(MAIN).values()]),
        methods=lambda wc: shlex.quote(json.dumps(timed_methods(wc))),
        protocol=lambda wc: TIMINGS[wc.paper].protocol,
        eval_cfg=section("evaluation"),
        index_cfg=section("index"),
    conda:
        ITR_ENV
    log:
        "logs/benchmark_inference_time/{paper}.log",
    benchmark:
        "logs/benchmarks/benchmark_inference_time/{paper}.tsv"
    threads: workflow.cores
    resources:
        mem_mb=16000,
    shell:
        "python {input.script} --data $(dirname {input.data}) --features $(dirname {input.features})"
        " --protocol {params.protocol} --methods {params.methods} --eval-config {params.eval_cfg}"
        " --index-config {params.index_cfg} --out {output} --threads {threads} > {log} 2>&1"


# What a soft-label variant's teachers and losses cost in training (CUSA's appendix Tables 12-13): modules and
# optimiser steps timed in one run by benchmarks/softlabel_cost.py, with every core (nothing runs beside it).
rule benchmark_softlabel_cost:
    input:
        unpack(softlabel_cost_inputs),
        script="benchmarks/softlabel_cost.py",
    output:
        SOFTLABEL_COST,
    params:
        code=CODE["benchmark_softlabel_cost"],
        upstream=upstream(softlabel_cost_inputs),
        cfg=lambda wc: section("softlabel", **VARIANTS[wc.variant]["overrides"]),
        text=lambda wc: section("text_encoder", **VARIANTS[wc.variant].get("text", {})),
    conda:
        ITR_ENV
    log:
        "logs/benchmark_softlabel_cost/{variant}.log",
    benchmark:
        "logs/benchmarks/benchmark_softlabel_cost/{variant}.tsv"
    threads: workflow.cores
    resources:
        mem_mb=16000,
    shell:
        "python {input.script} --data $(dirname {input.data}) --features $(dirname {input.features})"
        " --detector {input.detector} --teacher {input.teacher} --config {params.cfg} --text-encoder {params.text}"
        " --out {output} --threads {threads} > {log} 2>&1"
