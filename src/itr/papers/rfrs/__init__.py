"""Geigle et al., *Retrieve Fast, Rerank Smart* (TACL 2022): BE, CE, SEP+COOP and JOINT+COOP.

Mapping, deviations, results and claims: docs/rfrs.md. This package holds what is particular to the
paper: its reported numbers (``reported.yaml``), its plan (``plan``: variants, collections, table cells),
the table and figure builders (``tables``, ``latency``, ``figures``), its claims (``claims``) and the
expected scores of the default params (``expected_scores.yaml``).
"""
from itr.papers import Paper, Target

PAPER = Paper(
    name="rfrs",
    title="Retrieve Fast, Rerank Smart (Geigle et al., TACL 2022)",
    headline="table1",
    headline_claims="claims:headline_claims",
    targets=(
        Target("table1", "tables:build_table1"),
        Target("table2", "tables:build_table2"),
        Target("table3", "latency:build_table3"),
        Target("table4", "latency:build_table4"),
        Target("table5", "tables:build_table5"),
        Target("table6", "tables:build_table6"),
        Target("table7", "tables:build_table7"),
        Target("table8", "tables:build_table8"),
        Target("table9", "tables:build_table9"),
        Target("figure3", "figures:build_figure3", png=True),
        Target("figure4", "figures:build_figure4", png=True),
        Target("appendix9", "figures:build_appendix9"),
        Target("appendix10", "figures:build_appendix10"),
        Target("claims", "claims:build_claims"),
    ),
    # every key its plan and its rules read (shapes.n_train and captions_per_image: Figure 3's and Table 2's
    # captions); data, detector and features belong to the shared stages
    params=("seed", "shapes.n_train", "shapes.captions_per_image", "text_encoder", "be", "ce", "joint", "rerank",
            "index", "evaluation", "benchmark", "tracking", "auxiliary", "ablations", "shift", "multilingual"),
)
