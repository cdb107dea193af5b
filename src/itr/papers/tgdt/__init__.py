"""Liu et al., *Token-Guided Dual Transformer* (TGDT, IEEE TIP 2023): dual transformers, global and local
similarity, the CMC loss, two-stage inference.

Mapping, deviations, results and claims: docs/tgdt.md. This package holds what is particular to the paper: its
reported numbers (``reported.yaml``), its plan (``plan``: variants, rows, table cells), the table and figure
builders (``tables``; ``timing`` for Tables IV-V and Figures 1 and 7), its claims (``claims``). The model, loss and two-stage ranking are shared layers: itr.models.dual, itr.losses
(cmc_loss), itr.objectives (CMCObjective) and itr.shortlist (the mix fusion, the released evaluator's rule).
"""
from itr.papers import Paper, Target

PAPER = Paper(
    name="tgdt",
    title="Token-Guided Dual Transformer (Liu et al., IEEE TIP 2023)",
    headline="table1",
    headline_claims="claims:headline_claims",
    targets=(
        Target("table1", "tables:build_table1"),
        Target("table2", "tables:build_table2"),
        Target("table3", "tables:build_table3"),
        Target("table4", "timing:build_table4"),
        Target("table5", "timing:build_table5"),
        Target("table6", "tables:build_table6"),
        Target("figure1", "timing:build_figure1", png=True),
        Target("figure5", "tables:build_figure5", png=True),
        Target("figure6", "tables:build_figure6", png=True),
        Target("figure7", "timing:build_figure7", png=True),
        Target("evaluator", "tables:build_evaluator"),
        Target("claims", "claims:build_claims"),
    ),
    # every key its plan and rules read (rerank.batch_size: its second stage scores with it; rerank.k and
    # rerank.precision: its benchmark times SEP+COOP and the CE as their cells run); the baselines its tables show
    # (Retrieve Fast, Rerank Smart's BE and SEP+COOP cells and models) are dependencies of its DVC stage
    params=("seed", "text_encoder", "dual", "rerank.batch_size", "rerank.k", "rerank.precision", "index",
            "evaluation", "tracking"),
)
