"""The MLflow options and tracker of the commands that track a run while it goes (training, the detector).

Apart from itr.cli.common on purpose: a rule's code digest (itr.provenance) covers every module its command can
import, so with the tracker there every command (data generation included) would rerun after an edit to
itr.tracking. Commands import these inside the functions that use them.
"""
from __future__ import annotations

import argparse
import contextlib


def add_tracking(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking", help="JSON of the tracking section; omit to skip MLflow")
    p.add_argument("--run-name", default="manual")


def tracker(args, params: dict, tags: dict):
    """An MLflow Tracker (itr.tracking), or a do-nothing context when --tracking is not given."""
    from itr.config import TrackingConfig, parse_section
    from itr.tracking import Tracker

    from itr.distributed import is_main

    if not args.tracking or not is_main():  # under torchrun, rank 0 tracks the run
        return contextlib.nullcontext(None)
    return Tracker(parse_section(TrackingConfig, args.tracking), args.run_name, params, tags)
