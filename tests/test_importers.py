"""Released caption datasets (Karpathy splits, Multi30k) into the canonical format, from real-format fixtures."""
import gzip
import json

import pandas as pd
import pytest
from PIL import Image

from itr.cli import main
from itr.data.dataset import DatasetError, dataset_info, read_dataset
from itr.data.importers import import_karpathy, import_multi30k


def _jpeg(path, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 30, 200)).save(path, "JPEG")


def _sentences(first_id, n, prefix="a photo"):
    return [{"raw": f"{prefix} {k} ", "tokens": [], "sentid": first_id + k} for k in range(n)]


def karpathy_coco(root, n_sent=5):
    """COCO-style entries (filepath, cocoid): one per split, restval included; one image has 6 captions."""
    entries = []
    for k, (split, folder) in enumerate([("train", "train2014"), ("restval", "val2014"), ("val", "val2014"),
                                         ("test", "val2014"), ("test", "val2014")]):
        name = f"COCO_{folder}_{k:012d}.jpg"
        _jpeg(root / "images" / folder / name, (40 + k, 30))
        entries.append({"filepath": folder, "filename": name, "imgid": k, "cocoid": 1000 + k, "split": split,
                        "sentids": [], "sentences": _sentences(10 * k, n_sent + (k == 0))})
    (root / "dataset_coco.json").write_text(json.dumps({"dataset": "coco", "images": entries}))
    return root / "dataset_coco.json", root / "images"


def test_karpathy_coco_keeps_five_captions_and_restval_as_train(tmp_path):
    ann, images = karpathy_coco(tmp_path)
    info = import_karpathy(ann, images, tmp_path / "data" / "coco")
    assert info["splits"] == {"train": 2, "val": 1, "test": 2} and info["restval"] == "train"
    imgs, caps = read_dataset(tmp_path / "data" / "coco")
    assert list(imgs["image_id"]) == ["1000", "1001", "1002", "1003", "1004"]
    assert caps.groupby("image_id").size().tolist() == [5] * 5  # the sixth caption of image 1000 is dropped
    assert caps["text"].iloc[0] == "a photo 0" and caps["caption_id"].iloc[5] == "10"
    row = imgs.iloc[1]
    assert (row["width"], row["height"]) == (41, 30)
    assert ((tmp_path / "data" / "coco") / row["file"]).resolve() == (images / "val2014" / "COCO_val2014_000000000001.jpg").resolve()
    dropped = import_karpathy(ann, images, tmp_path / "data" / "coco_norestval", restval="drop")
    assert dropped["splits"] == {"train": 1, "val": 1, "test": 2}


def test_karpathy_flickr_entries_have_no_filepath_or_cocoid(tmp_path):
    entries = []
    for k, split in enumerate(["train", "val", "test"]):
        _jpeg(tmp_path / "flickr30k-images" / f"{1000092795 + k}.jpg")
        entries.append({"filename": f"{1000092795 + k}.jpg", "imgid": k, "split": split, "sentids": [],
                        "sentences": _sentences(5 * k, 5)})
    (tmp_path / "dataset_flickr30k.json").write_text(json.dumps({"images": entries}))
    assert main(["data", "import", "--format", "karpathy", "--annotations", str(tmp_path / "dataset_flickr30k.json"),
                 "--images", str(tmp_path / "flickr30k-images"), "--out", str(tmp_path / "flickr30k")]) == 0
    info = dataset_info(tmp_path / "flickr30k")
    assert info["splits"] == {s: {"images": 1, "captions": {"en": 5}} for s in ("train", "val", "test")}
    assert read_dataset(tmp_path / "flickr30k")[0]["image_id"].tolist() == ["1000092795", "1000092796", "1000092797"]


def test_data_info_json_prints_counts_per_split_and_language(tmp_path, capsys):
    ann, images = karpathy_coco(tmp_path)
    import_karpathy(ann, images, tmp_path / "coco")
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "coco"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["splits"]["train"] == {"images": 2, "captions": {"en": 10}} and shown["languages"] == ["en"]


