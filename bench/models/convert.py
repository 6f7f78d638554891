"""ANN-to-SNN conversion of a trained ANN twin (Diehl et al. 2015; Rueckauer et al. 2017).

1. Fold each batch norm (eval statistics) into the preceding conv/fc: ``W' = W * g``,
   ``b' = shift`` with ``g = gamma / sqrt(var + eps)``, ``shift = beta - mean * g``.
2. Threshold balancing: ``lam_l`` = the ``card.train.conversion_percentile``-th percentile of
   the ANN's post-ReLU activations of layer l on training images (a high percentile instead of
   the max ignores outliers). Weights are normalized so every IF threshold is 1:
   ``W_l <- W_l * lam_{l-1} / lam_l``, ``b_l <- b_l / lam_l`` (``lam_0 = 1``: the analog input
   is fed directly at every step), and the non-spiking head gets ``W <- W * lam_last``.
3. The SNN (``card.bn == "none"``: conv/fc biases, IF neurons with leak 1, reset by
   subtraction, threshold 1, direct coding) then approximates each ReLU activation ``a`` by
   its firing rate ``a / lam``; average pooling is linear and commutes with the scaling.
   The shipped card starts each membrane at threshold/2 (``NeuronParams.init_mem``), which
   makes the T-step rate round instead of floor ``T * a / lam`` (Bu et al. 2022). Measured on
   shapes with the zoo ANN (500 test images): T=8 at the 99.9th percentile 44.6% without it,
   90.0% with it; 74.6% / 94.8% at the 99th percentile.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import BenchError
from bench.models.card import ModelCard
from bench.models.record import record

#: Training images used for the activation percentiles (plenty for a 99.9th percentile).
CALIBRATION_IMAGES = 1000


def _fold(layer: nn.Module, norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight, bias)`` of ``layer`` followed by ``norm`` (Identity or shared TimeBatchNorm)."""
    w = layer.weight.detach().clone()
    b = layer.bias.detach().clone() if layer.bias is not None else torch.zeros(w.shape[0])
    if isinstance(norm, nn.Identity):
        return w, b
    scale, shift = norm.folded(0)
    return w * scale.view(-1, *([1] * (w.dim() - 1))), b * scale + shift


@torch.no_grad()
def activation_scales(ann: nn.Module, images: torch.Tensor, percentile: float) -> dict[str, float]:
    """``lam_l``: the percentile of each layer's post-ReLU activations on ``images`` ``[N, C, H, W]``."""
    ann.eval()
    with record(ann, ann.layer_names()) as rec:
        ann(images)
    q = percentile / 100.0
    out = {}
    for name, a in rec.spikes.items():
        flat = a.flatten()
        k = max(1, min(flat.numel(), int(round(q * flat.numel()))))
        out[name] = max(float(flat.kthvalue(k).values), 1e-6)
    return out


@torch.no_grad()
def convert(ann: nn.Module, card: ModelCard, train_images: torch.Tensor) -> nn.Module:
    """An SNN for ``card`` (a converted card) from the trained ANN twin ``ann``."""
    from bench.models.build import build_model

    if ann.card.kind != "ann" or card.source != "converted" or card.bn != "none" or ann.card.arch != card.arch:
        raise BenchError(f"cannot convert {ann.card.name} into {card.name}: need a trained ANN of the "
                         f"same architecture and a converted SNN card without batch norm")
    if ann.card.bn == "bntt":
        raise BenchError(f"{ann.card.name}: conversion needs shared (time-free) batch norm")
    lam = activation_scales(ann, train_images[:CALIBRATION_IMAGES], card.train.conversion_percentile)
    snn = build_model(card)
    pairs = [*zip(ann.convs, ann.norms, snn.convs), *zip(ann.fcs, ann.fc_norms, snn.fcs)]
    prev = 1.0
    for (a_layer, a_norm, s_layer), name in zip(pairs, ann.layer_names()):
        w, b = _fold(a_layer, a_norm)
        s_layer.weight.copy_(w * prev / lam[name])
        s_layer.bias.copy_(b / lam[name])
        prev = lam[name]
    snn.head.weight.copy_(ann.head.weight * prev)
    snn.head.bias.copy_(ann.head.bias if ann.head.bias is not None else torch.zeros_like(snn.head.bias))
    return snn.eval()
