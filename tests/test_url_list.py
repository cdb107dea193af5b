"""Conceptual Captions' release format (caption<TAB>url) through img2dataset, against a loopback HTTP server: the
images that answer become the dataset, each URL that fails is recorded and is not fatal, ids are line numbers."""
import io
import json

import pandas as pd
import pytest
from PIL import Image

from itr.cli import main
from itr.data.dataset import DatasetError
from itr.data.urllist import read_url_list
from realformat import Server


def _png(color: str, size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def release(tmp_path):
    server = Server()
    server.files = {"/a.png": _png("red"), "/b.png": _png("blue", (20, 50)), "/d.png": _png("green")}
    server.broken = {"/c.png"}  # answers 500; /e.png is not there at all (404)
    lines = [("a red square", "/a.png"), ("a blue bar", "/b.png"), ("a lost image", "/c.png"),
             ("a green square", "/d.png"), ("never served", "/e.png")]
    tsv = tmp_path / "Validation.tsv"
    tsv.write_text("".join(f"{caption}\t{server.url}{path}\n" for caption, path in lines))
    yield tsv, server
    server.httpd.shutdown()


def test_the_urls_that_answer_become_the_split_and_failures_are_recorded(release, tmp_path, capsys):
    """One img2dataset run (it starts worker processes: seconds), through the CLI as the import rule calls it."""
    tsv, server = release
    assert main(["data", "import", "--format", "url-list", "--annotations", str(tsv), "--out", str(tmp_path / "cc"),
                 "--split", "test", "--downloader", '{"threads": 2, "timeout": 5, "retries": 0}']) == 0
    manifest = json.loads((tmp_path / "cc" / "manifest.json").read_text())
    assert (manifest["urls"], manifest["images"], manifest["failed"]) == (5, 3, 2)
    images = pd.read_parquet(tmp_path / "cc" / "images.parquet")
    captions = pd.read_parquet(tmp_path / "cc" / "captions.parquet")
    assert list(images["image_id"]) == ["1", "2", "4"] and set(images["split"]) == {"test"}  # ids: line numbers
    assert dict(zip(captions["image_id"], captions["text"])) == {"1": "a red square", "2": "a blue bar",
                                                                 "4": "a green square"}
    bar = images.set_index("image_id").loc["2"]
    assert (bar["width"], bar["height"]) == (20, 50)  # the original image, not re-encoded or resized
    with Image.open(tmp_path / "cc" / bar["file"]) as im:
        assert im.getpixel((0, 0)) == (0, 0, 255)
    failures = pd.read_csv(tmp_path / "cc" / "failures.csv")
    assert list(failures["line"]) == [3, 5] and failures["error_message"].notna().all()
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "cc"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["splits"]["test"]["images"] == 3 and list(info["splits"]) == ["test"]


def test_a_malformed_line_is_named(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a caption\thttp://x/a.png\nno url here\n")
    with pytest.raises(DatasetError, match=r"bad.tsv:2"):
        read_url_list(bad)


def test_the_cc_entry_of_params_imports_through_img2dataset():
    from pathlib import Path

    import yaml

    from itr.data import sources
    from itr.errors import InputError

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    cc = params["datasets"]["cc"]
    args = sources.import_args("cc", cc)
    assert args.startswith("--format url-list --annotations raw/cc/Validation_GCC-1.1.0-Validation.tsv --split test")
    assert '"threads": 16' in args and "--images" not in args
    with pytest.raises(InputError, match="url_list: {split, threads, timeout, retries}"):
        sources.import_args("cc", {**cc, "url_list": None})  # the schema allows null; the import needs the settings
    with pytest.raises(InputError, match="reads its images from files"):
        sources.import_args("coco", {**params["datasets"]["coco"], "images": []})
