"""Huang et al., *Cross-modal and Uni-modal Soft-label Alignment for Image-Text Retrieval* (CUSA, AAAI 2024; the
appendix's tables): a dual-encoder student trained with ITC plus soft labels from uni-modal teachers.

Mapping, deviations, results and claims: docs/cusa.md. This package holds what is particular to the paper: its
reported numbers (``reported.yaml``), its plan (``plan``: the students trained with ITC alone and with CSA, USA or
both; the table cells), the table builders (``tables``) and its claims (``claims``). The student, the teachers, the losses and the training
are shared layers: itr.models.softlabel, itr.teachers, itr.losses (multi_positive_itc, cross_softlabel_alignment,
uni_softlabel_alignment), itr.objectives (SoftLabelObjective).
"""
from itr.papers import Paper, Target

PAPER = Paper(
    name="cusa",
    title="CUSA (Huang et al., AAAI 2024)",
    headline="table8",
    headline_claims="claims:headline_claims",
    targets=(
        Target("table7", "tables:build_table7"),
        Target("table8", "tables:build_table8"),
        Target("table9", "tables:build_table9"),
        Target("table10", "tables:build_table10"),
        Target("table11", "tables:build_table11"),
        Target("table12", "tables:build_table12"),
        Target("table13", "tables:build_table13"),
        Target("ablations", "tables:build_ablations"),
        Target("claims", "claims:build_claims"),
    ),
    # every key its plan and rules read: its section (the students and the text teacher), the text tower the
    # students start from, and how cells are indexed and evaluated.
    params=("seed", "text_encoder", "softlabel", "index", "evaluation", "tracking"),
)
