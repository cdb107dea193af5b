"""itr dvc-yaml: write dvc.yaml from the paper registry (itr.papers.dvcfile), or check that it is current."""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("dvc-yaml", help="generate dvc.yaml from the paper registry")
    p.add_argument("--params", default="params.yaml", help="the params file whose stages to write")
    p.add_argument("--out", default="dvc.yaml")
    p.add_argument("--check", action="store_true", help="fail if --out differs from what would be written")
    p.set_defaults(func=dvc_yaml)


def dvc_yaml(args) -> int:
    from itr.atomic import write_text
    from itr.params import load_params
    from itr.papers.dvcfile import dvc_yaml as generate

    text = generate(load_params(args.params))
    out = Path(args.out)
    if args.check:
        if not out.exists() or out.read_text() != text:
            print(f"itr: {out} is not what the registry generates; run `itr dvc-yaml` and commit it", file=sys.stderr)
            return 1
        return 0
    write_text(out, text)
    print(f"wrote {out} ({text.count(chr(10))} lines)")
    return 0
