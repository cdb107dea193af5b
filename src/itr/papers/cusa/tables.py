"""Appendix Tables 7-9 of CUSA: the students' settings, retrieval with ITC alone against + CSA, + USA and + CUSA, and
the same students under the extended ground truth (Table 9, the ECCV Caption analogue).

Table 8 reads the metrics file of each student on the two protocols (``itr.papers.cusa.plan`` lists them), names each
row by its student, and writes the table with itr.tables: reported rows marked 'paper', measured rows 'ours'.

Example:
    >>> build_table8(paths, Path("results/tables/cusa_table8"), note="...", labels={"rows": {...}})
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from itr.protocols import EXTENDED
from itr.tables import (RECALL_COLUMNS, measured_row, recalls, reported_numbers, test_set_name, write_plain_table,
                        write_recall_table, write_table)

SCORES = RECALL_COLUMNS + ["rsum"]
BENCHMARK = {"full": "5K", "subset": "1K"}  # our protocol -> the paper's test set it plays (plan.PROTOCOLS)
BENCHMARK_NAMES = {"5K": "MSCOCO 5K", "1K": "Flickr30K 1K"}


def paper_numbers() -> dict:
    """The numbers Huang et al. report (reported.yaml), by table."""
    return reported_numbers(__package__)


def parameter_count(model_path) -> int:
    """Weights in a checkpoint's model (its state dict's elements; the temperatures included)."""
    from itr.checkpoint import load_checkpoint

    return sum(t.numel() for t in load_checkpoint(model_path)["model"].values())


def build_table7(paths, out_stem: Path, labels: dict) -> pd.DataFrame:
    """Table 7: the settings of each student, the paper's beside ours (params.yaml's ``softlabel`` section; the weights
    counted in each trained + CUSA student: ``paths[0]`` student (a), ``paths[1]`` student (b) where planned)."""
    reported = paper_numbers()["table7"]
    rows = [{"Model": model, "Source": "paper", **dict(zip(reported["columns"], values))}
            for model, values in reported["rows"].items()]
    s, t = labels["settings"], labels["pixel_tower"]
    names = ["(a) region-feature dual encoder (BE towers, two heads per side)",
             f"(b) pixel ViT from scratch ({t['layers']} layers, {t['heads']} heads, {t['patch']}-px patches) + text "
             "tower, two heads per side"]
    for name, path in zip(names, paths):
        rows.append({"Model": name, "Source": "ours", "#Params": f"{parameter_count(path) / 1e6:.3g}M",
                     "epochs (COCO)": s["epochs"], "epochs (Flickr30K)": s["epochs"], "GPU": "—",
                     "tau init": s["soft_tau"], "alpha": s["alpha"], "beta": s["beta"]})
    df = pd.DataFrame(rows, columns=["Model", "Source"] + reported["columns"])
    caption = (f"Table 7 analogue of Huang et al. (CUSA): the students' settings; 'paper' rows as reported "
               f"({reported['source']}), 'ours' from params.yaml (one epoch count per student for both test sets: "
               f"both are protocols of one ShapeCaptions training). Ours also: batch {s['batch_size']}, lr {s['lr']}, "
               f"weight decay {s['weight_decay']}, ITC tau init {s['itc_tau']} (learned), teacher tau "
               f"{s['teacher_tau']} (fixed), ITC reduction '{s['itc_reduction']}', text teacher "
               f"'{s['text_teacher']}' ({s['teacher_features']}); image teacher: the detector store's whole-image feature "
               "(for both students).")
    write_plain_table(df, out_stem, caption, {"ours": {k: s[k] for k in ("epochs", "soft_tau", "alpha", "beta")}})
    return df


def build_table8(paths, out_stem: Path, note: str = "", labels: dict | None = None) -> pd.DataFrame:
    """Table 8: each student trained with ITC alone, + CSA, + USA and + CUSA, on the 5K and 1K analogues."""
    rows_of = (labels or {"rows": {}})["rows"]  # variant -> its row label
    reported = paper_numbers()["table8"]
    rows = [{"Model": model, "Source": "paper", "Benchmark": BENCHMARK_NAMES[test_set], **recalls(values)}
            for model, by_set in reported["rows"].items() for test_set, values in by_set.items()]
    flat, cells = {}, [json.loads(Path(p).read_text()) for p in paths]
    for m in cells:
        if m["protocol"] not in BENCHMARK:
            raise ValueError(f"a cell of {out_stem.name} was measured with protocol {m['protocol']!r}; the table "
                             f"reads {sorted(BENCHMARK)} (the 5K and 1K analogues)")
        label, test_set = rows_of[m["variant"]], BENCHMARK[m["protocol"]]
        rows.append({"Model": f"ours {label}", "Source": "ours",
                     "Benchmark": f"{test_set_name(m)} {m['protocol_label']} (plays {BENCHMARK_NAMES[test_set]})",
                     **measured_row(m)})
        flat[f"{label}/{test_set}"] = {c: round(rows[-1][c], 2) for c in SCORES}
    df = pd.DataFrame(rows, columns=["Model", "Source", "Benchmark"] + SCORES)
    caption = (f"Table 8 analogue of Huang et al. (CUSA): 'paper' rows as reported ({reported['source']}; rsum summed "
               f"from the printed recalls, so it may differ from the paper's RSUM by 0.1); 'ours' on "
               f"{test_set_name(cells[0] if cells else None)} test, each student ranking by its cross-modal heads "
               f"(exact faiss search). {note}")
    write_recall_table(df, out_stem, caption, flat)
    return df


def build_table9(paths, out_stem: Path, note: str = "", labels: dict | None = None) -> pd.DataFrame:
    """Table 9: each student under the extended ground truth (the ECCV Caption analogue): mAP@R, R-P, R@1."""
    rows_of = (labels or {"rows": {}})["rows"]
    reported = paper_numbers()["table9"]
    columns = reported["columns"]
    rows = [{"Model": model, "Source": "paper", "Benchmark": "ECCV Caption", **dict(zip(columns, values))}
            for model, values in reported["rows"].items()]
    flat, cells = {}, [json.loads(Path(p).read_text()) for p in paths]
    for m in cells:
        # ShapeCaptions' extended ground truth (protocol extended, ext/*), or ECCV Caption's on COCO's 5K (eccv/*)
        prefix = "ext/" if m["protocol"] == EXTENDED else "eccv/"
        if f"{prefix}{columns[0]}" not in m["metrics"]:
            raise ValueError(f"a cell of {out_stem.name} (protocol {m['protocol']!r}) has no extended-ground-truth "
                             f"metrics: the table reads protocol {EXTENDED!r} on ShapeCaptions, or protocol 'full' "
                             "on COCO's 5K test split, whose cells carry ECCV Caption's")
        label = rows_of[m["variant"]]
        # ECCV Caption judges its own queries of the 5K split (itr.eccv), not every one
        benchmark = (f"{test_set_name(m)} {m['protocol_label']}" if prefix == "ext/"
                     else f"ECCV Caption ({test_set_name(m)} {m['protocol_label']})")
        rows.append({"Model": f"ours {label}", "Source": "ours", "Benchmark": benchmark,
                     **{c: m["metrics"][f"{prefix}{c}"] for c in columns}})
        flat[label] = {c: round(m["metrics"][f"{prefix}{c}"], 2) for c in columns}
    df = pd.DataFrame(rows, columns=["Model", "Source", "Benchmark"] + columns)
    shown = df.copy()
    for c in columns:
        shown[c] = shown[c].map(lambda v: f"{v:.1f}")
    if cells and cells[0]["protocol"] != EXTENDED:
        ours = ("ECCV Caption's extended ground truth of COCO's 5K test split (the eccv-caption package's positives "
                "and metrics, itr.eccv), as the paper")
    else:
        counts = cells[0]["positives"] if cells else {"t2i": {"median": 0, "max": 0}, "i2t": {"median": 0, "max": 0}}
        ours = ("the extended ground truth of ShapeCaptions (a caption's positives are every test image it is true "
                "of, decided from its meaning and the scenes; ECCV Caption's metrics over whole rankings). Positives "
                f"per query: median {counts['t2i']['median']:g} (max {counts['t2i']['max']}) images per caption, "
                f"median {counts['i2t']['median']:g} (max {counts['i2t']['max']}) captions per image (generic captions "
                "such as 'three shapes on a grey noisy background' are true of many images; ECCV Caption has at most "
                "48 positives per query)")
    caption = (f"Table 9 analogue of Huang et al. (CUSA): 'paper' rows as reported ({reported['source']}); 'ours' under "
               f"{ours}. {note}")
    write_table(shown, out_stem, caption, flat, csv=df.to_csv(index=False, float_format="%.2f"))
    return df


def _unimodal_table(name: str, paths, out_stem: Path, note: str, labels: dict | None, ours: dict[str, str],
                    what: str) -> pd.DataFrame:
    """Tables 10 and 11: the paper's rows (their columns) beside ours (``ours``: column -> metric suffix), one row per
    student and head (uni-modal, cross-modal) and one for the teacher (from the main student's file)."""
    rows_of = (labels or {"rows": {}})["rows"]
    reported = paper_numbers()[name]
    rows = [{"Model": model, "Source": "paper", **dict(zip(reported["columns"], values))}
            for model, values in reported["rows"].items()]
    flat, cells = {}, [json.loads(Path(p).read_text()) for p in paths]
    teacher = next((m for m in cells if rows_of[m["variant"]] == "+ CUSA"), cells[-1] if cells else None)
    for m, head, row in [(teacher, "teacher", "teacher")] + [(m, h, f"{rows_of[m['variant']]}, {h}-modal head")
                                                              for m in cells for h in ("uni", "cross")]:
        if m is None:
            continue
        values = {column: m["metrics"][f"{head}/{suffix}"] for column, suffix in ours.items()}
        rows.append({"Model": f"ours {row}", "Source": "ours", **values})
        flat[row] = {c: round(v, 2) for c, v in values.items()}
    columns = reported["columns"] + list(ours)
    df = pd.DataFrame(rows, columns=["Model", "Source"] + columns)
    shown = df.copy()
    for c in columns:
        shown[c] = shown[c].map(lambda v: "—" if pd.isna(v) else f"{v:.1f}")
    caption = (f"Table {name[5:]} analogue of Huang et al. (CUSA): 'paper' rows as reported ({reported['source']}); "
               f"'ours' on {test_set_name(cells[0] if cells else None)} test, {what} {note}")
    write_table(shown, out_stem, caption, flat, csv=df.to_csv(index=False, float_format="%.2f"))
    return df


def build_table10(paths, out_stem: Path, note: str = "", labels: dict | None = None) -> pd.DataFrame:
    """Table 10: image->image retrieval by class, each student's uni-modal and cross-modal image heads and the image
    teacher (the store's whole-image features)."""
    queries = json.loads(Path(paths[0]).read_text())["queries"] if paths else 0
    return _unimodal_table("table10", paths, out_stem, note, labels, {"ours R@1": "i2i/R@1", "ours mAP@R": "i2i/mAP@R"},
                           f"image to image: each of the {queries} test images with another of its class queries all "
                           "others, its positives the images of its class (the same multiset of coloured kinds). The "
                           "teacher row is the image teacher, the store's whole-image features.")


def build_table11(paths, out_stem: Path, note: str = "", labels: dict | None = None) -> pd.DataFrame:
    """Table 11: the STS analogue, each student's uni-modal and cross-modal text heads and the text teacher."""
    pairs = json.loads(Path(paths[0]).read_text())["pairs"] if paths else 0
    return _unimodal_table("table11", paths, out_stem, note, labels, {"ours Spearman": "sts/spearman"},
                           f"{pairs} test caption pairs graded by the Jaccard overlap of the images each is true of "
                           "(half share an image); Spearman x 100 between the grades and the cosine of each head's "
                           "caption embeddings. The teacher row is the text teacher.")


EXTENDED_COLUMNS = ["t2i/mAP@R", "i2t/mAP@R"]


def build_ablations(paths, out_stem: Path, note: str = "", labels: dict | None = None) -> pd.DataFrame:
    """The ablation: + CUSA at the ablation's budget (a reference at the main alpha and beta, each other alpha and
    beta of the sweeps, ITC reduced as the release reduces it), its settings beside its retrieval on protocol ``full``
    and, where the cells exist, its mAP@R under the extended ground truth. The paper prints no such table: every row
    is ours (its + CSA / + USA ablation is Table 8's)."""
    rows_of, settings = labels["rows"], labels["settings"]  # variant -> label; variant -> alpha, beta, itc_reduction
    by_variant: dict[str, dict] = {}
    for m in (json.loads(Path(p).read_text()) for p in paths):
        if m["protocol"] not in ("full", EXTENDED):
            raise ValueError(f"a cell of {out_stem.name} was measured with protocol {m['protocol']!r}; the table reads "
                             f"'full' and {EXTENDED!r}")
        by_variant.setdefault(m["variant"], {})[m["protocol"]] = m
    rows, flat = [], {}
    for variant, cells in by_variant.items():
        s, full, ext = settings[variant], cells["full"], cells.get(EXTENDED)
        row = {"Model": f"ours {rows_of[variant]}", "epochs": s["epochs"], "alpha": s["alpha"], "beta": s["beta"],
               "ITC": s["itc_reduction"],
               **measured_row(full), **{f"ext {c}": (ext["metrics"][f"ext/{c}"] if ext else float("nan"))
                                         for c in EXTENDED_COLUMNS}}
        rows.append(row)
        flat[rows_of[variant]] = {c: round(row[c], 2) for c in SCORES + [f"ext {c}" for c in EXTENDED_COLUMNS]
                                  if not pd.isna(row[c])}
    scores = SCORES + [f"ext {c}" for c in EXTENDED_COLUMNS]
    df = pd.DataFrame(rows, columns=["Model", "epochs", "alpha", "beta", "ITC"] + scores)
    shown = df.copy()
    for c in scores:
        shown[c] = shown[c].map(lambda v: "—" if pd.isna(v) else f"{v:.1f}")
    first = next(iter(by_variant.values()))["full"] if by_variant else None
    caption = (f"Ablation of CUSA's loss (the paper prints none; every row is ours): each student on "
               f"{test_set_name(first)} test, protocol full (R@K, rsum) and the extended ground truth (ext mAP@R; "
               f"— where the dataset stores no caption meanings). ITC 'sum' is the paper's InfoNCE, 'mean' the "
               f"release's (its ITC weighs 1/N as much). Student (a), every row at the ablation's budget (epochs); "
               f"Table 8 has the + CSA and + USA rows at the main one. {note}")
    write_table(shown, out_stem, caption, flat, csv=df.to_csv(index=False, float_format="%.2f"))
    return df


# our benchmark's module -> the paper's (Table 12)
MODULES = {"image teacher on the fly": "Img-Fea extraction", "text teacher on the fly": "Text-Fea extraction",
           "image teacher from disk": "Load Img-Fea from disk", "text teacher from disk": "Load Text-Fea from disk",
           "similarities (I2I)": "Sims-Cal (I2I)", "similarities (T2T)": "Sims-Cal (T2T)"}


def _machine(cost: dict) -> str:
    m = cost["machine"]
    return f"{m['cpu']} ({', '.join(m['isa'])}), {m['threads']} threads"


def build_table12(paths, out_stem: Path, note: str = "") -> pd.DataFrame:
    """Table 12: milliseconds per iteration of each module soft-label training adds, the paper's beside ours
    (benchmarks/softlabel_cost.py, ``paths[0]``), and the disk each needs."""
    reported = paper_numbers()["table12"]
    cost = json.loads(Path(paths[0]).read_text())
    rows = [{"Module": module, "Source": "paper", "Time": v[0], "Memory": v[1], "Disk": v[2]}
            for module, v in reported["rows"].items()]
    flat = {}
    for name, m in cost["modules"].items():
        rows.append({"Module": f"ours: {name}" + (f" ({MODULES[name]})" if name in MODULES else ""), "Source": "ours",
                     "Time": f"{m['ms']:.2f} ± {m['ms_std']:.2f} ms", "Memory": "—",
                     "Disk": "none" if m["disk_mb"] is None else f"{m['disk_mb']:g} MB"})
        flat[name] = {"ms": m["ms"], "ms_std": m["ms_std"]}
    df = pd.DataFrame(rows, columns=["Module", "Source", "Time", "Memory", "Disk"])
    caption = (f"Table 12 analogue of Huang et al. (CUSA): 'paper' rows as reported ({reported['source']}); 'ours' "
               f"measured in one run on {_machine(cost)}: mean ± std over {cost['rounds']} rounds of "
               f"{cost['iterations']} calls at batch {cost['batch_size']} (the rounds interleave the modules). Memory "
               "is not measured (CPU); 'none': a module that reads nothing from disk. The text-teacher file is loaded once "
               f"({cost['load_once_ms']['text teacher file']:.0f} ms) and then indexed in memory. {note}")
    write_plain_table(df, out_stem, caption, flat)
    return df


def build_table13(paths, out_stem: Path, note: str = "", labels: dict | None = None) -> pd.DataFrame:
    """Table 13: one epoch of training with contrastive loss alone and with + CSA, + USA, + CUSA for each way of
    getting the teachers: the paper's minutes beside ours (seconds per optimiser step x steps per epoch, from the
    benchmark ``paths[0]``) and the epoch times of our trained students (their histories, ``paths[1:]``)."""
    reported = paper_numbers()["table13"]
    cost = json.loads(Path(paths[0]).read_text())
    trained = {}
    for p in paths[1:]:
        seconds = pd.read_csv(p)["epoch_seconds"].dropna()
        mode = next(m for h, m in labels["history_modes"].items() if str(p).endswith(h))  # the rule's relative path
        trained[mode] = float(seconds.mean())
    paper_base = float(reported["rows"]["contrastive"][0].split()[0])
    ours_base = cost["epochs"]["contrastive"]["epoch_minutes"]
    rows, flat = [], {}
    for mode, values in reported["rows"].items():
        minutes = float(values[0].split()[0])
        ours = cost["epochs"][mode]
        trained_min = trained.get(mode)
        rows.append({"Method": mode, "paper Time": values[0], "paper overhead": f"{100 * (minutes / paper_base - 1):+.1f}%",
                     "ours s/step": f"{ours['step_seconds']:.3f} ± {ours['step_std']:.3f}",
                     "ours epoch (projected)": f"{ours['epoch_minutes']:.2f} min",
                     "ours overhead": f"{100 * (ours['epoch_minutes'] / ours_base - 1):+.1f}%",
                     "ours epoch (trained)": "not trained" if trained_min is None else f"{trained_min / 60:.2f} min"})
        flat[mode] = {"epoch_minutes": ours["epoch_minutes"], "overhead_pct": round(100 * (ours["epoch_minutes"] /
                                                                                        ours_base - 1), 2),
                      **({"trained_epoch_minutes": round(trained_min / 60, 3)} if trained_min is not None else {})}
    df = pd.DataFrame(rows)
    caption = (f"Table 13 analogue of Huang et al. (CUSA): 'paper' as reported ({reported['source']}); 'ours' measured "
               f"in one run on {_machine(cost)}: seconds per optimiser step of the student (forward, backward, clip, "
               f"AdamW) at batch {cost['batch_size']}, mean ± std over {cost['rounds']} rounds of {cost['steps']} steps "
               f"(rounds interleave the rows), projected to an epoch of {cost['steps_per_epoch']} steps (one pass over "
               f"{cost['train_captions']} training captions; validation not included). Overheads are against "
               "contrastive loss alone. 'trained': the mean epoch time (validation included) of the students the "
               f"tables train, as their histories recorded it, beside whatever else ran then. {note}")
    write_plain_table(df, out_stem, caption, flat)
    return df
