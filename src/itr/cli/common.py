"""What every stage command shares: compute options and the options that name a cell (the MLflow tracker of the
commands that track a run is itr.cli.tracked)."""
from __future__ import annotations

import argparse
import contextlib
import logging

log = logging.getLogger("itr")
PROTOCOL_HELP = "full, folds, subset, subset<N> or extended (itr.protocols)"


def add_compute(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu or cuda[:N]")
    p.add_argument("--threads", type=int, default=2)


def benchmark_parser(doc: str, required: tuple[str, ...], device: bool = True) -> argparse.ArgumentParser:
    """The parser of a benchmark script (benchmarks/*.py): its docstring as help, ``required`` options, --threads
    and (``device``) --device; INFO logging with timestamps, since a benchmark's log is its progress."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for a in required:
        ap.add_argument(a, required=True)
    ap.add_argument("--threads", type=int, default=2)
    if device:
        ap.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU node (the faiss index stays on the CPU)")
    return ap


def add_collection(p: argparse.ArgumentParser) -> None:
    """--data/--features/--split of the test split, and the options that grow or cut the collection."""
    for a in ("--data", "--features"):
        p.add_argument(a, required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--distractors", nargs="*", default=[], metavar="DATA:FEATURES:SPLIT",
                   help="grow the collection with these splits' images and captions (never queries; Table 5)")
    p.add_argument("--lang", help="keep only the test captions in this language (Tables 2 and 7)")
    p.add_argument("--first-images", type=int, metavar="N",
                   help="keep only the split's first N images and their captions (enough for subset<M>, M <= N)")


def add_cell_names(p: argparse.ArgumentParser) -> None:
    """What a metrics file records about its cell (the workflow's wildcards)."""
    p.add_argument("--dataset", required=True, help="name of the test collection")
    p.add_argument("--trained-on", required=True, help="name of the dataset the model was trained on")
    p.add_argument("--variant", required=True, help="name of the set of trained models (the workflow's {variant})")


def cell_names(args, method: str) -> dict:
    return {"method": method, "dataset": args.dataset, "trained_on": args.trained_on, "variant": args.variant}


def compute(args):
    """Set torch's threads and return the torch device of --device (auto = CUDA when present)."""
    import torch

    from itr.config import ConfigError

    torch.set_num_threads(max(1, args.threads))
    name = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {args.device}: this machine has no CUDA device; use --device auto or cpu")
    try:
        return torch.device("cpu" if name == "auto" else name)
    except RuntimeError as e:
        raise ConfigError(f"--device {args.device}: {e}; use auto, cpu or cuda[:N]") from e
