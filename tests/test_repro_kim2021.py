"""`snnxai repro kim2021`: the verdict rule, the new metrics' known answers, and the pages
built from results tables whose answers are known."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bench.repro import kim2021, measure
from bench.repro.page import write_page
from bench.repro.verdict import AGAINST, FOR, INCONCLUSIVE, NEITHER, NOT_SUPPORTED, PARTLY, SUPPORTED, combine, outcome
from bench.store.results import write_results
from metrics._localization import energy_pointing_game as mass_share  # object_mass_share's arithmetic
from metrics.smoothness import autocorrelation_length


# -- the verdict rule ------------------------------------------------------------------------
@pytest.mark.parametrize("lo, hi, p, sign, want", [
    (0.1, 0.3, 0.001, +1, FOR),        # CI above 0, significant, claimed a > b
    (0.1, 0.3, 0.001, -1, AGAINST),    # the same data against a claim a < b
    (-0.3, -0.1, 0.001, -1, FOR),
    (-0.1, 0.3, 0.001, +1, NEITHER),   # significant location test but the CI holds 0
    (0.1, 0.3, 0.2, +1, NEITHER),      # CI excludes 0 but the corrected test does not reject
    (0.1, 0.3, float("nan"), +1, NEITHER),
])
def test_outcome(lo, hi, p, sign, want):
    assert outcome(lo, hi, p, sign) == want


def test_outcome_rejects_bad_sign():
    with pytest.raises(ValueError):
        outcome(0.1, 0.2, 0.01, 0)


@pytest.mark.parametrize("outs, want", [
    ([FOR, FOR], SUPPORTED), ([FOR, NEITHER], PARTLY), ([FOR, AGAINST], PARTLY),
    ([AGAINST, NEITHER], NOT_SUPPORTED), ([NEITHER, NEITHER], INCONCLUSIVE), ([], INCONCLUSIVE),
])
def test_combine(outs, want):
    assert combine(outs) == want


def test_compare_and_decide_known_difference():
    ids = np.arange(40)
    a = pd.Series(np.linspace(0.5, 0.9, 40) + 0.2, index=ids)
    b = pd.Series(np.linspace(0.5, 0.9, 40), index=ids)
    [c] = measure.decide([measure.compare("x", "m", a, b, "a", "b", +1)])
    assert c.n == 40 and c.diff.mean == pytest.approx(0.2) and c.outcome == FOR
    [c] = measure.decide([measure.compare("x", "m", b, b, "a", "b", +1)])
    assert c.outcome == NEITHER and c.p == 1.0


# -- the new metrics -------------------------------------------------------------------------
def _gaussian(sigma: float, n: int = 64) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij")
    return torch.exp(-((yy - n / 2) ** 2 + (xx - n / 2) ** 2) / (2 * sigma**2))[None].float()


def test_autocorrelation_length_delta_is_below_one_pixel():
    d = torch.zeros(1, 32, 32)
    d[0, 10, 20] = 1.0
    assert autocorrelation_length(d).item() == pytest.approx(1 - math.exp(-1), abs=0.02)


@pytest.mark.parametrize("sigma", [2.0, 3.0, 4.0])
def test_autocorrelation_length_gaussian_is_two_sigma(sigma):
    # a Gaussian's autocorrelation is a Gaussian of sigma*sqrt(2): it falls to 1/e at 2 sigma
    assert autocorrelation_length(_gaussian(sigma)).item() == pytest.approx(2 * sigma, rel=0.08)


def test_autocorrelation_length_orders_and_edge_cases():
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    checker = ((yy + xx) % 2).float()[None]
    got = autocorrelation_length(torch.cat([checker, _gaussian(3.0, 32), torch.ones(1, 32, 32)]))
    assert got[0] < 1.0 < got[1]
    assert math.isnan(got[2].item())  # a constant map has no autocorrelation


def test_mass_share_known_answer():
    maps = torch.zeros(2, 4, 4)
    maps[0, :, :2] = 1.0          # all mass on the left half
    maps[1, :, :] = 1.0
    maps[1, 0, 0] = 0.0           # nearly uniform: 7 of 15 units of mass on the left half
    left = torch.zeros(2, 4, 4, dtype=torch.bool)
    left[:, :, :2] = True
    got = mass_share(maps, left)
    assert got.tolist() == pytest.approx([1.0, 7 / 15])
    assert mass_share(torch.zeros(1, 4, 4), left[:1]).item() == 0.0  # no mass anywhere
    assert mass_share(torch.ones(1, 4, 4), left[:1]).item() == pytest.approx(0.5)  # constant: the area share
    assert math.isnan(mass_share(maps[:1], torch.zeros(1, 4, 4, dtype=torch.bool)).item())  # no object


# -- pages from results tables with known answers ---------------------------------------------
def _rows(model: str, method: str, metric: str, values: np.ndarray, timestep: float | None = None,
          dataset: str = "shapes") -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({"run_id": "r", "dataset": dataset, "split": "test", "sample_id": np.arange(n),
                         "target": 0, "pred": 0, "model": model, "method": method,
                         "method_model": model, "layer": "", "metric": metric,
                         "timestep": np.nan if timestep is None else timestep, "point": np.nan,
                         "value": values, "degenerate": 0})


def _layers_table(n: int = 30) -> pd.DataFrame:
    """SAM beats SNN Grad-CAM by 0.3 at conv1/conv2 on every localization metric, ties at
    conv3/conv4; Grad-CAM is smoother (longer autocorrelation) at conv1/conv2."""
    rng = np.random.default_rng(0)
    parts = []
    for L in kim2021.LAYERS:
        gap = 0.3 if L in ("conv1", "conv2") else 0.0
        for k in (*kim2021.LOC, "deletion", "insertion", "spatial_autocorrelation_length"):
            base = rng.uniform(0.2, 0.5, n)
            sam = base + (gap if k in kim2021.LOC else 0.0)
            gc = base + (gap * 10 if k == "spatial_autocorrelation_length" else 0.0)
            parts += [_rows(kim2021.SNN, f"sam@layer={L}", k, sam),
                      _rows(kim2021.SNN, f"snn_gradcam@layer={L}", k, gc),
                      _rows(kim2021.SNN, f"ann_gradcam@layer={L}", k, base)]
        for t in range(2):
            parts.append(_rows(kim2021.SNN, f"sam@layer={L}", "mask_auroc", rng.uniform(0, 1, n), timestep=t))
    return pd.concat(parts, ignore_index=True)


def test_page_layers_known_verdicts(tmp_path):
    (tmp_path / "layers").mkdir()
    write_results(_layers_table(), tmp_path / "layers" / "results.csv")
    page = kim2021.page_layers(tmp_path)
    assert page.verdict == "localization: partly; smoothing: supported"
    out = tmp_path / "reports"
    path = write_page(page, out)
    text = path.read_text()
    assert "conv1, pointing_game" in text and (out / "figures" / "1_layers_time.png").exists()


def test_page_models_known_verdict(tmp_path):
    """The converted SNN localizes better everywhere: 'SAM on the trained SNN is better' is not supported."""
    rng = np.random.default_rng(1)
    a, b = [], []
    for L in kim2021.LAYERS:
        for k in (*kim2021.LOC, "deletion", "insertion"):
            base = rng.uniform(0.2, 0.5, 30)
            a.append(_rows(kim2021.SNN, f"sam@layer={L}", k, base))
            b.append(_rows(kim2021.CONV, f"sam@layer={L}", k, base + (0.3 if k != "deletion" else -0.3)))
    for name, parts in (("layers", a), ("training", b)):
        (tmp_path / name).mkdir()
        write_results(pd.concat(parts, ignore_index=True), tmp_path / name / "results.csv")
    page = kim2021.page_training(tmp_path)
    assert page.verdict == NOT_SUPPORTED


def test_card_facts_only_for_the_checkpoint_the_run_used(tmp_path):
    """Pages 2-3 show a zoo card's accuracy and spike rates only when the card's sha256 is the
    checkpoint the run recorded; an older run against a retrained zoo gets an empty column."""
    card = kim2021._zoo(kim2021.SNN)
    assert card["sha256"]
    (tmp_path / "layers").mkdir()
    run_json = tmp_path / "layers" / "run.json"
    run_json.write_text(json.dumps({"checkpoints": {kim2021.SNN: {"sha256": card["sha256"]}}}))
    got, why = kim2021._card_of_run(tmp_path, ("layers", "training"), kim2021.SNN)
    assert got["test_accuracy"] == card["test_accuracy"] and why == ""
    run_json.write_text(json.dumps({"checkpoints": {kim2021.SNN: {"sha256": "0" * 64}}}))
    got, why = kim2021._card_of_run(tmp_path, ("layers", "training"), kim2021.SNN)
    assert got == {} and "000000000000" in why and card["sha256"][:12] in why
    got, why = kim2021._card_of_run(tmp_path, ("layers", "training"), kim2021.CONV)
    assert got == {} and "no checkpoint" in why


def test_page_knobs_t_section_pairs_each_t_with_t8(tmp_path):
    """T = 4 localizes better than T = 8 by 0.3 at conv1 (pointing game and AUROC), T = 16 ties."""
    rng = np.random.default_rng(2)
    parts = []
    for L in ("conv1", "conv3"):
        for g in (0.5, 2.0):
            name = f"sam@layer={L},gamma={g},variant=inclusive"
            for k in ("pointing_game", "mask_auroc"):
                base = rng.uniform(0.2, 0.5, 30)
                gap = 0.3 if (L == "conv1" and g == 0.5) else 0.0
                parts += [_rows(kim2021.SNN, name, k, base), _rows("vgg5_snn_t4", name, k, base + gap),
                          _rows("vgg5_snn_t16", name, k, base)]
    (tmp_path / "knobs").mkdir()
    write_results(pd.concat(parts, ignore_index=True), tmp_path / "knobs" / "results.csv")
    page = kim2021.page_knobs(tmp_path)
    text = "\n".join(page.lines)
    assert "| vgg5_snn_t4 | 4 |" in text and "| vgg5_snn_t16 | 16 |" in text
    rows = {l.split(" | ")[0].lstrip("| "): l for l in text.splitlines() if ", T=" in l}
    assert len(rows) == 8  # 2 other T x 2 layers x 2 metrics
    assert rows["conv1, pointing_game, T=4 vs 8"].rstrip(" |").endswith(FOR)
    assert not rows["conv3, mask_auroc, T=16 vs 8"].rstrip(" |").endswith(FOR)


def test_page_texture_names_the_failing_condition_and_the_layout_effect(tmp_path):
    """SAM lights up the background (AUROC 0.35) only at conv3 on the centred layout; the spike
    count follows it 0.02 lower everywhere, so SAM's kernel adds 0.02 and r is high."""
    rng = np.random.default_rng(3)
    for lay in kim2021.LAYOUTS:
        for t in kim2021.TEXTURES:
            parts = []
            for m in (kim2021.SNN, kim2021.POISSON, kim2021.CONV):
                for L in kim2021.LAYERS:
                    mu = 0.35 if (lay == "centred" and L == "conv3") else 0.85 - 0.05 * kim2021.LAYERS.index(L)
                    sam = np.clip(mu + rng.normal(0, 0.01, 20), 0, 1)
                    parts += [_rows(m, f"sam@layer={L},gamma=0.5", "mask_auroc", sam),
                              _rows(m, f"sam@layer={L},gamma=50.0", "mask_auroc", sam - 0.02)]
            d = tmp_path / "texture" / kim2021._texture_tag(lay, t)
            d.mkdir(parents=True)
            write_results(pd.concat(parts, ignore_index=True), d / "results.csv")
    page = kim2021.page_texture(tmp_path)
    text = "\n".join(page.lines)
    assert "### Layout `headroom`" in text and "### Layout `centred`" in text
    fails = text.split("below 0.6 (near chance or the background) in: ")[1].split(".")[0]
    assert sorted(fails.split(", ")) == sorted(f"{m} conv3 on centred" for m in (kim2021.SNN, kim2021.POISSON, kim2021.CONV))
    assert "adds to the plain count by 0.020" in text
    assert f"{kim2021.SNN} conv3: headroom 0.75 vs centred 0.35" in text


