"""Faster R-CNN (torchvision) trained from random initialisation on dataset boxes.

The backbone is a small strided CNN with one feature map (stride 8): the generated
images are 128 px, so a ResNet would be slow on CPU without being more accurate.
Everything after the backbone (RPN, RoIAlign, two-layer box head, classifier) is
torchvision's Faster R-CNN. Classes are (colour, kind) pairs, so the box-head features
that later serve as region features carry attributes, like the attribute head of
bottom-up-attention features.

Example:
    >>> model = build_detector(DetectorConfig(), num_classes=37, image_size=128)
    >>> model.eval()(torch.rand(1, 3, 128, 128))[0].keys()
    dict_keys(['boxes', 'labels', 'scores'])
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign, box_iou
from tqdm import tqdm

from itr.atomic import remove_stale_temporaries
from itr.checkpoint import resume_state, save_checkpoint
from itr.config import DetectorConfig
from itr.data.images import load_image


class SmallBackbone(nn.Sequential):
    """Conv-BN-ReLU stack with total stride 8; ``out_channels`` is what FasterRCNN needs."""

    def __init__(self, channels: tuple[int, ...]):
        layers, c_in = [], 3
        for i, c in enumerate(channels):
            stride = 2 if i < 3 else 1
            layers += [nn.Conv2d(c_in, c, 3, stride, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        super().__init__(*layers)
        self.out_channels = c_in


def build_detector(cfg: DetectorConfig, num_classes: int, image_size: int) -> FasterRCNN:
    anchors = AnchorGenerator(sizes=(tuple(cfg.anchor_sizes),), aspect_ratios=((0.5, 1.0, 2.0),))
    roi_pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    model = FasterRCNN(
        SmallBackbone(tuple(cfg.channels)), num_classes=num_classes,
        # Images are already the right size: no resizing, so boxes keep pixel coordinates.
        min_size=image_size, max_size=image_size,
        rpn_anchor_generator=anchors, box_roi_pool=roi_pool,
        rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100,
        box_batch_size_per_image=64, rpn_batch_size_per_image=128,
        box_detections_per_img=50, box_score_thresh=0.01,
    )
    # Replace the default 1024-d box head with one of the configured width: its output
    # is the region feature handed to the retrieval models.
    rep = cfg.representation_size
    model.roi_heads.box_head.fc6 = nn.Linear(model.backbone.out_channels * 49, rep)
    model.roi_heads.box_head.fc7 = nn.Linear(rep, rep)
    model.roi_heads.box_predictor.cls_score = nn.Linear(rep, num_classes)
    model.roi_heads.box_predictor.bbox_pred = nn.Linear(rep, num_classes * 4)
    return model


def targets_from_scenes(images_df, label_fn) -> list[dict]:
    """Per-image detection targets (boxes in pixels, labels) from the stored scenes."""
    out = []
    for scene in images_df["scene"]:
        objs = json.loads(scene)["objects"]
        out.append({"boxes": torch.tensor([o["box"] for o in objs], dtype=torch.float32).reshape(-1, 4),
                    "labels": torch.tensor([label_fn(o) for o in objs], dtype=torch.int64)})
    return out


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (VOC 2010+ all-point interpolation)."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    idx = np.where(r[1:] != r[:-1])[0]
    return float(np.sum((r[idx + 1] - r[idx]) * p[idx + 1]))


def mean_average_precision(predictions: list[dict], targets: list[dict], iou_threshold: float = 0.5) -> dict:
    """Box mAP@iou over the classes present in the targets.

    A detection is a true positive when it overlaps an unmatched ground-truth box of the
    same class with IoU >= iou_threshold; detections are ranked by score over all images.
    """
    classes = sorted({int(c) for t in targets for c in t["labels"]})
    aps = {}
    for c in classes:
        scored, n_gt = [], 0
        matched = []
        for i, (p, t) in enumerate(zip(predictions, targets)):
            gt = t["boxes"][t["labels"] == c]
            n_gt += len(gt)
            matched.append(torch.zeros(len(gt), dtype=torch.bool))
            keep = p["labels"] == c
            for box, score in zip(p["boxes"][keep], p["scores"][keep]):
                scored.append((float(score), i, box))
        scored.sort(key=lambda x: -x[0])
        tp = np.zeros(len(scored))
        for k, (_, i, box) in enumerate(scored):
            gt = targets[i]["boxes"][targets[i]["labels"] == c]
            if len(gt) == 0:
                continue
            ious = box_iou(box[None], gt)[0]
            ious[matched[i]] = -1
            j = int(ious.argmax())
            if ious[j] >= iou_threshold:
                matched[i][j] = True
                tp[k] = 1
        ctp = np.cumsum(tp)
        recall = ctp / max(n_gt, 1)
        precision = ctp / np.arange(1, len(scored) + 1) if len(scored) else np.zeros(0)
        aps[c] = average_precision(recall, precision)
    return {"mAP@0.5": float(np.mean(list(aps.values()))) if aps else 0.0, "per_class_AP": aps}


@torch.no_grad()
def predict(model, paths: list[Path], batch_size: int, device) -> list[dict]:
    model.eval()
    out = []
    for start in range(0, len(paths), batch_size):
        batch = [load_image(p).to(device) for p in paths[start:start + batch_size]]
        out += [{k: v.cpu() for k, v in d.items()} for d in model(batch)]
    return out


def train_detector(cfg: DetectorConfig, train_paths, train_targets, val_paths, val_targets, num_classes: int,
                   image_size: int, state_dir: Path, device, log=print, on_epoch=None, inputs: dict | None = None):
    """Train with AdamW and a cosine schedule, checkpointing every epoch to state_dir/last.pt.

    A killed run restarts from the last finished epoch, if the saved state has the same identity: the
    config plus ``inputs`` (the dataset's digest and the code's; train_on_dataset fills them). Returns
    (model, val metrics, history): the history has one row per epoch, ``epoch`` and ``train/loss``.
    """
    identity = {"config": cfg.to_dict(), **(inputs or {})}
    torch.manual_seed(cfg.seed)
    model = build_detector(cfg, num_classes, image_size).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    state_dir.mkdir(parents=True, exist_ok=True)
    last = state_dir / "last.pt"
    start_epoch, history = 0, []
    state = resume_state(last, identity, log)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])  # the RPN/RoI samplers draw from torch's RNG
        start_epoch, history = state["epoch"] + 1, state["history"]
        log(f"resuming detector from {last} at epoch {start_epoch}")
    images = [load_image(p) for p in train_paths]  # small generated images: keep them in memory
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        order = list(range(len(images)))
        random.Random(cfg.seed * 100_003 + epoch).shuffle(order)  # stateless: a resumed run sees the same order
        losses = []
        bar = tqdm(range(0, len(order), cfg.batch_size), desc=f"detector epoch {epoch}", mininterval=10)
        for s in bar:
            idx = order[s:s + cfg.batch_size]
            loss_dict = model([images[i].to(device) for i in idx],
                              [{k: v.to(device) for k, v in train_targets[i].items()} for i in idx])
            loss = sum(loss_dict.values())
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", refresh=False)  # the epoch's running mean
        sched.step()
        history.append({"epoch": epoch, "train/loss": float(np.mean(losses))})
        save_checkpoint(last, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "epoch": epoch, "identity": identity,
                               "torch_rng": torch.get_rng_state(), "history": history})
        log(f"epoch {epoch}: loss {np.mean(losses):.4f}")
        if on_epoch:
            on_epoch(epoch, {"train/loss": history[-1]["train/loss"]})
    metrics = mean_average_precision(predict(model, val_paths, 16, device), val_targets)
    return model, metrics, history


def train_on_dataset(cfg: DetectorConfig, data, out, metrics_path, state_dir, device="cpu", log=print,
                     on_epoch=None, history_path=None) -> dict:
    """Train the detector on a ShapeCaptions dataset's train boxes, save it, and write its val box AP (and, with
    ``history_path``, its mean training loss per epoch as CSV: ``dvc plots`` draws it).

    The classes are (colour, kind) pairs (itr.data.shapes.detection_labels). Returns the val metrics.
    """
    import pandas as pd

    from itr.atomic import write_json, write_text
    from itr.data import shapes
    from itr.data.dataset import dataset_manifest, read_dataset
    from itr.jobs import state_lock
    from itr.provenance import code_digest

    data, device = Path(data), torch.device(device)
    tr, _ = read_dataset(data, "train")
    va, _ = read_dataset(data, "val")
    size = int(tr["width"].iloc[0])
    labels = shapes.detection_labels()
    with state_lock(state_dir):  # one trainer per state directory
        for where in (Path(state_dir), Path(out).parent):
            remove_stale_temporaries(where)  # a killed run's half-written files (live writers' are kept)
        model, metrics, history = train_detector(
            cfg, [data / f for f in tr["file"]], targets_from_scenes(tr, shapes.label_of),
            [data / f for f in va["file"]], targets_from_scenes(va, shapes.label_of), len(labels), size,
            Path(state_dir), device, log=log, on_epoch=on_epoch,
            inputs={"data": dataset_manifest(data)["digest"], "code": code_digest("itr.features.detector")})
        save_checkpoint(out, {"model": model.state_dict(), "config": cfg.to_dict(), "labels": labels,
                              "image_size": size})
    write_json(metrics_path, {"dataset": data.name, "split": "val", "iou_threshold": 0.5,
                              "mAP@0.5": metrics["mAP@0.5"], "n_val_images": len(va),
                              "per_class_AP": {labels[c]: ap for c, ap in metrics["per_class_AP"].items()}})
    if history_path is not None:
        write_text(history_path, pd.DataFrame(history).to_csv(index=False))
    log(f"detector val mAP@0.5 = {metrics['mAP@0.5']:.4f}")
    return metrics
