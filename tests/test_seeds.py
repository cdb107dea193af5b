"""Seeds as a DAG axis: where a seed run's files go, what it re-measures, the table and claims over seeds, and
check_scores' two modes (exact on the reference machine, within the seed spread elsewhere)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from itr import layout, papers
from itr.expected import check, check_files
from itr.papers.rfrs.claims import headline_claims
from itr.seeds import build_seed_report, claim_rows, spread, spread_table, verdict

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_a_seed_run_puts_what_the_seed_changes_under_seed_s_and_keeps_the_data():
    seeded = layout.seed_config(PARAMS, 2)
    assert layout.seed_config(PARAMS, PARAMS["seed"]) is PARAMS  # params seed's run: the unprefixed files
    assert layout.on_dataset("rfrs", seeded) == "seed2/rfrs"
    assert layout.table_stem("rfrs", "table1", seeded) == "results/tables/seed2/rfrs_table1"
    assert layout.table_dataset("results/tables/seed2/rfrs_table1") == "shapes"
    assert layout.table_dataset("results/tables/seeds/rfrs_table1") == "shapes"
    real = layout.seed_config({**PARAMS, "dataset": "flickr30k"}, 2)
    assert layout.on_dataset("rfrs", real) == "seed2/flickr30k/rfrs"
    assert layout.table_dataset(layout.table_stem("rfrs", "table1", real)) == "flickr30k"
    plan = papers.plan("rfrs", seeded)
    assert plan.tables["table1"].inputs[0] == "results/metrics/seed2/rfrs/be/shapes/subset100.json"
    assert {v["dataset"] for v in plan.variants.values()} <= set(layout.datasets(PARAMS))  # the same data
    teachers = [v["image_teacher"] for v in papers.plan("cusa", seeded).variants.values() if "image_teacher" in v]
    assert teachers and all(t == "features/seed2/shapes/manifest.json" for t in teachers)  # the seed's own detector


def test_seed_files_are_the_detector_and_the_main_variants_plain_cells_its_plan_builds():
    plan = papers.plan("rfrs", PARAMS)
    files = papers.seed_files("rfrs", plan, PARAMS)[1]
    assert files["results/metrics/detector/shapes.json"] == "results/metrics/seed1/detector/shapes.json"
    assert files["results/metrics/rfrs/be/shapes/full.json"] == "results/metrics/seed1/rfrs/be/shapes/full.json"
    assert all(k.startswith(("results/metrics/detector/", "results/metrics/rfrs/")) for k in files)
    assert papers.seed_files("rfrs", plan, PARAMS)[PARAMS["seed"]]["results/metrics/detector/shapes.json"] == \
        "results/metrics/detector/shapes.json"
    # TGDT's k-variants are sweep files, not plain cells: a seed run does not re-measure them
    assert not any("k=" in f for f in papers.seed_files("tgdt", papers.plan("tgdt", PARAMS), PARAMS)[1])


def test_spread_is_mean_and_sample_std_and_tables_must_agree_in_shape():
    s = spread({0: 1.0, 1: 3.0})
    assert (s["mean"], s["std"], s["n"]) == (2.0, 1.4142, 2) and s["values"] == {"0": 1.0, "1": 3.0}
    t = spread_table({0: {"BE": {"rsum": 400.0}}, 1: {"BE": {"rsum": 410.0}}})
    assert t["BE"]["rsum"]["mean"] == 405.0
    with pytest.raises(ValueError, match="other rows or columns"):
        spread_table({0: {"BE": {"rsum": 1.0}}, 1: {"CE": {"rsum": 1.0}}})


def test_a_claim_that_flips_between_seeds_is_undecided():
    assert verdict([True, True, True]) == "holds"
    assert verdict([False, False]) == "does not hold"
    assert verdict([True, False, True]) == "undecided"
    assert verdict([None, None]) == "not checked"
    assert verdict([None, True]) == "holds"


def _table1(be: float, ce: float) -> dict:
    row = lambda r1: {"t2i/R@1": r1, "i2t/R@1": r1, "t2i/R@10": 90.0, "i2t/R@10": 90.0}
    return {"BE": row(be), "CE": row(ce), "SEP+COOP": row(ce), "JOINT+COOP": row(ce), "JOINT+BE": row(be),
            "JOINT+CE": row(ce)}


def test_claims_over_seeds_count_the_seeds_and_average_the_margin():
    # BE lags CE by 3 points in seed 0 and 1.5 in seed 1 (holds: > 1), by 0.5 in seed 2 (does not hold)
    checked = {0: headline_claims(_table1(50.0, 53.0)), 1: headline_claims(_table1(50.0, 51.5)),
               2: headline_claims(_table1(50.0, 50.5))}
    rows = {r["claim"]: r for r in claim_rows(checked)}
    lags = rows["A bi-encoder lags the cross-encoder at R@1"]
    assert lags["verdict"] == "undecided" and lags["holds in"] == "2 of 3 seeds"
    assert lags["margin"] == "+0.67 ± 1.26"  # margins 2.0, 0.5, -0.5
    assert lags["per seed"]["2"]["holds"] is False
    assert rows["JOINT+COOP matches or beats the CE"]["verdict"] == "holds"


def test_seed_report_writes_the_table_claims_and_spread(tmp_path):
    tables, scores = {}, {}
    for seed, ce in ((0, 53.0), (1, 54.0)):
        tables[seed] = tmp_path / f"t{seed}.json"
        tables[seed].write_text(json.dumps(_table1(50.0, ce)))
        cell = tmp_path / f"m{seed}.json"
        cell.write_text(json.dumps({"metrics": {"rsum": 400.0 + seed}, "machine": {"isa": ["avx"]}}))
        scores[seed] = {"results/metrics/rfrs/be/shapes/full.json": cell}
    out = build_seed_report(tables, scores, headline_claims, "T1", tmp_path / "table", tmp_path / "claims",
                            tmp_path / "spread.json")
    assert out["scores"]["results/metrics/rfrs/be/shapes/full.json"]["rsum"]["std"] == 0.7071
    md = (tmp_path / "table.md").read_text()
    assert "53.50 ± 0.71 (2)" in md  # CE's t2i/R@1 over the two seeds
    csv = (tmp_path / "table.csv").read_text().splitlines()
    assert csv[0].startswith("Model,seed,") and any(line.startswith("CE,1,54.0") for line in csv)
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert claims["A bi-encoder lags the cross-encoder at R@1"]["holds in"] == "2 of 2 seeds"


REFERENCE = {"isa": ["avx", "avx2", "fma"], "device": "cpu"}


def _scored(tmp_path, got: float, isa: list) -> dict:
    (tmp_path / "m.json").write_text(json.dumps({"metrics": {"rsum": got}, "machine": {"isa": isa, "device": "cpu"}}))
    return {"m.json": {"tolerance": 0.05, "spread": {"rsum": 1.0}, "scores": {"rsum": 400.0}}}


def test_exact_mode_on_the_reference_machine_statistical_on_another_both_ways(tmp_path):
    ref, avx512 = REFERENCE["isa"], ["avx", "avx2", "fma", "avx512f"]
    row = check(_scored(tmp_path, 401.0, ref), tmp_path, REFERENCE, k=3)[0]
    assert (row["mode"], row["status"]) == ("exact", "FAIL")  # 1 point off on the reference machine: not reproduced
    row = check(_scored(tmp_path, 401.0, avx512), tmp_path, REFERENCE, k=3)[0]
    assert (row["mode"], row["status"], row["tolerance"]) == ("statistical", "OK", 4.2426)  # 3 * sqrt(2) * 1.0
    assert row["machine"] == "? [avx avx2 fma avx512f] cpu"  # the machine it was measured on, named
    assert check(_scored(tmp_path, 395.0, avx512), tmp_path, REFERENCE, k=3)[0]["status"] == "FAIL"  # too low
    assert check(_scored(tmp_path, 405.0, avx512), tmp_path, REFERENCE, k=3)[0]["status"] == "FAIL"  # too high
    no_spread = {"m.json": {"tolerance": 0.05, "scores": {"rsum": 400.0}}}
    assert check(no_spread, tmp_path, REFERENCE, k=3)[0]["status"] == "NO SPREAD"
    assert check(no_spread, tmp_path)[0]["mode"] == "exact"  # no reference declared: one machine's check


def test_check_files_reports_the_mode_it_used(tmp_path):
    doc = {"reference": REFERENCE, "statistical": {"k": 3}, "expected": _scored(tmp_path, 401.0, ["avx512f"])}
    (tmp_path / "expected.yaml").write_text(yaml.safe_dump(doc))
    report, failed = check_files([tmp_path / "expected.yaml"], tmp_path)
    assert failed == 0 and "statistical for 1 score(s)" in report


def test_every_shipped_yaml_with_a_reference_declares_k(tmp_path):
    """A yaml that declares a reference machine but no k can never check another machine's file: every score stays
    NO SPREAD even after <paper>_seeds recorded its spread (TGDT's and CUSA's yamls did this until 2026-12-04)."""
    from itr.expected import load_expected

    spread_but_no_k = check(_scored(tmp_path, 401.0, ["avx512f"]), tmp_path, REFERENCE, k=None)[0]
    assert spread_but_no_k["status"] == "NO SPREAD"  # what a missing k does, hence this test
    for name in papers.PAPERS:
        shipped = load_expected(papers.expected_scores(name))
        assert not shipped.get("reference") or (shipped.get("statistical") or {}).get("k") == 3, name


@pytest.mark.integration  # a Snakemake dry run of every seed's chain (~5 s)
def test_rfrs_seeds_is_a_dag_of_seed_runs(tmp_path):
    """The dry run of rfrs_seeds on the shipped params: every seed's detector, features and models; the seed runs'
    jobs read their own detector's features and pass their seed."""
    proc = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "-p", "rfrs_seeds",
                           "--forceall"], cwd=ROOT, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-2000:]
    for seed in (1, 2):
        assert f"--out models/seed{seed}/detector/shapes.pt" in log and f'"seed": {seed}' in log
        assert f"--features $(dirname features/seed{seed}/shapes/manifest.json)" in log
        (train,) = [line for line in log.splitlines() if f"--out models/seed{seed}/rfrs/be.pt" in line]
        assert f'"seed": {seed},' in train  # the seed run's model trains with its own seed, not params seed
    assert "results/tables/seeds/rfrs_claims.md" in log and "--out-claims" in log
    # and MLflow's mirror of it: every seed's cells, the tables over seeds as the run seeds/rfrs
    assert "output: results/tracking/seeds/rfrs.json" in log and "--tables-run seeds/rfrs" in log
    assert '"results/metrics/seed2/rfrs/ce/shapes/subset100.json": ["table1", "seeds/table1"]' in log


