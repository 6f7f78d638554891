"""Twin initialisation: an SNN starts from its trained ANN twin's weights (hybrid training).

On the ``headroom`` shapes layout (a small target among clutter) surrogate-gradient training
from random weights stays on the loss plateau that the ANN also crosses only after about two
epochs of 32k images -- and an SNN epoch costs about 12x an ANN epoch on the CPU (measured:
direct LIF, T=8, 4 epochs of 24k from scratch, 733 s, 25.7% test accuracy). Starting from the
twin's features and fine-tuning with BPTT is the hybrid recipe of Rathi et al. (ICLR 2020):
conversion gives the initial weights, surrogate gradients adapt them to the spiking dynamics.

The twin and the SNN are the same module (:mod:`bench.models.arch`); what differs is the batch
norm. The ANN has one shared BatchNorm with a bias; the SNN (BNTT, Kim & Panda 2021) one
BatchNorm per time step *without* a bias. So:

* conv / fc / head weights are copied, multiplied by the scale of their input (``lam`` of the
  layer below, see the next point), so every pre-activation and the twin's running statistics
  keep their meaning;
* every step's BatchNorm gets the twin's running statistics and its scale ``gamma`` divided by
  ``lam_l``, the ``percentile``-th percentile of the twin's post-ReLU activations of layer l on
  training images (threshold balancing, Diehl et al. 2015; Rueckauer et al. 2017): a unit the
  ANN drives to ``a`` then receives about ``a / lam_l`` of a threshold per step, so the layer's
  firing rate approximates its ANN activation instead of saturating at one spike per step;
* the twin's BatchNorm bias has no place to go and is dropped (the fine-tuning compensates).

Layer l's spike rate approximates ``a_l / lam_l`` and layer l+1's weights carry the factor
``lam_l``, as in :func:`bench.models.convert.convert` (which instead folds the batch norm away).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import BenchError
from bench.models.convert import CALIBRATION_IMAGES, activation_scales


@torch.no_grad()
def init_from_twin(snn: nn.Module, ann: nn.Module, train_images: torch.Tensor, percentile: float) -> dict[str, float]:
    """Copy ``ann``'s weights into ``snn`` in place (see module docstring); returns ``lam`` per layer.

    ``train_images``: normalized training images ``[N, C, H, W]`` (the first
    :data:`~bench.models.convert.CALIBRATION_IMAGES` are used for the percentiles).
    """
    if ann.card.kind != "ann" or snn.card.kind != "snn" or ann.card.arch != snn.card.arch:
        raise BenchError(f"cannot initialise {snn.card.name} from {ann.card.name}: need a trained ANN "
                         f"twin of the same architecture")
    if ann.card.bn != "shared" or snn.card.bn not in ("bntt", "shared"):
        raise BenchError(f"{snn.card.name}: twin initialisation needs a shared-BN ANN twin and a "
                         f"batch-normed SNN (got {ann.card.bn} -> {snn.card.bn})")
    lam = activation_scales(ann, train_images[:CALIBRATION_IMAGES], percentile)
    pairs = [*zip(ann.convs, ann.norms, snn.convs, snn.norms), *zip(ann.fcs, ann.fc_norms, snn.fcs, snn.fc_norms)]
    prev = 1.0  # the scale of the layer's input: lam of the layer below (analog input: 1)
    for (a_layer, a_norm, s_layer, s_norm), name in zip(pairs, ann.layer_names()):
        s_layer.weight.copy_(a_layer.weight * prev)
        src = a_norm.norm
        for bn in (s_norm.steps if s_norm.mode == "bntt" else [s_norm.norm]):
            bn.running_mean.copy_(src.running_mean)
            bn.running_var.copy_(src.running_var)
            bn.weight.copy_(src.weight / lam[name])
            if bn.bias is not None:  # a shared-BN SNN keeps the bias, scaled like the weight
                bn.bias.copy_(src.bias / lam[name])
        prev = lam[name]
    snn.head.weight.copy_(ann.head.weight * prev)
    if snn.head.bias is not None and ann.head.bias is not None:
        snn.head.bias.copy_(ann.head.bias)
    return lam
