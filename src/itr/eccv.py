"""ECCV Caption (Chun et al., ECCV 2022): COCO's 5K test queries re-judged by annotators and models, so that a
caption's near-duplicate images (and an image's near-duplicate captions) count as positives.

The ground truth and the metric code are the ``eccv-caption`` package's (its ``Metrics``), as released; this module
only hands it our rankings under COCO's own ids and names the results in our scheme: ``eccv/t2i/R@1``,
``eccv/t2i/mAP@R``, ``eccv/t2i/R-P`` and the same for ``i2t``, in percent. The queries are the 1,332 captions and
1,261 images that ECCV Caption judged, all from COCO's Karpathy 5K test split; a collection holds them when its
image ids are COCO ids (``cocoid``) and its caption ids COCO caption ids (Karpathy's ``sentid``, which are those),
as ``itr data import --format karpathy`` writes them for COCO.

Rankings must be at least ``DEPTH`` deep: mAP@R and R-precision look at the top R items, R = the number of a
query's positives (at most 48). A shorter ranking (a shortlist) is padded with ids that match nothing, so what a
first stage missed counts as missed.

Example:
    >>> eccv_metrics(t2i={552666: [445512, ...]}, i2t={373119: [560256, ...]})   # every ECCV query, COCO ids
    {'eccv/t2i/R@1': 61.2, 'eccv/t2i/mAP@R': 32.0, 'eccv/t2i/R-P': 42.1, 'eccv/i2t/R@1': ..., ...}
"""
from __future__ import annotations

import functools
import warnings

DEPTH = 50  # the most positives of any ECCV Caption query: 48 captions of one image
NAMES = {"eccv_r1": "R@1", "eccv_map_at_r": "mAP@R", "eccv_rprecision": "R-P"}


@functools.cache
def _metrics():
    with warnings.catch_warnings():  # the package warns when the optional ujson is missing; json serves
        warnings.simplefilter("ignore")
        from eccv_caption import Metrics

        return Metrics()


def queries() -> tuple[set[int], set[int]]:
    """The ids ECCV Caption judged: (caption queries, image queries)."""
    gts = _metrics().eccv_gts
    return set(gts["t2i"]), set(gts["i2t"])


def judges(entry: dict) -> bool:
    """Whether a real dataset's params entry (params ``datasets``) is COCO with Karpathy's splits, whose 5K test split
    holds ECCV Caption's queries."""
    return entry.get("format") == "karpathy" and str(entry.get("annotations", "")).endswith("dataset_coco.json")


def covers(image_ids, caption_ids) -> bool:
    """Whether a collection (string ids, as our datasets keep them) is COCO's Karpathy 5K test split under COCO's
    ids: exactly its images, and every caption COCO's ground truth has."""
    if not all(str(i).isdigit() for i in image_ids) or not all(str(c).isdigit() for c in caption_ids):
        return False
    coco = _metrics().coco_gts  # COCO's own ground truth of the 5K test split: 5,000 images, 25,000 captions
    # every test image and no other; Karpathy's split has 10 captions more than COCO's ground truth (25,010)
    return set(coco["i2t"]) == {int(i) for i in image_ids} and set(coco["t2i"]) <= {int(c) for c in caption_ids}


def eccv_metrics(t2i: dict[int, list[int]], i2t: dict[int, list[int]]) -> dict[str, float]:
    """ECCV Caption's R@1, mAP@R and R-precision, both directions, in percent. ``t2i``: caption id -> ranked image
    ids; ``i2t``: image id -> ranked caption ids; every ECCV query must be there (``queries``)."""
    captions, images = queries()
    missing = sorted(captions - set(t2i))[:3] + sorted(images - set(i2t))[:3]
    if missing:
        raise ValueError(f"ECCV Caption queries {missing} have no ranking; rank COCO's whole Karpathy 5K test split "
                         "(protocol full) under COCO ids")
    pad = [-(n + 1) for n in range(DEPTH)]  # unique ids that match nothing

    def padded(ranked: dict) -> dict:
        return {q: (list(r) + pad)[:max(DEPTH, len(r))] for q, r in ranked.items()}

    scores = _metrics().compute_all_metrics(padded(i2t), padded(t2i), target_metrics=tuple(NAMES), verbose=False)
    return {f"eccv/{d}/{NAMES[m]}": 100.0 * float(scores[m][d]) for m in NAMES for d in ("t2i", "i2t")}
