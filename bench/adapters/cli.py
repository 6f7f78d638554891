"""The command line's side of user models: ``--model file.py:fn --checkpoint ckpt.pt --adapter
snntorch [--model-param T=4 ...]`` for ``snnxai run`` and ``snnxai explain``."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

from bench.adapters.spec import ADAPTERS, UserModelSpec, default_name
from bench.errors import BenchError

if TYPE_CHECKING:
    from bench.suite import Suite


def add_user_model_arguments(p: argparse.ArgumentParser, *, with_model: bool = True) -> None:
    """``--checkpoint``, ``--adapter``, ``--model-param`` (and ``--model`` when ``with_model``)."""
    if with_model:
        p.add_argument("--model", metavar="FILE.py:FUNCTION",
                       help="evaluate your own SNN instead of the suite's models (see README, "
                            "'Bring your own SNN'); its name is the file's stem, or stem_FUNCTION "
                            "when the file has more than one builder")
    p.add_argument("--checkpoint", default="", metavar="PT",
                   help="state dict to load into --model; without --model, the weights of the (one) "
                        "SNN being explained/probed: this project's format or the SAM reference code's")
    # default None, not "snntorch": an --adapter given without --model must be told, not ignored
    p.add_argument("--adapter", default=None, choices=ADAPTERS,
                   help="how --model is wrapped (default snntorch)")
    p.add_argument("--model-param", action="append", default=[], metavar="KEY=VALUE",
                   help="a field of the user model's spec, e.g. T=4, call=step, encoding=rate, "
                        "layers=[\"lif1\"] (repeatable)")


def user_model_spec(args: argparse.Namespace) -> tuple[str, UserModelSpec]:
    """``--model`` & co -> (model name, spec)."""
    from bench.config import build_dataclass, parse_override

    table: dict[str, object] = {"adapter": args.adapter or "snntorch", "source": args.model,
                                "checkpoint": args.checkpoint}
    for text in args.model_param:
        path, value = parse_override(text)
        table[".".join(path)] = value
    return default_name(args.model), build_dataclass(UserModelSpec, table, "--model-param")


def with_user_model(suite, args: argparse.Namespace):
    """``suite`` probing the ``--model`` model instead of its own models (unchanged without
    ``--model``). ``--checkpoint``/``--adapter``/``--model-param`` without ``--model`` are errors."""
    if not args.model:
        if args.model_param:
            raise BenchError("--model-param needs --model FILE.py:FUNCTION")
        if args.adapter is not None:
            raise BenchError("--adapter needs --model FILE.py:FUNCTION (it says how that model is wrapped)")
        if args.checkpoint:  # the weights of the suite's one registered SNN (bench.models.reference_ckpt)
            return with_checkpoint(suite, args.checkpoint)
        return suite
    name, spec = user_model_spec(args)
    return dataclasses.replace(suite, models=(name,), user_models={name: spec})


def with_checkpoint(suite: Suite, path: str) -> Suite:
    """``suite`` whose one SNN loads its weights from ``path`` (``snnxai run --checkpoint``
    without ``--model``); its ANN twin, if probed, still comes from the zoo / cache."""
    from bench.models import get_card

    snns = [m for m in suite.models if m not in suite.user_models and get_card(m).kind == "snn"]
    if len(snns) != 1:
        raise BenchError(f"--checkpoint without --model needs a suite probing exactly one SNN; this one probes "
                         f"{len(snns)} ({', '.join(snns) or 'none'}): narrow it with --set models=[\"NAME\"]")
    return dataclasses.replace(suite, checkpoints={snns[0]: path})
