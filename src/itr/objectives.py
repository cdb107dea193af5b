"""Training objectives: what one update of each method computes, and how each is validated.

* ``triplet`` (BE): in-batch hardest-negative triplet loss on the two embeddings (margin 0.1);
* ``match`` (CE): binary cross-entropy on one positive and one sampled negative per caption;
* ``triplet_ance`` (T_ANCE, optional): triplet loss on negatives sampled from the model's own
  top-k neighbours (itr.mining), mined again before every epoch; ``match`` draws some of its
  negatives from the same lists when ``ance_p`` > 0 (E_ANCE);
* ``cmc`` (a dual transformer, itr.models.dual): the Consistent Multimodal Contrastive loss on the global
  and the local similarity (Liu et al. 2023, eq. 7);
* ``disentangled`` (itr.models.disentangled): the max-violation hinge on the alignment scores, and on the matching
  head the same hinge or ListNet distillation from the alignment scores (Messina et al. 2022), weighted;
* ``softlabel`` (itr.models.softlabel): multi-positive ITC plus soft-label alignment to uni-modal teachers (Huang et
  al. 2024), weighted.

Each objective has ``loss(rows, step)`` for a batch of training caption rows and ``validate(val, store, device)``,
which returns metrics with an ``rsum`` (the training loop keeps the epoch with the best mean rsum; itr.training).

Example:
    >>> [cls.__name__ for cls in objectives_of("joint", JointConfig())]
    ['TripletObjective', 'MatchObjective']
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from itr.distributed import gather, shard, share, world
from itr.errors import InputError
from itr.features.store import FeatureStore
from itr.losses import (batch_hard_triplet_loss, cmc_loss, cross_softlabel_alignment, listnet_distillation,
                        match_bce_loss, max_violation_hinge, multi_positive_itc, sampled_triplet_loss,
                        uni_softlabel_alignment)
from itr.metrics import evaluate_rankings
from itr.mining import HardNegatives, mine_hard_negatives
from itr.models.encode import (
    CaptionSet,
    caption_token_sets,
    embed_captions,
    embed_images,
    exact_metrics,
    image_batch,
    image_inputs,
    image_token_sets,
    local_score_matrix,
    reads_tags,
    score_pairs,
)
from itr.sampling import sample_match_pairs

VAL_KS = (1, 5, 10)


def validate(model, val: CaptionSet, store: FeatureStore, device, batch_size: int = 256) -> dict[str, float]:
    """Bi-encoder validation: exact search over every val image and caption."""
    images = val.unique_images
    img = embed_images(model, store, images, batch_size, device)
    cap = embed_captions(model, val, batch_size, device)
    return exact_metrics(img, cap, images, val.image_ids, VAL_KS)


def validate_match(model, val: CaptionSet, store: FeatureStore, device, n_images: int,
                   batch_size: int = 256) -> dict[str, float]:
    """Cross-encoder validation: all pairs of the first ``n_images`` val images and their first captions."""
    images = val.unique_images[:n_images]
    first_row = {}
    for row, iid in enumerate(val.image_ids):
        first_row.setdefault(iid, row)
    rows = np.array([first_row[i] for i in images])  # (n,)
    n = len(images)
    grid_rows, grid_images = np.repeat(rows, n), images * n  # caption-major (n*n,) pairs
    scores = score_pairs(model, val, grid_rows, store, grid_images, batch_size, device).reshape(n, n)  # (cap, img)
    k = min(max(VAL_KS), n)
    t2i = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    i2t = np.argsort(-scores.T, axis=1, kind="stable")[:, :k]
    return evaluate_rankings(t2i, i2t, images, images, VAL_KS)


class _Objective:
    """What every objective shares: its data, a batch size, and (when it mines) the current hard negatives."""
    name = ""
    validates = True  # scored on val after every epoch (and part of checkpoint selection)
    needs_mining = False

    def __init__(self, cfg, model, train: CaptionSet, store: FeatureStore, device, text_teacher=None,
                 image_teacher=None):
        self.cfg, self.model, self.train, self.store, self.device = cfg, model, train, store, device
        # soft-label students' teachers (itr.teachers): TextTeacher by training caption row, ImageTeacher by image id
        self.text_teacher, self.image_teacher = text_teacher, image_teacher
        self.images = train.unique_images
        self.labels = {iid: n for n, iid in enumerate(self.images)}
        self.caption_labels = np.array([self.labels[i] for i in train.image_ids])  # (N,)
        self.batch_size = cfg.batch_size
        self.hard: HardNegatives | None = None


class TripletObjective(_Objective):
    """BE updates: embed the batch's captions and images, triplet loss with in-batch negatives."""
    name = "be"

    def loss(self, rows: np.ndarray, step: int) -> torch.Tensor:
        mine = shard(rows)  # this process's rows of the batch (all of them without torchrun; itr.distributed)
        ids, mask = self.train.batch(mine)
        text = self.model.embed_text(ids.to(self.device), mask.to(self.device))  # (b, H)
        image = self.model.embed_image(*image_inputs(image_batch(self.store, [self.train.image_ids[r] for r in mine],
                                                                 self.device)))  # (b, H)
        text, image = gather(text), gather(image)  # (B, H): every process's rows, the in-batch negatives
        y = torch.tensor([self.labels[self.train.image_ids[r]] for r in rows], device=self.device)
        return batch_hard_triplet_loss(text.float(), image.float(), y, self.cfg.margin,
                                       hardest=step >= self.cfg.all_negatives_warmup_steps)

    def validate(self, val, store, device) -> dict[str, float]:
        return validate(self.model, val, store, device)


