"""What CUSA asks of the workflow: its students, rows and table cells, from params.yaml.

Student (a) of the issue: this project's region-feature dual encoder (Retrieve Fast, Rerank Smart's BE towers) with a
cross-modal and a uni-modal head per side (itr.models.softlabel, ``itr train softlabel``), trained four ways, as the
paper's Table 8 trains each of its students:

    ITC (alpha = beta = 0) | + CSA (beta = 0) | + USA (alpha = 0) | + CUSA (the section's own alpha and beta)

Student (b), the CLIP analogue, has no detector: a transformer from scratch over the raw 128-px images cut into patches
(``softlabel.image_tower: pixels``, the store ``features/<dataset>-patches``), beside the same text tower, trained with
ITC alone and + CUSA, taught by the same teachers (its image teacher is the detector store's whole-image feature). The
ablation (``ablations``) trains student (a) + CUSA at the budget ``ablation_epochs``: a reference at the section's own
alpha and beta, the other alphas and betas of the sweeps, and ITC reduced the other way. (Table 8's + CSA and + USA
rows are the paper's own ablation of the two terms.)

Tables 10 and 11 (image retrieval on CUB, SOP, ...; STS) are played by image->image retrieval of ShapeCaptions' test
images by class and by test caption pairs graded by meaning (``itr unimodal``, itr.unimodal). Table 9 (ECCV Caption)
is played by the extended ground truth of ShapeCaptions' test split (protocol ``extended``:
every caption true of an image is its positive; itr.data.truth). Every student that reads a teacher reads the one text-teacher file of the main variant (``itr teachers``; the image
teacher is the detector's whole-image feature in the feature store). Row: ``cusa_dual``, the cross-modal heads'
embeddings through the faiss index. Protocol analogues: COCO 5K -> ``full``, Flickr30K 1K -> ``subset`` (the first
``evaluation.subset_size`` test images). Nothing here imports torch or pandas: Snakemake parses it on every call.

Example:
    >>> p = plan(yaml.safe_load(open("params.yaml")))
    >>> p.tables["table8"].inputs[0]
    'results/metrics/cusa_var/itc/cusa_dual/shapes/full.json'
"""
from __future__ import annotations

from itr import eccv
from itr.layout import (EVAL_METRICS, MAIN_DATASET, MODEL, SOFTLABEL_COST, TEXT_TEACHER, features_manifest,
                        TRAIN_HISTORY, UNIMODAL_METRICS, main_dataset, on_dataset, table_stem)
from itr.papers import Plan, TableSpec
from itr.protocols import EXTENDED

METHOD = "softlabel"  # itr train softlabel (params section softlabel)
ROW = "cusa_dual"
EMBEDDING_ROWS = {ROW: METHOD}
MAIN = "cusa"  # + CUSA: the section's own alpha and beta
REFERENCE = "cusa_ref"  # the same at the ablation's budget (softlabel.ablation_epochs), when it is not the main one's
VARIANTS = "cusa_var"
# name -> overrides of the softlabel section: Table 8's students. Student (a) reads the detector's regions; student
# (b), the CLIP analogue, raw-pixel patches through a transformer from scratch (itr.features.patches), on generated
# data only (its images are one size), taught by the same teachers.
STUDENTS = {"itc": {"alpha": 0.0, "beta": 0.0}, "csa": {"beta": 0.0}, "usa": {"alpha": 0.0}, MAIN: {}}
PIXEL_STUDENTS = {"pixels_itc": {"alpha": 0.0, "beta": 0.0}, "pixels_cusa": {}}
LABELS = {"itc": "ITC", "csa": "+ CSA", "usa": "+ USA", MAIN: "+ CUSA",
          "pixels_itc": "pixel ViT, ITC", "pixels_cusa": "pixel ViT, + CUSA"}
