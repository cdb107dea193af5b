"""Verified downloads: one file from a list of mirrors, resumed, retried, hash-checked, never half-written.

pooch does the hash check, the retries (with a growing wait) and the temporary-file-then-rename; what it lacks is
added here:

- **Resume.** Bytes received so far are kept in ``<out>.part``; the next attempt (a retry, or a later run after a
  kill) asks for the rest with an HTTP ``Range`` header, so a cut 13 GB download continues where it stopped.
- **Mirrors.** Sources of these datasets move and die; each file has a list of URLs (or local paths: a file the
  user placed by hand is always accepted) tried in order, and the error names every one that failed and why.
- **Free disk** is checked against the server's announced size before any byte is written.
- **Trust on first use.** Where no hash is published, the first download's SHA-256 is pinned in
  ``SHA256SUMS`` beside the file (the ``sha256sum -c`` format, tracked by DVC); a later download that differs fails.

Example:
    >>> fetch(["https://mirror-a/x.zip", "/data/placed/x.zip"], "downloads/coco/x.zip", "md5:0da8c0bd…")
    'sha256:…'
"""
from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from urllib.parse import urlparse

from itr.errors import InputError

log = logging.getLogger(__name__)
CHUNK = 1 << 20
STREAM_CHUNK = 1 << 16  # a cut connection loses at most this much of what had arrived
DISK_MARGIN = 1 << 26  # keep 64 MiB free beyond the file itself
LOCK_NAME = "SHA256SUMS"


class DownloadError(InputError, RuntimeError):
    """No mirror gave the file with the expected hash; the message names each mirror and what went wrong."""


class DiskSpaceError(InputError, OSError):
    """Not enough free space for the download."""


def sha256(path: str | Path) -> str:
    return _file_hashes(Path(path), "sha256")["sha256"]


class ResumingDownloader:
    """A pooch downloader that keeps partial bytes in ``part`` and resumes them with an HTTP Range request.

    pooch calls it with a fresh temporary ``output_file``; the completed ``part`` is renamed onto it, and pooch then
    checks the hash and renames it onto the destination (or deletes it, and with it the bad bytes).
    """

    def __init__(self, part: Path, progressbar: bool = True, timeout: float = 60.0):
        self.part, self.progressbar, self.timeout = part, progressbar, timeout

    def __call__(self, url: str, output_file: str, pooch_obj=None, check_only: bool = False):
        local = _local_path(url)
        if local is not None:  # a file placed by hand, or a file:// mirror: copied whole, then checked
            if not local.is_file():
                raise FileNotFoundError(f"{local}: no such file")
            _check_free_space(self.part.parent, local.stat().st_size)
            shutil.copyfile(local, output_file)
            return
        import requests
        from tqdm import tqdm

        have = self.part.stat().st_size if self.part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as r:
            if r.status_code == 416 and have:  # nothing left to send: the part is whole
                total = have
            else:
                r.raise_for_status()
                if r.status_code != 206:  # the server ignored Range: start again
                    have = 0
                rest = int(r.headers.get("Content-Length", 0))
                total = have + rest if rest else None
                _check_free_space(self.part.parent, rest)
                with open(self.part, "ab" if have else "wb") as f, tqdm(
                        total=total, initial=have, unit="B", unit_scale=True, disable=not self.progressbar,
                        desc=self.part.name[:-len(".part")], mininterval=5.0) as bar:
                    for block in r.iter_content(STREAM_CHUNK):
                        f.write(block)
                        bar.update(len(block))
                if total is not None and self.part.stat().st_size != total:
                    raise requests.exceptions.ConnectionError(
                        f"{url}: connection closed after {self.part.stat().st_size} of {total} bytes")
        self.part.replace(output_file)


