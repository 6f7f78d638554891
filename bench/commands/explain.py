"""``snnxai explain --model M --method sam [--layer L] (--sample I | --image PATH) --out fig.png``:
the paper-style figure for one image (per-step maps every k-th step, SNN and ANN Grad-CAM)."""

from __future__ import annotations

import argparse
import functools

from bench.adapters.cli import add_user_model_arguments
from bench.errors import BenchError

HELP = "draw the paper-style explanation figure for one sample or image"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True,
                   help="model name (see `snnxai ls models`), or your own SNN as FILE.py:FUNCTION")
    p.add_argument("--method", default="sam",
                   help="explanation method (default sam), or a swept variant of one as a run names it, "
                        "e.g. sam@layer=conv1,variant=exclusive")
    p.add_argument("--layer", help="target layer (default: the model card's)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--sample", type=int, metavar="I", help="index into the model dataset's test split")
    src.add_argument("--image", metavar="PATH", help="an image file (resized to the model's input size)")
    p.add_argument("--out", required=True, metavar="FIG", help="output figure (.png, .pdf, .svg)")
    p.add_argument("--every", type=int, metavar="K", help="show every K-th time step (default: about 10 panels)")
    p.add_argument("--target", choices=("label", "pred"), default=None,
                   help="class to explain (default: the label for --sample, the prediction for --image)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="method parameter, e.g. --param gamma=0.3 --param variant=official")
    p.add_argument("--seed", type=int, default=0, help="encoding seed (default 0)")
    p.add_argument("--no-twin", action="store_true", help="leave out Grad-CAM on the ANN twin")
    p.add_argument("--layout", choices=("bench", "paper"), default=None,
                   help="bench: the method's steps and time aggregate, SNN and ANN Grad-CAM rows; paper: "
                        "the SAM paper's one row of per-step maps, every third step (default: paper for "
                        "a model with the reference code's neuron order, e.g. vgg11_snn_t30, else bench)")
    add_user_model_arguments(p, with_model=False)
    p.add_argument("--data", default="shapes", metavar="DATASET",
                   help="the dataset a FILE.py:FUNCTION model reads (default shapes)")
    p.add_argument("--data-param", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset parameter, e.g. --data-param root=/data/tiny-imagenet-200 (as `snnxai run "
                        "--set data.params.KEY=VALUE` and `snnxai train --data-param`)")


def _params(items: list[str]) -> dict[str, object] | None:
    from bench.config import parse_override

    out = {".".join(path): value for path, value in map(parse_override, items)}
    return out or None


def _method(args: argparse.Namespace) -> tuple[str, dict[str, object] | None, str | None]:
    """``--method``, ``--param`` and ``--layer`` -> (registry name, params table, layer): a
    variant name (``sam@layer=conv1``, :mod:`bench.variants`) contributes its swept values; a
    swept layer becomes the figure's layer (every row reads it, as with ``--layer``)."""
    from bench.variants import parse_variant

    method, swept = parse_variant(args.method)
    params = _params(args.param) or {}
    both = sorted(set(swept) & (set(params) | ({"layer"} if args.layer else set())))
    if both:
        raise BenchError(f"--method {args.method!r} already sets {', '.join(both)}; "
                         "do not also give it with --param/--layer")
    layer = swept.pop("layer", None)
    if layer is not None and not isinstance(layer, str):
        raise BenchError(f"--method {args.method!r}: layer must be a name, got {layer!r}")
    return method, {**swept, **params} or None, layer or args.layer


def _load_image(path: str, size: int, channels: int):
    """An image file -> ``[C, size, size]`` float in [0, 1]."""
    import torch
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):  # time-folded frames / events: a still image file has no steps
        raise BenchError(f"--image reads a still 1- or 3-channel image; this model reads {channels} "
                         "channels (a time-varying input): use --sample")

    try:
        img = Image.open(path).convert("RGB" if channels == 3 else "L").resize((size, size), Image.BILINEAR)
    except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
        raise BenchError(f"cannot read image {path!r}: {exc}") from None
    t = torch.tensor(bytearray(img.tobytes()), dtype=torch.uint8).float().div(255)
    return t.view(size, size, channels).permute(2, 0, 1).contiguous()


def _input(args: argparse.Namespace, card):
    """``(image [C, H, W] in [0, 1], Batch of one, class names)``."""
    import torch

    from bench.data import get_dataset
    from bench.data.base import Batch, collate, normalize

    ds = get_dataset(card.dataset, "test", _params(args.data_param))
    if args.image is not None:
        image = _load_image(args.image, card.input_size, card.in_channels)
        x = normalize(image[None], ds.mean, ds.std)
        return image, Batch(x=x, y=torch.tensor([-1]), sample_id=torch.tensor([0])), ds.class_names
    if not 0 <= args.sample < len(ds):
        raise BenchError(f"--sample {args.sample} is out of range (the {card.dataset} test split has {len(ds)})")
    s = ds[args.sample]
    return s.image, collate([s], ds.mean, ds.std), ds.class_names


def _user_model(args: argparse.Namespace):
    """``--model FILE.py:FUNCTION`` with ``--checkpoint``/``--adapter``/``--model-param``/``--data``
    -> (its card, the adapted model)."""
    from bench.adapters import load_user_model
    from bench.adapters.cli import user_model_spec
    from bench.data import get_dataset

    name, spec = user_model_spec(args)
    model, _ = load_user_model(name, spec, get_dataset(args.data, "test", _params(args.data_param)), args.data)
    return model.card, model


def main(args: argparse.Namespace) -> int:
    import torch

    import bench.models as models
    from bench.commands.common import FIGURE_SUFFIXES, check_out_file
    from bench.explain_figure import draw_figure, figure_rows, paper_rows
    from bench.registry import METHODS

    check_out_file(args.out, "--out", FIGURE_SUFFIXES)  # before minutes of work, not after
    method, params, layer = _method(args)
    METHODS.get(method)  # unknown names fail before any model is loaded
    if args.every is not None and args.every < 1:
        raise BenchError(f"--every must be >= 1, got {args.every}")
    if args.sample is not None and args.sample < 0:
        raise BenchError(f"--sample must be >= 0, got {args.sample}")
    if ".py:" in args.model:  # the user's own SNN (bench.adapters): its card is what the adapter finds
        card, model = _user_model(args)
    else:
        if args.adapter is not None or args.model_param:  # they shape a user model only: never ignored
            raise BenchError(f"--adapter and --model-param need --model FILE.py:FUNCTION (a user model); "
                             f"{args.model!r} is a registered model")
        card = models.get_card(args.model)
        if args.checkpoint:  # this project's state dict or the SAM reference code's checkpoint
            from bench.models.load import load_model_file

            model = load_model_file(args.model, args.checkpoint)[0]
        else:
            model = models.load_model(args.model)
    layout = args.layout or ("paper" if card.neuron is not None and card.neuron.order == "fire_integrate"
                             else "bench")
    twin = None
    if layout == "bench" and card.kind == "snn" and card.twin and not args.no_twin:
        twin = models.load_model(card.twin)
    image, batch, names = _input(args, card)
    with torch.no_grad():
        pred = model(batch.x, sample_id=batch.sample_id, seed=args.seed).argmax(1)
    use_pred = args.target == "pred" or (args.target is None and args.image is not None)
    if not use_pred and int(batch.y[0]) < 0:
        raise BenchError("--target label needs --sample (an image file has no label)")
    target = pred if use_pred else batch.y
    draw_rows = paper_rows if layout == "paper" else functools.partial(figure_rows, twin=twin)
    rows = draw_rows(method, model, card, batch, target, params=params, layer=layer, every=args.every,
                     seed=args.seed)
    what = f"sample {args.sample}" if args.image is None else args.image
    label = f", label {names[int(batch.y[0])]}" if int(batch.y[0]) >= 0 else ""
    title = f"{args.model} {what}: target {names[int(target[0])]}{label}, pred {names[int(pred[0])]}"
    out = draw_figure(image, rows, args.out, title)
    print(f"wrote {out}")
    return 0