@pytest.mark.integration  # one Snakemake dry run of every paper's seed chains (~15 s)
def test_every_papers_seeds_target_is_a_dag():
    """Each paper's headline table, claims and score spread can be built over seeds: ALADIN's former headline (Table
    1) read the inference benchmark, which no seed run measures, so aladin_seeds failed before it ran a job."""
    targets = [f"{name}_seeds" for name in papers.PAPERS]
    proc = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", *targets, "--forceall"], cwd=ROOT,
                          capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-2000:]
    for name in papers.PAPERS:
        assert f"results/seeds/{name}.json" in log, name


def test_present_checks_only_what_is_built_and_says_so(tmp_path):
    doc = {"reference": REFERENCE, "statistical": {"k": 3},
           "expected": {**_scored(tmp_path, 401.0, ["avx512f"]), "unbuilt.json": {"tolerance": 0.1, "scores": {"x": 1}}}}
    (tmp_path / "expected.yaml").write_text(yaml.safe_dump(doc))
    _, failed = check_files([tmp_path / "expected.yaml"], tmp_path)
    assert failed == 1  # the unbuilt file is MISSING
    report, failed = check_files([tmp_path / "expected.yaml"], tmp_path, present=True)
    assert failed == 0 and "unbuilt.json" not in report and "--present" in report


