"""Tables 3 and 4 of Retrieve Fast, Rerank Smart: query latency and full-evaluation cost.

Both read the one JSON of ``benchmarks/latency.py`` (measured in one run on one machine, with the
baselines it is compared with) and print human-readable times beside the paper's.

Example:
    >>> build_table3([Path("results/benchmarks/latency.json")], Path("results/tables/rfrs_table3"))
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from itr.papers.rfrs.tables import paper_numbers
from itr.tables import human_seconds, write_plain_table


def _bench(paths: list[Path]) -> dict:
    if len(paths) != 1:
        raise ValueError(f"the latency tables read one benchmark JSON, got {len(paths)} files")
    return json.loads(Path(paths[0]).read_text())


def _tower_quality(b: dict) -> str:
    """What the serving query tower costs in accuracy, in words, from the benchmark JSON."""
    q = b["query_tower_quality"]
    towers = ", ".join(f"{b['query_precision'] if name == 'serving' else name} tower "
                       f"{m['t2i/R@1']:.1f} / {m['t2i/R@10']:.1f}" for name, m in q["towers"].items())
    return (f"t2i R@1 / R@10 of {q['n_captions']} test captions over {q['n_images']} test images (exact search): "
            f"{towers}")


def _fp32_recalls(b: dict, chosen: dict) -> str:
    return ", ".join(f"{c['recall@10_vs_fp32']:.3f} at {n:,} images" for n, c in chosen.items())


def build_table3(paths: list[Path], out_stem: Path, protocol: str | None = None) -> pd.DataFrame:
    """Table 3: latency of one text query at each collection size, from benchmarks/latency.py's JSON."""
    paper, b = paper_numbers()["table3"], _bench(paths)
    sizes = [s["size"] for s in b["sizes"]]
    col = {n: f"{n:,} images" for n in sorted(set(sizes) | {50000, 1000000})}
    rows = []
    for model, by_hw in paper["rows"].items():
        for hw, by_size in by_hw.items():
            rows.append({"Model": model, "Source": "paper", "Hardware": hw, "Measure": "p50 (reported)",
                         **{col[n]: human_seconds(v) for n, v in by_size.items()}})
    hw = f"this machine, {b['machine']['threads']} CPU threads"
    chosen = {s["size"]: next(x for x in s["settings"] if x["search_params"] == s["chosen"]) for s in b["sizes"]}
    precision = b["query_precision"]
    ours = [
        ("BE", f"encode ({precision} query tower) + {b['sizes'][0]['factory']} search, p50 (recall@10 in brackets)",
         {s["size"]: f"{human_seconds(chosen[s['size']]['be']['p50_ms'] / 1000)} "
                     f"({chosen[s['size']]['recall@10']:.3f}, {s['chosen']})" for s in b["sizes"]}),
        ("BE", "encode (fp32 query tower) + search, p50",
         {n: human_seconds(c["be_fp32_tower"]["p50_ms"] / 1000) for n, c in chosen.items()}),
        ("BE", "search only, p50", {n: human_seconds(c["search"]["p50_ms"] / 1000) for n, c in chosen.items()}),
        ("BE baseline", "exact search as a PyTorch matrix product + top-k, p50",
         {s["size"]: human_seconds(s["baseline_torch_exact"]["p50_ms"] / 1000) for s in b["sizes"]}),
        ("BE", "search speed-up over the baseline (p50 ratio)",
         {n: f"{c['speedup_vs_baseline_p50']:.0f}x" for n, c in chosen.items()}),
        (f"COOP (k={b['config']['k']})", f"encode ({precision}) + search + CE on k pairs, p50",
         {s["size"]: human_seconds(s["coop"]["p50_ms"] / 1000) for s in b["sizes"]}),
        ("CE", "every image cross-encoded (extrapolated from measured pairs/s)",
         {s["size"]: human_seconds(s["ce_extrapolated"]["seconds_per_query"]) for s in b["sizes"]}),
    ]
    for model, measure, by_size in ours:
        rows.append({"Model": model, "Source": "ours", "Hardware": hw, "Measure": measure,
                     **{col[n]: v for n, v in by_size.items()}})
    df = pd.DataFrame(rows, columns=["Model", "Source", "Hardware", "Measure", *col.values()]).fillna("—")
    flat = {f"{n}": {"be_p50_ms": chosen[n]["be"]["p50_ms"], "search_p50_ms": chosen[n]["search"]["p50_ms"],
                     "be_fp32_tower_p50_ms": chosen[n]["be_fp32_tower"]["p50_ms"],
                     "recall@10_vs_fp32": chosen[n]["recall@10_vs_fp32"],
                     "recall@10": chosen[n]["recall@10"], "coop_p50_ms": s["coop"]["p50_ms"],
                     "baseline_p50_ms": s["baseline_torch_exact"]["p50_ms"],
                     "speedup": chosen[n]["speedup_vs_baseline_p50"],
                     "ce_seconds": s["ce_extrapolated"]["seconds_per_query"]}
            for n, s in zip(sizes, b["sizes"])}
    caption = ("Table 3 of Geigle et al. (2022): time to answer one text query against a collection of pre-encoded "
               f"images. Ours: {b['collection']}; {b['encode_query']['n']} queries; query encoding (batch 1) "
               f"p50 {b['encode_query']['p50_ms']:.1f} ms with the {precision} query tower (itr.models.serving; "
               f"cosine to the fp32 tower's vectors mean {b['query_cosine_to_fp32']['mean']:.3f}, min "
               f"{b['query_cosine_to_fp32']['min']:.3f}), {b['encode_query_fp32']['p50_ms']:.1f} ms in fp32; "
               f"{_tower_quality(b)}. recall@10 is the index's against exact search with the same query vectors; "
               "against exact search with the fp32 tower's vectors the same results reach "
               f"{_fp32_recalls(b, chosen)}. CE {b['throughput']['ce_pairs_per_s']:.0f} pairs/s "
               f"({b['throughput']['ce_precision']}). "
               f"Machine: {b['machine']['processor']}; torch {b['machine']['torch']}, faiss {b['machine']['faiss']}.")
    write_plain_table(df, out_stem, caption, flat)
    return df


