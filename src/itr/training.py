"""Training loop: objectives (itr.objectives), AdamW, linear decay, selection on validation.

Follows the released configs of Geigle et al. (2022): AdamW with weight decay 0.05 (not on
biases and LayerNorm), linear decay to zero without warmup, gradient clipping at 1.0; a dual
transformer (``cmc``) gets the same loop with its own params section (weight decay 0 is Adam).
A model is trained by a list of *objectives* (itr.objectives), each with its own data order.

Every step runs each objective in turn, each with its own forward, backward, clipping and
optimizer step on the *shared* weights (the released ``fit()``); the schedule steps once
per step. BE = [triplet], CE = [match], JOINT = [triplet, match]; ``ance_triplet`` adds
triplet_ance after triplet; CMC = [cmc].

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

from itr import distributed
from itr.atomic import remove_stale_temporaries, replacing
from itr.checkpoint import resume_state, save_checkpoint
from itr.features.store import FeatureStore
from itr.machine import fingerprint
from itr.models.encode import CaptionSet
from itr.objectives import mine, objectives_of

def adamw_no_decay_on_norms(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name or name.endswith(".bias") else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, eps=1e-6)


def linear_decay(optimizer, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / max(1, total_steps)))


def train_model(method: str, cfg, model: nn.Module, train: CaptionSet, val: CaptionSet, store: FeatureStore,
                state_dir: Path, device, extra_state: dict, log=print, track=None, inputs: dict | None = None,
                text_teacher=None, image_teacher=None) -> dict:
    """Train ``method`` (be, ce or joint), keep the best validation epoch in state_dir/best.pt, return a summary.

    Args:
        cfg: BEConfig, CEConfig, JointConfig, or the config of a dual transformer (cmc).
        extra_state: saved into every checkpoint (architecture, text encoder path, ...).
        track: optional callable(metrics: dict, step: int) mirroring metrics to a tracker.
        inputs: identities of what else the run reads (upstream digests, code); with the config they key
            the resumable state, so a state saved from other inputs is discarded (train_from_files fills it).
        text_teacher, image_teacher: a soft-label student's teachers (itr.teachers), for the objectives that read them.
    """
    identity = {"config": cfg.to_dict(), **(inputs or {})}
    objectives = [cls(cfg, model, train, store, device, text_teacher, image_teacher)
                  for cls in objectives_of(method, cfg)]
    full_pass = cfg.full_pass_steps(len(train))
    if cfg.steps_per_epoch > full_pass:
        raise ValueError(f"steps_per_epoch={cfg.steps_per_epoch} exceeds one pass over the {len(train)} training "
                         f"captions ({full_pass} steps of {cfg.batch_size}); lower it or set 0 (= one pass)")
    steps_per_epoch = cfg.epoch_steps(len(train))  # 0 when epochs is 0: "epoch 0" validates the initial model
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
    for epoch in range(start_epoch, max(cfg.epochs, 1)):
        if any(o.needs_mining for o in objectives):
            hard = mine(model, train, store, device, cfg.ance_top_k)
            for o in objectives:
                o.hard = hard
        model.train()
        # One data order per objective; the first one's seed is the BE-only run's, so BE is unchanged by JOINT.
        orders = [np.random.default_rng([cfg.seed, epoch] + ([n] if n else [])).permutation(len(train))
                  for n in range(len(objectives))]
        t0, losses = time.time(), {o.name: [] for o in objectives}
        bar = tqdm(range(steps_per_epoch), desc=f"{method} epoch {epoch}", mininterval=10,
                   disable=not distributed.is_main())
        for s in bar:
            step = epoch * steps_per_epoch + s
            for objective, order in zip(objectives, orders):
                rows = order[s * objective.batch_size:(s + 1) * objective.batch_size]
                loss = train_step(model, objective, rows, step, opt, cfg.grad_clip, autocast)
                losses[objective.name].append(distributed.mean(loss))  # the batch's loss under torchrun too
            sched.step()
            # the epoch's running mean so far (a single batch's loss jumps too much to read); shown at the next refresh
            bar.set_postfix({_key("loss", o.name, objectives): f"{_mean(losses[o.name]):.4f}" for o in objectives},
                            refresh=False)
            if track and (s % 10 == 0 or s == steps_per_epoch - 1):
                track({**{_key("train/loss", o.name, objectives): losses[o.name][-1] for o in objectives},
                       "train/lr": sched.get_last_lr()[0]}, step)
        if not distributed.is_main():  # under torchrun rank 0 validates, keeps the best epoch and saves
            distributed.barrier()
            continue
        with autocast:
            val_metrics = {o.name: o.validate(val, store, device) for o in objectives if o.validates}
        score = float(np.mean([m["rsum"] for m in val_metrics.values()]))  # the paper's mean over dev evaluators
        row = {"epoch": epoch, "step": (epoch + 1) * steps_per_epoch,
               **{_key("train_loss", o.name, objectives): _mean(losses[o.name]) for o in objectives},
               "epoch_seconds": round(time.time() - t0, 1)}
        validated = [o for o in objectives if o.validates]
        for o in validated:
            row.update({_key("val", o.name, validated) + f"/{k}": v for k, v in val_metrics[o.name].items()})
        row["val/rsum"] = score
        history.append(row)
        log(f"epoch {epoch}: " + ", ".join(f"{o.name} loss {_mean(losses[o.name]):.4f}" for o in objectives)
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
        distributed.barrier()
    return {"best_epoch": best_epoch, "best_val_rsum": best_score, "history": history, "best_path": best}


def train_step(model: nn.Module, objective, rows: np.ndarray, step: int, opt, grad_clip: float,
               autocast) -> torch.Tensor:
    """One update of ``model`` by ``objective`` on the training rows ``rows``: the loss, its gradient (under torchrun
    the ranks' mean, DDP's), clipped to ``grad_clip``, and the optimiser's step. Returns the loss."""
    with autocast:
        loss = objective.loss(rows, step)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    distributed.average_gradients(model.parameters())  # torchrun: the ranks' mean (DDP's); else nothing
    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return loss


