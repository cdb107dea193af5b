"""Training loop of BE, CE and JOINT: objectives, AdamW, linear decay, selection on validation.

Follows the released configs of Geigle et al. (2022): AdamW with weight decay 0.05 (not on
biases and LayerNorm), linear decay to zero without warmup, gradient clipping at 1.0.
A model is trained by a list of *objectives*, each with its own data order:

* ``triplet`` (BE): in-batch hardest-negative triplet loss on the two embeddings (margin 0.1);
* ``match`` (CE): binary cross-entropy on one positive and one sampled negative per caption;
* ``triplet_ance`` (T_ANCE, optional): triplet loss on negatives sampled from the model's own
  top-k neighbours (itr.mining), mined again before every epoch; ``match`` draws some of its
  negatives from the same lists when ``ance_p`` > 0 (E_ANCE).

Every step runs each objective in turn, each with its own forward, backward, clipping and
optimizer step on the *shared* weights (the released ``fit()``); the schedule steps once
per step. BE = [triplet], CE = [match], JOINT = [triplet, match]; ``ance_triplet`` adds
triplet_ance after triplet.

After every epoch each objective is scored on the *validation* split (BE: exact search over
all of val; CE: every pair of the first ``val_images`` val images with one caption each, the
paper's "tiny" dev set) and the epoch with the best mean rsum is kept; the test split is
never looked at here.

Training state (model, optimizer, scheduler, RNG, history, best so far) is saved after
every epoch to ``state_dir/last.pt``, so a killed job resumes at the next epoch. The state
records the identity of everything the job read (config, the dataset's and the feature store's
manifest digests, the text encoder settings, the code); a state of any other identity is
discarded, never resumed (itr.checkpoint.resume_state).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from itr.atomic import remove_stale_temporaries, replacing
from itr.checkpoint import resume_state, save_checkpoint
from itr.features.store import FeatureStore
from itr.losses import batch_hard_triplet_loss, match_bce_loss, sampled_triplet_loss
from itr.metrics import evaluate_rankings
from itr.mining import HardNegatives, mine_hard_negatives
from itr.models.encode import (
    CaptionSet,
    embed_captions,
    embed_images,
    exact_metrics,
    image_batch,
    image_inputs,
    score_pairs,
)
from itr.sampling import sample_match_pairs

VAL_KS = (1, 5, 10)


def adamw_no_decay_on_norms(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name or name.endswith(".bias") else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, eps=1e-6)


def linear_decay(optimizer, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / max(1, total_steps)))


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

    def __init__(self, cfg, model, train: CaptionSet, store: FeatureStore, device):
        self.cfg, self.model, self.train, self.store, self.device = cfg, model, train, store, device
        self.images = train.unique_images
        self.labels = {iid: n for n, iid in enumerate(self.images)}
        self.caption_labels = np.array([self.labels[i] for i in train.image_ids])  # (N,)
        self.batch_size = cfg.batch_size
        self.hard: HardNegatives | None = None


class TripletObjective(_Objective):
    """BE updates: embed the batch's captions and images, triplet loss with in-batch negatives."""
    name = "be"

    def loss(self, rows: np.ndarray, step: int) -> torch.Tensor:
        ids, mask = self.train.batch(rows)
        image_ids = [self.train.image_ids[r] for r in rows]
        text = self.model.embed_text(ids.to(self.device), mask.to(self.device))  # (B, H)
        image = self.model.embed_image(*image_inputs(image_batch(self.store, image_ids, self.device)))  # (B, H)
        y = torch.tensor([self.labels[i] for i in image_ids], device=self.device)
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
        ids, mask = self.train.batch(np.concatenate([rows, neg_captions.ravel()]))
        text = self.model.embed_text(ids.to(self.device), mask.to(self.device))  # (B + B*n, H)
        image_ids = [self.images[i] for i in np.concatenate([own, neg_images.ravel()])]
        image = self.model.embed_image(*image_inputs(image_batch(self.store, image_ids, self.device)))  # (B + B*n, H)
        h = text.shape[-1]
        return sampled_triplet_loss(text[:b].float(), image[:b].float(), text[b:].float().view(b, n, h),
                                    image[b:].float().view(b, n, h), self.cfg.margin)


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
        ids, mask = self.train.batch(cap_rows)
        images = image_batch(self.store, [self.images[i] for i in img_labels], self.device)
        logits = self.model.match_logits(ids.to(self.device), mask.to(self.device), *image_inputs(images))  # (2B,)
        return match_bce_loss(logits, torch.from_numpy(y).to(self.device))

    def validate(self, val, store, device) -> dict[str, float]:
        return validate_match(self.model, val, store, device, self.cfg.val_images)


