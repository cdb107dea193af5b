"""CUSA's student, teachers and objective (itr.models.softlabel, itr.teachers, SoftLabelObjective)."""
import dataclasses

import numpy as np
import pytest
import torch

from itr.checkpoint import load_checkpoint
from itr.config import SoftLabelConfig
from itr.models import load_trained
from itr.features.store import FeatureStore
from itr.models.softlabel import TEMPERATURE_RANGES
from itr.teachers import ImageTeacher, TeacherError, TextTeacher, encode_texts, pre_caption, write_text_teacher
from itr.training import build_model, train_from_files

CFG = SoftLabelConfig(epochs=1, batch_size=4, lr=1e-3)


@pytest.fixture(scope="module")
def teacher_file(tiny_pipeline, tmp_path_factory):
    root, text = tiny_pipeline
    out = tmp_path_factory.mktemp("teacher") / "text.npz"
    write_text_teacher(root / "data", text.path, out)
    return out


def _cfg(text, **changes):
    return dataclasses.replace(CFG, text_teacher=text.path, **changes)


def test_the_text_teacher_reads_captions_only_cleaned_as_released(tiny_pipeline, teacher_file):
    root, text = tiny_pipeline
    assert pre_caption("From left to right: a Red circle, and a star.") == "from left to right a red circle and a star"
    with np.load(teacher_file) as z:
        ids, vectors = list(z["caption_ids"]), z["text"]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    # the vectors are the captions' text encoded alone: the teacher is handed no image
    from itr.data.dataset import read_dataset
    _, caps = read_dataset(root / "data")
    caps = caps[caps["lang"] == "en"].reset_index(drop=True)
    assert ids == list(caps["caption_id"])
    again = encode_texts(text.path, list(caps["text"][:3])).numpy()
    assert np.allclose(again, vectors[:3], atol=1e-5)
    with pytest.raises(TeacherError, match="other captions"):
        TextTeacher.from_file(teacher_file, ["no-such-caption"], text.path)
    with pytest.raises(TeacherError, match="text teacher"):
        TextTeacher.from_file(teacher_file, ids[:2], "minilm")


def test_the_student_has_two_heads_per_side_and_clamps_its_temperatures(tiny_pipeline):
    root, text = tiny_pipeline
    model, tok = build_model("softlabel", _cfg(text), text, FeatureStore(root / "feat"))
    ids = tok(["a red circle", "two blue squares"], return_tensors="pt", padding=True)
    cross, uni = model.embed_text(ids["input_ids"], ids["attention_mask"]), model.uni_text(ids["input_ids"], ids["attention_mask"])
    assert cross.shape == uni.shape == (2, 16) and not torch.allclose(cross, uni)
    assert abs(model.cross_text_head[1].weight.std().item() - 0.02) < 0.01  # N(0, 0.02) as released
    with torch.no_grad():
        model.itc_tau.fill_(5.0), model.csa_tau.fill_(0.0)
    model.clamp_temperatures()
    assert model.itc_tau.item() == pytest.approx(TEMPERATURE_RANGES["itc_tau"][1])
    assert model.csa_tau.item() == pytest.approx(TEMPERATURE_RANGES["csa_tau"][0])


def test_itc_alone_never_touches_the_uni_modal_heads_and_cusa_trains_them(tiny_pipeline, teacher_file, tmp_path):
    root, text = tiny_pipeline
    runs = {}
    for name, cfg in {"itc": _cfg(text, alpha=0.0, beta=0.0), "cusa": _cfg(text)}.items():
        result = train_from_files("softlabel", cfg, text, root / "data", root / "feat", tmp_path / name, tmp_path / f"{name}.pt",
                                  tmp_path / f"{name}.csv", log=lambda m: None, teacher=teacher_file)
        runs[name] = load_checkpoint(tmp_path / f"{name}.pt")["model"]
        assert np.isfinite(result["best_val_rsum"])
    init, _ = build_model("softlabel", _cfg(text), text, FeatureStore(root / "feat"))
    start = init.state_dict()
    for key in ("uni_text_head.1.weight", "uni_image_head.1.weight", "usa_image_tau"):
        assert torch.equal(runs["itc"][key], start[key]), key  # ITC alone: no gradient reaches them
        assert not torch.equal(runs["cusa"][key], start[key]), key
    assert not torch.equal(runs["itc"]["cross_text_head.1.weight"], start["cross_text_head.1.weight"])
    # the published checkpoint rebuilds as a retrieval model (the bi-encoder interface)
    model, _, ckpt = load_trained(tmp_path / "cusa.pt", FeatureStore(root / "feat"), "cpu")
    assert ckpt["architecture"]["name"] == "softlabel_dual_encoder" and hasattr(model, "embed_image")


