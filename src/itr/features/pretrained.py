"""Region features of real photos from torchvision's COCO-trained Faster R-CNN (ResNet-50-FPN, v2 or v1).

ShapeCaptions has its own detector, trained on its boxes (itr.features.detector); real datasets use the COCO
weights torchvision publishes. The weights file is given by path: fetched on nodes that reach
download.pytorch.org, placed by hand elsewhere. torchvision names its files ``<arch>_coco-<first 8 hex digits of
the sha256>.pth``; that published prefix is checked before the file is loaded (with ``weights_only=True``).

The box head's output (1024-d) is the region feature, the whole-image box pooled the same way is the global
feature, and boxes are picked as itr.features.extract does (class-agnostic NMS, score threshold, adaptive
``min_regions``..``max_regions`` or a fixed count when both are equal), into the same feature store.

Example:
    >>> model = load_pretrained("fasterrcnn_resnet50_fpn_v2", "fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth")
    >>> extract_pretrained("data/flickr30k", model, cfg, "features/flickr30k", device="cuda")
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from itr.errors import InputError

ARCHITECTURES = ("fasterrcnn_resnet50_fpn_v2", "fasterrcnn_resnet50_fpn")
COCO_CLASSES = 91  # torchvision's COCO heads: 90 category ids + background
PUBLISHED = re.compile(r"-([0-9a-f]{8,})\.pth$")  # torchvision's naming: the sha256 prefix before the suffix


class WeightsError(InputError, ValueError):
    """A detector weights file is not the one its name promises, or not for the architecture asked for."""


def check_published_hash(path: Path) -> None:
    """Compare the file's sha256 with the prefix in its torchvision name; names without one are not checked."""
    from itr.data.download import sha256

    m = PUBLISHED.search(path.name)
    digest = sha256(path) if m else ""
    if m and not digest.startswith(m.group(1)):
        raise WeightsError(f"{path}: sha256 {digest} does not start with {m.group(1)}, the hash prefix "
                           "in its torchvision name; the file is damaged or another one: fetch it again")


def load_pretrained(arch: str, weights: str | Path, min_size: int = 800, max_size: int = 1333,
                    proposals: int = 1000) -> nn.Module:
    """torchvision's Faster R-CNN ``arch`` with the state dict at ``weights``; every detection comes out (no
    score threshold, up to 300 per image), so region selection is ours. ``proposals``: the RPN boxes kept after
    NMS for the box head (torchvision's default 1000; Faster R-CNN's and bottom-up attention's test setting 300)."""
    from torchvision.models import detection

    if arch not in ARCHITECTURES:
        raise WeightsError(f"detector {arch!r}: use one of {', '.join(ARCHITECTURES)}")
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no such weights file; fetch it (snakemake {weights}) or place "
                                f"torchvision's {arch}_coco-*.pth there")
    check_published_hash(weights)
    model = getattr(detection, arch)(weights=None, weights_backbone=None, num_classes=COCO_CLASSES,
                                     min_size=min_size, max_size=max_size, box_score_thresh=0.0,
                                     box_detections_per_img=300, rpn_post_nms_top_n_test=proposals)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a tensor of the wrong shape
        raise WeightsError(f"{weights}: not a {arch} state dict ({str(e).splitlines()[1].strip()}); "
                           "give the weights of the architecture named in params.yaml") from e
    # v1's file was saved from frozen batch norm, which has no num_batches_tracked (unused in eval mode)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise WeightsError(f"{weights}: not a {arch} state dict (missing {missing[:3]}, unexpected "
                           f"{unexpected[:3]}); give the weights of the architecture named in params.yaml")
    return model.eval()


def coco_categories() -> list[str]:
    """The detector's class index -> COCO category name (91 slots, background and unused ids included), as
    torchvision publishes them with the weights: the object tags of real photos."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_V2_Weights

    return list(FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1.meta["categories"])


def box_feature_dim(model: nn.Module) -> int:
    """Size of the box head's output: the last linear layer's (TwoMLPHead's fc7, or the v2 conv-fc head's)."""
    return [m for m in model.roi_heads.box_head.modules() if isinstance(m, nn.Linear)][-1].out_features


def extract_pretrained(data, model: nn.Module, cfg, out, source: dict, device="cpu", log=print) -> dict:
    """Region features of every image of ``data`` into the store ``out`` (resumable by shard). ``cfg``: the
    pretrained_features section (max_regions, min_regions, score_thresh, shard_size, batch_size); ``source``:
    the extractor's identity, recorded in every shard."""
    from itr.data.dataset import dataset_manifest, read_dataset
    from itr.features.extract import extract_to_store
    from itr.features.store import FeatureStoreWriter

    images, _ = read_dataset(data)
    writer = FeatureStoreWriter(out, cfg.max_regions, box_feature_dim(model), source,
                                data=dataset_manifest(data)["digest"], with_tags=True)
    summary = extract_to_store(model.to(device), list(images["image_id"]), [Path(data) / f for f in images["file"]],
                               cfg, writer, device, coco_categories(), log=log, min_regions=cfg.min_regions,
                               resize=True)
    writer.finalize(summary["n_shards"], {"n_images": summary["n_images"]})
    log(f"features: {summary}")
    return summary