def objectives_of(method: str, cfg) -> list[type]:
    """The objectives one training step runs, in order."""
    triplet = [TripletObjective] + ([SampledTripletObjective] if getattr(cfg, "ance_triplet", False) else [])
    return {"be": triplet, "ce": [MatchObjective], "joint": triplet + [MatchObjective]}[method]


def mine(model, train: CaptionSet, store: FeatureStore, device, k: int) -> HardNegatives:
    """Hard negative lists of the training set under the current model (ANCE)."""
    images = train.unique_images
    label = {iid: n for n, iid in enumerate(images)}
    caption_vecs = embed_captions(model, train, 256, device)  # (N, H)
    image_vecs = embed_images(model, store, images, 256, device)  # (M, H)
    model.train()
    return mine_hard_negatives(caption_vecs, image_vecs, np.array([label[i] for i in train.image_ids]), k)


def train_model(method: str, cfg, model: nn.Module, train: CaptionSet, val: CaptionSet, store: FeatureStore,
                state_dir: Path, device, extra_state: dict, log=print, track=None, inputs: dict | None = None) -> dict:
    """Train ``method`` (be, ce or joint), keep the best validation epoch in state_dir/best.pt, return a summary.

    Args:
        cfg: BEConfig, CEConfig or JointConfig.
        extra_state: saved into every checkpoint (architecture, text encoder path, ...).
        track: optional callable(metrics: dict, step: int) mirroring metrics to a tracker.
        inputs: identities of what else the run reads (upstream digests, code); with the config they key
            the resumable state, so a state saved from other inputs is discarded (train_from_files fills it).
    """
    identity = {"config": cfg.to_dict(), **(inputs or {})}
    objectives = [cls(cfg, model, train, store, device) for cls in objectives_of(method, cfg)]
    full_pass = cfg.full_pass_steps(len(train))
    if cfg.steps_per_epoch > full_pass:
        raise ValueError(f"steps_per_epoch={cfg.steps_per_epoch} exceeds one pass over the {len(train)} training "
                         f"captions ({full_pass} steps of {cfg.batch_size}); lower it or set 0 (= one pass)")
    steps_per_epoch = cfg.steps_per_epoch or full_pass
    opt = adamw_no_decay_on_norms(model, cfg.lr, cfg.weight_decay)
    sched = linear_decay(opt, cfg.epochs * steps_per_epoch)
    state_dir.mkdir(parents=True, exist_ok=True)
    last, best = state_dir / "last.pt", state_dir / "best.pt"
    history: list[dict] = []
    start_epoch, best_score, best_epoch = 0, -1.0, -1
    state = resume_state(last, identity, log)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, best_score, best_epoch = state["epoch"] + 1, state["best_rsum"], state["best_epoch"]
        history = state["history"]
        log(f"resuming from {last}: epochs 0..{state['epoch']} done, best val rsum {best_score:.2f}")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    for epoch in range(start_epoch, cfg.epochs):
        if any(o.needs_mining for o in objectives):
            hard = mine(model, train, store, device, cfg.ance_top_k)
            for o in objectives:
                o.hard = hard
        model.train()
        # One data order per objective; the first one's seed is the BE-only run's, so BE is unchanged by JOINT.
        orders = [np.random.default_rng([cfg.seed, epoch] + ([n] if n else [])).permutation(len(train))
                  for n in range(len(objectives))]
        t0, losses = time.time(), {o.name: [] for o in objectives}
        for s in tqdm(range(steps_per_epoch), desc=f"{method} epoch {epoch}", mininterval=10):
            step = epoch * steps_per_epoch + s
            for objective, order in zip(objectives, orders):
                with autocast:
                    loss = objective.loss(order[s * objective.batch_size:(s + 1) * objective.batch_size], step)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                losses[objective.name].append(loss.item())
            sched.step()
            if track and (s % 10 == 0 or s == steps_per_epoch - 1):
                track({**{_key("train/loss", o.name, objectives): losses[o.name][-1] for o in objectives},
                       "train/lr": sched.get_last_lr()[0]}, step)
        with autocast:
            val_metrics = {o.name: o.validate(val, store, device) for o in objectives if o.validates}
        score = float(np.mean([m["rsum"] for m in val_metrics.values()]))  # the paper's mean over dev evaluators
        row = {"epoch": epoch, "step": (epoch + 1) * steps_per_epoch,
               **{_key("train_loss", o.name, objectives): float(np.mean(losses[o.name])) for o in objectives},
               "epoch_seconds": round(time.time() - t0, 1)}
        validated = [o for o in objectives if o.validates]
        for o in validated:
            row.update({_key("val", o.name, validated) + f"/{k}": v for k, v in val_metrics[o.name].items()})
        row["val/rsum"] = score
        history.append(row)
        log(f"epoch {epoch}: " + ", ".join(f"{o.name} loss {np.mean(losses[o.name]):.4f}" for o in objectives)
            + ", " + ", ".join(f"{name} val rsum {m['rsum']:.2f}" for name, m in val_metrics.items())
            + f" ({row['epoch_seconds']} s)")
        if score > best_score:
            best_score, best_epoch = score, epoch
            save_checkpoint(best, {"model": model.state_dict(), "epoch": epoch, "val": val_metrics, **extra_state})
        save_checkpoint(last, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
                               "epoch": epoch, "best_rsum": best_score, "best_epoch": best_epoch,
                               "history": history, "identity": identity})
        if track:  # after the checkpoint: a tracker failure must not lose a finished epoch
            track({k: v for k, v in row.items() if k.startswith(("val", "train_loss"))}, row["step"])
    return {"best_epoch": best_epoch, "best_val_rsum": best_score, "history": history, "best_path": best}