def _mean(losses: list[float]) -> float:
    """An epoch's mean loss; NaN for an epoch without steps (epochs: 0 validates the initial model)."""
    return float(np.mean(losses)) if losses else float("nan")


def _key(prefix: str, name: str, objectives) -> str:
    """Metric names: ``val/rsum`` for a single objective, ``val/be/rsum`` and ``val/ce/rsum`` for JOINT."""
    return prefix if len(objectives) == 1 else f"{prefix}/{name}"


def publish_best(state_dir: Path, out_path: Path) -> None:
    """Copy the selected checkpoint to the rule's declared output (atomically)."""
    with replacing(out_path) as tmp:
        shutil.copyfile(state_dir / "best.pt", tmp)


def build_model(method: str, cfg, text_cfg, store: FeatureStore, init=None) -> tuple[nn.Module, object]:
    """The untrained model of a method -> (model, tokenizer): new image layers (and heads) on the pretrained text
    tower, or for ``disentangled`` the two heads on the trained checkpoint ``init``. Seeded by ``cfg.seed``."""
    from itr.models.dual import load_dual
    from itr.models.encoder import load_encoder

    torch.manual_seed(cfg.seed)  # the new image-embedding layers (and the CE head) are initialised here
    if (init is not None) != (method == "disentangled"):
        need = "starts from no checkpoint (drop --init)" if init else "needs --init: the trained checkpoint it fine-tunes"
        raise ValueError(f"{method} training {need}")
    if method == "cmc":
        return load_dual(text_cfg.path, store.dim, cfg, layers=text_cfg.layers)
    if method == "disentangled":
        from itr.models.disentangled import from_checkpoint
        return from_checkpoint(init, store, cfg, text_cfg.to_dict())
    if method == "softlabel":
        return _softlabel_student(cfg, text_cfg, store)
    return load_encoder(text_cfg.path, store.dim, match_head=method != "be", layers=text_cfg.layers)


def _softlabel_student(cfg, text_cfg, store: FeatureStore) -> tuple[nn.Module, object]:
    """A soft-label student over ``store``: the bi-encoder's towers over detector regions (``image_tower: regions``),
    or the text tower beside a transformer from scratch over raw-pixel patches (``pixels``)."""
    from itr.models.encoder import load_encoder
    from itr.models.softlabel import SoftLabelDualEncoder, pixel_tower

    patches = store.holds_pixels
    if patches != (cfg.image_tower == "pixels"):
        raise ValueError(f"softlabel.image_tower is {cfg.image_tower!r} but {store.root} holds "
                         f"{'raw-pixel patches' if patches else 'detector regions'}; give --features the "
                         f"{'patch store (itr features patches)' if cfg.image_tower == 'pixels' else 'detector store'} "
                         "of the dataset")
    # beside a tower of its own, the text tower reads no regions: a 1-d region projection, never used
    towers, tokenizer = load_encoder(text_cfg.path, 1 if patches else store.dim, layers=text_cfg.layers)
    image = None
    if patches:
        t = cfg.pixel_tower
        image = pixel_tower(towers.bert.config.hidden_size, store.dim, t["layers"], t["heads"])
    return SoftLabelDualEncoder(towers, cfg.itc_tau, cfg.soft_tau, image_tower=image), tokenizer