def test_disk_and_on_the_fly_teachers_train_the_same_model(tiny_pipeline, teacher_file, tmp_path):
    root, text = tiny_pipeline
    out = {}
    for mode in ("disk", "on_the_fly"):
        train_from_files("softlabel", _cfg(text, teacher_features=mode), text, root / "data", root / "feat", tmp_path / mode,
                         tmp_path / f"{mode}.pt", tmp_path / f"{mode}.csv", log=lambda m: None,
                         teacher=teacher_file if mode == "disk" else None)
        out[mode] = load_checkpoint(tmp_path / f"{mode}.pt")["model"]
    for key in out["disk"]:
        assert torch.allclose(out["disk"][key], out["on_the_fly"][key], atol=1e-4), key
    with pytest.raises(ValueError, match="no teacher file"):
        train_from_files("softlabel", _cfg(text), text, root / "data", root / "feat", tmp_path / "x", tmp_path / "x.pt",
                         tmp_path / "x.csv", log=lambda m: None)


def test_the_objective_pulls_image_rows_to_the_image_teacher_and_caption_rows_to_the_text_teacher(tiny_pipeline,
                                                                                                   teacher_file,
                                                                                                   monkeypatch):
    import torch.nn.functional as F

    from itr.data.dataset import read_dataset
    from itr.losses import cross_softlabel_alignment, multi_positive_itc, uni_softlabel_alignment
    from itr.models.encode import CaptionSet, image_batch, image_inputs
    from itr.objectives import SoftLabelObjective

    root, text = tiny_pipeline
    store, cfg = FeatureStore(root / "feat"), _cfg(text, alpha=0.7, beta=0.3)
    model, tok = build_model("softlabel", cfg, text, store)
    model.eval()  # no dropout: the two computations below must see the same numbers
    _, caps = read_dataset(root / "data", "train")
    train = CaptionSet.from_frame(caps, tok, text.max_text_len)
    teacher = TextTeacher.from_file(teacher_file, train.caption_ids, text.path)
    rows = np.array([0, 5, 11, 17, 23, 29])
    teachers = (teacher, ImageTeacher(store))
    got = SoftLabelObjective(cfg, model, train, store, torch.device("cpu"), *teachers).loss(rows, 0)
    with torch.no_grad():
        got = got.detach()
        ids, mask = train.batch(rows)
        batch = image_batch(store, [train.image_ids[r] for r in rows], "cpu")
        t, v = model.text_features(ids, mask), model.image_features(*image_inputs(batch))
        unit = lambda x: F.normalize(x, dim=-1)  # noqa: E731
        images_by_captions = unit(model.cross_image_head(v)) @ unit(model.cross_text_head(t)).T  # row = image
        image_t, text_t = unit(batch["global"].float()), teacher(rows)
        y = torch.tensor([sorted(set(train.image_ids)).index(train.image_ids[r]) for r in rows])
        want = (multi_positive_itc(images_by_captions, y, model.itc_tau)
                + 0.7 * cross_softlabel_alignment(images_by_captions, image_t @ image_t.T, text_t @ text_t.T, model.csa_tau)
                + 0.3 * uni_softlabel_alignment(unit(model.uni_image_head(v)) @ unit(model.uni_image_head(v)).T,
                                                unit(model.uni_text_head(t)) @ unit(model.uni_text_head(t)).T,
                                                image_t @ image_t.T, text_t @ text_t.T, model.usa_image_tau,
                                                model.usa_text_tau))
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    # ... and it hands CSA the images as rows and each teacher its own side (spied: want's sum could hide a swap)
    seen = {}

    def spy(sim, image_teacher, text_teacher, *args):
        seen.update(sim=sim.detach(), image=image_teacher, text=text_teacher)
        return cross_softlabel_alignment(sim, image_teacher, text_teacher, *args)

    import itr.objectives
    monkeypatch.setattr(itr.objectives, "cross_softlabel_alignment", spy)
    SoftLabelObjective(cfg, model, train, store, torch.device("cpu"), *teachers).loss(rows, 0)
    assert torch.allclose(seen["sim"], images_by_captions, atol=1e-6)
    assert not torch.allclose(seen["sim"], images_by_captions.T, atol=1e-6)
    assert torch.allclose(seen["image"], image_t @ image_t.T) and torch.allclose(seen["text"], text_t @ text_t.T)
    assert not torch.allclose(image_t @ image_t.T, text_t @ text_t.T)  # the batch tells the teachers apart


