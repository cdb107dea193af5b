"""Which registered paper trains a row: a paper names another's rows (its baselines) by method alone.

TGDT's tables set a bi-encoder and a re-ranker beside TGDT; ALADIN starts from a single-stream model and times
every method of every paper. Each of those plans lists the methods it compares with; the registry answers whose
main variant trains each one and with which model, from the rows each paper's plan declares (``EMBEDDING_ROWS``:
method -> model; ``RERANK_ROWS``: method -> (reranker, first stage)). So no paper names another paper's variants,
and renaming a paper's main variant renames it everywhere.

Example:
    >>> owner("tgdt_g"), owner("cusa_dual")
    (('tgdt', 'cmc'), ('cusa', 'softlabel'))
"""
from __future__ import annotations

import importlib

from itr.papers import PAPERS, UnknownPaperError


def owner(method: str) -> tuple[str, str]:
    """(the main variant of the registered paper that declares ``method`` as a row, the model that scores it: the
    embedding model of an embedding row, the reranker of a re-ranked row)."""
    found = []
    for paper in PAPERS:
        plan = importlib.import_module(f"itr.papers.{paper}.plan")
        if method in plan.EMBEDDING_ROWS:
            found.append((plan.MAIN, plan.EMBEDDING_ROWS[method]))
        elif method in getattr(plan, "RERANK_ROWS", {}):
            found.append((plan.MAIN, plan.RERANK_ROWS[method][0]))
    if len(found) != 1:
        raise UnknownPaperError(f"row {method!r} is declared by {len(found)} registered papers' plans, not one "
                                "(EMBEDDING_ROWS / RERANK_ROWS of itr.papers.<paper>.plan); a row names one method")
    return found[0]


def trained_by(methods) -> dict[str, str]:
    """method -> the main variant that trains it, for each of ``methods``."""
    return {m: owner(m)[0] for m in methods}
