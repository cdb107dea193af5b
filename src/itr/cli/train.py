"""itr train {be,ce,joint,cmc,disentangled}: train one model on a dataset and its region features (itr.training)."""
from __future__ import annotations

from itr.cli.common import add_compute, compute, log

METHODS = ("be", "ce", "joint", "cmc", "disentangled")  # itr.config.TRAIN_METHODS (not imported here: `itr --help` stays light)


def register(sub) -> None:
    from itr.cli import tracked
    p = sub.add_parser("train", help="train be (bi-encoder), ce (cross-encoder), joint (both, shared weights), cmc "
                                     "(a dual transformer with the CMC loss) or disentangled (alignment and matching "
                                     "heads on a trained checkpoint, --init); their sections: itr.config.TRAIN_METHODS")
    p.add_argument("method", choices=METHODS)
    for a in ("--data", "--features", "--config", "--text-encoder", "--out", "--history", "--state-dir"):
        p.add_argument(a, required=True)
    p.add_argument("--init", help="the trained checkpoint a disentangled model fine-tunes (its backbone)")
    add_compute(p)
    p.add_argument("--processes", type=int, default=1,
                   help="data-parallel processes (one per GPU): more than 1 restarts the command under torchrun")
    tracked.add_tracking(p)
    p.set_defaults(func=train)


def train(args) -> int:
    from itr import distributed
    from itr.cli.tracked import tracker
    from itr.config import TRAIN_METHODS, TextEncoderConfig, parse_section
    from itr.training import train_from_files

    if args.processes > 1 and distributed.world()[1] == 1:
        return distributed.relaunch(args.processes)
    cfg = parse_section(TRAIN_METHODS[args.method], args.config, stage="train")
    text_cfg = parse_section(TextEncoderConfig, args.text_encoder)
    device = compute(args)
    params = {args.method: cfg.to_dict(), "text_encoder": text_cfg.to_dict()}
    with tracker(args, params, {"rule": f"train_{args.method}", "method": args.method}) as run:
        result = train_from_files(args.method, cfg, text_cfg, args.data, args.features, args.state_dir, args.out,
                                  args.history, device, log=log.info, track=run.log if run else None,
                                  init=args.init)
        if run:
            run.set_tags({"best_epoch": result["best_epoch"]})
    return 0