def test_bf16_is_refused_naming_the_key():
    from itr.config import ConfigError

    with pytest.raises(ConfigError, match="softlabel.precision"):
        SoftLabelConfig.from_dict({**CFG.to_dict(), "precision": "bf16"})


def test_every_cusa_table_builds_and_shows_every_cell(tmp_path):
    """Tables 7-9 from synthetic cells of the tiny config's plan: every student's number is in its table."""
    import json
    from pathlib import Path

    import yaml

    from itr import layout, papers

    root = Path(__file__).resolve().parents[1]
    params = yaml.safe_load((root / ".test/params.yaml").read_text())
    plan = papers.plan("cusa", params)
    for n, rel in enumerate(f for spec in plan.tables.values() for f in spec.inputs):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.startswith("results/tables/"):  # the claims read the tables, built below before them
            continue
        if rel.endswith(".pt"):  # Table 7 counts the trained student's weights
            torch.save({"model": {"w": torch.zeros(1000, 1500), "b": torch.zeros(500)}}, path)
            continue
        if rel.endswith(".csv"):  # Table 13 reads the students' training histories
            path.write_text(f"epoch,epoch_seconds\n0,{60 + n}\n")
            continue
        if "/benchmarks/" in rel:  # Tables 12-13: benchmarks/softlabel_cost.py
            from itr.papers.cusa.tables import paper_numbers
            modes = paper_numbers()["table13"]["rows"]
            path.write_text(json.dumps({
                "machine": {"cpu": "a CPU", "isa": ["avx2"], "threads": 2}, "rounds": 3, "iterations": 20, "steps": 5,
                "batch_size": 64, "steps_per_epoch": 100, "train_captions": 6400, "load_once_ms": {"text teacher file": 9},
                "modules": {m: {"ms": 3.25 + i, "ms_std": 0.5, "disk_mb": None} for i, m in enumerate(("CSA loss", "USA loss"))},
                "epochs": {m: {"step_seconds": 0.5 + i / 100, "step_std": 0.01, "epoch_minutes": 1.0 + i / 10}
                           for i, m in enumerate(modes)}}))
            continue
        if "/unimodal/" in rel:
            metrics = {f"{row}/{m}": 20.0 + n + i for i, (row, m) in enumerate(
                (row, m) for row in ("uni", "cross", "teacher") for m in ("i2i/R@1", "i2i/mAP@R", "sts/spearman"))}
            path.write_text(json.dumps({"variant": rel.split("/")[2] if rel.count("/") == 4 else "/".join(
                rel.split("/")[2:4]), "dataset": "shapes", "metrics": metrics, "queries": 12, "pairs": 200}))
            continue
        variant, protocol = rel.split("/")[2:-3], rel.rsplit("/", 1)[1][:-5]
        names = [f"{d}/{m}" for d in ("t2i", "i2t") for m in (("R@1", "R@5", "R@10") if protocol != "extended"
                                                                  else ("R@1", "mAP@R", "R-P"))]
        metrics = {("ext/" if protocol == "extended" else "") + name: 10.0 + n + i for i, name in enumerate(names)}
        metrics["rsum"] = sum(metrics.values())
        path.write_text(json.dumps({"variant": "/".join(variant), "protocol": protocol, "protocol_label": "a label",
                                    "dataset": "shapes", "metrics": metrics,
                                    "positives": {"t2i": {"median": 3, "max": 9}, "i2t": {"median": 7, "max": 11}}}))
    for target, spec in plan.tables.items():
        stem = tmp_path / layout.table_stem("cusa", target, params)
        papers.builder("cusa", target)([tmp_path / f for f in spec.inputs], stem, **spec.spec())
        csv = stem.with_suffix(".csv").read_text()
        if target == "claims":
            assert csv.count("holds") + csv.count("does not hold") + csv.count("not checked") == 4
            continue
        for rel in spec.inputs:
            if rel.endswith(".json") and "/benchmarks/" in rel:
                assert ("4.25" if target == "table12" else "2.20 min") in csv, target  # USA loss; the last mode
            elif rel.endswith(".json"):
                m = json.loads((tmp_path / rel).read_text())["metrics"]
                numbers = ([m["ext/t2i/mAP@R"]] if "ext/t2i/mAP@R" in m else [m["rsum"]] if "rsum" in m
                           else [m[f"{row}/i2i/R@1"] for row in ("uni", "cross")] if target == "table10"
                           else [m[f"{row}/sts/spearman"] for row in ("uni", "cross")])
                assert all(f"{number:.2f}" in csv for number in numbers), (target, rel)
    assert "1.5M" in (tmp_path / layout.table_stem("cusa", "table7", params)).with_suffix(".md").read_text()
    main_cell = next(f for f in plan.tables["table10"].inputs if f.startswith("results/metrics/cusa/"))
    main = json.loads((tmp_path / main_cell).read_text())["metrics"]  # + CUSA (student (a)): the teachers
    for target, key in (("table10", "teacher/i2i/R@1"), ("table11", "teacher/sts/spearman")):
        assert f"{main[key]:.2f}" in (tmp_path / layout.table_stem("cusa", target, params)).with_suffix(".csv").read_text()
    assert "12 test images" in (tmp_path / layout.table_stem("cusa", "table10", params)).with_suffix(".md").read_text()
    assert "median 7 (max 11) captions per image" in (tmp_path / layout.table_stem("cusa", "table9", params)).with_suffix(".md").read_text()


