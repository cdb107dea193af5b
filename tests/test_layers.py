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
