"""Models: SNNs and their ANN twins, from cards to trained checkpoints.

Public interface::

    get_card(name) -> ModelCard
    build_model(card_or_name) -> nn.Module            # fresh, seeded init
    load_model(name, device="cpu", *, train_if_missing=True, progress=True) -> nn.Module (eval)
    load_model_with_provenance(name, ...) -> (nn.Module, CheckpointProvenance)  # zoo/cache, sha256
    record(model, layers, *, mem=False, grad=False)   # context manager -> Recording
    lif_multistep(inputs [T, N, ...], leak, threshold, reset, surrogate, scale) -> spikes

Every model is called as ``model(x [B, C, H, W] normalized, sample_id=None, seed=0) -> logits
[B, K]`` and has ``.card``, ``.T`` (1 for an ANN) and ``.layer_names()`` ("conv1".., "fc1"..).
Importing this package is cheap: torch is the only heavy import.
"""

from bench.models.card import ModelCard, NeuronParams, TrainParams
from bench.models.load import (
                               CheckpointProvenance,
                               build_model,
                               ensure_trained,
                               get_card,
                               load_model,
                               load_model_with_provenance,
)
from bench.models.neurons import lif_multistep
from bench.models.record import Recording, record

__all__ = ["CheckpointProvenance", "ModelCard", "NeuronParams", "TrainParams", "Recording", "build_model",
           "ensure_trained", "get_card", "lif_multistep", "load_model", "load_model_with_provenance", "record"]
