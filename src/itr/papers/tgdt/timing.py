"""Tables IV-V and Figures 1 and 7 of TGDT: quality against total inference time, TGDT beside the cross-encoder.

The paper sets TGDT against VinVL, a vision-language pre-trained cross-attention model (Tables IV-V on VinVL
features; Figures 1 and 7 the total time to evaluate a test set). Our cross-encoder (Retrieve Fast, Rerank Smart's
CE, every pair scored) plays VinVL. Times and metrics come from one run of benchmarks/inference_time.py
(``results/benchmarks/tgdt_inference.json``): every method evaluated whole on one protocol, one after another.

Example:
    >>> build_table4([Path("results/benchmarks/tgdt_inference.json")], Path("results/tables/tgdt_table4"), "subset")
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from itr.papers.tgdt.tables import NAMES, SCORES, rounded, paper_numbers
from itr.tables import human_seconds, measured_row, recalls, save_png, test_set_name, write_recall_table

TIMED_NAMES = {**NAMES, "ce": "CE, all pairs (Retrieve Fast, Rerank Smart; plays VinVL)"}


def load_benchmark(path, protocol: str | None = None) -> dict:
    """The inference-time benchmark's JSON, checking its protocol."""
    bench = json.loads(Path(path).read_text())
    if protocol is not None and bench["protocol"] != protocol:
        raise ValueError(f"{path} was measured with protocol {bench['protocol']!r}, the table asks for {protocol!r}")
    return bench


def _machine(bench: dict) -> str:
    m = bench["machine"]
    return f"{m['cpu']}, {m['threads']} torch threads ({m['faiss_threads']} for faiss), {m['device']}, torch {m['torch']}"


def timed_rows(bench: dict) -> list[dict]:
    """One row per timed method: name, recalls and rsum, total seconds, pairs scored."""
    return [{"Model": TIMED_NAMES[method], **measured_row(r), "Seconds": r["seconds"], "Pairs scored": r["pairs_scored"]}
            for method, r in bench["methods"].items()]


def build_table4(paths, out_stem: Path, protocol: str, note: str = "") -> pd.DataFrame:
    """Table IV: TGDT-G, -L, -GL against the cross-encoder (and BE, SEP+COOP), quality and total time, one run."""
    bench, paper = load_benchmark(paths[0], protocol), paper_numbers()["table4"]
    rows = [{"Model": model, "Source": "paper", **recalls(values)} for model, values in paper["rows"].items()]
    ours = timed_rows(bench)
    rows += [{**r, "Source": "ours", "Time": human_seconds(r["Seconds"]), "Pairs scored": f"{r['Pairs scored']:,}"}
             for r in ours]
    df = pd.DataFrame(rows, columns=["Model", "Source"] + SCORES + ["Time", "Pairs scored"])
    flat = {r["Model"]: {**rounded(r), "seconds": r["Seconds"], "pairs_scored": r["Pairs scored"]} for r in ours}
    caption = (f"Table IV analogue of Liu et al. (TGDT): 'paper' rows from {paper['source']} (no times printed); "
               f"'ours' on {bench['protocol_label']} of {test_set_name(bench)} test, measured in one run on "
               f"{_machine(bench)}. "
               f"Time = the whole evaluation (both directions). {note}")
    write_recall_table(df.fillna({"Time": "—", "Pairs scored": "—"}), out_stem, caption, flat)
    return df


