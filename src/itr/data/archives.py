"""Safe extraction of downloaded archives: nothing lands outside the target folder, and nothing half-extracted
lands in it.

tar archives go through the standard library's ``filter="data"`` (Python 3.11.4+; pooch's ``Untar`` passes it only
on 3.12+), which refuses ``../`` entries, absolute paths and links that point outside. zip members are checked here
(``zipfile`` strips ``..`` silently, which hides a malicious archive instead of refusing it; and a zip can carry a
symlink in its Unix mode bits). Everything is extracted into ``<target>.partial`` and renamed onto ``target`` only
when complete.

Example:
    >>> extract("downloads/flickr30k/flickr30k-images.tar.gz", "data/raw/flickr30k")
    PosixPath('data/raw/flickr30k')
"""
from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from itr.errors import InputError


class UnsafeArchiveError(InputError, ValueError):
    """An archive entry would be written, or would point, outside the extraction folder."""


def extract(archive: str | Path, target: str | Path) -> Path:
    """Extract ``archive`` (tar, tar.gz/bz2/xz, zip) into ``target``, refusing any entry that leaves it."""
    archive, target = Path(archive), Path(target)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, partial)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, partial)
        else:
            raise InputError(f"{archive}: neither a tar nor a zip archive (truncated download?); fetch it again")
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tar:
        for member in tar:  # checked one by one so the error names the entry, then extracted as the filter allows
            _check_name(archive, member.name)  # the filter would strip a leading "/"; an absolute name is refused
            try:
                tar.extract(member, dest, filter="data")
            except tarfile.FilterError as e:
                raise UnsafeArchiveError(f"{archive}: entry {member.name!r} refused ({type(e).__name__}: {e}); "
                                         "the archive is unsafe or corrupt: get it from a trusted source") from e


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _check_name(archive, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UnsafeArchiveError(f"{archive}: entry {info.filename!r} is a symbolic link; links are "
                                         "refused in zip archives: get the archive from a trusted source")
        zf.extractall(dest)


def _check_name(archive: Path, entry: str) -> None:
    name = PurePosixPath(entry.replace("\\", "/"))
    if name.is_absolute() or ".." in name.parts or (name.parts and ":" in name.parts[0]):
        raise UnsafeArchiveError(f"{archive}: entry {entry!r} leaves the extraction folder; "
                                 "the archive is unsafe: get it from a trusted source")
