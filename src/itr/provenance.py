"""Code as a dependency: a digest of the library code a stage runs, so that its results go stale when it changes.

Each workflow rule passes ``code_digest(<its CLI function>)`` as a Snakemake param; Snakemake reruns a job
whose params changed, and with it everything downstream. The digest covers the entry function (say
``itr.cli.train:train``), the modules its module imports at the top, and every itr module reachable from
the imports inside that function, followed through the library (module granularity there). Code is
compared as its syntax tree without docstrings, so editing a comment or a docstring reruns nothing, and
editing the triplet loss reruns training but not data generation.

Example:
    >>> code_digest("itr.cli.train:train") == code_digest("itr.cli.train:train")
    True
    >>> "itr.losses" in closure("itr.cli.train:train"), "itr.losses" in closure("itr.cli.data:shapes")
    (True, False)
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path


# The command each workflow rule runs (a rule's `code` param is the digest of its entry; dvc.yaml's shared
# stages depend on the files of their entries' closures).
RULE_ENTRIES = {
    "shapes_generate": "itr.cli.data:shapes",
    "train_detector": "itr.cli.detector:train",
    "extract_features": "itr.cli.detector:extract",
    "patch_features": "itr.cli.detector:patches",
    "unpack_file": "itr.cli.data:extract",
    "import_dataset": "itr.cli.data:import_dataset",
    "pretrained_features": "itr.cli.detector:extract_pretrained",
    "import_features": "itr.cli.detector:import_features",
    "train": "itr.cli.train:train",
    "text_teacher": "itr.cli.train:teachers",
    "build_index": "itr.cli.index:build",
    "evaluate": "itr.cli.index:evaluate",
    "unimodal_evaluate": "itr.cli.index:unimodal",
    "rerank_score": "itr.cli.rerank:score",
    "rerank_evaluate": "itr.cli.rerank:evaluate",
    "paper_table": "itr.cli.report:table",
    "extended_report": "itr.cli.report:extended_report",
    "gallery": "itr.cli.report:gallery",
    "training_curves": "itr.cli.report:curves",
    "headline": "itr.cli.report:headline",
    "detector_curves": "itr.cli.report:curves",
    "check_scores": "itr.cli.report:check_scores",
    "track_cells": "itr.cli.report:runs_mirror",
    "benchmark_latency": "benchmarks/latency.py",
    "benchmark_inference_time": "benchmarks/inference_time.py",
    "benchmark_softlabel_cost": "benchmarks/softlabel_cost.py",
}


@functools.lru_cache(maxsize=None)
def _root() -> Path:
    """The directory holding the ``itr`` package (on sys.path: src/ of the checkout)."""
    return Path(importlib.util.find_spec("itr").origin).parent.parent


@functools.lru_cache(maxsize=None)
def module_file(module: str) -> Path | None:
    """The source file of an itr module, or None when the name is not a module (a class, a function)."""
    base = _root().joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=None)
def _tree(path: Path) -> ast.Module:
    """A source file's syntax tree without docstrings: what the code does, not what it says about itself."""
    return _without_docstrings(ast.parse(path.read_text(), filename=str(path)))


def _imports(nodes) -> set[str]:
    """itr modules imported by these syntax-tree nodes (``from itr.x import y`` counts y when it is a module)."""
    found = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                found |= {a.name for a in sub.names if a.name.startswith("itr")}
            elif isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("itr"):
                found.add(sub.module)
                found |= {f"{sub.module}.{a.name}" for a in sub.names if module_file(f"{sub.module}.{a.name}")}
    return {m for m in found if module_file(m)}


def _entry(entry: str) -> tuple[list[ast.AST], set[str]]:
    """The entry's own code and the modules it starts from: for ``module:function``, the function and its
    module's top-level statements that are not other functions (imports, constants); for a script
    (``path.py``, outside the library), all of it."""
    if entry.endswith(".py"):
        tree = _without_docstrings(ast.parse(Path(entry).read_text(), filename=entry))
        return [tree], _imports([tree])
    module, function = entry.split(":")
    tree = _tree(module_file(module))
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    if not funcs:
        raise ValueError(f"{entry}: no function {function!r} in {module}")
    own = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))] + funcs
    return own, _imports(own)


def closure(entry: str) -> list[str]:
    """Every itr module an entry (``module:function``, a script ``path.py``, or a module) can run, sorted.

    Modules are followed through every import, those inside functions too (we cannot tell which functions
    run), and through their packages' ``__init__``. The entry's own package (``itr.cli``) is the exception:
    its ``__init__`` imports every stage module to build the parser, but only the entry function runs.
    """
    return list(_closure(entry))


@functools.lru_cache(maxsize=None)
def _closure(entry: str) -> tuple[str, ...]:
    package = entry.split(":")[0].rsplit(".", 1)[0] if ":" in entry else None
    todo = _entry(entry)[1] if ":" in entry or entry.endswith(".py") else {entry}
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen or module == package:
            continue
        seen.add(module)
        parent = module.rsplit(".", 1)[0]
        if parent != module and module_file(parent):
            todo.add(parent)  # importing a submodule runs its package's __init__
        todo |= _module_imports(module) - seen
    return tuple(sorted(seen))


@functools.lru_cache(maxsize=None)
def _module_imports(module: str) -> frozenset[str]:
    """The itr modules a module imports anywhere in it (cached: every rule's closure walks the same modules)."""
    return frozenset(_imports([_tree(module_file(module))]))


@functools.lru_cache(maxsize=None)
def _normalised(path: Path) -> str:
    return ast.dump(_tree(path))


def _without_docstrings(tree: ast.AST) -> ast.AST:
    """``tree``, its docstrings removed in place (a body of a docstring alone becomes ``pass``)."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return tree


def code_digest(*entries: str, data: tuple = ()) -> str:
    """A short digest of the code the entries (``module:function``, ``path.py`` or ``module``) can run, and of
    the bytes of ``data`` files they read (a paper's reported numbers)."""
    h = hashlib.sha256()
    for entry in entries:
        if ":" in entry or entry.endswith(".py"):
            h.update("".join(ast.dump(node) for node in _entry(entry)[0]).encode())
        for module in closure(entry):
            h.update(module.encode() + _normalised(module_file(module)).encode())
    for path in data:
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


def closure_files(entry: str) -> list[str]:
    """The source files an entry runs, relative to the checkout (src/itr/...; the entry's own file first)."""
    own = [entry] if entry.endswith(".py") else [str(module_file(entry.split(":")[0]).relative_to(_root().parent))]
    return own + [str(module_file(m).relative_to(_root().parent)) for m in closure(entry)]


def package_modules(package: str) -> list[str]:
    """Every module of a package (a paper's builders are imported by name, so no import statement leads there)."""
    root = module_file(package).parent
    return sorted(".".join((package, *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
                  for p in root.rglob("*.py"))
