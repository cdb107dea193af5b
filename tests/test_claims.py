from itr.papers.rfrs.claims import check_claims


def _row(r1, r10=90.0):
    return {"t2i/R@1": r1, "i2t/R@1": r1, "t2i/R@5": 80.0, "i2t/R@5": 80.0, "t2i/R@10": r10, "i2t/R@10": r10}


def _verdicts(tables):
    return {row["claim"]: row["verdict"] for row in check_claims(tables)}


def test_table1_claims_follow_the_numbers_with_the_tolerance():
    t1 = {"BE": _row(50.0), "CE": _row(55.0), "SEP+COOP": _row(54.5), "JOINT+COOP": _row(56.0),
          "JOINT+BE": _row(49.5), "JOINT+CE": _row(52.0)}
    v = _verdicts({"1": t1})
    assert v["A bi-encoder lags the cross-encoder at R@1"] == "holds"
    assert v["SEP+COOP (BE top-k reranked by a separate CE) matches or beats the CE"] == "holds"  # 0.5 below: within 1
    assert v["JOINT+COOP matches or beats SEP+COOP (one model instead of two)"] == "holds"
    # JOINT+CE is 3 points below the CE: the "one model does both" claim fails
    assert v["One joint model does both jobs: JOINT+BE matches the BE and JOINT+CE matches the CE"] == "does not hold"
    t1["BE"] = _row(54.5)  # within a point of the CE: it no longer lags
    assert _verdicts({"1": t1})["A bi-encoder lags the cross-encoder at R@1"] == "does not hold"


def test_missing_tables_and_cells_are_not_checked_rather_than_passed():
    v = _verdicts({"8": {"SEP+COOP/k=10": _row(50.0), "SEP+COOP/k=50": _row(52.0)}})
    assert v["(claims of Table 1)"] == "not checked"
    assert v["SEP+COOP: k = 20 is within 1 R@1 point of the best k"] == "not checked"


def test_table9_fusion_beating_the_ce_alone_breaks_the_claim():
    t9 = {"SEP+COOP/ce": _row(60.0), "SEP+COOP/add_0.1": _row(60.5), "SEP+COOP/norm_add_0.5": _row(62.0)}
    claim = "SEP+COOP: the CE score alone ranks the top k at least as well as any fusion with the BE score"
    assert _verdicts({"9": t9})[claim] == "does not hold"
    t9["SEP+COOP/norm_add_0.5"] = _row(60.9)
    assert _verdicts({"9": t9})[claim] == "holds"


def test_table5_and_table6_claims():
    alone, among = "ShapeCaptions test alone", "ShapeCaptions test + distractors from 5 splits"
    t5 = {f"{alone}/BE": _row(70.0), f"{among}/BE": _row(50.0), f"{among}/SEP+COOP": _row(55.0),
          f"{among}/JOINT+COOP": _row(54.5)}
    v = _verdicts({"5": t5})
    assert v["Among distractors, the BE falls clearly behind both COOP rows"] == "holds"  # the 'alone' row is ignored
    assert v["Among distractors, JOINT+COOP remains the best-scoring variant"] == "holds"  # 0.5 below: within 1
    t5[f"{among}/BE"] = _row(54.2)
    assert _verdicts({"5": t5})["Among distractors, the BE falls clearly behind both COOP rows"] == "does not hold"
    ab, ba = "train a, test b (zero-shot)", "train b, test a (zero-shot)"
    t6 = {f"{s}/{m}": _row(v) for s in (ab, ba) for m, v in (("CE", 40.0), ("BE", 30.0), ("SEP+COOP", 38.0),
                                                             ("JOINT+COOP", 39.5))}
    t6["train b, test b (in-domain)/BE"] = _row(99.0)  # not a zero-shot row: must not enter the claims
    v = _verdicts({"6": t6})
    assert v["Zero-shot, both COOP rows beat the BE in each direction"] == "holds"
    assert v["Zero-shot, JOINT+COOP matches or beats the CE in each direction"] == "holds"
    t6[f"{ba}/JOINT+COOP"] = _row(38.0)  # 2 points below the CE in one direction
    assert _verdicts({"6": t6})["Zero-shot, JOINT+COOP matches or beats the CE in each direction"] == "does not hold"
    # a test set without a training split has no CE row (the paper's CC column): the CE claim reads the others only
    cc = "train a, test cc (zero-shot)"
    t6 |= {f"{cc}/BE": _row(10.0), f"{cc}/SEP+COOP": _row(12.0), f"{cc}/JOINT+COOP": _row(12.5)}
    t6[f"{ba}/JOINT+COOP"] = _row(40.0)  # matches the CE again: the missing CE on cc must not fail the claim
    v = _verdicts({"6": t6})
    assert v["Zero-shot, JOINT+COOP matches or beats the CE in each direction"] == "holds"
    assert v["Zero-shot, both COOP rows beat the BE in each direction"] == "holds"
    t6[f"{ba}/JOINT+COOP"] = _row(38.0)  # and a real miss elsewhere still fails it
    assert _verdicts({"6": t6})["Zero-shot, JOINT+COOP matches or beats the CE in each direction"] == "does not hold"
    only_cc = {k: row for k, row in t6.items() if k.startswith(cc)}
    assert "Zero-shot, JOINT+COOP matches or beats the CE in each direction" not in _verdicts({"6": only_cc})