def test_unimodal_rows_are_the_heads_and_the_teachers(tiny_pipeline, teacher_file, tmp_path, monkeypatch):
    import json

    import itr.unimodal
    from itr.data.dataset import read_dataset
    from itr.data.truth import extended_positives, graded_caption_pairs
    from itr.metrics import same_class_metrics, spearman
    from itr.models.encode import CaptionSet, image_batch, image_inputs
    from itr.unimodal import unimodal_metrics

    root, text = tiny_pipeline
    train_from_files("softlabel", _cfg(text), text, root / "data", root / "feat", tmp_path / "s", tmp_path / "m.pt",
                     tmp_path / "m.csv", log=lambda m: None, teacher=teacher_file)
    with pytest.raises(ValueError, match="share a class"):  # the tiny split's 2 images differ: nothing to retrieve
        unimodal_metrics(tmp_path / "m.pt", root / "data", root / "feat", teacher_file, text.path, 50, 0)
    import itr.data.truth
    monkeypatch.setattr(itr.data.truth, "scene_class", lambda objects: "one class")  # now each finds the other
    seen = []  # (vectors, classes) of each image row, in row order: uni, cross, teacher
    monkeypatch.setattr(itr.unimodal, "same_class_metrics", lambda v, c: seen.append((v, c)) or same_class_metrics(v, c))
    got = unimodal_metrics(tmp_path / "m.pt", root / "data", root / "feat", teacher_file, text.path, 50, 0)
    assert got["queries"] == 2 and got["metrics"]["uni/i2i/R@1"] == 100.0
    assert {k.split("/")[0] for k in got["metrics"]} == {"uni", "cross", "teacher"} and got["pairs"] == 50
    # each row reads its own vectors: the student's two image heads, the store's whole-image features
    model, tok, _ = load_trained(tmp_path / "m.pt", FeatureStore(root / "feat"), "cpu")
    images, caps = read_dataset(root / "data", "test")
    ids = list(images["image_id"])
    batch = image_batch(FeatureStore(root / "feat"), ids, "cpu")
    unit = lambda x: torch.nn.functional.normalize(x, dim=-1).detach().numpy()  # noqa: E731
    want = [unit(model.uni_image(*image_inputs(batch))), unit(model.embed_image(*image_inputs(batch))),
            unit(batch["global"].float())]
    classes = ["one class"] * len(ids)
    for (vectors, c), w in zip(seen, want):
        assert np.allclose(vectors, w, atol=1e-5) and list(c) == classes
    # and each text row grades the pairs by its own caption embeddings: the uni-modal head's, the text teacher's
    caps = caps[caps["lang"] == "en"].reset_index(drop=True)
    positives = extended_positives(list(caps["meaning"]), [json.loads(sc)["objects"] for sc in images["scene"]],
                                   64, "plain")
    pairs, grades = graded_caption_pairs(positives, 50, 0)
    ids_, mask = CaptionSet.from_frame(caps, tok, text.max_text_len).batch(slice(0, len(caps)))
    for row, vecs in (("uni", unit(model.uni_text(ids_, mask))),
                      ("teacher", TextTeacher.from_file(teacher_file, list(caps["caption_id"]), text.path).vectors.numpy())):
        cos = (vecs[pairs[:, 0]] * vecs[pairs[:, 1]]).sum(axis=1)
        assert got["metrics"][f"{row}/sts/spearman"] == pytest.approx(spearman(cos, grades), abs=1e-6)
    with pytest.raises(ValueError, match="no uni-modal heads"):
        unimodal_metrics(root / "be.pt", root / "data", root / "feat", teacher_file, text.path, 50, 0)


