"""``snnxai explain``: the paper-style figure, on untrained (seeded) zoo architectures."""

from __future__ import annotations

import pytest
import torch

import bench.models as models
from bench.cli import main
from bench.explain_figure import default_every, figure_rows


@pytest.fixture
def untrained(monkeypatch):
    """load_model -> a seeded, untrained model with scaled weights (layers spike): no training."""
    def load(name, device="cpu", **kw):
        model = models.build_model(name).eval()
        with torch.no_grad():
            for conv in model.convs:
                conv.weight.mul_(3)
        return model

    monkeypatch.setattr(models, "load_model", load)


def test_figure_from_a_sample(untrained, tmp_path, capsys) -> None:
    out = tmp_path / "fig.png"
    assert main(["explain", "--model", "vgg5_snn_t8", "--method", "sam", "--sample", "3",
                 "--out", str(out), "--every", "2", "--param", "variant=official"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out


def test_figure_from_an_image_file(untrained, tmp_path) -> None:
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray((torch.rand(40, 48, 3) * 255).byte().numpy()).save(src)
    out = tmp_path / "fig.svg"
    assert main(["explain", "--model", "vgg5_snn_t8", "--image", str(src), "--out", str(out),
                 "--no-twin", "--layer", "conv2"]) == 0
    assert out.stat().st_size > 0


@pytest.mark.parametrize("argv, msg", [
    (["--model", "vgg5_snn_t8", "--method", "sma", "--sample", "0"], "did you mean 'sam'"),
    (["--model", "vgg5_ann", "--method", "sam", "--sample", "0"], "runs on snn models"),
    (["--model", "vgg5_snn_t8", "--sample", "100000"], "out of range"),
    (["--model", "vgg5_snn_t8", "--image", "/nonexistent.png"], "cannot read image"),
    (["--model", "vgg5_snn_t8", "--sample", "0", "--layer", "conv7"], "no layer 'conv7'"),
])
def test_user_errors_are_one_line(untrained, tmp_path, capsys, argv, msg) -> None:
    assert main(["explain", *argv, "--out", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and err.count("\n") == 1


def test_rows_layout(untrained) -> None:
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
