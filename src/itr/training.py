"""Bi-encoder training loop: triplet loss, AdamW, linear decay, selection on validation.

Follows the released configs of Geigle et al. (2022): AdamW with weight decay 0.05 (not on
biases and LayerNorm), linear decay to zero without warmup, gradient clipping at 1.0, and
the in-batch hardest-negative triplet loss with margin 0.1. After every epoch the model is
scored on the *validation* split (rsum, exact search) and the best epoch is kept; the test
split is never looked at here.

Training state (model, optimizer, scheduler, RNG, history, best so far) is saved after
every epoch to ``state_dir/last.pt``, so a killed job resumes at the next epoch.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from itr.atomic import replacing
from itr.checkpoint import resume_state, save_checkpoint
from itr.config import BEConfig
from itr.features.store import FeatureStore
from itr.losses import batch_hard_triplet_loss
from itr.retrieval import CaptionSet, embed_captions, embed_images, exact_metrics, image_batch, image_inputs

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
    images = val.unique_images
    img = embed_images(model, store, images, batch_size, device)
    cap = embed_captions(model, val, batch_size, device)
    return exact_metrics(img, cap, images, val.image_ids, VAL_KS)


def train_bi_encoder(cfg: BEConfig, model: nn.Module, train: CaptionSet, val: CaptionSet, store: FeatureStore,
                     state_dir: Path, device, extra_state: dict, log=print, track=None) -> dict:
    """Train, keep the best validation epoch in state_dir/best.pt, and return a summary.

    Args:
        extra_state: saved into every checkpoint (architecture, text encoder path, ...).
        track: optional callable(metrics: dict, step: int) mirroring metrics to a tracker.
    """
    steps_per_epoch = (len(train) + cfg.batch_size - 1) // cfg.batch_size
    opt = adamw_no_decay_on_norms(model, cfg.lr, cfg.weight_decay)
    sched = linear_decay(opt, cfg.epochs * steps_per_epoch)
    state_dir.mkdir(parents=True, exist_ok=True)
    last, best = state_dir / "last.pt", state_dir / "best.pt"
    history: list[dict] = []
    start_epoch, best_rsum, best_epoch = 0, -1.0, -1
    state = resume_state(last, cfg.to_dict(), log)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, best_rsum, best_epoch = state["epoch"] + 1, state["best_rsum"], state["best_epoch"]
        history = state["history"]
        log(f"resuming from {last}: epochs 0..{state['epoch']} done, best val rsum {best_rsum:.2f}")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    labels = {iid: n for n, iid in enumerate(train.unique_images)}
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train))
        t0, losses = time.time(), []
        for s in tqdm(range(steps_per_epoch), desc=f"BE epoch {epoch}", mininterval=10):
            rows = order[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            ids, mask = train.batch(rows)
            image_ids = [train.image_ids[r] for r in rows]
            step = epoch * steps_per_epoch + s
            with autocast:
                text = model.embed_text(ids.to(device), mask.to(device))  # (B, H)
                image = model.embed_image(*image_inputs(image_batch(store, image_ids, device)))  # (B, H)
                y = torch.tensor([labels[i] for i in image_ids], device=device)
                loss = batch_hard_triplet_loss(text.float(), image.float(), y, cfg.margin,
                                               hardest=step >= cfg.all_negatives_warmup_steps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            losses.append(loss.item())
            if track and (s % 10 == 0 or s == steps_per_epoch - 1):
                track({"train/loss": losses[-1], "train/lr": sched.get_last_lr()[0]}, step)
        with autocast:
            val_metrics = validate(model, val, store, device)
        row = {"epoch": epoch, "step": (epoch + 1) * steps_per_epoch, "train_loss": float(np.mean(losses)),
               "epoch_seconds": round(time.time() - t0, 1), **{f"val/{k}": v for k, v in val_metrics.items()}}
        history.append(row)
        log(f"epoch {epoch}: loss {row['train_loss']:.4f}, val rsum {val_metrics['rsum']:.2f} "
            f"({row['epoch_seconds']} s)")
        if val_metrics["rsum"] > best_rsum:
            best_rsum, best_epoch = val_metrics["rsum"], epoch
            save_checkpoint(best, {"model": model.state_dict(), "epoch": epoch, "val": val_metrics, **extra_state})
        save_checkpoint(last, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
                               "epoch": epoch, "best_rsum": best_rsum, "best_epoch": best_epoch,
                               "history": history, "config": cfg.to_dict()})
        if track:  # after the checkpoint: a tracker failure must not lose a finished epoch
            track({k: v for k, v in row.items() if k.startswith("val/") or k == "train_loss"}, row["step"])
    return {"best_epoch": best_epoch, "best_val_rsum": best_rsum, "history": history, "best_path": best}


def publish_best(state_dir: Path, out_path: Path) -> None:
    """Copy the selected checkpoint to the rule's declared output (atomically)."""
    with replacing(out_path) as tmp:
        shutil.copyfile(state_dir / "best.pt", tmp)
