"""Plugins (bench.plugins): third-party distributions registering through entry points.

Each test makes tiny installed distributions in a temporary folder (a package plus a
``*.dist-info`` with ``METADATA`` and ``entry_points.txt``) and puts it on ``sys.path``, which
is all ``importlib.metadata`` needs to find them: the ``demo`` plugin registers a method, the
broken ones fail on import or half-way through registering."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from bench.cli import main as cli_main
from bench.plugins import FAILURES, LOADED, PluginWarning, fingerprint, load_plugins
from bench.registry import BUILTIN_SOURCE, METHODS, METRICS, REGISTRIES

ROOT = Path(__file__).resolve().parents[1]

DEMO = '''
"""A third-party method: the map is 1 on the top-left quarter of the image, 0 elsewhere."""
import torch
from bench.registry import METHODS

@METHODS.register(summary="top-left quarter prior (a plugin)", model_kind="any", temporal=False,
                  needs_grad=False, needs_label=False, version="1", reference="a test plugin")
def demo_corner(inp, params):
    B, _, H, W = inp.x.shape
    out = torch.zeros(B, H, W)
    out[:, : H // 2, : W // 2] = 1.0
    return out
'''

HALF_BROKEN = '''
"""Registers one method, then fails: the plugin is skipped as a whole."""
import torch

def register(registry):
    registry.register(summary="never kept", model_kind="any", temporal=False, needs_grad=False,
                      needs_label=False, version="1", reference="a test plugin")(lambda inp, params: None)
    raise RuntimeError("the plugin's own bug")
'''


def _dist(site: Path, dist: str, package: str, code: str | None, entry_points: str) -> None:
    """An installed distribution ``dist`` (version 0.1) in ``site``: module ``package`` with
    ``code`` (None: no module) and the given ``entry_points.txt``."""
    if code is not None:
        (site / f"{package}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def site(tmp_path: Path, monkeypatch) -> Path:
    """A folder on sys.path with the ``snnxai-demo-plugin`` distribution and two broken ones;
    whatever they register is removed afterwards."""
    METHODS.names(), METRICS.names()  # the built-ins (and any plugin installed for real) load first
    site = tmp_path / "site"
    site.mkdir()
    _dist(site, "snnxai-demo-plugin", "snnxai_demo_plugin", DEMO,
          "[snn_xai_bench.methods]\ndemo = snnxai_demo_plugin\n")
    _dist(site, "snnxai-missing-plugin", "snnxai_missing_plugin", None,
          "[snn_xai_bench.metrics]\nmissing = snnxai_missing_plugin\n")
    _dist(site, "snnxai-half-plugin", "snnxai_half_plugin", HALF_BROKEN,
          "[snn_xai_bench.methods]\nhalf = snnxai_half_plugin:register\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in ("demo_corner", "<lambda>"):
        METHODS.discard(name)
    for module in ("snnxai_demo_plugin", "snnxai_half_plugin"):
        sys.modules.pop(module, None)
    FAILURES.pop("method", None), FAILURES.pop("metric", None)
    LOADED.pop("snnxai-demo-plugin", None)


def _load(registry) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_plugins(registry, REGISTRIES)
    return [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]


def test_a_plugin_method_is_registered_under_its_distribution(site: Path):
    said = _load(METHODS)
    entry = METHODS.get("demo_corner")
    assert entry.source == "snnxai-demo-plugin" and METHODS.get("sam").source == BUILTIN_SOURCE
    assert entry.spec.model_kind == "any"
    # the half-registered plugin is skipped whole: its first registration is gone again
    assert "<lambda>" not in METHODS.names()
    assert said == ["plugin 'half' (snnxai-half-plugin, snn_xai_bench.methods = 'snnxai_half_plugin:register') "
                    "skipped: RuntimeError: the plugin's own bug"]
    said = _load(METRICS)
    assert len(said) == 1 and said[0].startswith("plugin 'missing' (snnxai-missing-plugin, ")
    assert "ModuleNotFoundError: No module named 'snnxai_missing_plugin'" in said[0]


def test_ls_lists_a_loaded_plugin_with_its_package(site: Path, capsys):
    _load(METHODS)
    assert cli_main(["ls", "methods", "--where", "model_kind=any"]) == 0
    lines = capsys.readouterr().out.splitlines()
    col = lines[0].split().index("package")
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["demo_corner"][col] == "snnxai-demo-plugin" and rows["center"][col] == BUILTIN_SOURCE


@pytest.mark.slow
def test_ls_in_a_fresh_process_loads_plugins_and_warns_in_one_line(site: Path, tmp_path: Path):
    """A fresh process: the registries load the entry points themselves; the listing cache
    is keyed by the installed plugins and repeats their warnings."""
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}", "SNNXAI_CACHE": str(tmp_path / "cache")}
    for _ in range(2):  # built live, then read from the listing cache
        out = subprocess.run([sys.executable, "-m", "bench", "ls", "methods", "--where", "package=snnxai-demo-plugin"],
                             capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
        assert out.returncode == 0, out.stderr
        header, row = out.stdout.splitlines()
        assert header.split()[-2:] == ["package", "summary"]
        assert row.split()[:2] == ["demo_corner", "any"] and "snnxai-demo-plugin" in row.split()
        errs = out.stderr.splitlines()
        assert len(errs) == 1 and errs[0].startswith("warning: plugin 'half' (snnxai-half-plugin, "), errs
    out = subprocess.run([sys.executable, "-m", "bench", "ls", "metrics"], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0 and "pointing_game" in out.stdout
    assert out.stderr.startswith("warning: plugin 'missing' (snnxai-missing-plugin, ") and out.stderr.count("\n") == 1


def test_the_fingerprint_follows_the_installed_plugins(tmp_path: Path, monkeypatch):
    before = fingerprint()
    site = tmp_path / "site"
    site.mkdir()
    _dist(site, "snnxai-other-plugin", "snnxai_other_plugin", None, "[snn_xai_bench.models]\nx = snnxai_other_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    assert fingerprint() != before


PLAIN_MODEL = '''
import torch
from torch import nn

class Fire(nn.Module):
    """Multi-step IF: [T, B, ...] -> spikes [T, B, ...]."""
    def forward(self, z):
        u, out = torch.zeros_like(z[0]), []
        for zt in z:
            u = u + zt
            s = (u > 0.5).float()
            out.append(s + zt - zt.detach())
            u = u - s
        return torch.stack(out)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.act, self.fc = nn.Conv2d(3, 4, 3, padding=1), Fire(), nn.Linear(4, 10)

    def forward(self, x_seq):
        T, B = x_seq.shape[:2]
        z = self.conv(x_seq.flatten(0, 1)).view(T, B, 4, *x_seq.shape[-2:])
        return self.fc(self.act(z).mean((3, 4)))

def build():
    return Net()
'''

SUITE = """
[run]
n_samples = 2
batch_size = 2
examples = 0
[data]
dataset = "shapes"
[data.params]
image_size = 16
[models.plain_net]
adapter = "plain"
source = "{src}:build"
layers = ["act"]
T = 2
[methods.demo_corner]
[methods.center]
[metrics.energy_pointing_game]
[report]
n_boot = 10
"""


def test_a_plugin_method_runs_in_a_suite(site: Path, tmp_path: Path, monkeypatch):
    _load(METHODS)
    monkeypatch.setenv("SNNXAI_CACHE", str(tmp_path / "cache"))
    (tmp_path / "net.py").write_text(textwrap.dedent(PLAIN_MODEL))
    (tmp_path / "s.toml").write_text(SUITE.format(src=tmp_path / "net.py"))
    assert cli_main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "run"), "--quiet", "--no-report"]) == 0
    import pandas as pd

    rows = pd.read_csv(tmp_path / "run" / "results.csv")
    epg = rows[rows.metric == "energy_pointing_game"].set_index(["method", "sample_id"]).value
    # known answer: the share of the map's mass on the object = the object's share of the top-left quarter
    from bench.data import get_dataset

    ds = get_dataset("shapes", "test", {"image_size": 16})
    for i in (0, 1):
        mask, sid = ds[i].mask, ds[i].sample_id
        assert epg[("demo_corner", sid)] == pytest.approx(float(mask[:8, :8].float().sum() / 64), abs=1e-6)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["versions"]["methods"]["demo_corner"]["reference"] == "a test plugin"
    # provenance: the distribution and version behind the plugin's name (the built-ins, the
    # dataset and the user's own model are no plugin's)
    assert run["plugins"] == {"methods": {"demo_corner": {"distribution": "snnxai-demo-plugin", "version": "0.1"}}}


def test_plugin_provenance_is_recorded_but_never_hashed(site: Path, tmp_path: Path, monkeypatch):
    """The plugins' record does not change the run id: another version of a plugin (same
    spec) is the same run, and a suite without a plugin records none (its run.json as before)."""
    from bench import plugins
    from bench.pipeline.plan import make_plan
    from bench.pipeline.shard import Shard
    from bench.provenance import plugin_record
    from bench.registry import MODELS, registering_as
    from bench.suite import load_suite

    _load(METHODS)
    (tmp_path / "net.py").write_text(textwrap.dedent(PLAIN_MODEL))
    (tmp_path / "s.toml").write_text(SUITE.format(src=tmp_path / "net.py"))
    plan = make_plan(load_suite(tmp_path / "s.toml"))
    manifest = plan.manifest(Shard(), "", [], [])
    assert manifest["plugins"]["methods"]["demo_corner"]["version"] == "0.1"
    monkeypatch.setitem(plugins.LOADED, "snnxai-demo-plugin", "0.2")
    again = make_plan(load_suite(tmp_path / "s.toml"))
    assert again.manifest(Shard(), "", [], [])["plugins"]["methods"]["demo_corner"]["version"] == "0.2"
    assert again.run_id == plan.run_id and again.config_hash == plan.config_hash
    without = make_plan(load_suite(tmp_path / "s.toml", ['methods={"center" = {}}']))
    assert "plugins" not in without.manifest(Shard(), "", [], [])
    # every registry counts; an entry of a distribution that is not installed has no version
    card = dataclasses.replace(MODELS.get("vgg5_ann").obj, name="plugin_ann")
    with registering_as("snnxai-absent-plugin"), MODELS.temporary("plugin_ann", card):
        assert plugin_record({"models": ["plugin_ann", "vgg5_ann"], "methods": ["demo_corner", "sam"]}) == {
            "models": {"plugin_ann": {"distribution": "snnxai-absent-plugin", "version": None}},
            "methods": {"demo_corner": {"distribution": "snnxai-demo-plugin", "version": "0.2"}}}
