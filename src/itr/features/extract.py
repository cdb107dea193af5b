"""Region feature extraction: top-R detections per image, box-head features, geometry.

One backbone pass per batch serves both detection and feature pooling: detections come
from the RPN + box head as usual, then class-agnostic NMS (so one object is not listed
once per class), then the top-R boxes by score are pooled again through the box head to
give their features. The whole-image box, pooled the same way, is the global feature.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import nms
from tqdm import tqdm

from itr.config import FeaturesConfig
from itr.data.images import load_image
from itr.features.store import FeatureStoreWriter


@torch.no_grad()
def regions_for_batch(model, images: list[torch.Tensor], cfg: FeaturesConfig, min_regions: int = 0,
                      resize: bool = False) -> dict[str, np.ndarray]:
    """Top-R region features of a batch of (3, H, W) images.

    Boxes scoring at least ``cfg.score_thresh`` are kept, at most ``cfg.max_regions``; ``min_regions`` tops a
    sparse image up with the best boxes below the threshold (bottom-up attention's adaptive 10-100). ``resize``
    lets the detector rescale its input (a pretrained COCO model works at 600-1000 px); geometry is relative to
    the image, so it is the same in either frame. Returns numpy arrays: regions (B, R, D), geometry (B, R, 6),
    mask (B, R), global (B, D), and labels (B, R): the detector's class index of each kept box (object tags).
    """
    batch, feats = _backbone(model, images, resize)
    sizes = [tuple(s) for s in batch.image_sizes]
    proposals, _ = model.rpn(batch, feats)
    dets, _ = model.roi_heads(feats, proposals, batch.image_sizes)
    r = cfg.max_regions
    chosen, labels = [], []
    for det in dets:
        confident = det["scores"] >= cfg.score_thresh
        boxes, scores, classes = det["boxes"][confident], det["scores"][confident], det["labels"][confident]
        keep = nms(boxes, scores, 0.5)[:r]  # class-agnostic; nms returns indices by decreasing score
        if len(keep) < min_regions:  # too few confident boxes: the best ones, whatever their score
            boxes, classes = det["boxes"], det["labels"]
            keep = nms(boxes, det["scores"], 0.5)[:min(min_regions, r)]
        chosen.append(boxes[keep])
        labels.append(classes[keep])
    whole = _whole_boxes(batch)
    pooled = model.roi_heads.box_roi_pool(feats, [torch.cat([w, b]) for w, b in zip(whole, chosen)],
                                          batch.image_sizes)
    pooled = model.roi_heads.box_head(pooled)  # (sum_i (1 + n_i), D)
    d = pooled.shape[-1]
    out = {"regions": np.zeros((len(images), r, d), np.float32), "geometry": np.zeros((len(images), r, 6), np.float32),
           "mask": np.zeros((len(images), r), bool), "global": np.zeros((len(images), d), np.float32),
           "labels": np.zeros((len(images), r), np.int64)}
    start = 0
    for i, (boxes, (h, w)) in enumerate(zip(chosen, sizes)):
        n = len(boxes)
        out["global"][i] = pooled[start].cpu().numpy()
        out["regions"][i, :n] = pooled[start + 1:start + 1 + n].cpu().numpy()
        scale = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
        norm = boxes / scale  # (n, 4) in [0, 1]
        geo = torch.cat([norm, norm[:, 2:3] - norm[:, 0:1], norm[:, 3:4] - norm[:, 1:2]], dim=1)  # (n, 6)
        out["geometry"][i, :n] = geo.cpu().numpy()
        out["mask"][i, :n] = True
        out["labels"][i, :n] = labels[i].cpu().numpy()
        start += 1 + n
    return out


@torch.no_grad()
def whole_image_features(model, images: list[torch.Tensor]) -> torch.Tensor:
    """(B, D) the box head's feature of each (3, H, W) image's whole-image box, as ``regions_for_batch`` gives it as
    ``global``, without detecting anything (an image teacher computed on the fly, itr.teachers)."""
    batch, feats = _backbone(model, images, resize=False)
    return model.roi_heads.box_head(model.roi_heads.box_roi_pool(feats, _whole_boxes(batch), batch.image_sizes))


def whole_image_encoder(detector_path, data, device="cpu"):
    """A function image ids -> (B, D) whole-image features of a dataset's images, read, decoded and run through the
    detector checkpoint at ``detector_path`` on every call: the store's ``global`` computed on the fly."""
    from itr.data.dataset import read_dataset

    detector, _ = load_detector(detector_path, device)
    images, _ = read_dataset(data)
    files = {i: Path(data) / f for i, f in zip(images["image_id"], images["file"])}
    return lambda ids: whole_image_features(detector, [load_image(files[i]).to(device) for i in ids])


def _backbone(model, images: list[torch.Tensor], resize: bool):
    """The detector's input batch and backbone feature maps of (3, H, W) images (by level name)."""
    model.eval()
    sizes = [tuple(im.shape[-2:]) for im in images]
    batch, _ = model.transform(images)
    if not resize and any(tuple(s) != o for s, o in zip(batch.image_sizes, sizes)):
        raise RuntimeError("the detector resized its input; build it with min_size = max_size = image size")
    feats = model.backbone(batch.tensors)
    if isinstance(feats, torch.Tensor):  # one feature map (ours); an FPN backbone returns its levels by name
        feats = OrderedDict([("0", feats)])
    return batch, feats


def _whole_boxes(batch) -> list[torch.Tensor]:
    """Each image's full-image box, (1, 4) in the detector's input frame."""
    return [torch.tensor([[0.0, 0.0, w, h]], device=batch.tensors.device) for (h, w) in batch.image_sizes]


def extract_to_store(model, image_ids: list[str], paths: list[Path], cfg: FeaturesConfig,
                     writer: FeatureStoreWriter, device, class_names: list[str], log=print, **select) -> dict:
    """Extract every image into shards of cfg.shard_size, skipping shards already done; ``class_names``: the
    detector's class index -> name, for the object tags; ``select``: regions_for_batch's ``min_regions`` and
    ``resize``."""
    n_shards = (len(image_ids) + cfg.shard_size - 1) // cfg.shard_size
    skipped, counts = 0, []
    for k in tqdm(range(n_shards), desc="extract shards"):
        lo, hi = k * cfg.shard_size, min(len(image_ids), (k + 1) * cfg.shard_size)
        ids = image_ids[lo:hi]
        if writer.is_done(k, ids):
            skipped += 1
            continue
        parts = []
        for s in range(lo, hi, cfg.batch_size):
            imgs = [load_image(p).to(device) for p in paths[s:min(hi, s + cfg.batch_size)]]
            parts.append(regions_for_batch(model, imgs, cfg, **select))
        arrays = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        counts.append(arrays["mask"].sum(1))
        labels = arrays.pop("labels")
        tags = [[class_names[c] for c in row[m]] for row, m in zip(labels, arrays["mask"])]
        writer.write(k, ids, arrays, tags=tags)
    if skipped:
        log(f"resumed: {skipped} of {n_shards} shards were already extracted and were kept")
    mean_regions = float(np.concatenate(counts).mean()) if counts else None
    return {"n_images": len(image_ids), "n_shards": n_shards, "shards_resumed": skipped,
            "mean_regions_new_shards": mean_regions}


def load_detector(path, device="cpu"):
    """A trained detector checkpoint -> (the model in eval mode on ``device``, its class names)."""
    from itr.checkpoint import load_checkpoint
    from itr.config import DetectorConfig
    from itr.features.detector import build_detector

    ckpt = load_checkpoint(path)
    det = build_detector(DetectorConfig.from_dict(ckpt["config"]), len(ckpt["labels"]), ckpt["image_size"])
    det.load_state_dict(ckpt["model"])
    return det.to(device).eval(), ckpt["labels"]


def extract_dataset(data, detector_path, cfg: FeaturesConfig, out, device="cpu", log=print) -> dict:
    """Region features of every image of a dataset directory, by the detector checkpoint at ``detector_path``,
    into a feature store at ``out`` (resumable: finished shards are kept). Returns extract_to_store's summary."""
    from itr.data.dataset import dataset_manifest, read_dataset
    from itr.manifest import file_digest

    det, labels = load_detector(detector_path, device)
    images, _ = read_dataset(data)
    source = {"detector": file_digest(detector_path), "features": cfg.to_dict()}  # the extractor
    writer = FeatureStoreWriter(out, cfg.max_regions, det.roi_heads.box_head.fc7.out_features, source,
                                data=dataset_manifest(data)["digest"], with_tags=True)
    summary = extract_to_store(det, list(images["image_id"]), [Path(data) / f for f in images["file"]],
                               cfg, writer, device, labels, log=log)
    # Only deterministic facts go into the manifest (not how many shards were resumed), so a resumed
    # extraction leaves byte-identical files and DVC sees no change.
    writer.finalize(summary["n_shards"], {"n_images": summary["n_images"]})
    log(f"features: {summary}")
    return summary
