"""Training curves and the detector's figure: the epoch each panel stars is the kept one, and bad files are named."""
import json

import pandas as pd
import pytest

from itr.curves import plot_detector, plot_histories
from itr.errors import InputError


def test_each_panel_stars_the_best_validation_epoch_and_joint_histories_plot(tmp_path):
    pd.DataFrame({"epoch": [0, 1, 2], "step": [5, 10, 15], "train_loss": [3., 2., 1.],
                  "val/rsum": [100., 180., 150.]}).to_csv(tmp_path / "be.csv", index=False)
    pd.DataFrame({"epoch": [0, 1], "train_loss/be": [1., .5], "train_loss/ce": [.7, .6], "val/be/rsum": [90., 80.],
                  "val/ce/rsum": [120., 130.], "val/rsum": [210., 205.]}).to_csv(tmp_path / "joint.csv", index=False)
    kept = plot_histories({"v/be": tmp_path / "be.csv", "v/joint": tmp_path / "joint.csv"}, tmp_path / "c.png", "p")
    assert kept == {"v/be": 1, "v/joint": 0}
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_a_history_or_metrics_file_of_the_wrong_kind_is_refused_by_name(tmp_path):
    pd.DataFrame({"epoch": [0], "train_loss": [1.]}).to_csv(tmp_path / "h.csv", index=False)
    with pytest.raises(InputError, match=r"h.csv: a training history without columns \['val/rsum'\]"):
        plot_histories({"x": tmp_path / "h.csv"}, tmp_path / "c.png", "p")
    (tmp_path / "m.json").write_text(json.dumps({"t2i/R@1": 3.0}))
    with pytest.raises(InputError, match="not a detector metrics file"):
        plot_detector(tmp_path / "m.json", tmp_path / "d.png")
    assert not (tmp_path / "c.png").exists() and not (tmp_path / "d.png").exists()
    (tmp_path / "d.json").write_text(json.dumps({"mAP@0.5": 0.9, "per_class_AP": {"red circle": 0.9}}))
    with pytest.raises(InputError, match=r"h.csv: a training history without columns \['train/loss'\]"):
        plot_detector(tmp_path / "d.json", tmp_path / "d.png", history=tmp_path / "h.csv")  # a model's history
    pd.DataFrame({"epoch": [0, 1], "train/loss": [1.2, 0.7]}).to_csv(tmp_path / "det.csv", index=False)
    plot_detector(tmp_path / "d.json", tmp_path / "d.png", headline=tmp_path / "h.json", history=tmp_path / "det.csv")
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "h.json").read_text()) == {"mAP@0.5": 0.9}  # dvc metrics show: the mAP alone
