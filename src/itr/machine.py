"""The machine a number was measured on: CPU model and the ISA features that change floating-point results, library
versions, threads and device.

CPU runs with the same pins are deterministic on one kind of CPU only: AVX2, AVX-512 and AMX kernels round
differently, so training diverges across kinds. Every checkpoint (``"machine"``: where it trained), metrics file and
benchmark (where it was measured) records ``fingerprint()``; its ``"id"`` hashes the fields that decide bit-exact
results (CPU model, ISA features, versions, threads, device). A result depends on every job upstream of it: exact
agreement is expected only where the training and the evaluation fingerprints both agree.

Example:
    >>> fp = fingerprint(threads=2, device="cpu")
    >>> sorted(fp)
    ['cpu', 'device', 'faiss', 'faiss_threads', 'id', 'isa', 'numpy', 'platform', 'threads', 'torch']
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

# CPU features whose presence selects other kernels (and so other rounding) in torch, oneDNN, OpenBLAS and faiss.
ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "amx_int8",
             "asimd", "sve")


def cpu_info(cpuinfo: str | None = None) -> tuple[str, list[str]]:
    """(model name, the ISA_FLAGS present) from /proc/cpuinfo's text (read when not given); what platform knows
    elsewhere."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    model, flags = "", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model or platform.processor() or platform.machine(), [f for f in ISA_FLAGS if f in flags]


def fingerprint(threads: int | None = None, device: str = "cpu") -> dict:
    """This machine as a metrics file records it; ``threads``: torch's (default: its current setting).

    torch's fields (its version, its thread count) are recorded only when the job imported torch: a job that never did
    (evaluating an index, a scores file) computed nothing with it, and importing torch only to record it would cost a
    few seconds of every such job. Those jobs record ``"torch": None`` (and ``"threads": None`` unless given)."""
    import faiss
    import numpy

    torch = sys.modules.get("torch")
    model, isa = cpu_info()
    if str(device).startswith("cuda"):
        device = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    if threads is None and torch is not None:
        threads = torch.get_num_threads()
    # plain strings: torch's version is a str subclass, which a weights_only checkpoint load refuses
    fp = {"cpu": model, "isa": isa, "platform": platform.platform(),
          "torch": None if torch is None else str(torch.__version__),
          "faiss": str(faiss.__version__), "numpy": str(numpy.__version__), "threads": threads,
          "faiss_threads": faiss.omp_get_max_threads(), "device": str(device)}
    exact = {k: fp[k] for k in ("cpu", "isa", "torch", "faiss", "numpy", "threads", "faiss_threads", "device")}
    return {**fp, "id": hashlib.sha256(json.dumps(exact, sort_keys=True).encode()).hexdigest()[:12]}
