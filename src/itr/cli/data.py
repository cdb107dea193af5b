"""itr params check | itr data shapes: validate a params file; generate ShapeCaptions."""
from __future__ import annotations

from itr.cli.common import log


def register(sub) -> None:
    p = sub.add_parser("params", help="validate a params file").add_subparsers(dest="cmd", required=True).add_parser("check")
    p.add_argument("params", nargs="?", default="params.yaml")
    p.set_defaults(func=params_check)
    p = sub.add_parser("data", help="datasets").add_subparsers(dest="cmd", required=True).add_parser("shapes")
    p.add_argument("--config", required=True, help="JSON of the shapes section")
    p.add_argument("--out", required=True)
    p.set_defaults(func=shapes)


def params_check(args) -> int:
    from itr.params import load_params

    load_params(args.params)
    print(f"{args.params}: ok")
    return 0


def shapes(args) -> int:
    from itr.config import ShapesConfig, parse_section
    from itr.data.shapes import build

    summary = build(parse_section(ShapesConfig, args.config), args.out)
    log.info("ShapeCaptions: %s", {k: v for k, v in summary.items() if k != "config"})
    return 0