OTHER_REDUCTION = {"sum": "mean", "mean": "sum"}
REDUCTION_LABELS = {"sum": "the paper's sum over j", "mean": "as released: mean over j"}
PROTOCOLS = {"5K": "full", "1K": "subset"}  # the paper's COCO 5K and Flickr30K 1K test sets -> our protocols
# Tables only generated ShapeCaptions can build, and why (the ablation drops its extended columns instead).
MEANINGS = "it judges captions by their meanings (itr.data.truth), which only generated ShapeCaptions stores"
DETECTOR = "its on-the-fly image teacher is ShapeCaptions' own detector (benchmarks/softlabel_cost.py)"
GENERATED_ONLY = {"table9": MEANINGS, "table10": MEANINGS, "table11": MEANINGS, "table12": DETECTOR,
                  "table13": DETECTOR}


def variant_name(name: str) -> str:
    return MAIN if name == MAIN else f"{VARIANTS}/{name}"


def cell(name: str, protocol: str, config: dict) -> str:
    """The metrics file of a student on the configured dataset."""
    return EVAL_METRICS.format(variant=on_dataset(variant_name(name), config), method=ROW,
                               collection=main_dataset(config), protocol=protocol)


def ablation_students(section: dict) -> dict[str, tuple[dict, str]]:
    """The ablation's students, all + CUSA at ``ablation_epochs``: the reference (the section's own alpha and beta;
    the main student itself when the budgets are equal), each other alpha of ``alpha_sweep`` and beta of
    ``beta_sweep``, and ITC reduced the other way (the release's mean over j, or the paper's sum).
    Returns name -> (overrides, label)."""
    n = section["ablation_epochs"]
    budget = {} if n == section["epochs"] else {"epochs": n}
    out = {REFERENCE if budget else MAIN: (budget, "+ CUSA")}
    out.update({f"alpha_{a:g}": ({"alpha": a, **budget}, f"+ CUSA, alpha {a:g}") for a in section["alpha_sweep"]
                if a != section["alpha"]})
    out.update({f"beta_{b:g}": ({"beta": b, **budget}, f"+ CUSA, beta {b:g}") for b in section["beta_sweep"]
                if b != section["beta"]})
    other = OTHER_REDUCTION[section["itc_reduction"]]
    out[f"itc_{other}"] = ({"itc_reduction": other, **budget}, f"+ CUSA, ITC {REDUCTION_LABELS[other]}")
    return out


