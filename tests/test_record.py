"""record(): shapes, hook removal, membrane potentials and gradients (known answers)."""

import pytest
import torch

from bench.errors import BenchError, UnknownNameError
from bench.models import build_model, record


def _model(name):
    return build_model(name).train()  # batch statistics make a random network fire


def _x(b=2):
    return torch.randn(b, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _hooks(m):
    return sum(len(mod._forward_hooks) + len(mod._forward_pre_hooks) for mod in m.modules())


def test_spike_shapes_and_values():
    m = _model("vgg5_snn_t8_poisson")
    with record(m, m.layer_names()) as rec:
        m(_x(), sample_id=torch.tensor([0, 1]))
    shapes = {k: tuple(v.shape) for k, v in rec.spikes.items()}
    assert shapes == {"conv1": (8, 2, 16, 32, 32), "conv2": (8, 2, 32, 16, 16),
                      "conv3": (8, 2, 64, 8, 8), "conv4": (8, 2, 64, 4, 4)}
    assert all(set(v.unique().tolist()) <= {0.0, 1.0} for v in rec.spikes.values())
    assert 0 < rec.spikes["conv1"].mean() < 1


def test_ann_records_relu_activations_with_time_axis_one():
    m = _model("vgg5_ann")
    with torch.no_grad(), record(m, "conv3") as rec:
        m(_x())
    a = rec.spikes["conv3"]
    assert a.shape == (1, 2, 64, 8, 8) and a.min() >= 0 and a.max() > 0
    with pytest.raises(BenchError, match="membrane"):
        with record(m, "conv3", mem=True):
            pass


def test_hooks_removed_on_exit_and_on_exception():
    m = _model("vgg5_snn_t8")
    before = _hooks(m)
    with record(m, ["conv1", "conv4"], mem=True, grad=True):
        assert _hooks(m) == before + 2
    assert _hooks(m) == before
    with pytest.raises(RuntimeError, match="boom"):
        with record(m, "conv2"):
            m(_x())
            raise RuntimeError("boom")
    assert _hooks(m) == before
    with pytest.raises(UnknownNameError, match="did you mean 'conv3'"):
        with record(m, "conv33"):
            pass
    assert _hooks(m) == before


def test_membrane_matches_spikes_and_no_state_survives():
    m = _model("vgg5_snn_t8")
    x = _x()
    with torch.no_grad():
        ref = m(x)
        with record(m, ["conv2", "conv3"], mem=True) as rec:
            out = m(x)
        after = m(x)
    assert torch.equal(ref, out) and torch.equal(ref, after)
    for k in ("conv2", "conv3"):
        thr = m.card.neuron.threshold
        assert rec.mem[k].shape == rec.spikes[k].shape
        assert torch.equal(rec.spikes[k], (rec.mem[k] > thr).float())


def test_gradients_wrt_spikes_known_answer():
    # vgg5: conv4 spikes -> global average pool -> head, averaged over T, so
    # d logit_c / d spikes[t, b, k, i, j] = W_head[c, k] / (T * H * W).
    m = _model("vgg5_snn_t8")
    x = _x().requires_grad_()
    with record(m, ["conv4", "conv2"], grad=True) as rec:
        out = m(x)
        out[:, 3].sum().backward()
    g = rec.grad["conv4"]
    assert g.shape == rec.spikes["conv4"].shape == (8, 2, 64, 4, 4)
    expected = (m.head.weight[3] / (8 * 16)).view(1, 1, 64, 1, 1).expand_as(g)
    assert torch.allclose(g, expected, atol=1e-7)
    assert rec.grad["conv2"].abs().sum() > 0 and x.grad.abs().sum() > 0


def test_recorded_spikes_are_in_the_graph():
    m = _model("vgg5_snn_t8_poisson")
    with record(m, "conv3", grad=True) as rec:
        out = m(_x(), sample_id=torch.tensor([5, 6]))
    (g,) = torch.autograd.grad(out[:, 0].sum(), rec.spikes["conv3"])
    assert torch.allclose(g, rec.grad["conv3"]) and g.abs().sum() > 0
    m.requires_grad_(False)  # nothing upstream needs grad: the spikes become a leaf
    with record(m, "conv3", grad=True) as rec:
        m(_x(), sample_id=torch.tensor([5, 6]))[:, 0].sum().backward()
    assert rec.grad["conv3"].abs().sum() > 0


def _graph_tensors() -> int:
    """Live tensors that carry an autograd graph (what a leaked recording keeps alive)."""
    import gc

    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor) and o.grad_fn is not None)


@pytest.mark.parametrize("name", ["vgg5_snn_t8", "vgg5_snn_t8_poisson"])
def test_a_grad_recording_is_freed_with_its_graph(name):
    """The gradient hook holds the Recording weakly: once the caller drops it, the Recording and
    the batch's autograd graph are collected. A strong hook closes a cycle through the C++ graph
    that gc cannot break, and every explained batch stayed in memory (issue 15)."""
    import gc
    import weakref

    m = _model(name)

    def explain_once() -> "weakref.ref":
        with record(m, ["conv3"], grad=True) as rec:
            m(_x(), sample_id=torch.tensor([5, 6]))[:, 0].sum().backward()
        assert rec.grad["conv3"].abs().sum() > 0   # the hook still delivers the gradient
        return weakref.ref(rec)

    explain_once()
    before = _graph_tensors()
    refs = [explain_once() for _ in range(3)]
    gc.collect()
    assert all(r() is None for r in refs)
    assert _graph_tensors() == before
