"""itr serve: the page's API answers as itr search ranks, refuses bad requests by name, serves only the dataset's
images; and in a real browser (Debian's headless Chromium, driven by Selenium) a typed query shows images and
timings."""
import re
import threading

import pytest

from conftest import headless_browser, needs_browser
from itr.search import search_text
from itr.serve import create_app


@pytest.fixture(scope="module")
def app(indexed):
    root = indexed
    be = {"first_stage": root / "be.pt", "index": root / "index", "data": root / "data", "features": root / "feat"}
    rows = {"be": be, "sep_coop": {**be, "second_stage": root / "ce.pt", "k": 3},
            "ce": {"second_stage": root / "ce.pt", "data": root / "data", "features": root / "feat"},
            "unbuilt": {**be, "first_stage": root / "missing.pt"}}
    return create_app(rows, root / "data"), root


def test_the_api_ranks_as_itr_search_does_with_and_without_a_second_stage(app):
    app, root = app
    client = app.test_client()
    got = client.get("/api/search", query_string={"q": "a blue square", "method": "sep_coop", "k": 2}).get_json()
    want = search_text("a blue square", root / "be.pt", root / "index", root / "data", root / "feat", k=2,
                       second_stage=root / "ce.pt", shortlist=3)
    assert [h["image_id"] for h in got["reranked"]] == [h.image_id for h in want.hits]
    assert [h["score"] for h in got["reranked"]] == pytest.approx([h.score for h in want.hits], abs=1e-5)
    assert [h["image_id"] for h in got["first_stage"]] == [h.image_id for h in want.first_stage]
    assert set(got["timings_ms"]) == {"encode", "search", "rerank"} and got["load_ms"] > 0
    plain = client.get("/api/search", query_string={"q": "a blue square", "method": "be", "k": 1}).get_json()
    assert plain["reranked"] is None and len(plain["first_stage"]) == 1  # no second stage: nothing re-ranked
    every = client.get("/api/search", query_string={"q": "a blue square", "method": "ce", "k": 2}).get_json()
    assert every["first_stage"] == [] and len(every["reranked"]) == 2  # the CE alone: every image, no first stage


def test_bad_requests_and_unbuilt_rows_get_a_message_that_names_the_fix(app):
    client = app[0].test_client()
    for query, status, message in ((dict(q=" "), 400, "type a caption"),
                                   (dict(q="x", method="nope"), 400, "unknown row 'nope'"),
                                   (dict(q="x", k=0), 400, "k must be"), (dict(q="x", k="ten"), 400, "k must be"),
                                   (dict(q="x", method="unbuilt"), 404, "snakemake .*missing.pt")):
        answer = client.get("/api/search", query_string=query)
        assert answer.status_code == status, query
        assert re.search(message, answer.get_json()["error"]), answer.get_json()


def test_images_are_served_by_dataset_id_and_nothing_else(app):
    app, root = app
    client = app.test_client()
    hit = client.get("/api/search", query_string={"q": "a red circle", "method": "be", "k": 1}).get_json()
    url = hit["first_stage"][0]["url"]
    image = client.get(url)
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.data == next((root / "data").rglob(f"{hit['first_stage'][0]['image_id']}.png")).read_bytes()
    for bad in ("/images/nope", "/images/..%2Fmanifest.json", "/images/../manifest.json"):
        assert client.get(bad).status_code == 404, bad
    page = client.get("/").get_data(as_text=True)
    assert all(f"<option>{row}</option>" in page for row in ("be", "sep_coop", "ce"))


@needs_browser
def test_in_a_browser_a_typed_query_shows_both_stages_images_and_timings(app, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app[0], threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with headless_browser(tmp_path / "profile") as browser:
            browser.get(f"http://127.0.0.1:{server.server_port}/")
            browser.find_element(By.ID, "query").send_keys("two red circles above a zorbleflax")
            Select(browser.find_element(By.ID, "method")).select_by_visible_text("sep_coop")
            Select(browser.find_element(By.ID, "k")).select_by_visible_text("1")
            browser.find_element(By.ID, "go").click()
            WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "timings").text)
            timings = browser.find_element(By.ID, "timings").text
            assert all(step in timings for step in ("encode", "search", "rerank", "ms")), timings
            for column in ("first", "reranked"):
                images = browser.find_elements(By.CSS_SELECTOR, f"#{column} img")
                assert len(images) == 1, column  # k = 1, as selected
                WebDriverWait(browser, 30).until(lambda b: all(b.execute_script(
                    "return arguments[0].complete && arguments[0].naturalWidth > 0", img) for img in images))
            assert browser.find_element(By.ID, "error").text == ""
            browser.save_screenshot(str(tmp_path / "serve.png"))
            assert (tmp_path / "serve.png").read_bytes()[:4] == b"\x89PNG"
    finally:
        server.shutdown()