def test_tables_judged_by_meaning_are_not_planned_on_real_data():
    """On COCO, Table 9 reads ECCV Caption's metrics from the protocol-full cells; on Flickr30k nothing judges
    captions by meaning, so Table 9 is refused with the reason; the uni-modal and cost tables are generated only."""
    from pathlib import Path

    import yaml

    from itr import papers

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    plan = papers.plan("cusa", params | {"dataset": "coco"})
    assert sorted(plan.unavailable) == ["table10", "table11", "table12", "table13"]
    assert "detector" in plan.unavailable["table12"]
    assert sorted(plan.tables) == ["ablations", "claims", "table7", "table8", "table9"]
    assert plan.tables["table9"].inputs and all(f.endswith("/coco/full.json") for f in plan.tables["table9"].inputs)
    assert [f.rsplit("/", 1)[1] for f in plan.tables["claims"].inputs] == ["cusa_table8.json",
                                                                         "cusa_table9.json"]
    assert all(f.endswith("/full.json") for f in plan.tables["ablations"].inputs)  # no extended columns on COCO
    assert not any("pixels" in v for v in plan.variants)  # student (b) cuts one image size into patches: generated only
    flickr = papers.plan("cusa", params | {"dataset": "flickr30k"})
    assert "table9" not in flickr.tables and "meanings" in flickr.unavailable["table9"]
    assert "ECCV Caption" in flickr.unavailable["table9"]


def test_table9_on_coco_reads_eccv_captions_metrics_and_refuses_cells_without_them(tmp_path):
    import json

    import pytest

    from itr.papers.cusa.tables import build_table9

    names = [f"{d}/{m}" for d in ("t2i", "i2t") for m in ("R@1", "mAP@R", "R-P")]

    def cell(variant, base, eccv=True):
        metrics = {"rsum": 400.0, "t2i/R@1": 50.0}  # COCO's single-positive R@1 is not Table 9's
        if eccv:
            metrics |= {f"eccv/{name}": base + i for i, name in enumerate(names)}  # a distinct value per metric
        path = tmp_path / f"{variant.replace('/', '_')}.json"
        path.write_text(json.dumps({"variant": variant, "protocol": "full", "protocol_label": "5K test split",
                                    "dataset": "coco", "metrics": metrics}))
        return path

    labels = {"rows": {"coco/cusa_var/itc": "ITC", "coco/cusa_dual": "+ CUSA"}}
    df = build_table9([cell("coco/cusa_var/itc", 30.0), cell("coco/cusa_dual", 40.0)], tmp_path / "t9", labels=labels)
    ours = df[df.Source == "ours"].set_index("Model")
    assert list(ours.index) == ["ours ITC", "ours + CUSA"]
    assert all("ECCV Caption" in b for b in ours.Benchmark)
    for base, row in ((30.0, "ours ITC"), (40.0, "ours + CUSA")):
        assert {name: ours.loc[row, name] for name in names} == {name: base + i for i, name in enumerate(names)}
    md = (tmp_path / "t9.md").read_text()
    assert "ECCV Caption's extended ground truth" in md and "ShapeCaptions" not in md
    with pytest.raises(ValueError, match="no extended-ground-truth metrics"):
        build_table9([cell("coco/cusa_dual", 40.0, eccv=False)], tmp_path / "t9b", labels=labels)


