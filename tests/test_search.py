"""itr search: a typed caption ranked by a trained row, its errors, and the registry's resolution of a row."""
import numpy as np
import pytest
import yaml

from conftest import ROOT
from itr import papers
from itr.features.store import FeatureStore
from itr.index import save_collection
from itr.models import load_trained
from itr.models.encode import CaptionSet, embed_captions, embed_images, score_pairs
from itr.search import SearchError, save_grid, search_text

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_the_hits_are_the_exact_top_k_by_cosine_and_an_unknown_word_still_works(indexed):
    root = indexed
    text = "a red circle beside a zorbleflax"
    result = search_text(text, root / "be.pt", root / "index", root / "data", root / "feat", k=3)
    store = FeatureStore(root / "feat")
    model, tokenizer, ckpt = load_trained(root / "be.pt", store, "cpu")
    import pandas as pd
    from itr.data.dataset import read_dataset

    images = list(read_dataset(root / "data", "test")[0]["image_id"])
    query = CaptionSet.from_frame(pd.DataFrame({"text": [text], "caption_id": ["q"], "image_id": ["q"]}), tokenizer,
                                  ckpt["text_encoder"]["max_text_len"])
    sims = embed_images(model, store, images, 8, "cpu") @ embed_captions(model, query, 1, "cpu")[0]
    best = np.argsort(-sims, kind="stable")[:3]
    assert [h.image_id for h in result.hits] == [images[i] for i in best]
    assert [h.score for h in result.hits] == pytest.approx([float(sims[i]) for i in best], abs=1e-5)
    assert set(result.timings) == {"load", "encode", "search"} and all(t >= 0 for t in result.timings.values())


def test_a_second_stage_reranks_the_shortlist_and_the_grid_is_a_png(indexed, tmp_path):
    root = indexed
    text = "a blue square"
    result = search_text(text, root / "be.pt", root / "index", root / "data", root / "feat", k=3,
                         second_stage=root / "ce.pt", shortlist=3)
    first = search_text(text, root / "be.pt", root / "index", root / "data", root / "feat", k=3)
    assert [h.image_id for h in result.first_stage] == [h.image_id for h in first.hits]
    assert sorted(h.image_id for h in result.hits) == sorted(h.image_id for h in first.hits)  # the shortlist, re-ranked
    store = FeatureStore(root / "feat")
    model, tokenizer, ckpt = load_trained(root / "ce.pt", store, "cpu")
    import pandas as pd

    query = CaptionSet.from_frame(pd.DataFrame({"text": [text], "caption_id": ["q"], "image_id": ["q"]}), tokenizer,
                                  ckpt["text_encoder"]["max_text_len"])
    ids = [h.image_id for h in first.hits]
    cross = score_pairs(model, query, np.zeros(len(ids), dtype=int), store, ids, 8, "cpu")
    assert [h.image_id for h in result.hits] == [ids[i] for i in np.argsort(-cross, kind="stable")]
    assert [h.score for h in result.hits] == pytest.approx(sorted(cross.tolist(), reverse=True), abs=1e-5)
    assert "rerank" in result.timings
    save_grid(result, root / "data", tmp_path / "grid.png", "a blue square")
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"


def test_a_missing_index_or_model_names_the_target_that_builds_it(indexed, tmp_path):
    root = indexed
    with pytest.raises(SearchError, match=r"snakemake .*nowhere/collection.json"):
        search_text("x", root / "be.pt", tmp_path / "nowhere", root / "data", root / "feat")
    with pytest.raises(SearchError, match=r"snakemake .*missing.pt"):
        search_text("x", tmp_path / "missing.pt", root / "index", root / "data", root / "feat")
    other = tmp_path / "other"
    c = np.ones((1, 4), np.float32)
    save_collection(other, c, c, ["a"], ["a-0"], "Flat", "", {"model_id": "another", "split": "test",
                                                              "caption_image_ids": ["a"], "n_targets": 1})
    with pytest.raises(SearchError, match="built from another model"):
        search_text("x", root / "be.pt", other, root / "data", root / "feat")


