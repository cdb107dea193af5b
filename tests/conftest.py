import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch
import yaml

from itr.config import BEConfig, DetectorConfig, DisentangledConfig, FeaturesConfig, ShapesConfig, TextEncoderConfig
from itr.data import shapes
from itr.features.detector import train_on_dataset
from itr.features.extract import extract_dataset
from itr.models.tiny import make_tiny_bert
from itr.training import train_from_files

SHAPES = dict(image_size=64, n_train=12, n_val=4, n_test=2, seed=0)
DETECTOR = DetectorConfig(epochs=1, batch_size=4, channels=(8, 8, 8), representation_size=16, anchor_sizes=(8, 16))
FEATURES = dict(max_regions=3, score_thresh=0.0, shard_size=8, batch_size=4)
BE = BEConfig(epochs=1, batch_size=4, lr=1e-3)


def disentangled_config(**kw) -> DisentangledConfig:
    """A one-epoch, one-layer ALADIN config for the tiny pipeline, with ``kw`` replacing its keys."""
    base = dict(epochs=1, batch_size=4, lr=1e-3, layers=1, heads=2, ff=16, seed=0)
    return DisentangledConfig.from_dict({**DisentangledConfig().to_dict(), **base, **kw})


def pytest_collection_modifyitems(config, items):
    """The tests on the built tiny project first. Under pytest-xdist (pyproject's addopts: two workers, one file each
    at a time) its build, most of the run, then starts at once and the other worker takes every other file beside it."""
    items.sort(key=lambda item: "project" not in getattr(item, "fixturenames", ()))


def pytest_runtest_setup(item):
    """A worker beside the tiny project's build yields the CPU to it: the build is the run's critical path, while
    the other files fill its idle core either way (at equal priority they took half its cores for 11 of its ~23
    minutes, then the other worker sat idle). Lowered once, for the rest of the worker's life and its children."""
    if os.environ.get("PYTEST_XDIST_WORKER") and "project" not in item.fixturenames \
            and os.getpriority(os.PRIO_PROCESS, 0) < YIELDING_NICENESS:
        os.setpriority(os.PRIO_PROCESS, 0, YIELDING_NICENESS)


YIELDING_NICENESS = 10


def train_small_detector(root, data, state, log=print):
    train_on_dataset(DETECTOR, data, root / "det.pt", root / "det.json", state, log=log)
    return torch.load(root / "det.pt", weights_only=True)["model"]


def train_be(root, data, features, state, text, log=print):
    train_from_files("be", BE, text, data, features, state, root / "be.pt", root / "be.csv", log=log)
    return torch.load(root / "be.pt", weights_only=True)


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory):
    """A tiny ShapeCaptions dataset, its detector and features, and a BE trained on them (about 10 s):
    (root, TextEncoderConfig); root holds data/, det.pt, feat/, be.pt, det_state/ and be_state/."""
    root = tmp_path_factory.mktemp("stale")
    shapes.build(ShapesConfig(**SHAPES), root / "data")
    train_small_detector(root, root / "data", root / "det_state")
    extract_dataset(root / "data", root / "det.pt", FeaturesConfig(**FEATURES), root / "feat")
    text = TextEncoderConfig(path=str(make_tiny_bert(root / "bert", hidden=16, layers=1)), max_text_len=16)
    train_be(root, root / "data", root / "feat", root / "be_state", text)
    return root, text



@pytest.fixture(scope="session")
def indexed(tiny_pipeline):
    """The tiny pipeline's BE, its index of the test split, and a CE trained for one epoch (ce.pt)."""
    from itr.collection import sources
    from itr.config import CEConfig
    from itr.index import index_collection

    root, text = tiny_pipeline
    target, _ = sources(str(root / "data"), str(root / "feat"), "test")
    index_collection(root / "be.pt", target, [], None, None, "Flat", "", root / "index")
    if not (root / "ce.pt").exists():
        train_from_files("ce", CEConfig(epochs=1, batch_size=4, val_images=2), text, root / "data", root / "feat",
                         root / "ce_state", root / "ce.pt", root / "ce.csv")
    return root


ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=(
    "no headless browser: Debian's chromium and chromium-driver are not installed (bash tests/setup-browser.sh installs "
    "them; CI runs it)"))


@contextlib.contextmanager
def headless_browser(profile: Path):
    """Debian's Chromium, headless under ChromeDriver (Selenium), with a fresh profile in ``profile`` and nothing that
    reaches off the machine."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def open_report_entry(browser, path: list[str], file: str | None = None, timeout: float = 30) -> str:
    """In a Snakemake report open in ``browser``, follow the menu entries ``path``, then show ``file`` (its eye
    button) and return the text of the frame it is shown in; without ``file``, the page's text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for entry in path:
        WebDriverWait(browser, timeout).until(lambda b: b.find_element(By.XPATH, f"//a[normalize-space()='{entry}']")).click()
    if file is None:
        return browser.find_element(By.TAG_NAME, "body").text
    row = WebDriverWait(browser, timeout).until(lambda b: b.find_element(By.XPATH, f"//td[normalize-space()='{file}']/.."))
    row.find_element(By.XPATH, ".//a[@iconname='eye']").click()
    frame = WebDriverWait(browser, timeout).until(lambda b: b.find_element(By.TAG_NAME, "iframe"))
    browser.switch_to.frame(frame)
    try:
        return WebDriverWait(browser, timeout).until(lambda b: b.find_element(By.TAG_NAME, "body").text)
    finally:
        browser.switch_to.default_content()


def run(cmd, cwd, check=True):
    # profiles/ci: one thread per job, so the tiny jobs run two at a time (see its comment). The project runs
    # its own copy of the library (src/ on PYTHONPATH), so a test can edit code without touching the checkout.
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", DVC_NO_ANALYTICS="1", SNAKEMAKE_PROFILE="profiles/ci",
               PYTHONPATH=str(Path(cwd) / "src"))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, shell=isinstance(cmd, str))
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def new_project(proj: Path, **changes) -> Path:
    """A copy of the workflow and library in ``proj`` with the .test config (its sections replaced by ``changes``)
    and a tiny random BERT as text tower."""
    for name in ("Snakefile", "workflow", "profiles", "dvc.yaml", ".dvcignore", "benchmarks", "src/itr"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, proj / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, proj / name)
    params = yaml.safe_load((ROOT / ".test" / "params.yaml").read_text()) | changes
    params["text_encoder"]["path"] = str(make_tiny_bert(proj / "tiny-bert"))
    params["softlabel"]["text_teacher"] = params["text_encoder"]["path"]  # CUSA's text teacher: the same tiny BERT
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return proj


@pytest.fixture(scope="session")
def project(tmp_path_factory):
    """The tiny .test config built from nothing by `dvc repro` in a temporary git + DVC project: (path, its run)."""
    proj = new_project(tmp_path_factory.mktemp("project"))
    run("git init -q && git config user.email t@t && git config user.name t", proj)
    run("dvc init -q && dvc config core.analytics false && git add -A && git commit -qm init", proj)
    first = run(["dvc", "repro"], proj)
    return proj, first