def build_table5(paths, out_stem: Path, note: str = "") -> pd.DataFrame:
    """Table V: the COCO 1K and 5K analogues (folds, full) of TGDT-G, -L, -GL; the cross-encoder's all-pairs time
    there is estimated from its throughput in the benchmark run, as scoring every pair is beyond our budget."""
    cells = [json.loads(Path(p).read_text()) for p in paths if "results/metrics/" in str(p)]
    bench = load_benchmark(next(p for p in paths if "results/benchmarks/" in str(p)))
    ce = bench["methods"]["ce"]
    if not ce["cross_seconds"]:  # itr.rerank.score_collection records tenths of a second
        raise ValueError(f"the CE scored its {ce['pairs_scored']} pairs in under 0.05 s: too few to measure a "
                         "throughput for Table V's estimate; time it on a larger protocol (Plan.timing)")
    pairs_per_s = ce["pairs_scored"] / ce["cross_seconds"]  # scoring alone, no model loading or encoding
    captions_per_image = ce["pairs_scored"] / (ce["n_groups"] * ce["n_images"] ** 2)  # every pair of each group
    benchmarks = {"folds": "COCO 1K", "full": "COCO 5K"}
    paper = paper_numbers()["table5"]
    rows = [{"Model": model, "Source": "paper", "Benchmark": b, **recalls(by[key])}
            for key, b in (("coco1k", "COCO 1K"), ("coco5k", "COCO 5K")) for model, by in paper["rows"].items()]
    flat = {}
    for protocol in benchmarks:
        here = [m for m in cells if m["protocol"] == protocol]
        if not here:
            raise ValueError(f"Table V has no cell measured with protocol {protocol!r}")
        for m in here:
            rows.append({"Model": NAMES[m["method"]], "Source": "ours", "Benchmark": m["protocol_label"],
                         **measured_row(m)})
            flat[f"{NAMES[m['method']]}/{protocol}"] = rounded(rows[-1])
        pairs = round(here[0]["n_groups"] * here[0]["n_images"] ** 2 * captions_per_image)
        rows.append({"Model": TIMED_NAMES["ce"], "Source": "estimate", "Benchmark": here[0]["protocol_label"],
                     "CE time (estimate)": f"{human_seconds(pairs / pairs_per_s)} for {pairs:,} pairs"})
    df = pd.DataFrame(rows, columns=["Model", "Source", "Benchmark"] + SCORES + ["CE time (estimate)"])
    caption = ("Table V analogue of Liu et al. (TGDT), COCO 1K and 5K: 'paper' rows as reported (VinVL features). "
               "Ours: TGDT's cells of Tables II-III. The cross-encoder's recalls there are not measured: scoring every "
               f"pair would take the time shown ('estimate'), estimated from its {pairs_per_s:.0f} pairs/s in the benchmark run "
               f"(Table IV; {_machine(bench)}). {note}")
    write_recall_table(df.fillna({"CE time (estimate)": ""}), out_stem, caption, flat)
    return df


def _timing_table(paths, out_stem: Path, protocol: str, note: str, figure: str) -> tuple[pd.DataFrame, dict]:
    bench = load_benchmark(paths[0], protocol)
    df = pd.DataFrame(timed_rows(bench), columns=["Model"] + SCORES + ["Seconds", "Pairs scored"])
    flat = {r["Model"]: {**rounded(r), "seconds": r["Seconds"]} for r in df.to_dict("records")}
    caption = (f"{figure} analogue of Liu et al. (TGDT): total inference time of a whole evaluation against recall, "
               f"{bench['protocol_label']} of {test_set_name(bench)} test, one run on {_machine(bench)} (paper: "
               f"{paper_numbers()[figure.lower().replace(' ', '')]}). {note}")
    write_recall_table(df, out_stem, caption, flat)
    return df, bench


def build_figure1(paths, out_stem: Path, protocol: str, note: str = "") -> pd.DataFrame:
    """Figure 1: t2i R@1 against the total inference time, one point per method."""
    df, bench = _timing_table(paths, out_stem, protocol, note, "Figure 1")
    _plot(df, out_stem.with_suffix(".png"), "scatter",
          f"{test_set_name(bench)} {bench['protocol_label']}: R@1 against time")
    return df


def build_figure7(paths, out_stem: Path, protocol: str, note: str = "") -> pd.DataFrame:
    """Figure 7: the total inference time of each method."""
    df, bench = _timing_table(paths, out_stem, protocol, note, "Figure 7")
    _plot(df, out_stem.with_suffix(".png"), "bars",
          f"{test_set_name(bench)} {bench['protocol_label']}: inference time")
    return df


def _short(model: str) -> str:
    """A row's name without its provenance, for a plot label ('CE, all pairs (...)' -> 'CE')."""
    return model.split(" (")[0].split(",")[0]


def _plot(df: pd.DataFrame, out: Path, kind: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    if kind == "scatter":
        ax.scatter(df["Seconds"], df["t2i/R@1"])
        for _, r in df.iterrows():
            ax.annotate(_short(r["Model"]), (r["Seconds"], r["t2i/R@1"]), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
        ax.set_xlabel("total inference time (s, log)")
        ax.set_ylabel("t2i R@1")
    else:
        ax.barh([_short(m) for m in df["Model"]], df["Seconds"])
        ax.set_xlabel("total inference time (s, log)")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    save_png(fig, out)
    plt.close(fig)