def test_multilingual_claims_read_the_summary_column():
    t2 = {"CE": {"mean": 60.0}, "BE": {"mean": 55.0}, "SEP+COOP": {"mean": 61.0}, "JOINT+COOP": {"mean": 58.0}}
    v = _verdicts({"2": t2})
    assert v["Trained on all four languages, SEP+COOP has the best mean mR"] == "holds"
    assert v["Trained on all four languages, a COOP row matches or beats the CE (mean mR)"] == "holds"
    t7 = {"CE": {"en": 90.0, "avg": 30.0}, "BE": {"en": 80.0, "avg": 28.0}, "SEP+COOP": {"en": 88.0, "avg": 27.0},
          "JOINT+COOP": {"en": 89.0, "avg": 29.5}}  # SEP+COOP has the best English mR, but not the best avg
    assert _verdicts({"7": t7})["Trained on English only, SEP+COOP transfers best to de, fr, cs (their mean mR)"] \
        == "does not hold"


def test_tgdt_claims_on_hand_made_tables():
    from itr.papers.tgdt.claims import check_claims

    row = lambda r1: {"t2i/R@1": r1, "i2t/R@1": r1 + 2.0}  # mean R@1 = r1 + 1
    results = {"TGDT-G": row(10), "TGDT-L": row(12), "TGDT-GL": row(13)}
    tables = {
        "table1": results, "table2": results, "table3": {**results, "TGDT-GL": row(12)},  # a tie is no win
        "figure6": {"theta=0.0": row(10), "theta=0.5": row(14), "theta=1.0": row(12),
                    "K=10": row(11), "K=100": row(13.5), "K=200": row(14)},
        "table6": {"Baseline-G": row(5), "TGDT-G w/o JGLR": row(6), "TGDT-G w/o CMC": row(7), "TGDT-G": row(8),
                   "Baseline-L": row(5), "TGDT-L w/o JGLR": row(6), "TGDT-L w/o CMC": row(9), "TGDT-L": row(8)},
        "figure5": {"TGDT-G/sigma=0.1": row(9), "TGDT-G/sigma=0.3": row(10), "TGDT-L/sigma=0.1": row(12),
                    "TGDT-L/sigma=0.3": row(10)},
        "table4": {"TGDT-L": {**row(12), "seconds": 10.0}, "TGDT-GL": {**row(12), "seconds": 4.0},
                   "CE, all pairs": {**row(13.5), "seconds": 100.0}},
    }
    verdicts = {claim: holds for claim, holds, _ in check_claims(tables, {"k": 100, "theta": 0.5, "slack": 0.3})}
    assert verdicts["TGDT-GL beats TGDT-G and TGDT-L (R@1, every results table)"] is False  # table3 ties
    assert verdicts["theta = 0.5 beats theta = 0 and theta = 1"] is True
    assert verdicts["K = 100 (the paper's 100) is within 1 R@1 point of the best K"] is True  # 14.5 vs 15
    assert verdicts[next(c for c in verdicts if c.startswith("CMC's intra-modal term helps"))] is False  # L w/o CMC
    assert verdicts["Joint training (JGLR) helps (TGDT beats w/o JGLR, G and L)"] is True
    assert verdicts["sigma = 0.3 is within 1 R@1 point of the best sigma (TGDT-G)"] is True
    assert verdicts["sigma = 0.3 is within 1 R@1 point of the best sigma (TGDT-L)"] is False  # 11 vs 13
    assert verdicts["Two-stage inference (TGDT-GL) is faster than TGDT-L at equal or better quality"] is True
    ce_claim = next(c for c in verdicts if c.startswith("TGDT-GL nears the cross-encoder"))
    assert verdicts[ce_claim] is False  # 1.5 points below the CE, beyond the tolerance
    tables["table4"]["CE, all pairs"] = {**row(12.5), "seconds": 100.0}
    assert {c: h for c, h, _ in check_claims(tables, {"k": 100, "theta": 0.5, "slack": 0.3})}[ce_claim] is True
    tables["table4"]["CE, all pairs"]["seconds"] = 39.0  # GL's 4 s is more than a tenth of it
    assert {c: h for c, h, _ in check_claims(tables, {"k": 100, "theta": 0.5, "slack": 0.3})}[ce_claim] is False
    assert all(v is not None for v in verdicts.values())