class SampledTripletObjective(_Objective):
    """T_ANCE updates: each positive pair against negatives sampled from the mined neighbour lists."""
    name = "be_ance"
    validates = False  # the same embeddings as the triplet objective, which validates them
    needs_mining = True

    def __init__(self, *args):
        super().__init__(*args)
        self.batch_size = self.cfg.ance_batch_size

    def loss(self, rows: np.ndarray, step: int) -> torch.Tensor:
        rng = np.random.default_rng([self.cfg.seed, step, 11])
        n, b = self.cfg.ance_negatives, len(rows)
        own = self.caption_labels[rows]  # (B,)
        neg_images = self.hard.sample_images(rows, n, rng)  # (B, n) labels
        neg_captions = self.hard.sample_captions(own, n, rng)  # (B, n) rows
        total, mine = b, shard(np.arange(b))  # drawn for the whole batch (every process draws alike), then sliced
        rows, own, neg_images, neg_captions, b = rows[mine], own[mine], neg_images[mine], neg_captions[mine], len(mine)
        ids, mask = self.train.batch(np.concatenate([rows, neg_captions.ravel()]))
        text = self.model.embed_text(ids.to(self.device), mask.to(self.device))  # (b + b*n, H)
        image_ids = [self.images[i] for i in np.concatenate([own, neg_images.ravel()])]
        image = self.model.embed_image(*image_inputs(image_batch(self.store, image_ids, self.device)))  # (b + b*n, H)
        h = text.shape[-1]
        loss = sampled_triplet_loss(text[:b].float(), image[:b].float(), text[b:].float().view(b, n, h),
                                    image[b:].float().view(b, n, h), self.cfg.margin)
        return _weighted(loss, b, total)


class MatchObjective(_Objective):
    """CE updates: each caption gives a positive and a sampled negative pair; BCE on the match logits."""
    name = "ce"

    def __init__(self, *args):
        super().__init__(*args)
        self.needs_mining = self.cfg.ance_p > 0

    def loss(self, rows: np.ndarray, step: int) -> torch.Tensor:
        rng = np.random.default_rng([self.cfg.seed, step, 7])  # per step: a resumed run draws the same pairs
        hard_images = hard_captions = None
        if self.needs_mining:  # one mined candidate per caption (E_ANCE), from its own generator
            hard_rng = np.random.default_rng([self.cfg.seed, step, 13])
            hard_images = self.hard.sample_images(rows, 1, hard_rng)[:, 0]
            hard_captions = self.hard.sample_captions(self.caption_labels[rows], 1, hard_rng)[:, 0]
        cap_rows, img_labels, y = sample_match_pairs(rows, self.caption_labels, len(self.images), rng,
                                                     self.cfg.p_replace_image, hard_images, hard_captions,
                                                     self.cfg.ance_p)
        mine = shard(np.arange(len(y)))  # the pairs are drawn for the whole batch, then sliced per process
        cap_rows, img_labels, targets = cap_rows[mine], img_labels[mine], y[mine]
        ids, mask = self.train.batch(cap_rows)
        images = image_batch(self.store, [self.images[i] for i in img_labels], self.device)
        logits = self.model.match_logits(ids.to(self.device), mask.to(self.device), *image_inputs(images))  # (2b,)
        return _weighted(match_bce_loss(logits, torch.from_numpy(targets).to(self.device)), len(mine), len(y))

    def validate(self, val, store, device) -> dict[str, float]:
        return validate_match(self.model, val, store, device, self.cfg.val_images)


def validate_local(model, val: CaptionSet, store: FeatureStore, device, batch_size: int = 256) -> dict[str, float]:
    """Late-interaction validation: the local similarity of every val caption with every val image."""
    images = val.unique_images
    text, text_local = caption_token_sets(model, val, np.arange(len(val)), batch_size, device)  # (N, T, d)
    image, image_local = image_token_sets(model, store, images, batch_size, device)  # (M, 1 + R, d)
    scores = local_score_matrix(model, image, image_local, text, text_local).numpy()  # (M, N)
    k = min(max(VAL_KS), len(images))
    t2i = np.argsort(-scores.T, axis=1, kind="stable")[:, :k]
    i2t = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return evaluate_rankings(t2i, i2t, val.image_ids, images, VAL_KS)


