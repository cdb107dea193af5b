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


@functools.lru_cache(maxsize=None)
def _root() -> Path:
    """The directory holding the ``itr`` package (on sys.path: src/ of the checkout)."""
    return Path(importlib.util.find_spec("itr").origin).parent.parent


def module_file(module: str) -> Path | None:
    """The source file of an itr module, or None when the name is not a module (a class, a function)."""
    base = _root().joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=None)
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


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


def _entry(entry: str) -> tuple[ast.AST, set[str]]:
    """The entry's own tree and the modules it starts from: for ``module:function``, the function and its
    module's top-level imports with its own; for a script (``path.py``, outside the library), all of it."""
    if entry.endswith(".py"):
        tree = ast.parse(Path(entry).read_text(), filename=entry)
        return tree, _imports([tree])
    module, function = entry.split(":")
    tree = _tree(module_file(module))
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    if not funcs:
        raise ValueError(f"{entry}: no function {function!r} in {module}")
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return funcs[0], _imports(top) | _imports(funcs)


def closure(entry: str) -> list[str]:
    """Every itr module an entry (``module:function``, a script ``path.py``, or a module) can run, sorted.

    Library modules are followed through every import, those inside functions too (we cannot tell which
    functions run). The entry's own package (``itr.cli``) is followed through its top-level imports only:
    importing it runs those, but of its functions only the entry runs.
    """
    package = entry.split(":")[0].rsplit(".", 1)[0] if ":" in entry else None
    if ":" in entry or entry.endswith(".py"):
        _, todo = _entry(entry)
    else:
        todo = {entry}
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parent = module.rsplit(".", 1)[0]
        if parent != module and module_file(parent):
            todo.add(parent)  # importing a submodule runs its package's __init__
        tree = _tree(module_file(module))
        shallow = package and (module == package or module.startswith(package + "."))
        nodes = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))] if shallow else [tree]
        todo |= _imports(nodes) - seen
    return sorted(seen)


def _without_docstrings(tree: ast.AST) -> str:
    tree = ast.parse(ast.unparse(tree))  # a copy
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def code_digest(*entries: str) -> str:
    """A short digest of the code the entries (``module:function``, ``path.py`` or ``module``) can run."""
    h = hashlib.sha256()
    for entry in entries:
        if ":" in entry or entry.endswith(".py"):
            h.update(_without_docstrings(_entry(entry)[0]).encode())
        for module in closure(entry):
            h.update(module.encode() + _without_docstrings(_tree(module_file(module))).encode())
    return h.hexdigest()[:16]


def package_modules(package: str) -> list[str]:
    """Every module of a package (a paper's builders are imported by name, so no import statement leads there)."""
    root = module_file(package).parent
    return sorted(".".join((package, *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
                  for p in root.rglob("*.py"))
