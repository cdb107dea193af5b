#!/usr/bin/env bash
# Create the project-local virtualenv .venv with the pinned stack from pyproject.toml.
# Idempotent and quick when already done: it reinstalls only when pyproject.toml changed.
# torch/torchvision are pinned to 2.14.1/0.29.1: that pair's compiled detection ops load on CPU and
# CUDA alike (plain `torch` pulls a build whose torchvision ops fail to load).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.itr-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "bootstrap: installing pinned dependencies (about 3 minutes the first time)"
  .venv/bin/pip install --quiet --disable-pip-version-check --no-compile -e . 2>&1 | grep -v "^WARNING: Location" || true
  # Byte-compiled here, once, on every core (pip compiles on one: 2m17s + 48s here instead of about 4m20s): where
  # PYTHONDONTWRITEBYTECODE is set (this CI's machines), Python never writes .pyc files itself, and without them
  # every job would compile torch from source again (~2.5x slower jobs). A few packages ship files that are not
  # Python 3.11 (templates, examples); they fail to compile here as they do under pip, and are never imported.
  # Left out, as nothing here imports them (29% of the bytes): packages' own test suites, and transformers'
  # ~380 model families other than the BERT the text towers load (another architecture still works, its
  # modules compiled in memory at each import).
  .venv/bin/python -m compileall -q -j 0 -x '/tests/|/transformers/models/(?!(auto|bert|encoder_decoder)/)[^/]+/' \
    .venv/lib/python3*/site-packages > /dev/null 2>&1 || true
  ls .venv/lib/python3*/site-packages/torch/__pycache__/__init__.cpython-*.pyc > /dev/null \
    || { echo "bootstrap: byte-compiling site-packages failed (no torch/__pycache__)" >&2; exit 1; }
  .venv/bin/python -c "import itr, torch, torchvision.ops, faiss, snakemake, dvc, mlflow" \
    || { echo "bootstrap: the installed stack does not import; see the errors above" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
echo "bootstrap: .venv ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
