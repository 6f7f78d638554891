"""``snnxai explain``: the paper-style figure, on untrained (seeded) zoo architectures."""

from __future__ import annotations

import pytest
import torch

import bench.models as models
from bench.cli import main
from bench.explain_figure import default_every, figure_rows


def png_size(path) -> tuple[int, int]:
    """(width, height) in pixels of a saved PNG."""
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def grid_size(rows: int, cols: int, dpi: int = 150) -> tuple[int, int]:
    """draw_figure's canvas: 1.6 x 1.75 inches per panel at 150 dpi (no tight bounding box)."""
    return round(1.6 * cols * dpi), round(1.75 * rows * dpi)


def test_figure_from_a_sample(untrained_zoo, tmp_path, capsys) -> None:
    out = tmp_path / "fig.png"
    assert main(["explain", "--model", "vgg5_snn_t8", "--method", "sam", "--sample", "3",
                 "--out", str(out), "--every", "2", "--param", "variant=official"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out
    # rows: sam, snn_gradcam, ann_gradcam on the twin; columns: input, t=0,2,4,6 (T=8), time mean
    width, height = png_size(out)
    assert abs(width - grid_size(3, 6)[0]) <= 1 and abs(height - grid_size(3, 6)[1]) <= 1


def test_figure_from_an_image_file(untrained_zoo, tmp_path) -> None:
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray((torch.rand(40, 48, 3) * 255).byte().numpy()).save(src)
    out = tmp_path / "fig.svg"
    assert main(["explain", "--model", "vgg5_snn_t8", "--image", str(src), "--out", str(out),
                 "--no-twin", "--layer", "conv2"]) == 0
    # two rows (sam, snn_gradcam; no twin) of 8 steps (T=8, every 1) + the time mean, the first
    # after the input panel; the SVG backend composites each axes' image and overlay into one
    # <image>, and the blank panel under "input" draws none
    assert out.read_text().count("<image ") == (1 + 9) + 9


@pytest.mark.parametrize("argv, msg", [
    (["--model", "vgg5_snn_t8", "--method", "sma", "--sample", "0"], "did you mean 'sam'"),
    (["--model", "vgg5_ann", "--method", "sam", "--sample", "0"], "runs on snn models"),
    (["--model", "vgg5_snn_t8", "--sample", "100000"], "out of range"),
    (["--model", "vgg5_snn_t8", "--image", "/nonexistent.png"], "cannot read image"),
    (["--model", "vgg5_snn_t8", "--sample", "0", "--layer", "conv7"], "no layer 'conv7'"),
])
def test_user_errors_are_one_line(untrained_zoo, tmp_path, capsys, argv, msg) -> None:
    assert main(["explain", *argv, "--out", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and err.count("\n") == 1


def test_rows_layout(untrained_zoo) -> None:
    from bench.data import get_dataset
    from bench.data.base import load_batch

    snn, ann = models.load_model("vgg5_snn_t8"), models.load_model("vgg5_ann")
    ds = get_dataset("shapes", "test")
    b = load_batch(ds, [5])
    rows = figure_rows("sam", snn, snn.card, b, b.y, twin=ann, every=3)
    labels = [label for label, _ in rows]
    assert labels == ["sam (conv3)", "snn_gradcam (conv3)", "ann_gradcam (conv3) on vgg5_ann"]
    assert [p.title for p in rows[0][1]] == ["input", "t=0", "t=3", "t=6", "time mean"]
    assert all(p.heat.shape == (32, 32) for p in rows[0][1][1:])
    assert default_every(8) == 1 and default_every(30) == 3
    rows = figure_rows("snn_saliency", snn, snn.card, b, b.y, layer="conv2")
    assert [label for label, _ in rows] == ["snn_saliency", "snn_gradcam (conv2)"]
    assert [p.title for p in rows[0][1]] == ["input", "snn_saliency"]


def test_panels_show_their_maps_in_jet_over_the_image(tmp_path) -> None:
    """One row over a mid-grey image: the input alone, a map of zeros, a map of ones, a blank
    panel. Jet at alpha 0.5 puts blue over the grey for 0 and red for 1; the blank stays white."""
    import numpy as np
    from PIL import Image

    from bench.explain_figure import Panel, draw_figure

    image = torch.full((3, 16, 16), 0.5)
    rows = [("row", [Panel("input"), Panel("zeros", torch.zeros(16, 16)), Panel("ones", torch.ones(16, 16)),
                     Panel("")])]
    out = draw_figure(image, rows, tmp_path / "f.png")
    pixels = np.asarray(Image.open(out).convert("RGB"), dtype=float)
    assert pixels.shape[:2] == grid_size(1, 4)[::-1]
    height, width = pixels.shape[:2]
    # the centre of each panel's column (tight_layout keeps equal columns; the image fills the
    # middle of its axes, below the title)
    centre = [pixels[height // 2 - 3:height // 2 + 3, (2 * c + 1) * width // 8 - 3:(2 * c + 1) * width // 8 + 3]
              .reshape(-1, 3).mean(0) for c in range(4)]
    grey, zeros, ones, blank = centre
    assert np.allclose(grey, grey.mean(), atol=2) and 100 < grey.mean() < 155
    assert zeros[2] > zeros[0] + 50  # blue over grey
    assert ones[0] > ones[2] + 50  # red over grey
    assert np.allclose(blank, 255)


def test_image_file_refused_for_a_time_varying_model(tmp_path) -> None:
    # a frames/events model reads T*C channels: a still image file cannot fill them
    from PIL import Image

    from bench.commands.explain import _load_image
    from bench.errors import BenchError

    path = tmp_path / "x.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)
    assert _load_image(str(path), 8, 3).shape == (3, 8, 8)
    with pytest.raises(BenchError, match="24 channels"):
        _load_image(str(path), 8, 24)
