"""A user model by spec: build it from its source, load its checkpoint, adapt it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.adapters.model import AdaptedSNN, adapt
from bench.adapters.source import build_user_module, load_checkpoint_into
from bench.adapters.spec import UserModelSpec

if TYPE_CHECKING:
    from bench.data.base import ImageDataset
    from bench.models.load import CheckpointProvenance


def load_user_model(name: str, spec: UserModelSpec, ds: ImageDataset,
                    dataset: str) -> tuple[AdaptedSNN, CheckpointProvenance]:
    """The user's model ``name`` adapted to dataset ``ds`` (registry name ``dataset``; its shape, classes and
    normalization), on CPU in eval mode, and the provenance of its weights: ``source``
    "user", ``path`` the checkpoint as given ("" for the built weights), ``sha256``
    :func:`bench.store.state_digest` of the loaded module. The card carries the sha256 of the
    source file's and the checkpoint file's bytes too (``file_sha256``, ``checkpoint_sha256``)."""
    from bench.models.load import CheckpointProvenance
    from bench.store import file_digest

    net = build_user_module(spec.source)
    if spec.checkpoint:
        load_checkpoint_into(net, spec.checkpoint)
    model = adapt(net, spec, name=name, dataset=dataset,
                  num_classes=ds.num_classes, channels=ds.channels, size=ds.image_size,
                  input_stats=(tuple(ds.mean), tuple(ds.std)), file_sha256=file_digest(spec.file),
                  checkpoint_sha256=file_digest(spec.checkpoint) if spec.checkpoint else "")
    prov = CheckpointProvenance(model.card.weights_sha256, spec.checkpoint or None, "user",
                                Path(spec.checkpoint or spec.file))
    return model, prov
