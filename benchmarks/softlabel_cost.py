"""What soft-label alignment costs in training (CUSA's appendix Tables 12 and 13), measured in one run.

* **Modules** (Table 12): milliseconds per iteration of each piece a soft-label step adds, at the training batch size:
  the image teacher computed on the fly (the detector over the batch's images, read and decoded from disk) or read
  from the feature store; the text teacher on the fly (the sentence encoder over the batch's captions) or read from
  its file (loaded once; ``load_once_ms``); the teachers' similarity matrices; and the ITC, CSA and USA losses. Beside
  them, the disk each needs (the detector's and text teacher's weights, the store's whole-image features, the
  teacher file).
* **Training steps** (Table 13): seconds per optimiser step of the student (``softlabel``: forward, backward, clip,
  AdamW) with contrastive loss alone, and with + CSA, + USA and + CUSA for each way of getting the two teachers
  (disk or on the fly), projected to an epoch as steps x ``steps_per_epoch`` (one pass over the training captions).

Every measurement runs ``rounds`` times, the rounds interleaving all rows (so a slow spell of the machine hits every
row alike), after one untimed warm-up of each; the JSON keeps each round. Ratios between rows hold across machines
better than the times do; ``machine`` says which CPU measured them.

    python benchmarks/softlabel_cost.py --data data/shapes --features features/shapes \\
        --detector models/detector/shapes.pt --teacher models/cusa/text_teacher.npz \\
        --config '{...softlabel section...}' --text-encoder '{...}' --out results/benchmarks/softlabel_cost.json
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch

from itr.atomic import write_json
from itr.cli.common import benchmark_parser
from itr.config import SoftLabelConfig, TextEncoderConfig, parse_section
from itr.data.dataset import first_images, read_dataset
from itr.features.extract import whole_image_encoder
from itr.features.store import FeatureStore
from itr.losses import cross_softlabel_alignment, multi_positive_itc, uni_softlabel_alignment
from itr.machine import fingerprint
from itr.models.encode import CaptionSet
from itr.models.encoder import resolve_text_encoder
from itr.objectives import SoftLabelObjective
from itr.teachers import ImageTeacher, TextTeacher
from itr.training import adamw_no_decay_on_norms, build_model, train_step

log = logging.getLogger("itr.benchmarks.softlabel_cost")
TEACHER_MODES = [("disk", "disk"), ("disk", "on_the_fly"), ("on_the_fly", "disk"), ("on_the_fly", "on_the_fly")]
LOSSES = {"csa": {"beta": 0.0}, "usa": {"alpha": 0.0}, "cusa": {}}  # each a change of the section


def megabytes(*paths) -> float:
    """Bytes of files (or every file under folders) in MB."""
    total = 0
    for p in map(Path, paths):
        total += sum(f.stat().st_size for f in (p.rglob("*") if p.is_dir() else [p]) if f.is_file())
    return round(total / 1e6, 2)


def timed_rounds(rows: dict, rounds: int, repeats: int) -> dict:
    """Seconds per call of each row's function (called with the repeat index), ``repeats`` calls per round, the rounds
    interleaving the rows after one untimed warm-up call of each. -> row -> {"mean", "std", "per_round"}."""
    for fn in rows.values():
        fn(-1)
    per_round = {name: [] for name in rows}
    for r in range(rounds):
        for name, fn in rows.items():
            t0 = time.perf_counter()
            for i in range(repeats):
                fn(r * repeats + i)
            per_round[name].append((time.perf_counter() - t0) / repeats)
        log.info("round %d/%d: %s", r + 1, rounds, {k: round(v[-1], 4) for k, v in per_round.items()})
    return {name: {"mean": float(np.mean(v)), "std": float(np.std(v)), "per_round": [round(x, 6) for x in v]}
            for name, v in per_round.items()}


def main(argv: list[str] | None = None) -> int:
    ap = benchmark_parser(__doc__, ("--data", "--features", "--detector", "--teacher", "--config", "--text-encoder", "--out"), device=False)
    args = ap.parse_args(argv)
    cfg = parse_section(SoftLabelConfig, args.config)
    cost = cfg.cost  # the benchmark's own keys: rounds, steps (Table 13) and iterations (Table 12) per round
    text_cfg = parse_section(TextEncoderConfig, args.text_encoder)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    store = FeatureStore(args.features)
    _, caps = read_dataset(args.data, "train")
    caps = first_images(caps, cfg.train_images)
    b = cfg.batch_size
    rng = np.random.default_rng(cfg.seed)

    # ---- Table 12: the modules, one batch each call
    model, tokenizer = build_model("softlabel", cfg, text_cfg, store)
    train = CaptionSet.from_frame(caps, tokenizer, text_cfg.max_text_len)
    batches = [rng.choice(len(train), b, replace=False) for _ in range(64)]  # rows; call i takes batches[i % 64]
    ids = [[train.image_ids[r] for r in rows] for rows in batches]
    texts = dict(zip(caps["caption_id"], caps["text"]))
    t0 = time.perf_counter()
    text_disk = TextTeacher.from_file(args.teacher, train.caption_ids, cfg.text_teacher)
    load_once_ms = {"text teacher file": round(1000 * (time.perf_counter() - t0), 2)}
    text_live = TextTeacher.on_the_fly(cfg.text_teacher, [texts[c] for c in train.caption_ids], device)
    image_disk, image_live = ImageTeacher(store), ImageTeacher(encode=whole_image_encoder(args.detector, args.data, device))
    image_t, text_t = image_disk(ids[0]), text_disk(batches[0])  # (B, D), (B, D')
    sim = torch.nn.functional.normalize(torch.randn(b, b), dim=-1)  # (B, B) a student's cosines
    tau, y = torch.tensor(0.05), torch.arange(b)
    image_sim, text_sim = image_t @ image_t.T, text_t @ text_t.T
    pick = lambda i: i % len(batches)  # noqa: E731
    with torch.no_grad():
        modules = timed_rounds({
            "image teacher on the fly": lambda i: image_live(ids[pick(i)]),
            "text teacher on the fly": lambda i: text_live(batches[pick(i)]),
            "image teacher from disk": lambda i: image_disk(ids[pick(i)]),
            "text teacher from disk": lambda i: text_disk(batches[pick(i)]),
            "similarities (I2I)": lambda i: image_t @ image_t.T,
            "similarities (T2T)": lambda i: text_t @ text_t.T,
            "ITC loss": lambda i: multi_positive_itc(sim, y, tau),
            "CSA loss": lambda i: cross_softlabel_alignment(sim, image_sim, text_sim, torch.tensor(0.45)),
            "USA loss": lambda i: uni_softlabel_alignment(sim, sim, image_sim, text_sim, torch.tensor(0.45),
                                                          torch.tensor(0.45)),
        }, cost["rounds"], cost["iterations"])
    store_global = [store.root / f"{s}.global.npy" for s in store.manifest["shards"]]
    disk_mb = {"image teacher on the fly": megabytes(args.detector),
               "text teacher on the fly": megabytes(resolve_text_encoder(cfg.text_teacher)),
               "image teacher from disk": megabytes(*store_global),
               "text teacher from disk": megabytes(args.teacher)}

    # ---- Table 13: optimiser steps of the student, per loss and way of getting the teachers
    teachers = {"disk": (image_disk, text_disk), "on_the_fly": (image_live, text_live)}
    modes = {"contrastive": (dataclasses.replace(cfg, alpha=0.0, beta=0.0), "disk", "disk")}
    for image_mode, text_mode in TEACHER_MODES:
        for loss, change in LOSSES.items():
            modes[f"{loss} image={image_mode} text={text_mode}"] = (dataclasses.replace(cfg, **change), image_mode,
                                                                    text_mode)
    steppers = {}
    for name, (mode_cfg, image_mode, text_mode) in modes.items():
        student, _ = build_model("softlabel", mode_cfg, text_cfg, store)  # the same initial weights every mode
        student.train()
        objective = SoftLabelObjective(mode_cfg, student, train, store, device, teachers[text_mode][1],
                                       teachers[image_mode][0])
        opt = adamw_no_decay_on_norms(student, mode_cfg.lr, mode_cfg.weight_decay)
        steppers[name] = (lambda i, s=student, o=objective, p=opt, c=mode_cfg: train_step(
            s, o, batches[pick(i)], max(i, 0), p, c.grad_clip, torch.autocast("cpu", enabled=False)))
    steps = timed_rounds(steppers, cost["rounds"], cost["steps"])
    steps_per_epoch = cfg.full_pass_steps(len(train)) if cfg.steps_per_epoch == 0 else cfg.steps_per_epoch
    epochs = {name: {"loss": name.split()[0], "image": modes[name][1] if name != "contrastive" else None,
                     "text": modes[name][2] if name != "contrastive" else None, "step_seconds": t["mean"],
                     "step_std": t["std"], "per_round": t["per_round"],
                     "epoch_minutes": round(t["mean"] * steps_per_epoch / 60, 3)} for name, t in steps.items()}
    write_json(args.out, {
        "dataset": Path(args.data).name, "batch_size": b, "machine": fingerprint(args.threads, "cpu"), **cost,
        "train_captions": len(train), "steps_per_epoch": steps_per_epoch,
        "modules": {name: {"ms": round(1000 * t["mean"], 3), "ms_std": round(1000 * t["std"], 3),
                           "per_round_ms": [round(1000 * x, 3) for x in t["per_round"]],
                           "disk_mb": disk_mb.get(name)} for name, t in modules.items()},
        "load_once_ms": load_once_ms, "epochs": epochs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