def test_the_registry_resolves_each_row_to_its_models_index_and_shortlist():
    be = papers.search_spec("be", PARAMS)
    assert be == {"first_stage": "models/rfrs/be.pt", "index": "indexes/rfrs/be/shapes", "data": "data/shapes",
                  "features": "features/shapes"}
    coop = papers.search_spec("sep_coop", PARAMS)
    assert (coop["first_stage"], coop["second_stage"], coop["k"]) == ("models/rfrs/be.pt", "models/rfrs/ce.pt",
                                                                      PARAMS["rerank"]["k"])
    assert papers.search_spec("tgdt_gl", PARAMS)["fusion"] == "mix"
    assert "index" not in papers.search_spec("ce", PARAMS)  # every pair: no first stage
    assert papers.search_spec("be", PARAMS, "rfrs_aux")["first_stage"] == "models/rfrs_aux/be.pt"
    with pytest.raises(papers.UnknownPaperError, match="no registered paper has the row 'nope'"):
        papers.search_spec("nope", PARAMS)


def test_a_shortlist_deeper_than_k_and_a_second_stage_over_every_image(indexed):
    root = indexed
    deep = search_text("a blue square", root / "be.pt", root / "index", root / "data", root / "feat", k=1,
                       second_stage=root / "ce.pt", shortlist=2)
    assert len(deep.hits) == len(deep.first_stage) == 1  # k of each, the re-ranking drawn from the deeper shortlist
    every = search_text("a blue square", None, None, root / "data", root / "feat", k=2, second_stage=root / "ce.pt")
    assert deep.hits[0].image_id == every.hits[0].image_id  # the shortlist held every test image: same winner
    assert every.first_stage == [] and all(h.first_score is None for h in every.hits)
    assert [h.score for h in every.hits] == sorted((h.score for h in every.hits), reverse=True)


def test_dataset_option_searches_a_real_datasets_build_and_refuses_an_undeclared_one(capsys, monkeypatch):
    from itr.cli import main

    monkeypatch.chdir(ROOT)  # the shipped params.yaml; nothing on coco is built here
    assert main(["search", "a dog", "--dataset", "coco", "--method", "be"]) == 2
    err = capsys.readouterr().err
    # the coco build's paths (snakemake --config dataset=coco), not ShapeCaptions'
    assert "`snakemake models/coco/rfrs/be.pt --config dataset=coco`" in err
    assert main(["search", "a dog", "--dataset", "cocoa"]) == 2
    assert "'cocoa' is neither shapes nor a name under 'datasets'" in capsys.readouterr().err


def test_the_command_prints_each_hit_with_both_scores_and_the_timings_and_writes_the_grid(indexed, tmp_path,
                                                                                            monkeypatch, capsys):
    """`itr search` in a project laid out as the workflow builds it (links to the tiny pipeline's files)."""
    from itr.cli import main

    root = indexed
    for link, target in {"models/rfrs/be.pt": "be.pt", "models/rfrs/ce.pt": "ce.pt", "indexes/rfrs/be/shapes": "index",
                         "data/shapes": "data", "features/shapes": "feat"}.items():
        (tmp_path / link).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / link).symlink_to(root / target)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**PARAMS, "rerank": {**PARAMS["rerank"], "k": 2}}))
    monkeypatch.chdir(tmp_path)
    assert main(["search", "a blue square", "--method", "sep_coop", "--k", "2", "--png", "hits.png"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = search_text("a blue square", root / "be.pt", root / "index", root / "data", root / "feat", k=2,
                           second_stage=root / "ce.pt", shortlist=2)
    assert [line.split()[1] for line in lines[:2]] == [h.image_id for h in expected.hits]  # "1. <id>  <score>  (first…)"
    assert all("(first stage " in line for line in lines[:2])
    assert lines[2].startswith("timings: ") and all(f"{step} " in lines[2] for step in ("load", "encode", "search", "rerank"))
    assert (tmp_path / "hits.png").read_bytes()[:4] == b"\x89PNG"
