"""Data parallelism over the processes torchrun starts: the same trajectory as one process with the same batch.

Every rank draws the same batch (the data order is seeded per epoch), takes its contiguous slice of it, and
computes its part; before each optimizer step the ranks' gradients are summed and divided by the number of
ranks, as DistributedDataParallel does. The objectives (itr.objectives) call the model's methods rather than its
``forward``, which DDP's wrapper needs to see, so the averaging is done here, after ``backward``, in one
all-reduce per parameter. Two details make W processes equal one:

* in-batch negatives: a contrastive loss needs every embedding of the batch, so the slices are gathered with
  their gradients (``gather``) and every rank computes the whole loss; the gather's backward sums what each rank
  sends back, and the average over ranks leaves exactly the one-process gradient;
* mean losses over a slice are weighted by the slice's share of the batch times W (``share``).

Without torchrun (no ``WORLD_SIZE`` in the environment) every function here is the identity: one process runs
exactly the code it always ran.

Example (two CPU processes with the gloo backend; the train rule passes its GPU count):
    $ itr train be --processes 2 --device cpu --data ... --out models/<variant>/be.pt   # restarts under torchrun
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch


def relaunch(processes: int) -> int:
    """Run this very command again as ``processes`` torchrun ranks on this node (the train rule's ``--processes``,
    its GPU count); returns torchrun's exit status. Without ``--processes``, torchrun's own ranks see WORLD_SIZE
    and do not relaunch."""
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    argv, skip = [], False  # this command line less --processes (as "--processes N" or "--processes=N")
    for arg in sys.argv[1:]:
        if skip or arg.startswith("--processes="):
            skip = False
            continue
        skip = arg == "--processes"
        if not skip:
            argv.append(arg)
    return subprocess.call([torchrun, "--standalone", f"--nproc_per_node={processes}", sys.argv[0], *argv])


def world() -> tuple[int, int]:
    """(rank, number of ranks) of this process; (0, 1) outside torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def is_main() -> bool:
    return world()[0] == 0


def setup(device: torch.device, model: torch.nn.Module | None = None) -> torch.device:
    """Join the process group (NCCL on GPUs, gloo on CPUs) and return this rank's device; the model's weights
    are then made rank 0's, so every rank starts from the same point."""
    rank, size = world()
    if size == 1:
        return device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if model is not None:
        for tensor in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(tensor.data, src=0)
    return device


def shard(items: np.ndarray) -> np.ndarray:
    """This rank's contiguous slice of a batch (ranks' slice sizes differ by at most one)."""
    rank, size = world()
    return items if size == 1 else np.array_split(items, size)[rank]


def share(n_local: int, n_total: int) -> float:
    """Weight of a mean loss over this rank's ``n_local`` of ``n_total`` items (1.0 in one process)."""
    size = world()[1]
    return 1.0 if size == 1 else n_local / n_total * size


def gather(x: torch.Tensor) -> torch.Tensor:
    """The batch's rows from every rank, in rank order, with gradients flowing back to each rank's own rows.

    (n_local, ...) -> (n_total, ...). Slices may differ in length by one row: they are padded to the longest
    for the collective and trimmed after it."""
    rank, size = world()
    if size == 1:
        return x
    import torch.distributed as dist
    from torch.distributed.nn.functional import all_gather

    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(size)]
    dist.all_gather(sizes, torch.tensor([len(x)], device=x.device))
    longest = int(max(s.item() for s in sizes))
    padded = torch.cat([x, x.new_zeros((longest - len(x), *x.shape[1:]))]) if len(x) < longest else x
    parts = all_gather(padded)
    return torch.cat([part[:int(n.item())] for part, n in zip(parts, sizes)])


def average_gradients(parameters) -> None:
    """Sum every parameter's gradient over the ranks and divide by their number (what DDP does in buckets)."""
    size = world()[1]
    if size == 1:
        return
    import torch.distributed as dist

    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(size)


def mean(value: torch.Tensor) -> float:
    """A scalar's mean over the ranks (a weighted slice loss averages to the batch's loss), as a float."""
    size = world()[1]
    if size == 1:
        return value.item()
    import torch.distributed as dist

    value = value.detach().clone()
    dist.all_reduce(value)
    return value.item() / size


def barrier() -> None:
    if world()[1] > 1:
        import torch.distributed as dist

        dist.barrier()
