"""The real-data path end to end, from files in the released formats only (issue "Real datasets").

A tiny dataset is re-packed as COCO's release (Karpathy's ``dataset_coco.json``, as a mirror hosts it outside its
zip, and the images as JPEGs in ``train2014.zip`` / ``val2014.zip``) and torchvision's detector file (random weights, its exact
format and name) is published beside it on a loopback HTTP server. With ``dataset: fixture`` the workflow fetches
(one mirror dead, one file placed by hand), checks, extracts, imports, extracts region features with the pretrained
detector, trains BE, CE and JOINT, indexes and builds Retrieve Fast, Rerank Smart's Table 1.
"""
import io
import json
import zipfile

import pandas as pd
import pytest
import yaml

from conftest import ROOT, new_project, run
from itr.config import ShapesConfig
from itr.data import shapes
from itr.features.pretrained import coco_categories
from itr.features.store import FeatureStore
from realformat import Server, karpathy_release, published, sha256_hex

pytestmark = pytest.mark.integration
PLACED = "val2014.zip"  # no mirror: placed by hand, checked against its published sha256 before extraction


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    shapes.build(ShapesConfig(image_size=64, n_train=40, n_val=12, n_test=20, seed=3), root / "generated")
    files, expected = karpathy_release(root / "generated")
    with zipfile.ZipFile(io.BytesIO(files.pop("caption_datasets.zip"))) as z:  # a plain file: checked, then linked
        files["dataset_coco.json"] = z.read("dataset_coco.json")
    weights = published(root, "fasterrcnn_resnet50_fpn_v2")
    server = Server()
    server.files = {f"/{name}": data for name, data in files.items() if name != PLACED}
    server.files[f"/{weights.name}"] = weights.read_bytes()
    params = yaml.safe_load((ROOT / ".test" / "params.yaml").read_text())
    mirrors = {name: [f"{server.url}/{name}"] for name in files}
    mirrors["dataset_coco.json"].insert(0, f"{server.url}/gone/dataset_coco.json")  # a dead mirror first
    fixture = {
        "format": "karpathy", "annotations": "dataset_coco.json",
        "images": ["train2014.zip", "val2014.zip"], "restval": "train", "url_list": None, "features": {"format": "pretrained", "source": None},
        "files": {
            "dataset_coco.json": {"urls": mirrors["dataset_coco.json"], "hash": None, "place": None},
            "train2014.zip": {"urls": mirrors["train2014.zip"], "hash": f"md5:{_md5(files['train2014.zip'])}",
                              "place": None},
            PLACED: {"urls": [], "hash": f"sha256:{sha256_hex(files[PLACED])}", "place": "put it there by hand"}}}
    pretrained = params["pretrained_features"] | {
        "weights": f"models/pretrained/{weights.name}", "weights_urls": [f"{server.url}/{weights.name}"],
        "min_size": 64, "max_size": 96, "proposals": 50, "min_regions": 2, "max_regions": 6, "score_thresh": 0.5, "shard_size": 16,
        "batch_size": 8}
    (root / "project").mkdir()
    # the fixture beside the shipped datasets, as a user adds one: shift.real_test_sets still names declared ones
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())["datasets"]
    proj = new_project(root / "project", dataset="fixture", datasets=shipped | {"fixture": fixture},
                       pretrained_features=pretrained)
    (proj / "downloads" / "fixture").mkdir(parents=True)
    (proj / "downloads" / "fixture" / PLACED).write_bytes(files[PLACED])
    first = run(["snakemake", "rfrs_table1"], proj)
    return proj, files, expected, server, first


def _md5(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data).hexdigest()


def test_the_import_keeps_every_image_caption_and_split_of_the_release(real):
    proj, _, expected, _, _ = real
    info = json.loads(run(["itr", "data", "info", "data/fixture", "--json"], proj).stdout)
    assert {s: row["images"] for s, row in info["splits"].items()} == {"train": 40, "val": 12, "test": 20}  # restval in train
    captions = pd.read_parquet(proj / "data" / "fixture" / "captions.parquet")
    got = captions.groupby("image_id")["text"].apply(list).to_dict()
    assert got == {cocoid: texts for cocoid, (_, texts) in expected.items()}
    images = pd.read_parquet(proj / "data" / "fixture" / "images.parquet")
    assert dict(zip(images.image_id, images.split)) == {cocoid: split for cocoid, (split, _) in expected.items()}


def test_downloads_fall_through_a_dead_mirror_and_every_file_is_pinned(real):
    proj, files, _, server, _ = real
    assert ("/gone/dataset_coco.json", None) in server.requests
    assert f"/{PLACED}" not in {path for path, _ in server.requests}  # placed by hand, never fetched
    pins = dict(line.split("  ")[::-1] for line in (proj / "downloads/fixture/SHA256SUMS").read_text().splitlines())
    assert pins == {name: sha256_hex(data) for name, data in files.items()}


def test_pretrained_features_come_from_the_published_detector_file(real):
    proj = real[0]
    store = FeatureStore(proj / "features" / "fixture")
    assert len(store) == 72 and store.dim == 1024 and store.max_regions == 6  # the box head of COCO's R-CNN
    assert store.manifest["source"]["detector"]  # the weights file's digest, checked against its name's prefix
    assert store.has_tags and set().union(*map(set, store.tags(store.ids))) <= set(coco_categories()[1:])


def test_table1_on_the_real_dataset_has_every_row_measured_and_a_rerun_does_nothing(real):
    proj = real[0]
    table = json.loads((proj / "results/tables/fixture/rfrs_table1.json").read_text())
    assert set(table) == {"CE", "BE", "SEP+COOP", "JOINT+COOP", "JOINT+CE", "JOINT+BE"}
    assert all(0 < row["rsum"] <= 600 and row["t2i/R@10"] >= row["t2i/R@1"] for row in table.values())
    cell = json.loads((proj / "results/metrics/fixture/rfrs/be/fixture/subset.json").read_text())
    assert cell["dataset"] == "fixture" and cell["n_images"] == 20 and cell["variant"] == "fixture/rfrs"
    assert "fixture test" in (proj / "results/tables/fixture/rfrs_table1.md").read_text()
    assert not (proj / "results/tables/rfrs_table1.md").exists()  # ShapeCaptions' table is not this one
    assert "Nothing to be done" in run(["snakemake", "-n", "rfrs_table1"], proj).stdout
    # a dataset outside shift.real_test_sets: Tables 5 and 6 are refused with the reason, not built from other data
    refused = run(["snakemake", "-n", "rfrs_table5"], proj, check=False)
    assert refused.returncode != 0 and "not one of them" in refused.stdout + refused.stderr