def test_missing_results_make_a_missing_page(tmp_path):
    page = kim2021.page_pair(tmp_path)
    assert page.missing and not page.verdict
    pages = kim2021.build_pages(tmp_path, tmp_path / "rep", tmp_path / "rob", tmp_path / "robrep")
    assert len(pages) == 7 and (tmp_path / "rep" / "index.md").read_text().count("not measured") == 7


def test_repro_cli_rejects_bad_limit(capsys):
    from bench.cli import main

    assert main(["repro", "kim2021", "--limit", "0", "--pages-only"]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow
def test_repro_smallest_runs_end_to_end(tmp_path, monkeypatch):
    """Every analysis at 2 samples through the real runner and the shipped zoo, then all seven
    pages (page 4's main table reads the committed robustness report)."""
    monkeypatch.setenv("SNNXAI_CACHE", str(tmp_path / "cache"))
    res = tmp_path / "res"
    dirs = kim2021.run_all(res, "cpu", limit=2)
    assert len(dirs) == len(kim2021.runs("cpu")) == 13 and all((d / "results.csv").is_file() for d in dirs)
    root = Path(kim2021.__file__).resolve().parents[2]
    pages = kim2021.build_pages(res, tmp_path / "rep", root / "results" / "robustness", root / "reports" / "robustness")
    assert [p.missing for p in pages] == [""] * 7
    assert all((tmp_path / "rep" / f"{p.slug}.md").is_file() for p in pages)
    knobs = "\n".join(pages[5].lines)
    assert "exclusive" in knobs and "| vgg5_snn_t16 | 16 |" in knobs
    assert "### Layout `centred`" in "\n".join(pages[6].lines)
    fgsm = "\n".join(kim2021._fgsm_section(res))
    assert "| vgg5_snn_t8_poisson, eps 8/255 | FGSM | PGD-10 | 2 |" in fgsm


def _eps_rows(model: str, method: str, metric: str, by_eps: dict[float, np.ndarray]) -> pd.DataFrame:
    parts = []
    for e, v in by_eps.items():
        r = _rows(model, method, metric, v)
        r["point"] = e
        parts.append(r)
    return pd.concat(parts, ignore_index=True)


def test_fgsm_section_pairs_the_attacks_by_sample_and_eps(tmp_path):
    """FGSM leaves 0.4 more accuracy than PGD at every eps; SAM's maps are 0.2 more stable than
    the twin's Grad-CAM under FGSM and tie (up to noise) under PGD."""
    rng = np.random.default_rng(2)
    eps = {2 / 255: None, 8 / 255: None}
    parts = []
    for m in (kim2021.SNN, kim2021.POISSON):
        base = {e: rng.uniform(0.1, 0.5, 40) for e in eps}
        parts.append(_eps_rows(m, "", "adversarial_accuracy@attack=fgsm", {e: b + 0.4 for e, b in base.items()}))
        parts.append(_eps_rows(m, "", "adversarial_accuracy@attack=pgd", base))
        for kind, gap in (("fgsm", 0.2), ("pgd", 0.0)):
            b = {e: rng.uniform(0.3, 0.7, 40) for e in eps}
            parts.append(_eps_rows(m, "sam", f"stability_spearman@attack={kind}", {e: v + gap for e, v in b.items()}))
            parts.append(_eps_rows(m, "ann_gradcam", f"stability_spearman@attack={kind}", b))
    df = pd.concat(parts, ignore_index=True)
    df.loc[df["method"] == "", "method"] = np.nan
    (tmp_path / "attacks").mkdir()
    write_results(df, tmp_path / "attacks" / "results.csv")
    text = "\n".join(kim2021._fgsm_section(tmp_path))
    assert "**Verdict: supported** (under FGSM" in text
    rows = [ln for ln in text.splitlines() if ln.startswith(f"| {kim2021.SNN}, ")]
    assert len(rows) == 2 + 4  # 2 accuracy rows (eps) + 2 attacks x 2 eps stability rows
    acc = [r for r in rows if "FGSM | PGD-10" in r]
    assert len(acc) == 2 and all("0.400 [" in r and r.endswith("| for |") for r in acc)
    pgd = [r for r in rows if ", PGD, eps" in r]
    assert len(pgd) == 2 and all(r.endswith("| neither |") for r in pgd)
    assert "attacks` run" in "\n".join(kim2021._fgsm_section(tmp_path / "nothing"))
