"""The metric contract is small: a metric receives only what it uses, asks for models by what they
are, and returns what it computed; the runner names, memoizes and renders the work.

A throw-away metric written only against :class:`metrics.base.ScoreInput` (re-explain on a
randomized copy, attack the input) is registered here as a module under ``metrics/`` would be;
the run memoizes its work (the cost record in run.json shows the reuse) and the report's
clean-vs-attacked gallery renders its attacked inputs, with no edit under ``bench/``.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import pathlib

import pytest
import torch

from bench.attacks.core import AttackSpec
from bench.registry import METHODS, METRICS
from bench.store.rundir import load_npz
from bench.suite import load_suite
from metrics.base import AttackedInputs, ScoreInput, Scores, variant
from metrics.sanity import RandomizedStage

ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class ProbeParams:
    eps: float = 2 / 255


def probe(inp: ScoreInput, params: ProbeParams) -> Scores:
    """Mean absolute change of the maps under a randomized top layer, plus under a one-step attack."""
    randomized = inp.explain(inp.batch.x, variant(RandomizedStage("default", False, 1)))
    x_adv = inp.attack(AttackSpec(kind="fgsm", steps=1), params.eps)
    attacked = inp.explain(x_adv)
    change = (randomized - inp.maps).abs().flatten(1).mean(1) + (attacked - inp.maps).abs().flatten(1).mean(1)
    return Scores(values=change, curve=change[:, None], points=(params.eps,),
                  attacked=AttackedInputs(points=(params.eps,), inputs=(x_adv,)))


SUITE = """
models = ["vgg5_snn_t8"]
[run]
seed = 0
device = "cpu"
batch_size = 4
n_samples = 4
examples = 2
cache_dir = "{cache}"
[data]
dataset = "shapes"
split = "test"
[methods.sam]
[methods.snn_gradcam]
[metrics.probe_first]
[metrics.probe_again]
"""


@pytest.fixture
def probes():
    meta = dict(summary="test probe", category="robustness", higher_is_better=False,
                needs=frozenset({"model", "explainer"}), output="curve", version="1", reference="test only",
                params=ProbeParams, attacked=True)
    with METRICS.temporary("probe_first", probe, **meta), METRICS.temporary("probe_again", probe, **meta):
        yield


def test_a_new_metric_is_memoized_and_rendered_without_editing_bench(probes, tmp_path):
    from bench.pipeline.run import run_suite
    from bench.report import build_report

    path = tmp_path / "probe.toml"
    path.write_text(SUITE.format(cache=tmp_path / "cache"))
    out = run_suite(load_suite(str(path)), out=tmp_path / "run", progress=False, report=False)
    run = json.loads((out / "run.json").read_text())
    cost = {(c["method"], c["metric"]): c for c in run["cost"] if c["stage"] == "score"}
    for method in ("sam", "snn_gradcam"):
        first, again = cost[(method, "probe_first")], cost[(method, "probe_again")]
        assert first["forwards"] > 0 and again["forwards"] == 0 and again["backwards"] == 0, (first, again)
    # SAM needs no gradient: its probe's one backward pass is the FGSM step. The second method
    # reuses that adversarial batch (same model, same batch): its backward passes are its own two
    # explanations (the randomized copy, the attacked input), none for the attack
    assert cost[("sam", "probe_first")]["backwards"] == 1
    assert cost[("snn_gradcam", "probe_first")]["backwards"] == 2
    sam = load_npz(out / "examples" / "vgg5_snn_t8" / "sam.npz")
    assert sam["adv_maps"].shape == (1, 2, 32, 32)   # the gallery holds the probe's attacked inputs
    build_report(out)
    assert [p.name for p in out.rglob("gallery_attack_*.png")] == ["gallery_attack_shapes_vgg5_snn_t8.png"]


def _string_constants(path: pathlib.Path) -> list[tuple[int, str]]:
    """String literals of a module, except keyword-argument values of calls (matplotlib's
    ``va="center"`` is a style, not the ``center`` baseline) and docstrings."""
    tree = ast.parse(path.read_text())
    skip = {id(k.value) for node in ast.walk(tree) if isinstance(node, ast.Call) for k in node.keywords}
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            skip.add(id(body[0].value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip]


def test_the_planner_and_the_report_name_no_method_metric_or_params_class():
    names = set(METHODS.names()) | set(METRICS.names())
    params = {e.params_cls.__name__ for reg in (METHODS, METRICS) for e in reg if e.params_cls is not None}
    files = sorted((ROOT / "bench" / "report").glob("*.py")) + [ROOT / "bench" / "pipeline" / "plan.py"]
    found = []
    for f in files:
        found += [(f.name, line, v) for line, v in _string_constants(f) if v in names]
        tree = ast.parse(f.read_text())
        found += [(f.name, n.lineno, n.id if isinstance(n, ast.Name) else n.attr) for n in ast.walk(tree)
                  if isinstance(n, (ast.Name, ast.Attribute)) and (n.id if isinstance(n, ast.Name) else n.attr) in params]
    assert not found


def test_the_scan_finds_a_planted_name(tmp_path):
    planted = tmp_path / "x.py"
    planted.write_text('HEADLINE = ("pointing_game", "deletion")\nplt.text(va="center")\n')
    assert [v for _, v in _string_constants(planted)] == ["pointing_game", "deletion"]


def test_metrics_build_no_cache_key():
    """No metric module uses the runner's memo, a key or a model loader (the grep of the issue)."""
    import re

    pattern = re.compile(r"memo|_key\b|load_model")
    hits = [f"{p.name}:{i}" for p in sorted((ROOT / "metrics").glob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits


def test_score_input_is_narrow():
    names = {f.name for f in dataclasses.fields(ScoreInput)}
    assert not names & {"memo", "explain_key", "method_model_key", "load_model", "model", "method_model"}
    assert names == {"maps", "batch", "degenerate", "seed", "data_mean", "data_std", "timestep", "steps",
                     "model_fn", "explain", "attack"}


def test_a_missing_service_is_one_clear_error():
    from bench.data.base import Batch
    from bench.errors import BenchError

    b = Batch(x=torch.zeros(1, 1, 4, 4), y=torch.zeros(1, dtype=torch.long), sample_id=torch.zeros(1, dtype=torch.long))
    with pytest.raises(BenchError, match="stability_spearman needs explain"):
        METRICS.get("stability_spearman").obj(ScoreInput(maps=torch.zeros(1, 4, 4), batch=b),
                                               METRICS.get("stability_spearman").make_params())
