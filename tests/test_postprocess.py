"""The shared post-processing: ReLU policy, upsampling, min-max, degenerate maps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.config import build_dataclass
from bench.errors import BenchError, ConfigError
from methods.postprocess import PostprocessConfig, degenerate, postprocess, rectify, reduce_time


def test_minmax_and_policies() -> None:
    raw = torch.tensor([[[-2.0, 0.0], [1.0, 3.0]]])
    relu = postprocess(raw, 2, PostprocessConfig(relu="relu"))
    torch.testing.assert_close(relu, torch.tensor([[[0.0, 0.0], [1 / 3, 1.0]]]))
    absm = postprocess(raw, 2, PostprocessConfig(relu="abs"))
    torch.testing.assert_close(absm, torch.tensor([[[2 / 3, 0.0], [1 / 3, 1.0]]]))
    none = postprocess(raw, 2, PostprocessConfig(relu="none"))
    torch.testing.assert_close(none, torch.tensor([[[0.0, 0.4], [0.6, 1.0]]]))


def test_upsampling_is_bilinear_then_normalized() -> None:
    g = torch.Generator().manual_seed(0)
    raw = torch.rand(3, 2, 4, 4, generator=g)  # [T, B, h, w]
    out = postprocess(raw, 16)
    assert out.shape == (3, 2, 16, 16)
    up = F.interpolate(raw.reshape(6, 1, 4, 4), size=(16, 16), mode="bilinear", align_corners=False)
    up = up.reshape(3, 2, 16, 16)
    lo, hi = up.amin((-2, -1), keepdim=True), up.amax((-2, -1), keepdim=True)
    torch.testing.assert_close(out, (up - lo) / (hi - lo))
    assert torch.all(out.amax((-2, -1)) == 1) and torch.all(out.amin((-2, -1)) == 0)


@pytest.mark.parametrize("bad", [torch.zeros(4, 4), torch.full((4, 4), 2.5),
                                 torch.full((4, 4), -1.0), torch.tensor([[float("nan"), 1.0], [0.0, 2.0]])])
def test_degenerate_maps_are_zero_and_flagged(bad: torch.Tensor) -> None:
    raw = torch.stack([bad, torch.arange(bad.numel(), dtype=torch.float32).view(bad.shape)])
    out = postprocess(raw, 8)
    assert torch.isfinite(out).all()
    assert torch.all(out[0] == 0)
    assert out[1].max() == 1
    flags = degenerate(rectify(raw, "relu"))
    assert flags.tolist() == [True, False]


def test_degenerate_relative_tolerance() -> None:
    assert degenerate(torch.full((3, 3), 1e9) + torch.eye(3) * 1e-3).item()  # constant to 1e-12
    assert not degenerate(torch.eye(3) * 1e-20).item()  # tiny but clearly structured


def test_reduce_time() -> None:
    m = torch.arange(24, dtype=torch.float32).view(3, 2, 2, 2)
    torch.testing.assert_close(reduce_time(m, "mean"), m.mean(0))
    torch.testing.assert_close(reduce_time(m, "sum"), m.sum(0))
    torch.testing.assert_close(reduce_time(m, "last"), m[2])
    torch.testing.assert_close(reduce_time(m, "max"), m[2])


def test_config_is_typed_and_upsample_off_checks_size() -> None:
    cfg = build_dataclass(PostprocessConfig, {"relu": "abs", "eps": 1e-4})
    assert cfg == PostprocessConfig(relu="abs", eps=1e-4)
    with pytest.raises(ConfigError):
        build_dataclass(PostprocessConfig, {"relu": "square"})
    with pytest.raises(BenchError):
        postprocess(torch.rand(1, 4, 4), 8, PostprocessConfig(upsample=False))
    same = postprocess(torch.rand(1, 8, 8), 8, PostprocessConfig(upsample=False))
    assert same.shape == (1, 8, 8)