def test_the_ablation_sweeps_each_weight_alone_and_reduces_itc_the_other_way():
    """alpha (beta fixed) and beta (alpha fixed) sweeps; a swept value equal to the main student's is that student,
    not a second training; the released ITC row flips the reduction, whichever params.yaml chose."""
    from pathlib import Path

    import yaml

    from itr import papers

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["softlabel"].update(alpha=0.3, beta=0.5, alpha_sweep=[0.1, 0.3], beta_sweep=[0.25, 0.5, 2.0],
                               itc_reduction="mean", epochs=2, ablation_epochs=1)
    plan = papers.plan("cusa", params)
    assert {v: {k: x for k, x in s["overrides"].items() if k not in ("image_tower", "pixel_tower")}
            for v, s in plan.variants.items()
            if "/" in v and v.split("/")[1] not in ("itc", "csa", "usa")} == {
        "cusa_var/cusa_ref": {"epochs": 1}, "cusa_var/alpha_0.1": {"alpha": 0.1, "epochs": 1},
        "cusa_var/beta_0.25": {"beta": 0.25, "epochs": 1}, "cusa_var/beta_2": {"beta": 2.0, "epochs": 1},
        "cusa_var/itc_sum": {"itc_reduction": "sum", "epochs": 1}, "cusa_var/pixels_itc": {"alpha": 0.0, "beta": 0.0},
        "cusa_var/pixels_cusa": {}}
    spec = plan.tables["ablations"]
    assert spec.labels["settings"]["cusa_var/beta_2"] == {"alpha": 0.3, "beta": 2.0, "itc_reduction": "mean", "epochs": 1}
    assert spec.labels["settings"]["cusa_var/cusa_ref"] == {"alpha": 0.3, "beta": 0.5, "itc_reduction": "mean", "epochs": 1}
    assert "paper's sum" in spec.labels["rows"]["cusa_var/itc_sum"]
    assert len(spec.inputs) == 2 * 5 == len(set(spec.inputs))  # the reference and four others, student (a)
    # at the main budget the reference is the main student, not a second training
    params["softlabel"]["ablation_epochs"] = 2
    plan = papers.plan("cusa", params)
    assert "cusa_var/cusa_ref" not in plan.variants and "cusa" in plan.tables["ablations"].labels["rows"]
    towers = {v: s["overrides"]["image_tower"] for v, s in plan.variants.items()}
    assert {v for v, t in towers.items() if t == "pixels"} == {"cusa_var/pixels_itc", "cusa_var/pixels_cusa"}
    assert plan.variants["cusa_var/pixels_cusa"]["features"] == "patches"
    assert plan.variants["cusa_var/pixels_cusa"]["image_teacher"] == "features/shapes/manifest.json"
    assert "image_teacher" not in plan.variants["cusa_var/pixels_itc"]  # ITC alone reads no teacher
    # only the pixel students read the pixel tower's settings: editing them retrains no region student
    assert {v for v, s in plan.variants.items() if "pixel_tower" in s["overrides"]} == {v for v, t in towers.items()
                                                                                        if t == "pixels"}


def test_claims_compare_the_right_rows_and_flip_with_them():
    """Each claim reads its rows by label; changing the one number it hinges on flips its verdict."""
    from itr.papers.cusa.claims import check_claims

    ext = lambda v: {c: v for c in ("i2t/mAP@R", "i2t/R-P", "i2t/R@1", "t2i/mAP@R", "t2i/R-P", "t2i/R@1")}  # noqa: E731
    tables = {
        "table8": {f"{p}{row}/{b}": {"rsum": r} for p, base in (("", 300.0), ("pixel ViT, ", 200.0)) for b in ("5K", "1K")
                   for row, r in (("ITC", base), ("+ USA", base - 2), ("+ CUSA", base + 5))},
        "table9": {"ITC": ext(10.0), "+ CUSA": ext(11.0), "pixel ViT, ITC": ext(5.0), "pixel ViT, + CUSA": ext(6.0)},
        "table10": {"ITC, cross-modal head": {"ours mAP@R": 20.0}, "+ USA, uni-modal head": {"ours mAP@R": 30.0}},
        "table11": {"ITC, cross-modal head": {"ours Spearman": 40.0}, "+ USA, uni-modal head": {"ours Spearman": 50.0}},
        "table13": {"cusa image=disk text=disk": {"overhead_pct": 4.0},
                    "cusa image=on_the_fly text=on_the_fly": {"overhead_pct": 40.0}},
    }
    verdicts = lambda: [holds for _, holds, _ in check_claims(tables)]  # noqa: E731
    assert verdicts() == [True, True, True, True]
    tables["table8"]["pixel ViT, + CUSA/1K"]["rsum"] = 199.0  # student (b) on 1K: CUSA below ITC
    tables["table9"]["pixel ViT, + CUSA"] = ext(4.0)
    tables["table11"]["+ USA, uni-modal head"]["ours Spearman"] = 39.0
    tables["table13"]["cusa image=disk text=disk"]["overhead_pct"] = 12.0
    assert verdicts() == [False, False, False, False]
    tables["table11"]["+ USA, uni-modal head"]["ours Spearman"] = 50.0
    tables["table8"]["+ USA/5K"]["rsum"] = 296.0  # 4 below ITC: hurts cross-modal retrieval
    assert verdicts()[2] is False
    assert [holds for _, holds, _ in check_claims({"table8": tables["table8"]})][1:] == [None, None, None]
