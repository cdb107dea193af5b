"""itr params check | itr data {shapes,fetch,extract}: validate a params file; generate ShapeCaptions; download a
file from its mirrors, verified; extract an archive safely."""
from __future__ import annotations

from itr.cli.common import log
from itr.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("params", help="validate a params file").add_subparsers(dest="cmd", required=True).add_parser("check")
    p.add_argument("params", nargs="?", default="params.yaml")
    p.set_defaults(func=params_check)
    data = sub.add_parser("data", help="datasets").add_subparsers(dest="cmd", required=True)
    p = data.add_parser("shapes")
    p.add_argument("--config", required=True, help="JSON of the shapes section")
    p.add_argument("--out", required=True)
    p.set_defaults(func=shapes)
    p = data.add_parser("fetch", help="download one file, resumed and hash-checked, from the first mirror that works")
    p.add_argument("--url", action="append", default=[], help="a mirror URL or a local path; repeat, tried in order")
    digest = p.add_mutually_exclusive_group()
    digest.add_argument("--sha256", help="its published sha256 (hex)")
    digest.add_argument("--hash", help="ALG:HEX, e.g. md5:0da8... where only an md5 is published")
    p.add_argument("--out", required=True)
    p.add_argument("--lock", help="file of pinned sha256s for files without a published hash (default: "
                                  "SHA256SUMS beside --out)")
    p.add_argument("--retries", type=int, default=3)
    p.add_argument("--place", help="how to get the file by hand, for the error when no mirror has it")
    p.set_defaults(func=fetch)
    _register_checks(data)
    p = data.add_parser("import", help="a released caption dataset into the canonical format")
    p.add_argument("--format", required=True, choices=["karpathy", "multi30k", "url-list"])
    p.add_argument("--annotations", required=True, help="karpathy: dataset_{coco,flickr30k}.json; "
                                                        "multi30k: its data/task1 folder; url-list: caption<TAB>url")
    p.add_argument("--images", action="append", default=[],
                   help="the folder the images were extracted to (karpathy: repeat for several, searched in order; "
                        "url-list: none, img2dataset fetches them into <out>/images)")
    p.add_argument("--split", default="test", help="url-list: the split its images form")
    p.add_argument("--downloader", default="{}",
                   help="url-list: JSON of img2dataset's threads, timeout, retries (params datasets.<name>.url_list)")
    p.add_argument("--out", required=True, help="data/NAME")
    p.add_argument("--restval", choices=["train", "drop"], default="train", help="karpathy: COCO's restval images")
    p.add_argument("--test-split", default="test_2016_flickr", help="multi30k: which test set is 'test'")
    p.set_defaults(func=import_dataset)
    p = data.add_parser("info", help="a dataset's counts per split and language")
    p.add_argument("data")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=info)


def _register_checks(data) -> None:
    """itr data verify | extract: a downloaded or hand-placed file checked, an archive extracted."""
    p = data.add_parser("verify", help="check a file against its published hash and its pinned sha256 (pinning it "
                                       "when it has none)")
    p.add_argument("--file", required=True)
    p.add_argument("--hash", help="its published ALG:HEX")
    p.add_argument("--lock", help="the SHA256SUMS file pinning it (default: beside it)")
    p.set_defaults(func=verify)
    p = data.add_parser("extract", help="extract a tar or zip archive, refusing entries that leave the folder")
    p.add_argument("--archive", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--hash", help="check the archive first: its published ALG:HEX; its sha256 is pinned in --lock")
    p.add_argument("--lock", help="with --hash or alone: the SHA256SUMS file pinning it (default: beside it)")
    p.set_defaults(func=extract)


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


def fetch(args) -> int:
    from itr.data.download import fetch as download

    known = f"sha256:{args.sha256}" if args.sha256 else args.hash
    digest = download(args.url, args.out, known, retries=args.retries, lock=args.lock, place=args.place)
    log.info("%s: %s", args.out, digest)
    return 0


def verify(args) -> int:
    from itr.data.download import verify as check

    log.info("%s: %s", args.file, check(args.file, args.hash, args.lock))
    return 0


def extract(args) -> int:
    from itr.data.archives import extract as unpack
    from itr.data.download import verify

    if args.hash or args.lock:  # a file placed by hand is checked here; a fetched one again (cheap beside the copy)
        log.info("%s: %s", args.archive, verify(args.archive, args.hash, args.lock))
    log.info("extracted %s into %s", args.archive, unpack(args.archive, args.out))
    return 0


def import_dataset(args) -> int:
    from itr.data import importers

    if args.format == "url-list":
        import json

        from itr.data.urllist import import_url_list

        if args.images:
            raise InputError("--format url-list takes no --images: img2dataset fetches them into <out>/images")
        summary = import_url_list(args.annotations, args.out, split=args.split, **json.loads(args.downloader))
    elif not args.images:
        raise InputError(f"--format {args.format} reads the images from --images (the folder they were extracted to)")
    elif args.format == "karpathy":
        summary = importers.import_karpathy(args.annotations, args.images, args.out, restval=args.restval)
    else:
        if len(args.images) > 1:
            raise InputError("--format multi30k reads one --images folder (Flickr30k's images)")
        summary = importers.import_multi30k(args.annotations, args.images[0], args.out, test_split=args.test_split)
    log.info("%s: %s", args.out, summary)
    return 0


def info(args) -> int:
    import json

    from itr.data.dataset import dataset_info

    summary = dataset_info(args.data)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        for split, row in summary["splits"].items():
            print(f"{split:8s} {row['images']:8d} images  " + "  ".join(
                f"{lang}: {n} captions" for lang, n in row["captions"].items()))
    return 0
