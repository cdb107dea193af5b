"""itr detector train | itr features {extract,pretrained,patches,import,info}: the Faster R-CNN, the region features
it extracts, raw-pixel patches for a detector-free tower, and released features imported into the same store."""
from __future__ import annotations

from itr.cli.common import add_compute, compute, log


def register(sub) -> None:
    from itr.cli import tracked
    p = sub.add_parser("detector", help="Faster R-CNN").add_subparsers(dest="cmd", required=True).add_parser("train")
    for a in ("--data", "--config", "--out", "--metrics", "--history", "--state-dir"):
        p.add_argument(a, required=True)
    add_compute(p)
    tracked.add_tracking(p)
    p.set_defaults(func=train)
    features = sub.add_parser("features", help="region features").add_subparsers(dest="cmd", required=True)
    p = features.add_parser("extract")
    for a in ("--data", "--detector", "--config", "--out"):
        p.add_argument(a, required=True)
    add_compute(p)
    p.set_defaults(func=extract)
    p = features.add_parser("pretrained", help="region features of real photos by torchvision's COCO Faster R-CNN")
    for a in ("--data", "--config", "--out"):
        p.add_argument(a, required=True)
    add_compute(p)
    p.set_defaults(func=extract_pretrained)
    p = features.add_parser("patches", help="raw-pixel patches of every image, for a tower with no detector")
    for a in ("--data", "--out"):
        p.add_argument(a, required=True)
    p.add_argument("--patch", type=int, required=True, help="patch side in pixels (softlabel.pixel_tower.patch)")
    p.set_defaults(func=patches)
    p = features.add_parser("import", help="released region features into the feature store")
    p.add_argument("--format", required=True, choices=["butd-tsv", "vinvl-tsv", "scan-npy", "teran"])
    p.add_argument("--source", required=True, help="the TSV file, or the folder (scan-npy, teran)")
    p.add_argument("--dataset", required=True, help="data/NAME: the images to import features for")
    p.add_argument("--out", required=True)
    p.set_defaults(func=import_features)
    p = features.add_parser("info", help="a feature store's images, max regions and region size")
    p.add_argument("store")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=info)


def train(args) -> int:
    from itr.cli.tracked import tracker
    from itr.config import DetectorConfig, parse_section
    from itr.features.detector import train_on_dataset

    cfg = parse_section(DetectorConfig, args.config)
    device = compute(args)
    with tracker(args, cfg.to_dict(), {"rule": "train_detector"}) as run:
        metrics = train_on_dataset(cfg, args.data, args.out, args.metrics, args.state_dir, device, log=log.info,
                                   on_epoch=(lambda epoch, m: run.log(m, epoch)) if run else None,
                                   history_path=args.history)
        if run:
            run.log({"val/mAP_0.5": metrics["mAP@0.5"]}, cfg.epochs)
    return 0


def extract(args) -> int:
    from itr.config import FeaturesConfig, parse_section
    from itr.features.extract import extract_dataset

    cfg = parse_section(FeaturesConfig, args.config)
    extract_dataset(args.data, args.detector, cfg, args.out, compute(args), log=log.info)
    return 0


def extract_pretrained(args) -> int:
    from itr.config import PretrainedFeaturesConfig, parse_section, unread_keys
    from itr.features import pretrained
    from itr.manifest import file_digest

    cfg = parse_section(PretrainedFeaturesConfig, args.config, stage="pretrained_features")
    model = pretrained.load_pretrained(cfg.arch, cfg.weights, cfg.min_size, cfg.max_size, cfg.proposals)
    read = {k: v for k, v in cfg.to_dict().items() if k not in unread_keys("pretrained_features", cfg.SECTION)}
    source = {"detector": file_digest(cfg.weights), "features": read}
    pretrained.extract_pretrained(args.data, model, cfg, args.out, source, compute(args), log=log.info)
    return 0


def patches(args) -> int:
    from itr.features.patches import write_patch_store

    write_patch_store(args.data, args.out, args.patch, log=log.info)
    return 0


def import_features(args) -> int:
    from itr.features.importers import import_features as run

    run(args.format, args.source, args.dataset, args.out, log=log.info)
    return 0


def info(args) -> int:
    import json

    from itr.features.store import FeatureStore

    store = FeatureStore(args.store)
    summary = {"images": len(store), "max_regions": store.max_regions, "dim": store.dim,
               "source": store.manifest["source"], "digest": store.manifest["digest"]}
    print(json.dumps(summary, indent=1) if args.json else
          f"{args.store}: {summary['images']} images, up to {summary['max_regions']} regions of {summary['dim']} dims")
    return 0