def plan(config: dict) -> Plan:
    """Every student and table cell of the paper under ``config`` (a validated params mapping)."""
    data, section = main_dataset(config), config["softlabel"]
    teacher = TEXT_TEACHER.format(variant=on_dataset(MAIN, config))
    ablation = ablation_students(section)
    regions = {"image_tower": "regions"}
    main_students = {n: {**o, **regions} for n, o in STUDENTS.items()}
    if data == MAIN_DATASET:
        # the pixel tower's settings go to these students only (train does not read them otherwise)
        main_students |= {n: {**o, "image_tower": "pixels", "pixel_tower": section["pixel_tower"]}
                          for n, o in PIXEL_STUDENTS.items()}
    students = {**main_students, **{n: {**o, **regions} for n, (o, _) in ablation.items() if n != MAIN}}
    variants = {}
    for name, overrides in students.items():
        s = {**section, **overrides}
        reads_file = (s["alpha"] > 0 or s["beta"] > 0) and s["teacher_features"] == "disk"
        teaches = s["alpha"] > 0 or s["beta"] > 0
        pixels = {"features": "patches", **({"image_teacher": features_manifest(data, config)} if teaches else {})}
        variants[on_dataset(variant_name(name), config)] = {
            "dataset": data, "overrides": overrides, "models": [METHOD], "eval_teacher": teacher,
            **({"teacher": teacher} if reads_file else {}), **(pixels if s["image_tower"] == "pixels" else {})}
    rows = {on_dataset(variant_name(n), config): LABELS[n] for n in main_students}
    ablation_rows = {on_dataset(variant_name(n), config): label for n, (_, label) in ablation.items()}
    settings_of = {on_dataset(variant_name(n), config): {k: {**section, **o}[k] for k in ("alpha", "beta",
                                                                                         "itc_reduction", "epochs")}
                   for n, (o, _) in ablation.items()}
    ablated = list(ablation)
    ablation_cells = [cell(n, p, config) for p in ("full", EXTENDED) if p == "full" or data == MAIN_DATASET
                      for n in ablated]
    table8 = [cell(n, p, config) for p in PROTOCOLS.values() for n in main_students]
    # Table 9 under the extended ground truth: ShapeCaptions' (protocol extended), or on COCO ECCV Caption's, which
    # every protocol-full cell there carries (itr.eccv)
    eccv_judged = data != MAIN_DATASET and eccv.judges(config["datasets"][data])
    table9 = [cell(n, "full" if eccv_judged else EXTENDED, config) for n in main_students]
    unimodal = [UNIMODAL_METRICS.format(variant=on_dataset(variant_name(n), config), collection=data)
                for n in main_students]
    settings = {k: section[k] for k in ("epochs", "batch_size", "lr", "weight_decay", "itc_tau", "soft_tau",
                                        "teacher_tau", "alpha", "beta", "itc_reduction", "text_teacher",
                                        "teacher_features")}
    cost = SOFTLABEL_COST.format(variant=on_dataset(MAIN, config))  # the main student's config and teacher file
    histories = [TRAIN_HISTORY.format(variant=on_dataset(variant_name(n), config), model=METHOD) for n in STUDENTS]
    models = [MODEL.format(variant=on_dataset(variant_name(n), config), model=METHOD)
              for n in (MAIN, "pixels_cusa") if n in main_students]
    tables = {"table7": TableSpec(models, None, None, {"settings": settings, "pixel_tower": section["pixel_tower"]}),
              "table8": TableSpec(table8, None, f"{_note(config)} {_protocols(config)}", {"rows": rows}),
              "table9": TableSpec(table9, None, _note(config), {"rows": rows}),
              "table10": TableSpec(unimodal, None, _note(config), {"rows": rows}),
              "table11": TableSpec(unimodal, None, _note(config), {"rows": rows}),
              "table12": TableSpec([cost], None, _note(config)),
              "table13": TableSpec([cost, *histories], None, _note(config), {"history_modes": dict(zip(histories, [
                  "contrastive", *(f"{n} image=disk text={section['teacher_features']}" for n in ("csa", "usa",
                                                                                                "cusa"))]))}),
              "ablations": TableSpec(ablation_cells, None, _note(config, section["ablation_epochs"]),
                                     {"rows": ablation_rows, "settings": settings_of})}
    generated_only = {} if data == MAIN_DATASET else {t: why for t, why in GENERATED_ONLY.items()
                                                      if not (t == "table9" and eccv_judged)}
    claimed = [t for t in ("table8", "table9", "table10", "table11", "table13") if t not in generated_only]
    tables["claims"] = TableSpec([f"{table_stem('cusa', t, config)}.json" for t in claimed])
    unavailable = {t: (f"{why}, not {data}; set dataset: shapes"
                       + (" (Table 9 also builds on COCO, from ECCV Caption's ground truth)" if why == MEANINGS else ""))
                   for t, why in generated_only.items()}
    return Plan(
        variants=variants, collections={data: {"dataset": data, "distractors": []}},
        embedding_rows=EMBEDDING_ROWS, rerank_rows={}, searched=sorted((v, data) for v in variants),
        tables={t: spec for t, spec in tables.items() if t not in unavailable}, unavailable=unavailable,
        first_images={v: None for v in variants},
    )


def _note(config: dict, epochs: int | None = None) -> str:
    """What every table says of the students (``epochs``: their budget, when not the section's)."""
    c, t = config["softlabel"], config["softlabel"]["pixel_tower"]
    pixels = (f"; student (b), 'pixel ViT' (generated data only): the same text tower beside a {t['layers']}-layer "
              f"transformer from scratch over {t['patch']}-px patches of the raw images, no detector"
              if main_dataset(config) == MAIN_DATASET else "")
    return (f"Student (a): the bi-encoder's towers (the text tower {config['text_encoder']['path']!r}, image layers "
            f"from scratch over the detector's regions){pixels}; each with two heads per side, "
            f"{c['epochs'] if epochs is None else epochs} epoch(s) at batch {c['batch_size']}; with CSA or USA, taught "
            "by the detector's whole-image features and the text teacher.")


def _protocols(config: dict) -> str:
    return f"5K = the whole test split, 1K = its first {config['evaluation']['subset_size']} images."
