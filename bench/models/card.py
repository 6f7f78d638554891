"""Model cards: everything that defines a model, in one frozen record (timm-style).

Model names follow ``<arch>_<kind>[_t<T>][_variant]``: ``vgg5_ann``, ``vgg5_snn_t8``,
``vgg11_snn_t30``. A card names its ANN twin, T, input encoding, neuron parameters, BN mode and
the default target layers for explanation (the first one is the default).
"""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class NeuronParams:
    """LIF neuron: ``u_t = leak * u_{t-1} + I_t``; spike when ``u_t > threshold`` (strict, as the paper's code and snnTorch).

    leak 1.0 is the IF neuron. reset: "subtract" (u -= threshold) or "zero".
    surrogate: "pwl" (the paper's 0.3*max(0, 1-|u/theta-1|)), "atan", "fast_sigmoid".
    order: "integrate_fire" (integrate, then fire in the same step: the lab's BNTT training
    code, snnTorch) or "fire_integrate" (fire from the previous step's membrane, then integrate:
    the SAM reference code); see :mod:`bench.models.neurons`.
    """

    leak: float = 0.99
    threshold: float = 1.0
    reset: Literal["subtract", "zero"] = "subtract"
    surrogate: Literal["pwl", "atan", "fast_sigmoid"] = "pwl"
    surrogate_scale: float = 0.3
    # Membrane at t = -1 as a fraction of the threshold (0: rest). Converted SNNs use 0.5, which
    # turns the rate code's floor quantization into rounding (Rueckauer et al. 2017; Bu et al. 2022).
    init_mem: float = 0.0
    # Left out of plain data (card hashes, cache keys, sidecars) at its default, so every card
    # written before the option existed keeps its hash (bench.config.to_plain, "omit_default").
    order: Literal["integrate_fire", "fire_integrate"] = dataclasses.field(
        default="integrate_fire", metadata={"omit_default": True})


@dataclasses.dataclass(frozen=True)
class TrainParams:
    """Training recipe (part of the checkpoint cache key)."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.1
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: Literal["cosine", "step"] = "cosine"
    n_train: int = 8000
    label_smoothing: float = 0.0
    # ANN-to-SNN conversion: percentile of activations used for threshold balancing.
    conversion_percentile: float = 99.9
    # "scratch": random initial weights. "twin": start from the trained ANN twin's weights
    # (hybrid training, Rathi et al. 2020; bench.models.twin_init), then train as usual. The name
    # of another registered model card: start from that model's trained weights (trained on its
    # own data), which must have this model's architecture and kind (transfer learning, e.g. the
    # static shapes SNN to the SNN reading moving frames; init_source below).
    # Omitted from plain data at its default (bench.config.to_plain), like NeuronParams.order.
    init: str = dataclasses.field(default="scratch", metadata={"omit_default": True})


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """A model's full definition.

    kind: "snn" or "ann". source: "trained" (surrogate BPTT / standard), or "converted"
    (ANN-to-SNN from ``twin``). encoding: "direct" (analog input every step), "poisson"
    ([0, 1] rate coding), "poisson_signed" (the paper's signed coding of normalized input),
    or "analog" for ANNs; "frames" / "events": time-varying input folded into the channels
    (``in_channels = T * per-step channels``; :func:`bench.models.encoders.sequence_input`),
    read step by step by an SNN and time-averaged by an ANN twin (whose ``T`` names the data's
    steps). bn: "bntt" (one BatchNorm per time step, no bias, the paper) or
    "shared" (one BatchNorm over all steps) or "none".
    """

    name: str
    kind: Literal["snn", "ann"]
    arch: str
    dataset: str
    num_classes: int
    input_size: int
    in_channels: int = 3
    T: int = 1
    encoding: Literal["direct", "poisson", "poisson_signed", "analog", "frames", "events"] = "analog"
    neuron: NeuronParams | None = None
    bn: Literal["bntt", "shared", "none"] = "shared"
    twin: str | None = None
    source: Literal["trained", "converted"] = "trained"
    target_layers: tuple[str, ...] = ()
    train: TrainParams = TrainParams()
    summary: str = ""

    @property
    def default_layer(self) -> str:
        return self.target_layers[0]


#: values of ``TrainParams.init`` that name no other model
INIT_KINDS = ("scratch", "twin")


def init_source(card: ModelCard) -> str | None:
    """The model whose trained weights ``card`` starts from (``card.train.init`` naming a model
    card), or None for ``"scratch"`` / ``"twin"``."""
    return None if card.train.init in INIT_KINDS else card.train.init


def needs_twin(card: ModelCard) -> bool:
    """Whether ``card``'s weights are derived from its trained ANN twin (conversion or twin init)."""
    return bool(card.twin) and (card.source == "converted" or card.train.init == "twin")