def test_every_paper_with_headline_claims_checks_them_on_its_headline_table():
    r1 = lambda v: {"t2i/R@1": v, "i2t/R@1": v}  # noqa: E731
    (tgdt,) = papers.headline_claims("tgdt")({"TGDT-GL": r1(50.0), "TGDT-G": r1(48.0), "TGDT-L": r1(49.5)})
    assert tgdt[1] is True and tgdt[3] == 0.5
    t8 = {f"{row}/{b}": {"rsum": v} for row, b, v in (("ITC", "1K", 400.0), ("+ CUSA", "1K", 403.0),
                                                       ("ITC", "5K", 300.0), ("+ CUSA", "5K", 299.0))}
    (cusa,) = papers.headline_claims("cusa")(t8)
    assert cusa[1] is False and cusa[3] == -1.0  # the smallest gain: 5K's
    # ALADIN's headline is Table 2 (Table 1's claim also needs Figure 2's times): D over T, A/ft. + D/ft. over all
    t2 = {f"ALADIN {row}/{b}": r1(v) for row, b, v in (("T", "1K", 60.0), ("D", "1K", 61.0), ("T/ft.", "1K", 62.0),
                                                        ("A/ft. + D/ft.", "1K", 62.5), ("T", "5K", 50.0),
                                                        ("D", "5K", 49.0), ("T/ft.", "5K", 51.0),
                                                        ("A/ft. + D/ft.", "5K", 51.0))}
    d_over_t, main_best = papers.headline_claims("aladin")(t2)
    assert d_over_t[1] is False and d_over_t[3] == -1.0  # 5K's D is a point below T
    assert main_best[1] is True and main_best[3] == 0.0  # level with T/ft. on 5K: at or above every row holds
    assert papers.headline_claims("aladin")({})[0][1:] == (None, "Table 2 has no row of D", None)  # not checked