class CMCObjective(_Objective):
    """Dual-transformer updates: L_cmc(S_g) + L_cmc(S_l) on the batch's token sets (Liu et al. 2023, eq. 7).

    ``loss_on`` "global" or "local" keeps one of the two terms (Table VI trains them separately). With
    ``intra="released"`` the local loss is the hinge alone, as in the released code, whose intra-modal term
    sits in the global loss only.
    """
    name = "cmc"

    def loss(self, rows: np.ndarray, step: int) -> torch.Tensor:
        cfg, dev = self.cfg, self.device
        if world()[1] > 1:
            raise InputError("cmc training runs in one process: its local similarities are not gathered across "
                             "processes; give the train rule one GPU")
        ids, mask = self.train.batch(rows)
        image_ids = [self.train.image_ids[r] for r in rows]
        text, text_local = self.model.text_tokens(ids.to(dev), mask.to(dev))  # (B, T, d)
        image, image_local = self.model.image_tokens(*image_inputs(image_batch(self.store, image_ids, dev)))
        y = torch.tensor([self.labels[i] for i in image_ids], device=dev)
        loss = torch.zeros((), device=dev)
        if cfg.loss_on in ("both", "global"):
            t, v = text[:, 0].float(), image[:, 0].float()  # (B, d) unit global embeddings: S_g is a dot product
            loss = loss + cmc_loss(v @ t.T, v @ v.T, t @ t.T, y, cfg.margin, cfg.slack, cfg.intra)
        if cfg.loss_on in ("both", "local"):
            local = self.model.local_scores
            intra = "none" if cfg.intra == "released" else cfg.intra
            same = (local(image, image_local, image, image_local), local(text, text_local, text, text_local)) \
                if intra == "paper" else (None, None)  # (B, B) image-image and caption-caption S_l
            loss = loss + cmc_loss(local(image, image_local, text, text_local), *same, y, cfg.margin, cfg.slack,
                                   intra)
        return loss

    def validate(self, val, store, device) -> dict[str, float]:
        """Global (exact search) and local (all pairs) retrieval on val; ``rsum`` is that of the trained similarity
        (their mean when both are trained)."""
        g, loc = validate(self.model, val, store, device), validate_local(self.model, val, store, device)
        selected = {"both": (g["rsum"] + loc["rsum"]) / 2, "global": g["rsum"], "local": loc["rsum"]}
        return {"rsum": selected[self.cfg.loss_on], **{f"global/{k}": x for k, x in g.items()},
                **{f"local/{k}": x for k, x in loc.items()}}


class DisentangledObjective(_Objective):
    """Two heads on one disentangled backbone (Messina et al. 2022, §3.4), each term weighted by ``loss_weights``:

    * alignment: the max-violation hinge (margin 0.2) on the (B, B) alignment scores A;
    * triplet: the same hinge on the matching head's dot products M;
    * distill: ListNet from A (teacher, detached: no gradient reaches the alignment path) to tau * M, from epoch
      ``distill_after_epochs`` on.

    Validation scores both heads on val; checkpoints are selected by the matching head's rsum when a matching loss
    trains (the paper's selection), else by the alignment head's.
    """
    name = "disentangled"

    def __init__(self, *args):
        super().__init__(*args)
        self.steps_per_epoch = self.cfg.epoch_steps(len(self.train))

    def loss(self, rows: np.ndarray, step: int) -> torch.Tensor:
        cfg, dev, model, w = self.cfg, self.device, self.model, self.cfg.loss_weights
        if world()[1] > 1:
            raise InputError("disentangled training runs in one process: its (B, B) alignment scores are not "
                             "gathered across processes; give the train rule one GPU")
        ids, mask = self.train.batch(rows)
        ids, mask = ids.to(dev), mask.to(dev)
        image_ids = [self.train.image_ids[r] for r in rows]
        text, words = model.text_tokens(ids, mask)  # (B, T, H), (B, T)
        image, regions = model.image_tokens(*image_inputs(image_batch(self.store, image_ids, dev, reads_tags(model))))
        y = torch.tensor([self.labels[i] for i in image_ids], device=dev)
        distill = w["distill"] > 0 and step // self.steps_per_epoch >= cfg.distill_after_epochs
        loss = torch.zeros((), device=dev)
        alignment = None
        if w["alignment"] > 0 or distill:
            alignment = model.alignment(image.float(), regions, text.float(), words)  # (B images, B captions)
        if w["alignment"] > 0:
            loss = loss + w["alignment"] * max_violation_hinge(alignment, y, cfg.margin)
        if w["triplet"] > 0 or distill:
            matching = model.match_image(image, regions) @ model.match_text(text, mask).T  # (B, B)
            if w["triplet"] > 0:
                loss = loss + w["triplet"] * max_violation_hinge(matching.float(), y, cfg.margin)
            if distill:
                loss = loss + w["distill"] * listnet_distillation(alignment, matching.float(), cfg.tau)
        return loss

    def validate(self, val, store, device) -> dict[str, float]:
        matching, alignment = validate(self.model, val, store, device), validate_local(self.model, val, store, device)
        return {"rsum": (matching if self.cfg.trains_matching else alignment)["rsum"],
                **{f"matching/{k}": x for k, x in matching.items()}, **{f"alignment/{k}": x for k, x in alignment.items()}}


