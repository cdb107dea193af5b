"""The CLI stays a thin shell: short functions, and no file naming of its own (that is itr.layout's)."""
import ast
import re
from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "src" / "itr" / "cli"


def test_no_cli_function_is_longer_than_40_lines():
    long = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 40:
                long.append(f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, f"move the logic into the library: {long}"


def test_stage_commands_name_no_files():
    """File names (k=10.json, manifest.json, ...) are built by itr.layout and the library, never here."""
    pattern = re.compile(r"""["'][\w./{}=<>-]*\.(json|npz|npy|pt|faiss|parquet|csv|md|yaml)["']""")
    found = [f"{p.name}: {m.group(0)}" for p in sorted(CLI.glob("*.py")) for m in pattern.finditer(p.read_text())]
    # `itr params check` and `itr dvc-yaml` read ./params.yaml, and write ./dvc.yaml, by default
    assert found == ['data.py: "params.yaml"', 'workflow.py: "params.yaml"', 'workflow.py: "dvc.yaml"'], found
