"""Downloads and archives against a loopback HTTP server that honours Range and can cut connections or fail."""
import hashlib
import io
import os
import re
import tarfile
import zipfile

import pytest

from itr.cli import main
from itr.data import download
from itr.data.archives import UnsafeArchiveError, extract
from itr.data.download import DiskSpaceError, DownloadError, fetch
from realformat import Server

PAYLOAD = os.urandom(3 * download.CHUNK + 12345)  # several chunks, so a cut lands mid-file


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)  # pooch waits between retries


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_cut_connection_resumes_with_range_and_gives_the_same_bytes(server, tmp_path):
    server.files["/x.bin"] = PAYLOAD
    server.cut["/x.bin"] = [1_500_000, 1_000_000]  # two cuts, then the rest
    out = tmp_path / "x.bin"
    assert fetch(f"{server.url}/x.bin", out, sha(PAYLOAD), progressbar=False) == sha(PAYLOAD)
    assert out.read_bytes() == PAYLOAD
    first, second, third = (r for _, r in server.requests)
    # each retry asks only for what is missing (less what the cut lost inside one streamed block)
    assert first is None and second.startswith("bytes=") and third.startswith("bytes=")
    resumed_at = int(second[6:-1]), int(third[6:-1])
    assert 1_500_000 - download.STREAM_CHUNK < resumed_at[0] <= 1_500_000
    assert resumed_at[0] + 1_000_000 - download.STREAM_CHUNK < resumed_at[1] <= resumed_at[0] + 1_000_000
    # no .part or temporary left; the pin file's lock file stays (empty)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".SHA256SUMS.lock", "SHA256SUMS", "x.bin"]


def test_a_part_left_by_a_killed_run_is_resumed_by_the_next(server, tmp_path):
    server.files["/x.bin"] = PAYLOAD
    (tmp_path / "x.bin.part").write_bytes(PAYLOAD[:777])
    fetch(f"{server.url}/x.bin", tmp_path / "x.bin", sha(PAYLOAD), progressbar=False)
    assert (tmp_path / "x.bin").read_bytes() == PAYLOAD and server.requests == [("/x.bin", "bytes=777-")]


