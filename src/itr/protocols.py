"""Evaluation protocols: which test images each group of a protocol scores, and the label that says so.

Protocols (the label is written into every metrics file):

* ``full``   - every test image and caption (the COCO-5k convention when the test split has 5k images).
* ``folds``  - the test images cut into ``n_folds`` contiguous folds, each searched on its own
               (its images and their captions only), metrics averaged over folds: the
               VSE++/SCAN "COCO 1k, 5-fold" convention.
* ``subset`` - the first ``subset_size`` test images and their captions only: the Oscar/VinVL
               "COCO 1k" convention (a single fixed subset, ``test_img_keys_1k.tsv``).
               ``subset<N>`` (say ``subset100``) takes the first N instead.
* ``extended`` - every test image and caption, judged against the extended ground truth of a generated dataset
               (every caption true of an image is its positive; itr.data.truth) with ECCV Caption's metrics
               (itr.evaluate.extended_of_collection).

Groups are formed over the test images alone; distractors (Table 5 of Geigle et al.) join every
group's search space but are never queries.

Example:
    >>> groups, label = protocol_groups(1000, EvalConfig(n_folds=5), "folds")
    >>> len(groups), label
    (5, 'mean over 5 folds of 200 images')
"""
from __future__ import annotations

import numpy as np

from itr.config import ConfigError, EvalConfig

EXTENDED = "extended"


def protocol_groups(n_images: int, cfg: EvalConfig, protocol: str, first_images: int | None = None
                    ) -> tuple[list[np.ndarray], str]:
    """Image positions of each group the protocol scores, and a human-readable label.

    ``first_images``: the collection holds only the split's first N images (``--first-images``), so
    only ``subset<M>`` with M <= N measures what its name says; anything else is refused.
    """
    subset_size = cfg.subset_images(protocol)
    if first_images is not None:
        if subset_size is None or subset_size > first_images:
            raise ConfigError(f"protocol {protocol!r} needs more of the test split than this collection holds (its first "
                             f"{first_images} images, built with --first-images {first_images}); use subset<M> with "
                             f"M <= {first_images}, or rebuild the index without --first-images")
    if protocol == "full":
        return [np.arange(n_images)], f"full test set ({n_images} images)"
    if protocol == "folds":
        if n_images < cfg.n_folds:
            raise ConfigError(f"{n_images} test images cannot form {cfg.n_folds} folds; lower evaluation.n_folds")
        size = n_images // cfg.n_folds
        return ([np.arange(f * size, (f + 1) * size) for f in range(cfg.n_folds)],
                f"mean over {cfg.n_folds} folds of {size} images")
    if subset_size is not None:
        if subset_size > n_images:  # never cut silently: the label would promise images that are not there
            raise ConfigError(f"protocol {protocol!r} takes the first {subset_size} test images, but the split has "
                             f"{n_images}; lower evaluation.subset_size (or N of subset<N>) or raise shapes.n_test")
        return [np.arange(subset_size)], f"fixed subset: first {subset_size} test images"
    raise ConfigError(f"unknown protocol {protocol!r}; use full, folds, subset (evaluation.subset_size images) "
                     "or subset<N> (the first N)")


def distractor_label(n_distractors: int) -> str:
    """What a protocol label adds for a collection grown with distractors (nothing without any)."""
    return f", searched among {n_distractors} distractor images and their captions" if n_distractors else ""


def smallest_group(n_images: int, cfg: EvalConfig, protocol: str) -> int:
    """Images in the smallest group a protocol scores (raises ConfigError as protocol_groups does)."""
    return min(len(g) for g in protocol_groups(n_images, cfg, protocol)[0])


def protocol_problems(params: dict, protocols) -> list[str]:
    """Why the test split cannot serve these protocols under ``params``, one line per problem (none: fine).

    Every group a protocol scores must hold at least as many images as the deepest list anything ranks:
    the largest R@K of ``evaluation.ks`` and the shortlist depths ``rerank.k`` / ``rerank.ks``. A group of
    fewer images would report R@K = 100 by construction (``shapes.n_test: 1`` gave rsum 600).
    """
    n_test, ev, rr = params["shapes"]["n_test"], params["evaluation"], params["rerank"]
    cfg = EvalConfig.from_dict(ev)
    deepest = max(*ev["ks"], rr["k"], *rr["ks"])
    problems = []
    for protocol in dict.fromkeys(protocols):
        try:
            size = smallest_group(n_test, cfg, protocol)
        except ValueError as e:
            problems.append(str(e))
            continue
        if size < deepest:
            problems.append(f"protocol {protocol!r} scores groups of {size} test images, fewer than the deepest "
                            f"ranking ({deepest}: the largest of evaluation.ks, rerank.k and rerank.ks); raise "
                            "shapes.n_test or the group size, or lower those depths")
    return problems
