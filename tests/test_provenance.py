"""Code is a dependency: editing the triplet loss makes training (and what follows) stale, not the data or the
detector; editing a docstring or a comment makes nothing stale. Checked on a copy of the library."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

from itr.provenance import RULE_ENTRIES

SRC = Path(__file__).resolve().parents[1] / "src" / "itr"
RULES = {rule: entry for rule, entry in RULE_ENTRIES.items() if not entry.endswith(".py")}  # library entries


def digests(src: Path) -> dict:
    code = ("import json, sys; from itr.provenance import code_digest; "
            f"print(json.dumps({{r: code_digest(e) for r, e in {RULES!r}.items()}}))")
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(src)}, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def test_editing_the_triplet_loss_makes_training_stale_but_not_data_or_detector(tmp_path):
    shutil.copytree(SRC, tmp_path / "itr", ignore=shutil.ignore_patterns("__pycache__"))
    losses = tmp_path / "itr" / "losses.py"
    before = digests(tmp_path)
    text = losses.read_text()
    losses.write_text(text.replace('"""', '"""Edited docstring. ', 1) + "\n# a comment\n")
    assert digests(tmp_path) == before  # docstrings and comments are not code
    assert "margin: float = 0.1," in text
    losses.write_text(text.replace("margin: float = 0.1,", "margin: float = 0.2,", 1))
    after = digests(tmp_path)
    changed = {rule for rule in RULES if after[rule] != before[rule]}
    assert changed == {"train"}, changed  # indexes, scores and tables follow through their inputs


def test_editing_one_cli_command_leaves_the_other_commands_alone(tmp_path):
    """The CLI package's __init__ imports every stage module for the parser, but only the entry function runs."""
    shutil.copytree(SRC, tmp_path / "itr", ignore=shutil.ignore_patterns("__pycache__"))
    before = digests(tmp_path)
    workflow = tmp_path / "itr" / "cli" / "workflow.py"
    workflow.write_text(workflow.read_text() + "\nEXTRA = 1\n")
    assert digests(tmp_path) == before
    detector = tmp_path / "itr" / "cli" / "detector.py"  # two commands: train and extract
    detector.write_text(detector.read_text().replace("compute(args), log=log.info)", "compute(args), log=log.warning)", 1))
    after = digests(tmp_path)
    assert {r for r in RULES if after[r] != before[r]} == {"extract_features"}


def test_editing_the_store_reaches_every_rule_that_reads_features(tmp_path):
    shutil.copytree(SRC, tmp_path / "itr", ignore=shutil.ignore_patterns("__pycache__"))
    before = digests(tmp_path)
    store = tmp_path / "itr" / "features" / "store.py"
    store.write_text(store.read_text() + "\nEXTRA = 1\n")
    after = digests(tmp_path)
    assert {r for r in RULES if after[r] != before[r]} == set(RULES) - {"shapes_generate", "train_detector", "paper_table",
                                                                         "check_scores", "track_cells", "unpack_file",
                                                                         "import_dataset", "text_teacher", "extended_report",
                                                                         "gallery", "training_curves", "detector_curves", "headline"}


def test_editing_mlflow_tracking_reruns_only_what_tracks(tmp_path):
    """itr.tracking runs in training (live curves) and in the mirror of metrics files; data generation, extraction,
    indexing, scoring and tables never import it, so an edit there must not rerun them (at full scale: hours)."""
    shutil.copytree(SRC, tmp_path / "itr", ignore=shutil.ignore_patterns("__pycache__"))
    before = digests(tmp_path)
    tracking = tmp_path / "itr" / "tracking.py"
    tracking.write_text(tracking.read_text() + "\nEXTRA = 1\n")
    after = digests(tmp_path)
    assert {r for r in RULES if after[r] != before[r]} == {"train_detector", "train", "track_cells"}