@pytest.mark.parametrize("damage,named", [
    (lambda root: (root / "images/val2014/COCO_val2014_000000000002.jpg").unlink(), "COCO_val2014_000000000002.jpg"),
    (lambda root: (root / "images/val2014/COCO_val2014_000000000003.jpg").write_bytes(b"\xff\xd8 cut"),
     "COCO_val2014_000000000003.jpg"),
    (lambda root: (root / "dataset_coco.json").write_text("{\"images\": [{\"filename\": \"x.jpg\"}]}"), "'split'"),
    (lambda root: (root / "dataset_coco.json").write_text("[1, 2"), "not a Karpathy split file"),
], ids=["missing-image", "corrupt-image", "missing-field", "bad-json"])
def test_a_broken_import_names_what_is_wrong_and_writes_nothing(tmp_path, damage, named):
    ann, images = karpathy_coco(tmp_path)
    damage(tmp_path)
    with pytest.raises(DatasetError, match=named):
        import_karpathy(ann, images, tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_too_few_captions_is_refused(tmp_path):
    ann, images = karpathy_coco(tmp_path, n_sent=4)
    with pytest.raises(DatasetError, match="4 captions, expected 5"):
        import_karpathy(ann, images, tmp_path / "out")


def multi30k(root, sizes=None):
    """data/task1 with image_splits/ and raw/*.gz (Czech only where Multi30k has it), and the images."""
    sizes = sizes or {"train": 3, "val": 2, "test_2016_flickr": 2, "test_2017_flickr": 2}
    task1, n = root / "task1", 0
    for split, size in sizes.items():
        files = [f"{5000 + n + k}.jpg" for k in range(size)]
        n += size
        for f in files:
            _jpeg(root / "flickr30k-images" / f)
        (task1 / "image_splits").mkdir(parents=True, exist_ok=True)
        (task1 / "image_splits" / f"{split}.txt").write_text("\n".join(files) + "\n")
        (task1 / "raw").mkdir(exist_ok=True)
        for lang in ("en", "de", "fr", "cs"):
            if lang == "cs" and split == "test_2017_flickr":
                continue
            with gzip.open(task1 / "raw" / f"{split}.{lang}.gz", "wt", encoding="utf-8") as fh:
                fh.write("".join(f"{lang} caption of {f}\n" for f in files))
    return task1, root / "flickr30k-images"


def test_multi30k_adds_one_caption_per_image_and_language(tmp_path):
    task1, images = multi30k(tmp_path)
    info = import_multi30k(task1, images, tmp_path / "m30k")
    assert info["splits"] == {"train": 3, "val": 2, "test": 2}
    _, caps = read_dataset(tmp_path / "m30k")
    assert caps.groupby(["split", "lang"]).size().to_dict() == {
        (s, lang): n for s, n in (("train", 3), ("val", 2), ("test", 2)) for lang in ("cs", "de", "en", "fr")}
    first = caps[caps["image_id"] == "5000"].set_index("lang")["text"]
    assert first["de"] == "de caption of 5000.jpg" and first["cs"] == "cs caption of 5000.jpg"


def test_multi30k_2017_test_set_has_no_czech_and_says_so(tmp_path):
    task1, images = multi30k(tmp_path)
    info = import_multi30k(task1, images, tmp_path / "m30k", test_split="test_2017_flickr")
    assert info["languages_by_split"]["test"] == ["en", "de", "fr"] and "cs" in info["languages_by_split"]["train"]
    caps = pd.read_parquet(tmp_path / "m30k" / "captions.parquet")
    assert set(caps[caps["split"] == "test"]["lang"]) == {"en", "de", "fr"}


def test_multi30k_captions_out_of_step_with_the_image_list_are_refused(tmp_path):
    task1, images = multi30k(tmp_path)
    with gzip.open(task1 / "raw" / "val.fr.gz", "wt") as fh:
        fh.write("only one line\n")
    with pytest.raises(DatasetError, match=r"val\.fr\.gz: 1 captions for the 2 images"):
        import_multi30k(task1, images, tmp_path / "m30k")


def test_a_missing_caption_language_names_the_fix_that_fits_the_dataset(tmp_path):
    """Imported data cannot be regenerated in another language: its error points at the languages searched."""
    from conftest import SHAPES

    from itr.collection import Source, read_collection
    from itr.config import ShapesConfig
    from itr.data import shapes

    ann, images = karpathy_coco(tmp_path)
    import_karpathy(ann, images, tmp_path / "coco")
    shapes.build(ShapesConfig(**SHAPES), tmp_path / "shapes")
    for data, fix in (("coco", r"search only the languages it has \(params multilingual.languages\)"),
                      ("shapes", r"generate it with shapes.languages including 'de'")):
        with pytest.raises(ValueError, match=rf"has no test captions in 'de' \(it has \['en'\]\); {fix}"):
            read_collection(Source(str(tmp_path / data), str(tmp_path / "no-features"), "test"), [], lang="de")