def train_from_files(method: str, cfg, text_cfg, data, features, state_dir, out, history, device="cpu",
                     log=print, track=None, init=None, teacher=None, image_teacher=None) -> dict:
    """Train a ``method`` model (be, ce, joint, cmc, disentangled, softlabel) on a dataset directory and its feature store, and
    publish it.

    The epoch with the best validation rsum becomes ``out``; the per-epoch history goes to ``history``
    (CSV). ``cfg`` is the method's config, ``text_cfg`` a TextEncoderConfig; ``init`` the checkpoint a
    ``disentangled`` model starts from; ``teacher`` the text-teacher file of a ``softlabel`` model whose
    ``teacher_features`` are on disk (itr.teachers), ``image_teacher`` the feature store whose whole-image features
    teach it (None: ``features``). Returns train_model's result.
    """
    import pandas as pd

    from itr.atomic import write_text
    from itr.data.dataset import dataset_manifest, first_images, read_dataset
    from itr.jobs import state_lock
    from itr.manifest import file_digest
    from itr.provenance import code_digest

    store = FeatureStore(features)
    model, tokenizer = build_model(method, cfg, text_cfg, store, init)
    device = distributed.setup(torch.device(device), model)  # under torchrun: this rank's device, rank 0's weights
    model.to(device)
    train_caps, val_caps = (_in_languages(read_dataset(data, split)[1], cfg.train_languages, f"{data} {split}")
                            for split in ("train", "val"))
    train = CaptionSet.from_frame(first_images(train_caps, cfg.train_images), tokenizer, text_cfg.max_text_len)
    val = CaptionSet.from_frame(val_caps, tokenizer, text_cfg.max_text_len)
    extra = {"method": method, "architecture": model.architecture(), "text_encoder": text_cfg.to_dict(),
             "features": store.manifest["source"], "machine": fingerprint(device=str(device))}  # where it trained
    inputs = {"text_encoder": text_cfg.to_dict(), "data": dataset_manifest(data)["digest"],
              "features": store.manifest["digest"], "code": code_digest("itr.training")}
    if init is not None:  # the checkpoint fine-tuned: another one is another run
        inputs["init"] = extra["init"] = file_digest(init)
    teachers = {}
    if method == "softlabel" and (cfg.alpha > 0 or cfg.beta > 0):
        from itr.teachers import ImageTeacher

        teachers["text_teacher"], inputs["teacher"] = _text_teacher(cfg, teacher, train, train_caps, device)
        teachers["image_teacher"] = ImageTeacher(FeatureStore(image_teacher) if image_teacher else store)
        if image_teacher:  # another store than the student's: another input, of the same images
            teacher_store = teachers["image_teacher"].store
            if teacher_store.manifest["data"] != store.manifest["data"]:
                raise ValueError(f"the image teacher's store {image_teacher} holds features of other images than "
                                 f"{features} (another dataset digest); give the detector store of {data}")
            inputs["image_teacher"] = teacher_store.manifest["digest"]
    if not distributed.is_main():  # the other torchrun ranks compute and write nothing
        return train_model(method, cfg, model, train, val, store, Path(state_dir), device, extra, log=lambda m: None,
                           inputs=inputs, **teachers)
    with state_lock(state_dir):  # one trainer per state directory
        for where in (Path(state_dir), Path(out).parent):
            remove_stale_temporaries(where)  # a killed run's half-written files (live writers' are kept)
        result = train_model(method, cfg, model, train, val, store, Path(state_dir), device, extra, log=log,
                             track=track, inputs=inputs, **teachers)
        publish_best(Path(state_dir), Path(out))
    write_text(history, pd.DataFrame(result["history"]).to_csv(index=False))
    log(f"{method}: best epoch {result['best_epoch']}, val rsum {result['best_val_rsum']:.2f}")
    return result


def _in_languages(captions, languages: tuple, where: str):
    """The captions in ``languages`` (a training section's ``train_languages``; empty: all of them)."""
    if not languages:
        return captions
    missing = sorted(set(languages) - set(captions["lang"]))
    if missing:
        raise ValueError(f"{where} has no captions in {missing} (it has {sorted(set(captions['lang']))}); set "
                         "train_languages to languages the dataset has, or [] for all")
    return captions[captions["lang"].isin(languages)]


def _text_teacher(cfg, teacher, train: CaptionSet, train_caps, device) -> tuple[object, str]:
    """A soft-label student's text teacher of the training captions and its identity: from ``teacher`` (a file) or on the fly."""
    from itr.manifest import file_digest
    from itr.teachers import TextTeacher

    if cfg.teacher_features == "disk":
        if teacher is None:
            raise ValueError("softlabel.teacher_features is 'disk' but no teacher file was given (--teacher); build one with "
                             "`itr teachers` or set teacher_features: on_the_fly")
        return TextTeacher.from_file(teacher, train.caption_ids, cfg.text_teacher), file_digest(teacher)
    texts = dict(zip(train_caps["caption_id"], train_caps["text"]))
    return (TextTeacher.on_the_fly(cfg.text_teacher, [texts[c] for c in train.caption_ids], device),
            f"on_the_fly:{cfg.text_teacher}")
