"""Uni-modal quality of a soft-label student and of its teachers (Huang et al. 2024, appendix Tables 10 and 11,
ShapeCaptions analogues), on a generated dataset's test split.

* **Image -> image** (Table 10, Unicom's protocol): each test image queries every other; its positives are the images
  of its class, the same multiset of coloured kinds (itr.data.truth.scene_class). R@1, mAP@R, R-P.
* **Caption pairs** (Table 11, the STS analogue): pairs of test captions graded by the Jaccard overlap of the images
  each is true of (itr.data.truth.graded_caption_pairs); the score is Spearman x 100 between the grades and the
  cosine of the two captions' embeddings.

Rows: ``uni`` (the student's uni-modal heads), ``cross`` (its cross-modal heads, which retrieval uses) and
``teacher`` (the image teacher's whole-image features; the text teacher's embeddings, itr.teachers).

Example:
    >>> unimodal_metrics("models/<variant>/softlabel.pt", "data/shapes", "features/shapes", "models/<variant>/text_teacher.npz",
    ...                  "minilm", n_pairs=2000, seed=0)["metrics"]["uni/i2i/R@1"]
"""
from __future__ import annotations

import json

from itr.machine import fingerprint
from itr.metrics import same_class_metrics, spearman


def unimodal_metrics(model_path, data, features, teacher_file, text_teacher: str, n_pairs: int, seed: int,
                     device="cpu", lang: str = "en", image_teacher_features=None) -> dict:
    """``{"metrics": {"<row>/i2i/R@1", "<row>/i2i/mAP@R", "<row>/i2i/R-P", "<row>/sts/spearman", ...}, "queries",
    "pairs", "machine"}`` of a soft-label student (``model_path``) and its teachers on ``data``'s test split; the image
    teacher is ``image_teacher_features``' whole-image features (None: the student's own store's)."""
    from itr.data.dataset import dataset_manifest, read_dataset
    from itr.data.truth import extended_positives, graded_caption_pairs, scene_class
    from itr.features.store import FeatureStore
    from itr.models import load_trained
    from itr.models.encode import CaptionSet, embed_captions, embed_images
    from itr.teachers import ImageTeacher, TextTeacher

    store = FeatureStore(features)
    model, tokenizer, ckpt = load_trained(model_path, store, device)
    if not hasattr(model, "uni_image"):
        raise ValueError(f"{model_path} holds a {ckpt['architecture']['name']} model, which has no uni-modal heads; "
                         "evaluate a soft-label student (itr train softlabel)")
    images, captions = read_dataset(data, "test")
    if "meaning" not in captions.columns:
        raise ValueError(f"{data} stores no caption meanings (itr.data.truth): the uni-modal tables need a generated "
                         "ShapeCaptions dataset")
    captions = captions[captions["lang"] == lang].reset_index(drop=True)
    if captions.empty:
        raise ValueError(f"{data} has no {lang!r} test captions; pick a language it has")
    config = dataset_manifest(data)["config"]
    scenes = [json.loads(s)["objects"] for s in images["scene"]]
    image_ids = list(images["image_id"])
    classes = [scene_class(objects) for objects in scenes]
    if len(set(classes)) == len(classes):  # image->image retrieval would have no query with a positive: NaN metrics
        raise ValueError(f"no two of the {len(classes)} test images of {data} share a class (the same multiset of "
                         "coloured kinds), so image->image retrieval has nothing to find; generate a larger test split "
                         "(shapes.n_test)")
    scene_of = dict(zip(image_ids, scenes))
    positives = extended_positives(list(captions["meaning"]), [scene_of[i] for i in image_ids], config["image_size"],
                                   config["domain"])  # (captions, images)
    pairs, grades = graded_caption_pairs(positives, n_pairs, seed)
    caption_set = CaptionSet.from_frame(captions, tokenizer, ckpt["text_encoder"]["max_text_len"])
    rows = {
        "uni": (embed_images(model, store, image_ids, 256, device, head="uni_image"),
                embed_captions(model, caption_set, 256, device, head="uni_text")),
        "cross": (embed_images(model, store, image_ids, 256, device), embed_captions(model, caption_set, 256, device)),
        "teacher": (ImageTeacher(FeatureStore(image_teacher_features) if image_teacher_features else store)(image_ids).numpy(),
                    TextTeacher.from_file(teacher_file, list(captions["caption_id"]), text_teacher).vectors.numpy()),
    }
    metrics, queries = {}, 0
    for row, (image_vecs, caption_vecs) in rows.items():
        i2i = same_class_metrics(image_vecs, classes)
        queries = i2i.pop("queries")
        metrics |= {f"{row}/i2i/{k}": v for k, v in i2i.items()}
        cosines = (caption_vecs[pairs[:, 0]] * caption_vecs[pairs[:, 1]]).sum(axis=1)
        metrics[f"{row}/sts/spearman"] = spearman(cosines, grades)
    return {"split": "test", "metrics": metrics, "queries": queries, "pairs": int(len(pairs)),
            "machine": fingerprint(device=str(device))}