class SoftLabelObjective(_Objective):
    """A soft-label student's update (Huang et al. 2024): ITC + alpha * CSA + beta * USA on one batch.

    ITC on the cross-modal heads' (B images, B captions) cosines; CSA pulls their rows toward the image teacher's
    image-image and their columns toward the text teacher's caption-caption softmax; USA pulls the uni-modal heads'
    image-image and caption-caption cosines toward the same teachers. Validation: retrieval with the cross-modal heads.
    """
    name = "softlabel"

    def loss(self, rows: np.ndarray, step: int) -> torch.Tensor:
        cfg, dev, model = self.cfg, self.device, self.model
        if world()[1] > 1:  # the release's configs do not gather either, but its batches are per GPU: keep it exact
            raise InputError("softlabel training runs in one process: its (B, B) similarities are not gathered across "
                             "processes; give the train rule one GPU")
        model.clamp_temperatures()
        ids, mask = self.train.batch(rows)
        image_ids = [self.train.image_ids[r] for r in rows]
        batch = image_batch(self.store, image_ids, dev)
        text = model.text_features(ids.to(dev), mask.to(dev)).float()  # (B, H) before the heads
        image = model.image_features(*image_inputs(batch)).float()  # (B, H)
        cross = F.normalize(model.cross_image_head(image), dim=-1) @ F.normalize(model.cross_text_head(text), dim=-1).T
        y = torch.tensor([self.labels[i] for i in image_ids], device=dev)
        loss = multi_positive_itc(cross, y, model.itc_tau, released_mean=cfg.itc_reduction == "mean")  # (B, B) in
        if cfg.alpha == 0 and cfg.beta == 0:
            return loss
        image_t = self.image_teacher(image_ids).to(dev)  # (B, D): a detector store's whole-image features
        text_t = self.text_teacher(rows).to(dev)  # (B, D'): the text teacher's, captions only
        image_sim, text_sim = image_t @ image_t.T, text_t @ text_t.T  # (B, B) each
        if cfg.alpha > 0:
            loss = loss + cfg.alpha * cross_softlabel_alignment(cross, image_sim, text_sim, model.csa_tau, cfg.teacher_tau)
        if cfg.beta > 0:
            uni_image = F.normalize(model.uni_image_head(image), dim=-1)
            uni_text = F.normalize(model.uni_text_head(text), dim=-1)
            loss = loss + cfg.beta * uni_softlabel_alignment(uni_image @ uni_image.T, uni_text @ uni_text.T, image_sim,
                                                             text_sim, model.usa_image_tau, model.usa_text_tau,
                                                             cfg.teacher_tau)
        return loss

    def validate(self, val, store, device) -> dict[str, float]:
        return validate(self.model, val, store, device)


def _weighted(loss: torch.Tensor, n_local: int, n_total: int) -> torch.Tensor:
    """A mean over this process's slice, weighted so that averaging over processes gives the batch mean."""
    weight = share(n_local, n_total)
    return loss if weight == 1.0 else loss * weight


def objectives_of(method: str, cfg) -> list[type]:
    """The objectives one training step runs, in order."""
    triplet = [TripletObjective] + ([SampledTripletObjective] if getattr(cfg, "ance_triplet", False) else [])
    return {"be": triplet, "ce": [MatchObjective], "joint": triplet + [MatchObjective], "cmc": [CMCObjective],
            "disentangled": [DisentangledObjective], "softlabel": [SoftLabelObjective]}[method]


def mine(model, train: CaptionSet, store: FeatureStore, device, k: int) -> HardNegatives:
    """Hard negative lists of the training set under the current model (ANCE)."""
    images = train.unique_images
    label = {iid: n for n, iid in enumerate(images)}
    caption_vecs = embed_captions(model, train, 256, device)  # (N, H)
    image_vecs = embed_images(model, store, images, 256, device)  # (M, H)
    model.train()
    return mine_hard_negatives(caption_vecs, image_vecs, np.array([label[i] for i in train.image_ids]), k)