def _key(prefix: str, name: str, objectives) -> str:
    """Metric names: ``val/rsum`` for a single objective, ``val/be/rsum`` and ``val/ce/rsum`` for JOINT."""
    return prefix if len(objectives) == 1 else f"{prefix}/{name}"


def publish_best(state_dir: Path, out_path: Path) -> None:
    """Copy the selected checkpoint to the rule's declared output (atomically)."""
    with replacing(out_path) as tmp:
        shutil.copyfile(state_dir / "best.pt", tmp)


def train_from_files(method: str, cfg, text_cfg, data, features, state_dir, out, history, device="cpu",
                     log=print, track=None) -> dict:
    """Train a ``method`` model (be, ce, joint) on a dataset directory and its feature store, and publish it.

    The epoch with the best validation rsum becomes ``out``; the per-epoch history goes to ``history``
    (CSV). ``cfg`` is the method's config, ``text_cfg`` a TextEncoderConfig. Returns train_model's result.
    """
    import pandas as pd

    from itr.atomic import write_text
    from itr.data.dataset import dataset_manifest, first_images, read_dataset
    from itr.jobs import state_lock
    from itr.models.encoder import load_encoder
    from itr.provenance import code_digest

    device = torch.device(device)
    store = FeatureStore(features)
    torch.manual_seed(cfg.seed)  # the new image-embedding layers (and the CE head) are initialised here
    model, tokenizer = load_encoder(text_cfg.path, store.dim, match_head=method != "be", layers=text_cfg.layers)
    model.to(device)
    _, train_caps = read_dataset(data, "train")
    _, val_caps = read_dataset(data, "val")
    train = CaptionSet.from_frame(first_images(train_caps, cfg.train_images), tokenizer, text_cfg.max_text_len)
    val = CaptionSet.from_frame(val_caps, tokenizer, text_cfg.max_text_len)
    extra = {"method": method, "architecture": model.architecture(), "text_encoder": text_cfg.to_dict(),
             "features": store.manifest["source"]}
    inputs = {"text_encoder": text_cfg.to_dict(), "data": dataset_manifest(data)["digest"],
              "features": store.manifest["digest"], "code": code_digest("itr.training")}
    with state_lock(state_dir):  # one trainer per state directory
        for where in (Path(state_dir), Path(out).parent):
            remove_stale_temporaries(where)  # a killed run's half-written files (live writers' are kept)
        result = train_model(method, cfg, model, train, val, store, Path(state_dir), device, extra, log=log,
                             track=track, inputs=inputs)
        publish_best(Path(state_dir), Path(out))
    write_text(history, pd.DataFrame(result["history"]).to_csv(index=False))
    log(f"{method}: best epoch {result['best_epoch']}, val rsum {result['best_val_rsum']:.2f}")
    return result
