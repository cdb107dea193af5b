"""Real datasets as params declare them (itr.data.sources) and the DAG the workflow builds for one."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from itr.data import sources
from itr.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
COCO = PARAMS["datasets"]["coco"]


def test_references_resolve_to_extraction_folders_and_downloads():
    entry = {**COCO, "files": {**COCO["files"], "dataset_coco.json": {"urls": [], "hash": None, "place": None}}}
    assert sources.resolve("coco", entry, "caption_datasets.zip/dataset_coco.json") == \
        "raw/coco/caption_datasets.zip/dataset_coco.json"
    assert sources.resolve("coco", entry, "dataset_coco.json") == "raw/coco/dataset_coco.json"  # checked, linked
    assert sources.needed("coco", entry, ["train2014.zip", "val2014.zip/val2014", "train2014.zip/x"]) == \
        ["raw/coco/train2014.zip", "raw/coco/val2014.zip"]
    args = sources.import_args("coco", COCO)
    assert re.findall(r"--images (\S+)", args) == ["raw/coco/train2014.zip", "raw/coco/val2014.zip"]
    assert "--annotations raw/coco/caption_datasets.zip/dataset_coco.json" in args and "--restval train" in args


def test_fetch_arguments_carry_mirrors_hash_pin_file_and_the_way_by_hand():
    args = sources.fetch_args("coco", COCO, "train2014.zip")
    assert args == ("--url http://images.cocodataset.org/zips/train2014.zip --hash md5:0da8c0bd3d6becc4dcb32757491aca88 "
                    "--lock downloads/coco/SHA256SUMS")
    flickr = PARAMS["datasets"]["flickr30k"]
    hand = sources.fetch_args("flickr30k", flickr, "flickr30k-images.tar.gz")
    assert "--url" not in hand and "--place" in hand and "--hash" not in hand


@pytest.mark.parametrize("ref, message", [("nope.zip/x", "not under its files"),
                                          ("caption_datasets.zip", None)])
def test_a_reference_to_an_undeclared_file_is_an_error_naming_it(ref, message):
    if message is None:
        assert sources.resolve("coco", COCO, ref) == "raw/coco/caption_datasets.zip"
        return
    with pytest.raises(InputError, match=message):
        sources.resolve("coco", COCO, ref)


def test_features_are_extracted_or_imported_and_the_source_must_fit():
    assert sources.features_source("coco", COCO) is None
    tsv = {**COCO, "features": {"format": "butd-tsv", "source": None}}
    with pytest.raises(InputError, match="say where they are"):
        sources.features_source("coco", tsv)
    tsv["features"]["source"] = "train2014.zip/feats.tsv"
    assert sources.features_source("coco", tsv) == "raw/coco/train2014.zip/feats.tsv"
    with pytest.raises(InputError, match="extracts features from the images"):
        sources.features_source("coco", {**COCO, "features": {"format": "pretrained", "source": "x.zip"}})


def _dry_run(*args):
    return subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", *args], cwd=ROOT,
                          capture_output=True, text=True)


@pytest.mark.integration  # two Snakemake dry runs of the whole DAG on a real dataset (~12 s)
def test_one_param_runs_a_paper_on_a_real_dataset_and_refuses_tables_it_cannot_build():
    proc = _dry_run("rfrs_table1", "rfrs_table2", "--config", "dataset=flickr30k")
    assert proc.returncode != 0 and "rfrs_table2 is not built on dataset flickr30k" in proc.stdout + proc.stderr
    # Tables 5 and 6 read the paper's other test sets (shift.real_test_sets: coco, cc): their data and features come
    # through the same chain; coco's JOINT is trained for Table 6's in-domain row, and the CE never scores CC
    out = _dry_run("rfrs_table1", "rfrs_table5", "rfrs_table6", "--config", "dataset=flickr30k").stdout
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1].split("total")[0], re.M))
    assert {r: int(n) for r, n in jobs.items() if r in ("fetch_file", "unpack_file", "import_dataset", "train",
                                                        "fetch_detector_weights", "pretrained_features",
                                                        "train_detector", "shapes_generate")} == \
        {"fetch_file": 6, "unpack_file": 5, "import_dataset": 3, "fetch_detector_weights": 1, "pretrained_features": 3,
         "train": 4}
    assert "results/tables/flickr30k/rfrs_table1.md" in out and "models/flickr30k/rfrs/be.pt" in out
    assert "models/coco/rfrs/joint.pt" in out and "models/coco/rfrs/be.pt" not in out
    assert "results/metrics/flickr30k/rfrs/sep_coop/flickr30k_distractors/" in out
    assert "results/metrics/flickr30k/rfrs/ce/coco/" in out and "results/metrics/flickr30k/rfrs/ce/cc/" not in out


def test_on_a_dataset_with_no_training_split_no_paper_plans_a_model_and_every_target_says_why():
    from itr import papers

    assert not sources.has_training_split(PARAMS["datasets"]["cc"]) and sources.has_training_split(COCO)
    for name in papers.PAPERS:  # CC's URL list holds its validation split only: it once planned 17 trainings on it
        plan = papers.plan(name, {**PARAMS, "dataset": "cc"})
        assert not plan.variants and not plan.tables and not plan.extra_outputs, name
        assert {t.name for t in papers.load(name).targets} == set(plan.unavailable), name
        assert all("cc has no training split" in why for why in plan.unavailable.values()), name
    assert papers.plan("rfrs", {**PARAMS, "dataset": "coco"}).variants  # a dataset with one still trains


@pytest.mark.integration  # four Snakemake dry runs on Conceptual Captions, one of `all` on ShapeCaptions (~15 s)
def test_a_dataset_with_no_training_split_is_fetched_but_all_and_every_paper_refuse_saying_why():
    for target in ("all", "tgdt_all", "aladin_table2"):
        proc = _dry_run(target, "--config", "dataset=cc")
        assert proc.returncode != 0 and "cc has no training split" in proc.stdout + proc.stderr, target
    assert _dry_run("all").returncode == 0  # and on ShapeCaptions `all` plans (its input is a function too)
    out = _dry_run("data", "--config", "dataset=cc").stdout  # the data layer still fetches and imports it
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1].split("total")[0], re.M))
    assert jobs.get("import_dataset") == "1" and "train" not in jobs and "data/cc/manifest.json" in out


def test_the_multi30k_entry_imports_from_githubs_archive_of_its_pinned_commit(tmp_path, monkeypatch):
    import shutil
    import tarfile
    import zipfile

    from itr.cli import main
    from itr.data.archives import extract
    from itr.data.dataset import read_dataset
    from test_importers import multi30k

    entry = PARAMS["datasets"]["multi30k"]
    task1, images = multi30k(tmp_path / "release", {"train": 3, "val": 2, "test_2016_flickr": 2})
    top = entry["annotations"].split("/")[1]  # GitHub names an archive's folder <repo>-<commit>
    assert re.fullmatch(r"dataset-[0-9a-f]{40}", top) and all(top[8:] in url for url in
                                                             entry["files"]["multi30k-dataset.zip"]["urls"])
    with zipfile.ZipFile(tmp_path / "multi30k-dataset.zip", "w") as z:
        for f in sorted(task1.rglob("*")):
            if f.is_file():
                z.write(f, f"{top}/data/task1/{f.relative_to(task1)}")
    with tarfile.open(tmp_path / "flickr30k-images.tar.gz", "w:gz") as t:
        t.add(images, "flickr30k-images")
    monkeypatch.chdir(tmp_path)
    for file in entry["files"]:  # what rule unpack_file does with each checked download
        extract(tmp_path / file, sources.unpacked("multi30k", file))
    shutil.rmtree(tmp_path / "release")  # the import reads the extracted files only
    assert main(["data", "import", *sources.import_args("multi30k", entry).split(), "--out", "data/multi30k"]) == 0
    _, captions = read_dataset("data/multi30k")
    assert captions.groupby("split")["lang"].apply(lambda s: sorted(set(s))).to_dict() == {
        s: ["cs", "de", "en", "fr"] for s in ("test", "train", "val")}
