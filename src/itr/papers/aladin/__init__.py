"""Messina et al., *ALADIN: Distilling Fine-grained Alignment Scores for Efficient Image-Text Matching and
Retrieval* (CBMI 2022): an alignment head on a single-stream backbone run disentangled, and a matching head distilled
from it into an embedding space.

Mapping, deviations, results and claims: docs/aladin.md. This package holds what is particular to the paper: its
reported numbers (``reported.yaml``), its plan (``plan``: the training chain, rows, table cells), the table and figure
builders (``tables``; Figure 2 and the comparison of every method from one benchmark run), its claims (``claims``).
The model, losses and training are shared layers: itr.models.disentangled, itr.losses (max_violation_hinge,
listnet_distillation), itr.objectives (DisentangledObjective).
"""
from itr.papers import Paper, Target

PAPER = Paper(
    name="aladin",
    title="ALADIN (Messina et al., CBMI 2022)",
    headline="table2",  # the distilled space; Table 1's claim needs Figure 2's times, which a seed run does not take
    headline_claims="claims:headline_claims",
    targets=(
        Target("table1", "tables:build_table1"),
        Target("table2", "tables:build_table2"),
        Target("figure2", "tables:build_figure2", png=True),
        Target("comparison_efficiency", "tables:build_comparison"),
        Target("claims", "claims:build_claims"),
    ),
    # every key its plan and rules read: its section; rerank (its rows' second stage and shortlists); dual's
    # two-stage settings (its benchmark times TGDT's rows as their cells run). The other papers' models and cells
    # its tables show are dependencies of its DVC stage.
    params=("seed", "text_encoder", "disentangled", "rerank.k", "rerank.ks", "rerank.batch_size", "rerank.precision",
            "dual.k", "dual.theta", "dual.precision", "index", "evaluation", "tracking"),
)