def test_a_wrong_hash_fails_naming_the_file_and_both_hashes_and_leaves_nothing(server, tmp_path, capsys):
    server.files["/x.bin"] = PAYLOAD
    wrong = hashlib.sha256(b"other").hexdigest()
    out = tmp_path / "x.bin"
    code = main(["data", "fetch", "--url", f"{server.url}/x.bin", "--sha256", wrong, "--out", str(out),
                 "--retries", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "x.bin" in err and wrong in err and hashlib.sha256(PAYLOAD).hexdigest() in err
    assert list(tmp_path.iterdir()) == []


def test_a_failing_mirror_falls_through_to_the_next(server, tmp_path):
    server.files["/good/x.bin"] = PAYLOAD
    server.broken.add("/dead/x.bin")
    server.files["/bad/x.bin"] = PAYLOAD[::-1]  # a mirror serving other bytes is skipped too
    urls = [f"{server.url}/dead/x.bin", f"{server.url}/missing/x.bin", f"{server.url}/bad/x.bin",
            f"{server.url}/good/x.bin"]
    fetch(urls, tmp_path / "x.bin", sha(PAYLOAD), retries=1, progressbar=False)
    assert (tmp_path / "x.bin").read_bytes() == PAYLOAD
    assert [p for p, _ in server.requests].count("/dead/x.bin") == 2  # retried once, then the next mirror


def test_every_mirror_failing_names_each_one(server, tmp_path):
    server.broken.add("/a")
    with pytest.raises(DownloadError) as e:
        fetch([f"{server.url}/a", str(tmp_path / "nowhere.bin")], tmp_path / "x.bin", sha(PAYLOAD), retries=0,
              progressbar=False)
    assert "/a: 500" in str(e.value) and "nowhere.bin" in str(e.value) and not (tmp_path / "x.bin").exists()


def test_without_a_published_hash_the_first_download_is_pinned_and_a_changed_source_fails(server, tmp_path):
    server.files["/x.bin"] = PAYLOAD
    out = tmp_path / "x.bin"
    fetch(f"{server.url}/x.bin", out, progressbar=False)
    assert (tmp_path / "SHA256SUMS").read_text() == f"{hashlib.sha256(PAYLOAD).hexdigest()}  x.bin\n"
    out.unlink()
    server.files["/x.bin"] = PAYLOAD[:-1] + b"!"
    with pytest.raises(DownloadError, match="x.bin"):
        fetch(f"{server.url}/x.bin", out, retries=0, progressbar=False)
    assert not out.exists()


def test_a_placed_local_file_is_accepted_and_verified(tmp_path):
    placed = tmp_path / "placed.tar.gz"
    placed.write_bytes(PAYLOAD)
    out = tmp_path / "dl" / "flickr30k-images.tar.gz"
    fetch([str(placed)], out, sha(PAYLOAD), progressbar=False)
    assert out.read_bytes() == PAYLOAD
    with pytest.raises(DownloadError, match="expected sha256:"):
        fetch([str(placed)], tmp_path / "dl2" / "y", sha(b"x"), retries=0, progressbar=False)


def test_too_little_free_disk_fails_before_writing(server, tmp_path, monkeypatch):
    server.files["/x.bin"] = PAYLOAD
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    with pytest.raises(DiskSpaceError, match="GB to download"):
        fetch(f"{server.url}/x.bin", tmp_path / "x.bin", sha(PAYLOAD), progressbar=False)
    assert list(tmp_path.iterdir()) == []


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def _file(name, data=b"hello"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_a_safe_tar_extracts_and_replaces_the_target(tmp_path):
    archive = tmp_path / "ok.tar.gz"
    _tar(archive, [_file("images/a.jpg"), _link("images/b.jpg", "a.jpg")])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale").write_text("old")
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out/images/a.jpg").read_bytes() == b"hello" and not (tmp_path / "out/stale").exists()
    assert (tmp_path / "out/images/b.jpg").read_bytes() == b"hello"


@pytest.mark.parametrize("member", [
    _file("../escape.txt"), _file("/abs.txt"), _link("evil", "/etc/passwd"), _link("evil", "../../outside"),
    _link("evil", "/etc/passwd", tarfile.LNKTYPE)], ids=["dotdot", "absolute", "abs-symlink", "rel-symlink",
                                                         "hardlink"])
def test_a_tar_entry_leaving_the_target_is_refused_by_name(tmp_path, member):
    archive = tmp_path / "bad.tar.gz"
    _tar(archive, [_file("fine.txt"), member])
    with pytest.raises(UnsafeArchiveError, match=re.escape(repr(member[0].name))):
        extract(archive, tmp_path / "out" / "x")
    assert not (tmp_path / "out" / "x").exists() and not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "out" / "x.partial").exists()


@pytest.mark.parametrize("name,mode", [("../escape.txt", 0o100644), ("/abs.txt", 0o100644), ("link", 0o120777)])
def test_a_zip_entry_leaving_the_target_or_a_zip_link_is_refused(tmp_path, name, mode):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.txt", "ok")
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match=name.lstrip("./")):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_truncated_archive_is_named(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(Exception, match="x.zip"):
        extract(tmp_path / "x.zip", tmp_path / "out")


def test_an_archive_placed_by_hand_is_checked_before_it_is_extracted(tmp_path, capsys):
    """`itr data extract --hash/--lock` (the unpack rule): a placed archive with other bytes than the published hash
    is refused naming both hashes, nothing is extracted; without a published hash the first one is pinned, and a
    later archive with other bytes is refused."""
    archive = tmp_path / "downloads" / "images.tar.gz"
    archive.parent.mkdir()
    _tar(archive, [_file("images/a.jpg")])
    wrong = hashlib.sha256(b"other").hexdigest()
    assert main(["data", "extract", "--archive", str(archive), "--out", str(tmp_path / "raw"),
                 "--hash", f"sha256:{wrong}"]) == 2
    err = capsys.readouterr().err
    assert str(archive) in err and wrong in err and hashlib.sha256(archive.read_bytes()).hexdigest() in err
    assert not (tmp_path / "raw").exists() and not (tmp_path / "downloads" / "SHA256SUMS").exists()
    assert main(["data", "extract", "--archive", str(archive), "--out", str(tmp_path / "raw"),
                 "--lock", str(tmp_path / "downloads" / "SHA256SUMS")]) == 0  # trust on first use
    assert (tmp_path / "raw" / "images" / "a.jpg").read_bytes() == b"hello"
    _tar(archive, [_file("images/a.jpg", b"changed")])
    assert main(["data", "extract", "--archive", str(archive), "--out", str(tmp_path / "raw2"),
                 "--lock", str(tmp_path / "downloads" / "SHA256SUMS")]) == 2
    assert "pinned" in capsys.readouterr().err and not (tmp_path / "raw2").exists()
