"""The ``itr`` command line: one subcommand per workflow stage, each a thin shell over one library function.

Snakemake rules call these; tests call ``main([...])`` directly. Each stage takes its config section as a
JSON object (``--config '{"lr": 5e-5, ...}'``), so hyperparameters reach the code only through Snakemake's
params, and the library writes every output atomically. One module per stage group:

    itr params check params.yaml                                                       itr.cli.data
    itr data shapes --config JSON --out data/shapes
    itr data fetch --url URL [--url MIRROR ...] [--sha256 HEX] --out PATH | itr data extract --archive A --out DIR
    itr detector train --data data/shapes --config JSON --out D.pt --metrics M.json   itr.cli.detector
    itr features extract --data data/shapes --detector D.pt --config JSON --out features/shapes
    itr features pretrained --data data/coco --config JSON --out features/coco        (torchvision's COCO detector)
    itr features import --format butd-tsv --source F.tsv --dataset data/coco --out features/coco | itr features info S
    itr train {be,ce,joint} --data D --features F --config JSON --text-encoder JSON --out M.pt   itr.cli.train
    itr teachers --data D --text-teacher minilm --out T.npz                              (soft-label students' text teacher)
    itr index build --model M.pt --data D --features F --config JSON --out DIR          itr.cli.index
    itr evaluate --index DIR --config JSON --protocol folds --out M.json ...
    itr rerank score --reranker CE.pt [--first-stage DIR] --data D ... --out S.npz      itr.cli.rerank
    itr rerank evaluate --scores S.npz --config JSON --method sep_coop --out M.json [--variants-dir D]
    itr table <paper> <target> --inputs a.json ... --spec JSON --out STEM               itr.cli.report
    itr check-scores --expected E.yaml ... | itr runs compare | itr runs mirror --cells M.json ... --out R.json
    itr dvc-yaml [--check]                                                               itr.cli.workflow
    itr search "two red circles above a square" [--method sep_coop] [--k 5] [--png out.png]   itr.cli.search
    itr serve [--methods be,sep_coop] [--port 8000]                                      (a local search page)
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from itr.cli import data, detector, index, report, rerank, search, train, workflow

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
STAGES = (data, detector, train, index, rerank, search, report, workflow)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="itr", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="group", required=True)
    for stage in STAGES:
        stage.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    level = os.environ.get("ITR_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    if level != "DEBUG":  # faiss's loader reports each CPU build it tries (ModuleNotFoundError included) at INFO
        logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    from itr.errors import USER_ERRORS
    from itr.jobs import die_with_scheduler

    die_with_scheduler()  # a killed Snakemake or rule shell takes this job with it (itr.jobs)

    try:
        return args.func(args)
    except USER_ERRORS as e:  # bad input: a clear message, no traceback noise
        print(f"itr: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
