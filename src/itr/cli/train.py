"""itr train {be,ce,joint,cmc,disentangled,softlabel}: train one model on a dataset and its region features (itr.training);
itr teachers: a text teacher's embeddings of a dataset's captions, computed once (itr.teachers)."""
from __future__ import annotations

from itr.cli.common import add_compute, compute, log

METHODS = ("be", "ce", "joint", "cmc", "disentangled", "softlabel")  # itr.config.TRAIN_METHODS (not imported here: `itr --help` stays light)


def register(sub) -> None:
    from itr.cli import tracked
    p = sub.add_parser("train", help="train be (bi-encoder), ce (cross-encoder), joint (both, shared weights), cmc "
                                     "(a dual transformer with the CMC loss) or disentangled (alignment and matching "
                                     "heads on a trained checkpoint, --init) or softlabel (a dual encoder taught by uni-modal "
                                     "teachers, --teacher); their sections: itr.config.TRAIN_METHODS")
    p.add_argument("method", choices=METHODS)
    for a in ("--data", "--features", "--config", "--text-encoder", "--out", "--history", "--state-dir"):
        p.add_argument(a, required=True)
    p.add_argument("--init", help="the trained checkpoint a disentangled model fine-tunes (its backbone)")
    p.add_argument("--teacher", help="a softlabel model's text-teacher file (itr teachers), when its teacher_features is disk")
    p.add_argument("--image-teacher", help="a softlabel model's image teacher: the feature store whose whole-image "
                                           "features it is (default: --features; a raw-pixel student's: its detector store)")
    add_compute(p)
    p.add_argument("--processes", type=int, default=1,
                   help="data-parallel processes (one per GPU): more than 1 restarts the command under torchrun")
    tracked.add_tracking(p)
    p.set_defaults(func=train)
    t = sub.add_parser("teachers", help="embed every caption of a dataset with a text teacher, once (softlabel)")
    for a in ("--data", "--text-teacher", "--out"):
        t.add_argument(a, required=True)
    t.add_argument("--lang", default="en")
    add_compute(t)
    t.set_defaults(func=teachers)


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
                                  init=args.init, teacher=args.teacher, image_teacher=args.image_teacher)
        if run:
            run.set_tags({"best_epoch": result["best_epoch"]})
    return 0


def teachers(args) -> int:
    from itr.teachers import write_text_teacher

    compute(args)  # torch's threads
    write_text_teacher(args.data, args.text_teacher, args.out, args.lang, log=log.info)
    return 0
