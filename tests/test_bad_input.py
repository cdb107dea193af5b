"""Bad input gets a clean error (issue 13, findings 5, 6 and 9): the file or option named, the fix given,
exit 2, no traceback; degenerate params are refused before anything runs; read-only commands leave no trace."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from itr.cli import main
from itr.config import SEEDED, ConfigError, EvalConfig
from itr.params import load_params
from itr.protocols import protocol_groups

ROOT = Path(__file__).resolve().parents[1]


def _params(tmp_path, **edits) -> Path:
    """params.yaml with dotted-key edits, written to tmp_path."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in edits.items():
        *parents, key = dotted.split("__")
        node = params
        for part in parents:
            node = node[part]
        node[key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize("edits,message", [
    ({"shapes__n_test": 1}, "protocol 'full' scores groups of 1 test images, fewer than the deepest ranking"),
    ({"shapes__n_test": 150}, "protocol 'subset' takes the first 200 test images, but the split has 150"),
    ({"shapes__min_objects": 5}, "'shapes.min_objects' (5) exceeds 'shapes.max_objects' (4)"),
    ({"be__lr": float("nan")}, "'be.lr': nan is not a finite number"),
    ({"be__lr": 0.0}, "'be.lr': 0.0 is less than or equal to the minimum of 0"),  # positive as well as finite
    ({"ce__lr": -1e-5}, "'ce.lr': -1e-05 is less than or equal to the minimum of 0"),
    ({"evaluation__n_folds": 100}, "protocol 'folds' scores groups of 10 test images, fewer than the deepest ranking"),
    ({"rerank__k": 500}, "protocol 'subset100' scores groups of 100 test images, fewer than the deepest ranking (500"),
])
def test_degenerate_params_are_refused(tmp_path, edits, message):
    with pytest.raises(ConfigError, match=_literal(message)):
        load_params(_params(tmp_path, **edits))


def _literal(text: str) -> str:
    import re

    return re.escape(text)


def test_a_subset_larger_than_the_split_is_refused_not_cut():
    with pytest.raises(ConfigError, match="takes the first 20 test images, but the split has 1"):
        protocol_groups(1, EvalConfig(subset_size=20), "subset")


def test_a_table_protocol_that_does_not_fit_is_refused():
    from itr import papers

    params = load_params(ROOT / "params.yaml")
    params["auxiliary"]["protocol"] = "subset30"  # the auxiliary tables' COOP rows rank 50 deep
    with pytest.raises(ConfigError, match="protocol 'subset30' scores groups of 30 test images"):
        papers.plan("rfrs", params)


def _cli(capsys, *argv) -> str:
    """Run the CLI; it must exit 2 with one clean message. Returns stderr."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("itr: error: ") and "Traceback" not in err
    return err


def _section(name: str, **edits) -> str:
    params = load_params(ROOT / "params.yaml")
    return json.dumps({**params[name], **({"seed": 0} if name in SEEDED else {}), **edits})


def test_bad_config_json_and_types_on_the_cli(capsys, tmp_path):
    err = _cli(capsys, "data", "shapes", "--config", "{n_train: 3", "--out", str(tmp_path / "d"))
    assert "shapes config is not valid JSON" in err
    err = _cli(capsys, "data", "shapes", "--config", _section("shapes", n_train="many"), "--out", str(tmp_path / "d"))
    assert "'shapes.n_train': 'many' is not of type 'integer'" in err
    err = _cli(capsys, "data", "shapes", "--config", _section("shapes", min_objects=9), "--out", str(tmp_path / "d"))
    assert "'shapes.min_objects' (9) exceeds" in err
    assert not (tmp_path / "d").exists()


def test_unknown_protocol_and_device(capsys, tmp_path):
    from itr.index import save_collection
    import numpy as np

    vecs = np.eye(4, dtype="float32")
    save_collection(tmp_path / "ix", vecs, vecs, list("abcd"), list("ABCD"), "Flat", "",
                    {"model_id": "m", "split": "test", "caption_image_ids": list("abcd")})
    err = _cli(capsys, "evaluate", "--index", str(tmp_path / "ix"), "--config", _section("evaluation"),
               "--protocol", "fancy", "--out", str(tmp_path / "m.json"), "--method", "be", "--dataset", "d",
               "--trained-on", "d", "--variant", "v")
    assert "unknown protocol 'fancy'; use full, folds, subset" in err
    err = _cli(capsys, "train", "be", "--data", "x", "--features", "y", "--config", _section("be"),
               "--text-encoder", _section("text_encoder"), "--out", "m.pt", "--history", "h.csv",
               "--state-dir", str(tmp_path / "s"), "--device", "cuda")
    assert "--device cuda: this machine has no CUDA device; use --device auto or cpu" in err


def test_a_bi_encoder_passed_as_reranker(capsys, tiny_pipeline, tmp_path):
    root, _ = tiny_pipeline
    err = _cli(capsys, "rerank", "score", "--reranker", str(root / "be.pt"), "--data", str(root / "data"),
               "--features", str(root / "feat"), "--config", _section("rerank", k=1, ks=[1]),
               "--eval-config", _section("evaluation", ks=[1], subset_size=2), "--protocol", "subset",
               "--out", str(tmp_path / "s.npz"))
    assert "be.pt is a be checkpoint without a match head or token sets, so it cannot rerank" in err


def test_yaml_syntax_error_names_file_and_line(capsys, tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("seed: 0\nshapes:\n  n_test: [1, 2\n  noise: 0.1\n")
    err = _cli(capsys, "params", "check", str(bad))
    assert f"{bad}:4:" in err and "not valid YAML" in err
    err = _cli(capsys, "params", "check", str(tmp_path / "nope.yaml"))
    assert "nope.yaml not found" in err and "itr params check PATH" in err and "--params" not in err


def test_yaml_error_in_the_workflow_config_names_file_and_line(tmp_path):
    for name in ("Snakefile", "workflow", "profiles"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "params.yaml").write_text("seed: 0\nshapes: {n_test: 3\n")
    out = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "data"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "params.yaml:3:1: not valid YAML" in out.stdout + out.stderr


def test_runs_compare_on_a_missing_store_creates_nothing(capsys, tmp_path):
    where = tmp_path / "nonexistent" / "dir"
    err = _cli(capsys, "runs", "compare", "--uri", f"sqlite:///{where}/x.db")
    assert "no tracking store at" in err
    assert not (tmp_path / "nonexistent").exists()


def test_runs_compare_of_a_paper_on_a_missing_store_creates_nothing(capsys, tmp_path):
    where = tmp_path / "nonexistent" / "dir"
    err = _cli(capsys, "runs", "compare", "--paper", "rfrs", "--uri", f"sqlite:///{where}/x.db")
    assert "no tracking store at" in err and "snakemake" in err
    assert not (tmp_path / "nonexistent").exists()


def test_faiss_loader_messages_only_at_debug_level(tmp_path):
    code = "from itr.cli import main; main(['params', 'check', 'params.yaml']); import itr.index"
    quiet = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "faiss.loader" not in quiet.stderr
    loud = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**__import__("os").environ, "ITR_LOG_LEVEL": "DEBUG"})
    assert "faiss.loader" in loud.stderr