def fetch(urls: list[str] | str, out: str | Path, known_hash: str | None = None, *, retries: int = 3,
          progressbar: bool = True, lock: str | Path | None = None, place: str | None = None) -> str:
    """Download ``out`` from the first of ``urls`` that gives it whole and with the right hash; return its sha256.

    ``known_hash`` is ``"sha256:HEX"`` or ``"md5:HEX"`` (as pooch spells them), or None where none is published: then
    ``lock`` (default ``SHA256SUMS`` beside ``out``) pins the first download's sha256, and later ones must match it.
    A file already at ``out`` is checked, not fetched again.
    """
    import pooch
    import requests

    out = Path(out)
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise InputError(f"{out}: no URL or local path to fetch it from. "
                         + (f"It is placed by hand: {place}." if place else "Add one to its mirrors in params.yaml."))
    lock = Path(lock) if lock else out.parent / LOCK_NAME
    pinned = read_lock(lock).get(out.name)
    # verify the strongest hash we have: the published one, else the pinned one
    expected = known_hash or (f"sha256:{pinned}" if pinned else None)
    out.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        store = pooch.create(path=out.parent, base_url="", registry={out.name: expected}, urls={out.name: url},
                             retry_if_failed=retries)
        try:
            store.fetch(out.name, downloader=ResumingDownloader(out.with_name(out.name + ".part"), progressbar))
            break
        except ValueError as e:  # pooch: the bytes arrived but their hash is wrong (the bad file is deleted)
            failures.append(f"{url}: {_hash_message(e)}")
        except (requests.exceptions.RequestException, OSError) as e:
            if isinstance(e, DiskSpaceError):
                raise
            failures.append(f"{url}: {e}")
        log.warning("%s: %s; trying the next mirror", out.name, failures[-1])
    else:
        raise DownloadError(f"{out}: no mirror gave the expected file (expected {expected or 'any'}):\n  "
                            + "\n  ".join(failures)
                            + "\nFix: add a working mirror to its list in params.yaml, or place the file at that path"
                            + (f" ({place})." if place else "."))
    # a published md5 may match while the bytes differ from the first download's: the pin decides
    return verify(out, known_hash, lock=lock, remove_bad=True)


def verify(path: str | Path, known_hash: str | None = None, lock: str | Path | None = None,
           remove_bad: bool = False) -> str:
    """Check a file (downloaded, or placed by hand) against its published hash and its pinned sha256; pin it
    when it has none. Return ``"sha256:HEX"``; raise DownloadError naming both hashes on a mismatch."""
    path = Path(path)
    lock = Path(lock) if lock else path.parent / LOCK_NAME
    alg, _, want = (known_hash or "sha256:").partition(":")
    hashes = _file_hashes(path, "sha256", alg)  # one pass over the file, however large, for both
    digest, problem = hashes["sha256"], None
    if known_hash:
        got = hashes[alg]
        if got != want:
            problem = f"{alg} {got}, but its published {alg} is {want}"
    pinned = read_lock(lock).get(path.name)
    if problem is None and pinned and pinned != digest:
        problem = (f"sha256 {digest} differs from {pinned} pinned in {lock} by the first download; if the source "
                   f"changed on purpose, delete its line from {lock}")
    if problem:
        if remove_bad:
            path.unlink()
        raise DownloadError(f"{path}: {problem}. Fetch it again, or place the right file there.")
    if not pinned:
        pin(lock, path.name, digest, "after its published hash matched" if known_hash else
            "trust on first use: no published hash")
    return f"sha256:{digest}"


def _file_hashes(path: Path, *algs: str) -> dict[str, str]:
    """The file's digest under each algorithm, from one read."""
    hashes = {alg: hashlib.new(alg) for alg in algs}
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            for h in hashes.values():
                h.update(block)
    return {alg: h.hexdigest() for alg, h in hashes.items()}


def read_lock(lock: Path) -> dict[str, str]:
    """``SHA256SUMS`` as {file name: sha256}."""
    if not lock.exists():
        return {}
    pins = {}
    for n, line in enumerate(lock.read_text().splitlines(), 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise InputError(f"{lock}:{n}: not a '<sha256>  <file name>' line: {line!r}; fix or delete the line")
        pins[name] = digest
    return pins


def pin(lock: Path, name: str, digest: str, why: str = "trust on first use: no published hash") -> None:
    """Add ``name``'s sha256 to ``lock``; under an exclusive lock, as a dataset's files are fetched side by side."""
    import fcntl

    from itr.atomic import write_text

    lock.parent.mkdir(parents=True, exist_ok=True)
    # a POSIX lock on a file of its own (lockf works on NFS, where cluster jobs often write; the pin file itself is
    # replaced atomically, so it cannot carry the lock)
    with open(lock.with_name(f".{lock.name}.lock"), "a") as guard:
        fcntl.lockf(guard, fcntl.LOCK_EX)
        pins = read_lock(lock) | {name: digest}
        write_text(lock, "".join(f"{d}  {n}\n" for n, d in sorted(pins.items())))
    log.info("%s: pinned sha256 %s in %s (%s)", name, digest, lock, why)


def _hash_message(e: ValueError) -> str:
    return str(e).split(" Deleted download")[0]  # pooch's text names both hashes; the rest is its advice


def _local_path(url: str) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https", "ftp"):
        return None
    return Path(parsed.path if parsed.scheme == "file" else url)


def _check_free_space(folder: Path, need: int) -> None:
    free = shutil.disk_usage(folder).free
    if need and free < need + DISK_MARGIN:
        raise DiskSpaceError(f"{folder}: {need / 1e9:.2f} GB to download but {free / 1e9:.2f} GB free; "
                             "free space there or point the download folder elsewhere")
