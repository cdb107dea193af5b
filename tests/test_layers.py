"""Imports run one way: a shared layer never imports a later one, and no module imports another's private names.

    data -> features -> models -> training -> index -> rerank -> evaluate -> tables -> papers -> cli

Foundations (config, sections, atomic, manifest, checkpoint, metrics, protocols, layout, tracking, expected, provenance, jobs,
errors) come first and may be imported by anything. A layer knows nothing of the layers after it, and no shared layer names a paper.
"""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "itr"
LAYERS = [
    {"itr.atomic", "itr.config", "itr.checkpoint", "itr.metrics", "itr.protocols", "itr.layout", "itr.tracking",
     "itr.expected", "itr.provenance", "itr.manifest", "itr.jobs", "itr.errors", "itr.params", "itr.distributed",
     "itr.sections", "itr.eccv", "itr.machine", "itr.mirror"},
    {"itr.data"},
    {"itr.features", "itr.collection"},
    {"itr.models"},
    {"itr.losses", "itr.sampling", "itr.mining", "itr.objectives", "itr.training", "itr.teachers"},
    {"itr.index"},
    {"itr.rerank", "itr.shortlist", "itr.search", "itr.serve"},
    {"itr.evaluate", "itr.unimodal"},
    {"itr.tables", "itr.gallery", "itr.curves", "itr.seeds"},
    {"itr.papers"},
    {"itr.cli"},
]


def layer_of(module: str) -> int:
    """The layer of a module: the most specific (longest) prefix listed in LAYERS wins."""
    best, rank = "", None
    for n, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, rank = name, n
    if rank is None:
        raise AssertionError(f"{module} is in no layer of tests/test_layers.py; add it where it belongs")
    return rank


def modules():
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        if parts == ("itr", "__init__"):
            continue  # the package's version string
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imports(path: Path):
    """(imported module, names) of every itr import in a file, function-level ones included."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("itr"):
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            yield from ((a.name, []) for a in node.names if a.name.startswith("itr"))


@pytest.mark.parametrize("module,path", list(modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_run_one_way(module, path):
    mine = layer_of(module)
    for imported, names in imports(path):
        if imported == "itr":  # from itr import papers
            imported = f"itr.{names[0]}"
        later = layer_of(imported) > mine
        assert not later, f"{module} (layer {mine}) imports {imported} (layer {layer_of(imported)}), a later layer"
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{module} imports private names {private} of {imported}"


def test_shared_layers_name_no_paper():
    from itr.papers import PAPERS

    for module, path in modules():
        if module.startswith("itr.papers"):
            continue
        text = path.read_text().lower()
        named = [p for p in PAPERS if p in text]
        assert not named, f"{path} names paper(s) {named}; paper specifics belong in src/itr/papers/<paper>/"


def string_constants(path: Path) -> set[str]:
    """Every string constant of a file's code (docstrings and comments are words, not code)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings}


def test_a_paper_names_no_other_papers_variant():
    """A paper compares with another's rows by method (itr.papers.owners), never by the other's variant names, so the
    registry is the one place that knows which paper trains what."""
    from itr.papers import PAPERS, plan
    from itr.params import load_params

    params = load_params(SRC.parents[1] / "params.yaml")
    variants = {p: {v.split("/")[0] for v in plan(p, params).variants} for p in PAPERS}
    assert variants["aladin"] >= {"aladin", "aladin_var"}  # the check below sees each paper's variant directories
    for paper in PAPERS:
        others = set().union(*(v for p, v in variants.items() if p != paper)) - variants[paper]
        for path in sorted((SRC / "papers" / paper).rglob("*.py")):
            named = {s for s in string_constants(path) if s.split("/")[0] in others}
            assert not named, f"{path} names another paper's variant(s) {sorted(named)}; use itr.papers.owners"


def test_rows_resolve_to_the_paper_that_trains_them():
    from itr.papers import UnknownPaperError
    from itr.papers.owners import owner, trained_by

    tgdt = importlib_plan("tgdt")
    assert {m: owner(m) for m in tgdt.ROWS} == {"tgdt_g": (tgdt.MAIN, tgdt.MODEL), "tgdt_l": (tgdt.MAIN, tgdt.MODEL),
                                                 "tgdt_gl": (tgdt.MAIN, tgdt.MODEL)}
    aladin = importlib_plan("aladin")
    assert trained_by(aladin.RERANK_ROWS) == {m: aladin.MAIN for m in aladin.RERANK_ROWS}
    assert owner(aladin.INIT)[1] != aladin.METHOD  # the single-stream checkpoint: the reranker of a JOINT row
    with pytest.raises(UnknownPaperError, match="'no_such_row' is declared by 0"):
        owner("no_such_row")


def importlib_plan(paper: str):
    import importlib

    return importlib.import_module(f"itr.papers.{paper}.plan")


def test_the_layer_check_catches_a_wrong_way_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from itr.rerank import cross_score_groups\n")
    assert layer_of("itr.training") < max(layer_of(m) for m, _ in imports(bad))


def test_a_job_that_loads_a_text_tower_imports_no_transformers():
    """itr.models.bert reads Hugging Face checkpoints without transformers, whose import cost ~3.5 s of CPU in every
    job that loads a model; and itr.models.hf (only the tiny-BERT writer uses transformers) keeps its optional
    scikit-learn and SciPy imports out, so a transformers release that finds them another way fails here."""
    import subprocess
    import sys

    code = ("import sys; from itr.models.encoder import load_encoder; from itr.models import load_trained; "
            "import itr.models.dual, itr.models.softlabel, itr.teachers; model, tok = load_encoder('minilm', 8); "
            "model.embed_text(**{k: v for k, v in tok(['a red circle'], return_tensors='pt').items()}); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'transformers', 'sklearn', 'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
    code = ("import sys, itr.models.tiny; from itr.models.hf import BertModel; BertModel.from_pretrained; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


@pytest.mark.parametrize("module", ["itr.papers", "itr.papers.owners", "itr.papers.dvcfile"])
def test_the_registry_examples_run(module, monkeypatch):
    """The registry's docstring examples, run against params.yaml (``params``) and every paper's plan (``plans``)."""
    import doctest
    import importlib

    import yaml

    from itr.papers import PAPERS, plan
    from itr.params import load_params

    monkeypatch.chdir(SRC.parents[1])
    params = load_params("params.yaml")
    mod = importlib.import_module(module)
    globs = {**vars(mod), "params": params, "plans": {p: plan(p, params) for p in PAPERS}, "yaml": yaml}
    result = doctest.testmod(mod, globs=globs, report=True)
    assert result.attempted and not result.failed, f"{module}: {result.failed} of {result.attempted} examples fail"


MAX_MODULE_LINES = 400  # DEVELOPERS.md's style: a module you can hold in your head (nanoGPT)


def test_every_module_fits_in_a_head():
    """No library module passes 400 lines: split a module that grows past it by what its parts do."""
    long = {str(p.relative_to(SRC.parent)): n for _, p in modules()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
