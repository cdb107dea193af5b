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
    # `itr params check`, `itr search` and `itr dvc-yaml` read ./params.yaml, and write ./dvc.yaml, by default
    assert found == ['data.py: "params.yaml"', 'search.py: "params.yaml"', 'workflow.py: "params.yaml"',
                     'workflow.py: "dvc.yaml"'], found


def test_jobs_that_read_only_scores_and_metrics_import_no_torch():
    """Table, evaluation and expected-score jobs run by the hundred; importing torch (2-3 s) for an error class
    (itr.errors used to import every module that defines one) made each of them twice as slow."""
    import subprocess
    import sys

    code = ("import sys; from itr.cli import build_parser; build_parser(); "
            "import itr.errors, itr.evaluate, itr.expected, itr.papers, itr.tables; "
            "print(sorted(m for m in ('torch', 'transformers', 'torchvision', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_every_bad_input_error_is_an_input_error():
    """The CLI turns InputError into one clean line (exit 2); an error class outside it would print a traceback."""
    from itr.checkpoint import CheckpointError
    from itr.config import ConfigError
    from itr.data.dataset import DatasetError
    from itr.data.images import ImageError
    from itr.errors import USER_ERRORS, InputError
    from itr.features.store import FeatureStoreError
    from itr.index import IndexFileError
    from itr.jobs import StateLockedError
    from itr.papers import UnknownPaperError
    from itr.tracking import NoTrackingStoreError

    for error in (CheckpointError, ConfigError, DatasetError, ImageError, FeatureStoreError, IndexFileError,
                  StateLockedError, UnknownPaperError, NoTrackingStoreError):
        assert issubclass(error, USER_ERRORS), error
    assert issubclass(ConfigError, ValueError) and issubclass(CheckpointError, RuntimeError)  # callers catch these
    assert not issubclass(KeyError, InputError)