def build_table4(paths: list[Path], out_stem: Path, protocol: str | None = None) -> pd.DataFrame:
    """Table 4: time of a full evaluation (every caption and image as a query) by collection size."""
    paper, b = paper_numbers()["table4"], _bench(paths)
    col = {e["n_images"]: f"{e['n_images']:,} images" for e in b["full_evaluation"]}
    rows = [{"Model": m, "Source": "paper (V100)", **{col.get(n, f"{n:,} images"): human_seconds(v)
                                                     for n, v in by_n.items()}} for m, by_n in paper["rows"].items()]
    for model, key in (("BE", "be_s"), (f"COOP (k={b['config']['k']})", "coop_s"), ("CE", "ce_s")):
        rows.append({"Model": model, "Source": "ours (CPU, estimated from measured throughputs)",
                     **{col[e["n_images"]]: human_seconds(e[key]) for e in b["full_evaluation"]}})
    df = pd.DataFrame(rows).fillna("—")
    t = b["throughput"]
    caption = ("Table 4 of Geigle et al. (2022): time to evaluate a collection of n images with 5 captions each, "
               "in both directions. Ours are computed from throughputs measured in the same benchmark run: "
               f"{t['images_per_s']:.0f} images/s ({t['image_precision']}), {t['captions_per_s']:.0f} captions/s, "
               f"exact search {t['exact_dots_per_s']:.3g} query-item scores/s, CE {t['ce_pairs_per_s']:.0f} pairs/s "
               f"({t['ce_precision']}).")
    flat = {f"{e['n_images']}": {k: e[k] for k in ("be_s", "coop_s", "ce_s")} for e in b["full_evaluation"]}
    write_plain_table(df, out_stem, caption, flat)
    return df


