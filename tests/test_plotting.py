"""Training curves: one PNG with a panel per logged scalar."""

import pytest
from PIL import Image

from hf_vqvae.training.plotting import _collect_curves, plot_training_curves

LOG_HISTORY = [
    {"step": 10, "epoch": 0.1, "loss": 1.0, "perplexity": 100.0},
    {"step": 20, "epoch": 0.2, "loss": 0.5, "perplexity": 200.0, "note": "text is skipped"},
    {"step": 20, "psnr": 21.0},
]


def test_plot_writes_a_png(tmp_path):
    path = plot_training_curves(LOG_HISTORY, tmp_path / "plots" / "curves.png")
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > image.height  # three panels side by side


def test_one_curve_per_numeric_scalar_against_step():
    curves = _collect_curves(LOG_HISTORY, keys=None)
    assert list(curves) == ["loss", "perplexity", "psnr"]
    assert curves["loss"] == ([10.0, 20.0], [1.0, 0.5])
    assert curves["psnr"] == ([20.0], [21.0])


def test_selected_keys_must_be_logged(tmp_path):
    assert list(_collect_curves(LOG_HISTORY, keys=["psnr", "loss"])) == ["psnr", "loss"]
    with pytest.raises(ValueError, match="missing"):
        plot_training_curves(LOG_HISTORY, tmp_path / "curves.png", keys=["missing"])
    with pytest.raises(ValueError, match="'step'"):
        plot_training_curves([{"loss": 1.0}], tmp_path / "curves.png")
