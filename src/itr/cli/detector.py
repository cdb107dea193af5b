"""itr detector train | itr features extract: the Faster R-CNN and the region features it extracts."""
from __future__ import annotations

from itr.cli.common import add_compute, compute, log


def register(sub) -> None:
    from itr.cli import tracked
    p = sub.add_parser("detector", help="Faster R-CNN").add_subparsers(dest="cmd", required=True).add_parser("train")
    for a in ("--data", "--config", "--out", "--metrics", "--state-dir"):
        p.add_argument(a, required=True)
    add_compute(p)
    tracked.add_tracking(p)
    p.set_defaults(func=train)
    p = sub.add_parser("features", help="region features").add_subparsers(dest="cmd", required=True)
    p = p.add_parser("extract")
    for a in ("--data", "--detector", "--config", "--out"):
        p.add_argument(a, required=True)
    add_compute(p)
    p.set_defaults(func=extract)


def train(args) -> int:
    from itr.cli.tracked import tracker
    from itr.config import DetectorConfig, parse_section
    from itr.features.detector import train_on_dataset

    cfg = parse_section(DetectorConfig, args.config)
    device = compute(args)
    with tracker(args, cfg.to_dict(), {"rule": "train_detector"}) as run:
        metrics = train_on_dataset(cfg, args.data, args.out, args.metrics, args.state_dir, device, log=log.info,
                                   on_epoch=(lambda epoch, m: run.log(m, epoch)) if run else None)
        if run:
            run.log({"val/mAP_0.5": metrics["mAP@0.5"]}, cfg.epochs)
    return 0


def extract(args) -> int:
    from itr.config import FeaturesConfig, parse_section
    from itr.features.extract import extract_dataset

    cfg = parse_section(FeaturesConfig, args.config)
    extract_dataset(args.data, args.detector, cfg, args.out, compute(args), log=log.info)
    return 0
