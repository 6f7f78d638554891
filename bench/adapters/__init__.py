"""Bring your own SNN: adapters that put a foreign model behind the suite's model protocol.

The model protocol (what the runner, every method and every metric need from a model)
-------------------------------------------------------------------------------------
* ``model(x, sample_id=None, seed=0) -> logits [B, K]``: ``x`` is ``[B, C, H, W]``,
  normalized with the dataset's mean/std; the model runs its ``T`` time steps inside the call
  and reduces them to logits. ``sample_id [B]`` and ``seed`` key any randomness (a rate code's
  spikes), so a sample's output never depends on its batch.
* ``model.T``: the number of time steps. ``model.card``: a :class:`bench.models.card.ModelCard`
  (``kind="snn"``, ``T``, ``encoding``, ``num_classes``, ``input_size``, ``in_channels``,
  ``target_layers`` with the default layer first, ``twin``: the optional ANN twin's model name
  that ``ann_*`` methods run on and the transfer attack crafts on; adapted models have none,
  so the plan skips those for them, each with its reason in ``run.json`` and the run's summary).
  The card is hashed into the run id and recorded in ``run.json`` (``versions.models``).
* ``model.layer_names()``: the recordable spiking layers, and
  :func:`bench.models.record.record` ``(model, layers, mem=, grad=)``: a ``with`` block in
  which each forward fills ``rec.spikes[name]`` with ``[T, B, C, H, W]`` spikes (``[T, B, F]``
  for a dense layer) that are part of the autograd graph (SAM reads them; SNN Grad-CAM takes
  ``d logit / d spikes``). Hooks live only inside the block.
* No state survives a call: two calls on the same input give the same logits.

Adapters
--------
:func:`load_user_model` builds the user's module from ``file.py:function``, loads a
checkpoint, and wraps it in :class:`AdaptedSNN`, which

* encodes ``x`` into ``[T, B, C, H, W]`` (``encoding``: "direct" analog currents at every
  step, or "rate": Bernoulli spikes of the [0, 1] intensities keyed by (seed, sample_id)),
  or leaves encoding to the model (``call = "image"``);
* runs the module in its own style (``call``): ``"sequence"`` (the model's own time loop over
  ``[T, B, ...]``), ``"step"`` (the adapter calls it once per step) or ``"image"``; and reads
  out ``[T, B, K] -> [B, K]`` (``readout``: mean, sum or last step);
* finds the spiking layers (the user's module paths, or every neuron the library defines),
  records them with hooks (:mod:`bench.adapters.taps`: per-step outputs are stacked into
  ``[T, B, ...]``, a multi-step layer's ``[T, B, ...]`` is taken as is);
* resets the module's neuron state before and after every call, per instance (never through
  snnTorch's class-level ``SpikingNeuron.instances``, which holds every model's neurons);
* proves all of it on a probe input when it is built (:func:`bench.adapters.model.adapt`):
  an unknown layer, no spiking layer, logits of the wrong width, or different logits from two
  calls on the same input are one-line errors.

Adapters (``adapter = ...``): ``"snntorch"`` (any ``snntorch.SpikingNeuron``: ``Leaky``,
``Synaptic``, ...; explicit ``mem = lif.init_leaky()`` loops and ``init_hidden=True``
modules), ``"spikingjelly"`` (``spikingjelly.activation_based`` neurons, single-step
``step_mode = "s"`` or multi-step ``"m"``, reset with ``functional.reset_net``;
:mod:`bench.adapters.spikingjelly`), ``"plain"`` (a ``torch.nn.Module`` whose spiking layers
the user names; a ``reset_state()`` method, if the model has one, is called before every
call; its layers may be per-step or multi-step, ``[T, B, ...]``). The suite's side:
:class:`UserModelSpec` (``[models.NAME]`` tables, ``snnxai run --model``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.adapters.load import load_user_model
    from bench.adapters.model import AdaptedCard, AdaptedSNN, SpikingLayer, adapt
    from bench.adapters.spec import UserModelSpec, default_name

#: public name -> its module; imported on first use, so that building the CLI stays free of torch
_EXPORTS = {"load_user_model": "load", "AdaptedCard": "model", "AdaptedSNN": "model", "SpikingLayer": "model",
            "adapt": "model", "UserModelSpec": "spec", "default_name": "spec"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bench.adapters' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bench.adapters.{_EXPORTS[name]}"), name)
