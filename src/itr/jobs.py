"""A job's lifetime: it dies with whoever scheduled it, and never shares a state directory with another job.

A Snakemake job is ``snakemake -> bash (the rule's shell) -> itr``. Killing Snakemake or the shell with
SIGKILL leaves the ``itr`` process running by default; it would later publish an output that the
scheduler already reported as failed, and the next run would accept it. ``die_with_scheduler`` makes
the process watch its parent and, when one is an ancestor, the ``snakemake`` process above it:

* the kernel sends SIGTERM when the direct parent dies (``PR_SET_PDEATHSIG``, Linux);
* the workflow names its Snakemake process in the environment (``mark_scheduler``, read on this host only),
  so a job started just as Snakemake died still knows whom it belongs to;
* a daemon thread polls these processes once a second and sends SIGTERM to this process when one is gone;
* SIGTERM raises ``Terminated``, so ``with`` blocks unwind: temporary files are removed (itr.atomic), the
  MLflow run ends as KILLED (itr.tracking), and no output is renamed into place.

``state_lock`` takes an exclusive ``flock`` on a resumable state directory: a second trainer on the same
state fails at once naming the holder. The kernel drops the lock when its holder dies, so a killed job
never leaves a stale lock behind.

Example:
    >>> die_with_scheduler()
    >>> with state_lock(Path("models/<variant>/.state/be")):
    ...     train(...)
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import threading
import time
from pathlib import Path

from itr.errors import InputError

PR_SET_PDEATHSIG = 1
SCHEDULER_ENV = "ITR_SCHEDULER"  # host:pid:start time of the Snakemake process that runs this job
POLL_SECONDS = 1.0
_watching = False  # once per process (tests call the CLI's main many times)


class Terminated(SystemExit):
    """SIGTERM arrived (the scheduler or a parent died, or the job was cancelled)."""

    def __init__(self):
        super().__init__(128 + signal.SIGTERM)


class StateLockedError(InputError, RuntimeError):
    """Another live job holds the state directory."""


def _raise_terminated(signum, frame):
    raise Terminated()


def alive(pid: int, started: str | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` (``start_time``) still runs."""
    return started is not None and _start_time(pid) == started


def start_time(pid: int | None = None) -> str | None:
    """This (or another) process's start time, to record beside its pid."""
    return _start_time(pid or os.getpid())


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent_of(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1])
    except (OSError, IndexError, ValueError):
        return 0


def _start_time(pid: int) -> str | None:
    """Start time of a live process (field 22 of /proc/<pid>/stat; tells it from a reused pid); None when the
    process is gone or a zombie (dead, not yet reaped by its parent)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else fields[19]
    except (OSError, IndexError):
        return None


def watched_ancestors(pid: int | None = None) -> list[int]:
    """The processes a job lives by: its parent, and up to the nearest ``snakemake`` ancestor if there is one.

    Without a Snakemake ancestor (a command run by hand, a SLURM step) only the parent is watched, so a
    ``nohup``'d job outlives the terminal it was started from.
    """
    chain, current = [], _parent_of(pid or os.getpid())
    while current > 1:
        chain.append(current)
        if "snakemake" in _cmdline(current):
            return chain
        current = _parent_of(current)
    return chain[:1]


def mark_scheduler() -> None:
    """Called by the Snakefile: jobs started from this process watch it (on this host; a cluster job cannot)."""
    os.environ[SCHEDULER_ENV] = f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _marked_scheduler() -> dict[int, str | None]:
    host, _, rest = os.environ.get(SCHEDULER_ENV, "").partition(":")
    pid, _, started = rest.partition(":")
    return {int(pid): started} if host == socket.gethostname() and pid.isdigit() else {}


def die_with_scheduler() -> None:
    """SIGTERM raises Terminated; the job gets SIGTERM when its parent or Snakemake ancestor dies."""
    global _watching
    if _watching:
        return
    _watching = True
    signal.signal(signal.SIGTERM, _raise_terminated)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    watched = {pid: _start_time(pid) for pid in watched_ancestors()} | _marked_scheduler()
    if not watched:
        return
    parent = os.getppid()

    def watch():
        while os.getppid() == parent and all(alive(pid, started) for pid, started in watched.items()):
            time.sleep(POLL_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="itr-watch-scheduler", daemon=True).start()


@contextlib.contextmanager
def state_lock(state_dir: str | Path):
    """Hold an exclusive lock on a resumable state directory for the duration of the block."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise StateLockedError(f"{state_dir} is in use by {holder}; two jobs must not resume one state. Wait for "
                                   "it to finish, or stop it (a killed holder releases the lock at once).") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