def test_a_measured_spread_is_recorded_into_the_yaml_keeping_its_comments(tmp_path):
    path = tmp_path / "expected.yaml"
    path.write_text("# measured somewhere\nstatistical:\n  k: 3\nexpected:\n  m.json:\n    tolerance: 0.05  # tight\n"
                    "    scores: {\"rsum\": 400.0}\n  other.json:\n    tolerance: 1\n    scores: {\"x\": 1}\n")
    spread_json = {"seeds": [0, 1, 2], "scores": {"m.json": {"rsum": {"std": 2.5}, "t2i/R@1": {"std": 1.0}}}}
    from itr.expected import load_expected, record_spread

    assert record_spread(path, spread_json) == ["m.json"]
    assert record_spread(path, spread_json) == ["m.json"]  # again: replaced, not added twice
    text = path.read_text()
    assert "# measured somewhere" in text and "# tight" in text and text.count("spread:") == 1
    doc = load_expected(path)
    assert doc["expected"]["m.json"]["spread"] == {"rsum": 2.5}  # only the metrics the yaml expects
    assert "spread" not in doc["expected"]["other.json"]


def test_recording_a_spread_keeps_what_it_does_not_cover_and_refuses_what_it_cannot_be(tmp_path):
    from itr.errors import InputError
    from itr.expected import load_expected, record_spread

    path = tmp_path / "expected.yaml"
    path.write_text("expected:\n  a.json:  # Table 1\n    tolerance: 0.05\n    spread:\n      rsum: 9.0\n      x: 1.0\n"
                    "    # about the scores\n    scores: {\"rsum\": 400.0, \"x\": 1}\n  b.json:\n    tolerance: 1\n    spread: {\"y\": 0.5}\n"
                    "    scores: {\"y\": 2}\n")
    assert record_spread(path, {"seeds": [0, 1, 2], "scores": {"a.json": {"rsum": {"std": 2.5}}}}) == ["a.json"]
    doc = load_expected(path)["expected"]
    assert doc["a.json"]["spread"] == {"rsum": 2.5, "x": 1.0}  # block style replaced; x not re-measured: kept
    assert doc["b.json"]["spread"] == {"y": 0.5}  # a file the measurement does not cover keeps its spread
    text = path.read_text()
    assert "# Table 1" in text and "# about the scores" in text and "x: from an earlier measurement" in text
    with pytest.raises(InputError, match="no 'expected' mapping"):
        (tmp_path / "other.yaml").write_text("reference: {}\n")
        record_spread(tmp_path / "other.yaml", {"seeds": [0, 1], "scores": {}})
    with pytest.raises(InputError, match="another paper"):
        record_spread(path, {"seeds": [0, 1], "scores": {"other.json": {"rsum": {"std": 1.0}}}})
    with pytest.raises(InputError, match="1 seed"):
        record_spread(path, {"seeds": [0], "scores": {"a.json": {"rsum": {"std": None}}}})


def test_statistical_tolerance_is_never_tighter_than_exact_and_isa_order_is_no_difference(tmp_path):
    avx512 = ["avx", "avx2", "fma", "avx512f"]
    agreed = _scored(tmp_path, 400.03, avx512)
    agreed["m.json"]["spread"] = {"rsum": 0.0}  # every seed gave the same number
    row = check(agreed, tmp_path, REFERENCE, k=3)[0]
    assert (row["status"], row["tolerance"]) == ("OK", 0.05)
    empty = _scored(tmp_path, 400.0, avx512)
    empty["m.json"]["spread"] = None  # `spread:` left empty in the yaml
    assert check(empty, tmp_path, REFERENCE, k=3)[0]["status"] == "NO SPREAD"
    row = check(_scored(tmp_path, 400.01, ["fma", "avx2", "avx"]), tmp_path, REFERENCE, k=3)[0]
    assert row["mode"] == "exact"  # the reference machine, its features listed in another order


def test_a_metric_one_seed_lacks_is_an_error_not_dropped(tmp_path):
    from itr.seeds import score_spread

    for seed, metrics in ((0, {"rsum": 400.0, "t2i/R@1": 50.0}), (1, {"rsum": 401.0})):
        (tmp_path / f"{seed}.json").write_text(json.dumps({"metrics": metrics}))
    with pytest.raises(ValueError, match=r"seed 1.*t2i/R@1"):
        score_spread({s: {"m.json": tmp_path / f"{s}.json"} for s in (0, 1)})
    assert spread({0: 1.0})["std"] is None  # one draw: no spread, rather than a spread of 0
