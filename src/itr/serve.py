"""A local search page: type a caption, see the first stage's top k beside the re-ranked top k, with timings.

The page is a Flask app. Flask because it is already in the pinned stack (MLflow's tracking server is built on
it), it is a plain WSGI app (what ranks a query is synchronous torch code, so an async framework would buy
nothing), and its test client exercises every route without a socket. ``itr serve`` runs it on Werkzeug's
server bound to 127.0.0.1: one researcher's machine, not a public service.

Each row (``be``, ``sep_coop``, ...) is a :class:`itr.search.Searcher`, loaded on its first query and kept, so
a query after the first costs only encoding, search and re-ranking. A row whose model or index is not built
answers with the error that names the target that builds it. Images are served by id from the dataset's own
table, never by a path taken from the request.

Routes: ``/`` (the page), ``/api/search?q=TEXT&method=ROW&k=K`` (JSON), ``/images/<image_id>`` (PNG).

Example:
    >>> app = create_app({"be": papers.search_spec("be", config)}, "data/shapes")
    >>> app.test_client().get("/api/search?q=a+red+circle&method=be&k=2").get_json()["first_stage"][0]
    {'image_id': 'test-000107', 'score': 0.81..., 'url': '/images/test-000107'}
"""
from __future__ import annotations

import threading
from pathlib import Path

from itr.search import SearchError, Searcher

K_CHOICES = (1, 5, 10, 20)


def create_app(rows: dict[str, dict], data, device="cpu", default_k: int = 5):
    """The page over ``rows`` (row name → :func:`itr.papers.search_spec`'s dict), showing ``data``'s images."""
    from flask import Flask, abort, jsonify, render_template_string, request, send_file

    from itr.data.dataset import read_dataset

    if not rows:
        raise SearchError("no rows to serve; name some with --methods (rows of itr.papers, e.g. be,sep_coop)")
    app = Flask(__name__)
    app.json.sort_keys = False  # timings in the order the steps ran
    images = read_dataset(data)[0]
    image_files = dict(zip(images["image_id"], images["file"]))
    searchers: dict[str, Searcher] = {}
    lock = threading.Lock()  # one query at a time: each already uses every thread torch was given

    def searcher(method: str) -> Searcher:
        if method not in searchers:
            searchers[method] = Searcher.from_spec(rows[method], device, default_k)
        return searchers[method]

    @app.get("/")
    def page():
        return render_template_string(PAGE, rows=list(rows), k_choices=K_CHOICES, default_k=default_k)

    @app.get("/api/search")
    def search():
        text, method = request.args.get("q", "").strip(), request.args.get("method", next(iter(rows)))
        k = request.args.get("k", str(default_k))
        if not text:
            return jsonify(error="type a caption to search for"), 400
        if method not in rows:
            return jsonify(error=f"unknown row {method!r}; rows served: {', '.join(rows)}"), 400
        if not k.isdigit() or not 1 <= int(k) <= max(K_CHOICES):
            return jsonify(error=f"k must be an integer from 1 to {max(K_CHOICES)}, not {k!r}"), 400
        k = int(k)
        with lock:
            try:
                ranker = searcher(method)
                result = ranker(text, k)
            except SearchError as err:
                return jsonify(error=str(err)), 404

        def listed(hits):
            return [{"image_id": h.image_id, "score": h.score, "url": f"/images/{h.image_id}"} for h in hits]

        return jsonify(query=text, method=method, k=k, first_stage=listed(result.first_stage),
                       reranked=listed(result.hits) if ranker.reranks else None,
                       timings_ms={step: 1000 * s for step, s in result.timings.items()},
                       load_ms=1000 * ranker.load_seconds)

    @app.get("/images/<image_id>")
    def image(image_id: str):
        if image_id not in image_files:
            abort(404)
        return send_file(Path(data).resolve() / image_files[image_id], mimetype="image/png")

    return app


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>itr search</title>
<style>
 body { font-family: sans-serif; margin: 1.5em; }
 .cols { display: flex; gap: 2em; } .col { flex: 1; }
 figure { display: inline-block; margin: 0.3em; text-align: center; font-size: 0.8em; }
 figure img { width: 128px; height: 128px; image-rendering: pixelated; border: 1px solid #ccc; }
 #error { color: #b00; } #timings { color: #444; margin: 0.5em 0; }
</style></head>
<body>
<h1>itr search</h1>
<form id="form">
 <input id="query" name="q" size="50" placeholder="two red circles above a square" autofocus>
 <label>row <select id="method" name="method">{% for row in rows %}<option>{{ row }}</option>{% endfor %}</select></label>
 <label>k <select id="k" name="k">{% for k in k_choices %}<option{% if k == default_k %} selected{% endif %}>{{ k }}</option>{% endfor %}</select></label>
 <button id="go" type="submit">Search</button>
</form>
<p id="error"></p><p id="timings"></p>
<div class="cols">
 <div class="col"><h2>first stage</h2><div id="first"></div></div>
 <div class="col"><h2>re-ranked</h2><div id="reranked"></div></div>
</div>
<script>
function figures(box, hits) {
  box.replaceChildren();
  if (hits === null) { box.textContent = "(this row has no second stage)"; return; }
  for (const [rank, hit] of hits.entries()) {
    const fig = document.createElement("figure"), img = document.createElement("img"),
          cap = document.createElement("figcaption");
    img.src = hit.url; img.alt = hit.image_id;
    cap.textContent = `${rank + 1}. ${hit.image_id} ${hit.score.toFixed(4)}`;
    fig.append(img, cap); box.append(fig);
  }
}
document.getElementById("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const params = new URLSearchParams(new FormData(event.target));
  const answer = await fetch("/api/search?" + params), body = await answer.json();
  document.getElementById("error").textContent = body.error || "";
  if (body.error) return;
  figures(document.getElementById("first"), body.first_stage);
  figures(document.getElementById("reranked"), body.reranked);
  document.getElementById("timings").textContent = "timings: " + Object.entries(body.timings_ms)
    .map(([step, ms]) => `${step} ${ms.toFixed(1)} ms`).join(", ") + ` (models loaded in ${body.load_ms.toFixed(0)} ms)`;
});
</script>
</body></html>
"""
