"""The robustness part of the report from hand-built run directories: the attack audit (table,
warnings, audit.csv), the paired SAM-vs-Grad-CAM stability table (numbers equal a hand
computation), and the robustness figures (written when their data exist, skipped when not)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from test_report import run_json as plain_run_json
from test_report import synthetic_rows

from bench.report import build_report, figures, robustness
from bench.report.data import load_report_data
from bench.report.gallery import attack_gallery_models, fig_attack_gallery
from bench.report.robustness import pair_cells, paired_frame, whitebox_params
from bench.store.results import ALL_COLUMNS, write_results
from bench.store.rundir import write_examples

N, T = 20, 3
ANN, SNN = "vgg5_ann", "vgg5_snn_t8_poisson"  # zoo names: the audit reads encoding and surrogate from the cards
EPS = (2 / 255, 8 / 255)
EOT = 3  # the suite's EOT (the audit's own default is 8)
ATTACKED_PRED = np.array([[0, 1, 0], [1, 0, 0]])  # [eps, sample] predictions on the attacked examples
N_NOISE_ONLY = 12  # samples only the noise control flips at the largest eps (on the SNN, if warn)


def rows(warn: bool, steps: bool = True) -> pd.DataFrame:
    """Model-scope attack rows for both models; stability rows of sam (on the SNN) and
    ann_gradcam (on the ANN twin, probed for both models); per-time-step rows of sam
    (value 0.1 everywhere, far from the time-aggregated maps' values) when ``steps``."""
    rng = np.random.default_rng(0)
    out = []

    def add(model, method, method_model, metric, values, timestep=np.nan, point=np.nan):
        out.extend({"run_id": "rob-1", "dataset": "shapes", "split": "test", "sample_id": i, "target": 0,
                    "pred": 0, "model": model, "method": method, "method_model": method_model, "layer": "",
                    "metric": metric, "timestep": timestep, "point": point, "value": v, "degenerate": 0}
                   for i, v in enumerate(values))

    for model in (ANN, SNN):
        add(model, "", "", "adversarial_accuracy", np.ones(N), point=0.0)
        for e in EPS:
            white = np.zeros(N)
            white[:2] = 1.0
            noise = np.zeros(N)
            if warn and model == SNN and e == EPS[-1]:
                noise[2:2 + N_NOISE_ONLY] = 1.0  # the control flips 12 samples the white-box attack missed
            add(model, "", "", "adversarial_accuracy", 1 - white, point=e)
            add(model, "", "", "attack_success_whitebox", white, point=e)
            add(model, "", "", "attack_success_transfer", np.zeros(N), point=e)
            add(model, "", "", "attack_success_noise", noise, point=e)
        add(model, "", "", "attack_zero_gradient", np.zeros(N))
        for metric, base in (("stability_spearman", 0.9), ("stability_com_shift", 0.05)):
            for e in EPS:
                add(model, "ann_gradcam", ANN, metric, base - 0.2 * np.sign(base - 0.5) * e * 255 / 8
                    + rng.normal(0, 0.01, N), point=e)
        add(model, "ann_gradcam", ANN, "loc", rng.uniform(0.4, 0.6, N))
    for metric, base in (("stability_spearman", 0.95), ("stability_com_shift", 0.01)):
        for e in EPS:
            add(SNN, "sam", SNN, metric, base + rng.normal(0, 0.01, N), point=e)
            if steps:
                for t in range(T):
                    add(SNN, "sam", SNN, metric, np.full(N, 0.1), timestep=float(t), point=e)
        if steps:
            for t in range(T):  # per-step mean over eps (point empty): not a localization curve
                add(SNN, "sam", SNN, metric, np.full(N, 0.1), timestep=float(t))
    add(SNN, "sam", SNN, "loc", rng.uniform(0.6, 0.8, N))
    for t in range(T):
        add(SNN, "sam", SNN, "loc", rng.uniform(0.5, 0.9, N), timestep=float(t))
    return pd.DataFrame(out, columns=list(ALL_COLUMNS))


def run_json() -> dict:
    meta = {"summary": "", "version": "1", "reference": ""}
    rob = {**meta, "category": "robustness"}
    attack = {"attack": "pgd", "steps": 7, "eot": EOT, "epsilons": list(EPS)}
    metrics = {"loc": {**meta, "category": "localization", "higher_is_better": True},
               "adversarial_accuracy": {**rob, "higher_is_better": True},
               **{f"attack_success_{k}": {**rob, "higher_is_better": False} for k in ("whitebox", "transfer", "noise")},
               "attack_zero_gradient": {**rob, "higher_is_better": False},
               "stability_spearman": {**rob, "higher_is_better": True},
               "stability_com_shift": {**rob, "higher_is_better": False}}
    return {
        "run_id": "rob-1", "suite": "rob", "config_hash": "abc", "command": "hand-built", "seed": 0,
        "config": {"report": {"n_boot": 200, "ci": 0.9, "alpha": 0.05},
                   "metrics": {"adversarial_accuracy": attack, "attack_success_whitebox": {**attack, "eot": 99}}},
        "versions": {"methods": {"sam": {**meta, "temporal": True, "baseline": False},
                                 "ann_gradcam": {**meta, "temporal": False, "baseline": False}},
                     "metrics": metrics},
        "models": [ANN, SNN], "models_used": {ANN: {"accuracy": 1.0}, SNN: {"accuracy": 1.0}},
        "dataset": {"name": "shapes", "split": "test", "n_samples": N, "fingerprint": "f",
                    "class_names": ["disk", "ring"]},
        "git": {"commit": "0" * 40, "dirty": False}, "packages": {}, "device": {"device": "cpu"},
        "timing": {"wall_s": 1.0, "stages_s": {}}, "cost": [], "skipped": [], "n_rows": 0,
    }


def write_run(d, warn: bool, new_keys: bool = True) -> None:
    """A run directory; ``new_keys``: per-step stability rows, adv maps and attacked inputs."""
    write_results(rows(warn, steps=new_keys), d / "results.csv")
    (d / "run.json").write_text(json.dumps(run_json()))
    rng = np.random.default_rng(1)
    k, E = 3, len(EPS)
    image = rng.uniform(0.2, 0.8, (k, 3, 16, 16)).astype(np.float16)
    write_examples(d / "examples" / "inputs.npz", {
        "position": np.arange(k), "sample_id": np.arange(k), "label": np.array([0, 1, 0]), "image": image,
        "mask": rng.uniform(size=(k, 16, 16)) > 0.5})
    for model, method, temporal in ((SNN, "sam", True), (SNN, "ann_gradcam", False), (ANN, "ann_gradcam", False)):
        arr = {"position": np.arange(k), "sample_id": np.arange(k), "target": np.array([0, 1, 0]),
               "pred": np.array([0, 1, 1]), "degenerate": np.zeros(k, bool),
               "maps": rng.uniform(size=(k, 16, 16)).astype(np.float16)}
        if temporal:
            arr["steps"] = rng.uniform(size=(T, k, 16, 16)).astype(np.float16)
        if new_keys:
            arr["adv_points"] = np.array(EPS)
            arr["adv_maps"] = rng.uniform(size=(E, k, 16, 16)).astype(np.float16)
        write_examples(d / "examples" / model / f"{method}.npz", arr)
    if new_keys:
        for model in (ANN, SNN):
            adv = image[None] + (np.array(EPS)[:, None, None, None, None]
                                 * np.sign(rng.normal(size=(E, k, 3, 16, 16))))
            order = np.arange(k)[::-1] if model == SNN else np.arange(k)  # the gallery aligns by sample_id
            write_examples(d / "examples" / model / "attacked.npz", {
                "sample_id": order, "points": np.array(EPS),
                "image": np.clip(adv, 0, 1).astype(np.float16)[:, order],
                "pred": ATTACKED_PRED[:, order]})


@pytest.fixture(scope="module")
def warned(tmp_path_factory):
    d = tmp_path_factory.mktemp("warned")
    write_run(d, warn=True)
    return d, build_report(d)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    d = tmp_path_factory.mktemp("clean")
    write_run(d, warn=False, new_keys=False)
    return d, build_report(d)


def test_audit_warning_shown_in_markdown_and_html(warned):
    _, out = warned
    md, html = (out / "leaderboard.md").read_text(), (out / "report.html").read_text()
    assert "## Robustness audit" in md and "No audit warnings" not in md
    warn_lines = [ln for ln in md.splitlines() if ln.startswith("- ⚠")]
    assert len(warn_lines) == 1 and f"shapes/{SNN} eps=8/255" in warn_lines[0] and "noise" in warn_lines[0]
    assert '<div class="warn">' in html and f"shapes/{SNN} eps=8/255" in html
    assert html.index('<div class="warn">') < html.index("<h2 ")  # above every section


def test_no_warnings_said_explicitly(clean):
    _, out = clean
    md, html = (out / "leaderboard.md").read_text(), (out / "report.html").read_text()
    assert "No audit warnings (checked:" in md and "McNemar" in md
    assert '<div class="ok"><b>No audit warnings</b>' in html and '<div class="warn">' not in html


def test_audit_csv(warned):
    d, out = warned
    a = pd.read_csv(out / "audit.csv")
    assert list(a.columns) == ["dataset", "model", "point", "eps_255", "clean_acc", "adv_acc", "success_whitebox",
                               "success_transfer", "success_noise", "gap_transfer", "gap_noise", "p_transfer",
                               "p_noise", "zero_grad", "encoding", "surrogate", "eot"]
    assert len(a) == 2 * len(EPS)
    r = a[(a["model"] == SNN) & np.isclose(a["eps_255"], 8)].iloc[0]
    assert r["success_whitebox"] == pytest.approx(2 / N) and r["success_noise"] == pytest.approx(N_NOISE_ONLY / N)
    assert r["gap_noise"] == pytest.approx((2 - N_NOISE_ONLY) / N)
    # exact one-sided McNemar: 14 discordant samples, 12 flipped only by noise, 2 only by white-box
    n = N_NOISE_ONLY + 2
    assert r["p_noise"] == pytest.approx(sum(math.comb(n, i) for i in range(N_NOISE_ONLY, n + 1)) / 2 ** n, rel=1e-4)
    assert r["encoding"].startswith("poisson")
    # EOT from the suite (adversarial_accuracy's params first), 1 for the deterministic ANN
    assert whitebox_params(load_report_data(d))["eot"] == EOT
    assert set(a.loc[a["model"] == SNN, "eot"]) == {EOT} and set(a.loc[a["model"] == ANN, "eot"]) == {1}
    assert (a["clean_acc"] == 1.0).all()


def test_paired_table_equals_hand_computation(warned):
    d, out = warned
    p = pd.read_csv(out / "paired_stability.csv", keep_default_na=False, na_values=[""])
    assert {"dataset", "model", "metric", "higher_is_better", "a", "a_model", "b", "b_model", "eps_255",
            "n_pairs", "mean_a", "mean_b", "diff_mean", "ci_lo", "ci_hi", "p", "p_holm", "better"} <= set(p.columns)
    assert set(p["model"]) == {SNN}  # the ANN has no SAM rows
    assert set(zip(p["a"], p["a_model"], p["b"], p["b_model"])) == {("sam", SNN, "ann_gradcam", ANN)}
    assert len(p) == 2 * len(EPS)
    res = rows(warn=True)
    agg = res[res["timestep"].isna() & (res["model"] == SNN)]
    for r in p.itertuples():
        pick = lambda m: agg[(agg["method"] == m) & (agg["metric"] == r.metric)
                             & np.isclose(agg["point"], r.point)].set_index("sample_id")["value"]
        diff = pick("sam") - pick("ann_gradcam")
        assert r.n_pairs == N
        assert r.diff_mean == pytest.approx(diff.mean(), abs=1e-5)
        assert r.mean_a == pytest.approx(pick("sam").mean(), abs=1e-5)
        assert r.ci_lo <= r.diff_mean <= r.ci_hi
    # SAM is clearly more stable on both metrics: higher spearman, lower com_shift (diff < 0)
    com = p[p["metric"] == "stability_com_shift"]
    assert (~com["higher_is_better"]).all() and (com["diff_mean"] < 0).all() and (com["better"] == "sam").all()
    assert (p.loc[p["metric"] == "stability_spearman", "better"] == "sam").all()
    md = (out / "leaderboard.md").read_text()
    assert "## Paired stability under attack" in md and f"sam on {SNN} vs ann_gradcam on {ANN}" in md
    assert "stability_com_shift ↓" in md


def test_pairs_are_generic(warned):
    d, _ = warned
    rd = load_report_data(d)
    assert pair_cells(rd, "sam", "ann_gradcam") == [("shapes", SNN, ("sam", SNN), ("ann_gradcam", ANN))]
    assert pair_cells(rd, "ann_gradcam", "sam") == []  # a must have run on the probed model itself
    assert len(paired_frame(rd, pairs=())) == 0
    assert len(paired_frame(rd, pairs=(("sam", "ann_gradcam"), ("ann_gradcam", "sam")))) == 2 * len(EPS)


def test_robustness_figures_written(warned):
    _, out = warned
    figs = {p.name: p.stat().st_size for p in (out / "figures").glob("*.png")}
    for name in ("models_shapes.png", "curves_robustness_shapes.png", "stability_steps_shapes.png",
                 f"gallery_attack_shapes_{SNN}.png"):
        assert name in figs, name
        assert figs[name] < 200_000, (name, figs[name])
    # the ANN's only attacked cell (its Grad-CAM) is shown in the SNN's gallery already
    assert f"gallery_attack_shapes_{ANN}.png" not in figs
    html = (out / "report.html").read_text()
    assert html.count("data:image/") == len(figs)
    # the robustness section comes before the generic figures, and holds the audit and paired tables
    rob = html.index(">Robustness</h2>")
    assert rob < html.index(">Figures</h2>") and rob < html.index("<h3>Attack audit</h3>")
    assert rob < html.index("<h3>Paired stability under attack</h3>")


def test_old_run_dirs_skip_new_figures(clean, warned, tmp_path):
    _, out = clean
    figs = {p.name for p in (out / "figures").glob("*.png")}
    assert "stability_steps_shapes.png" not in figs and not any(n.startswith("gallery_attack") for n in figs)
    assert {"models_shapes.png", "curves_robustness_shapes.png"} <= figs
    assert (out / "audit.csv").is_file()
    # a run without any attack metric (tests/test_report's table), reported into the directory
    # of the warned run's report: no audit, no robustness files, nothing left of the old report
    d = tmp_path / "plain"
    d.mkdir()
    write_results(synthetic_rows(), d / "results.csv")
    (d / "run.json").write_text(json.dumps(plain_run_json()))
    shutil.copytree(warned[1], tmp_path / "rep")
    rep = build_report(d, tmp_path / "rep")
    assert not (rep / "audit.csv").exists() and not (rep / "paired_stability.csv").exists()
    figs = {p.name for p in (rep / "figures").glob("*.png")}
    assert not any(n.startswith(("gallery_attack", "stability_steps", "curves_robustness")) for n in figs)
    assert (rep / "report.html").read_text().count("data:image/") == len(figs)
    md, html = (rep / "leaderboard.md").read_text(), (rep / "report.html").read_text()
    assert "Robustness audit" not in md and "audit warnings" not in html


def test_attacked_npz_is_not_a_method_cell(warned, tmp_path):
    d, _ = warned
    rd = load_report_data(d)
    ex = rd.examples()
    assert (SNN, "attacked") not in ex and (SNN, "sam") in ex
    assert set(rd.attacked()) == {ANN, SNN} and rd.attacked()[SNN]["image"].shape == (len(EPS), 3, 3, 16, 16)
    assert rd.method_model(SNN, "ann_gradcam") == ANN and rd.method_model(SNN, "sam") == SNN
    assert attack_gallery_models(rd, ex) == [SNN]
    assert attack_gallery_models(rd, {k: v for k, v in ex.items() if k[0] != SNN}) == [ANN]
    fig = fig_attack_gallery(rd, SNN, ex, rd.attacked())
    heads = [a.get_title() for a in fig.axes if a.get_title().startswith(f"attacked on {SNN}")]
    # sample 0 at the largest eps is class 1 ("ring"); unaligned, it would show sample 2's "disk"
    assert heads and heads[0].endswith("pred ring")
    # without attacked inputs the gallery still draws the maps (no attacked-input columns)
    e = tmp_path / "noattacked"
    shutil.copytree(d, e, ignore=shutil.ignore_patterns("report", "attacked.npz"))
    rd2 = load_report_data(e)
    fig = fig_attack_gallery(rd2, SNN, rd2.examples(), rd2.attacked())
    titles = [a.get_title() for a in fig.axes]
    assert not any("attacked on" in t for t in titles) and any("sam\nattacked" in t for t in titles)


def _lines(fig, title: str, row: int = 0) -> dict[str, np.ndarray]:
    axes = [a for a in fig.axes if a.get_title() == title]
    return {ln.get_label(): np.asarray(ln.get_ydata(), float) for ln in axes[row].get_lines()}


def test_stability_curves_use_time_aggregated_rows_only(warned):
    d, _ = warned
    rd = load_report_data(d)
    figures.setup_style()
    fig = figures.fig_curves(rd, "shapes", "robustness")
    # row 1 = the SNN; per-step rows (0.1) must not enter the time-aggregated curve (~0.95)
    sam = _lines(fig, "stability_spearman ↑", row=1)["sam"]
    assert len(sam) == len(EPS) and np.all(sam > 0.9)


def test_step_figure_values_and_timesteps_figure_excludes_stability(warned):
    d, _ = warned
    rd = load_report_data(d)
    figures.setup_style()
    fig = figures.fig_stability_steps(rd, "shapes")
    lines = _lines(fig, "sam: stability_spearman ↑")
    per_eps = {k: v for k, v in lines.items() if k.startswith("eps")}
    assert set(per_eps) == {"eps 2/255", "eps 8/255"}
    assert all(len(v) == T and np.allclose(v, 0.1) for v in per_eps.values())
    ts = figures.fig_timesteps(rd, "shapes")
    assert {a.get_title() for a in ts.axes if a.get_title()} == {"loc ↑"}


def test_better_needs_the_test_and_the_mean_ci_to_agree(tmp_path):
    """A shift in location with a mean difference of about 0 (19 samples slightly better for
    SAM, one much worse; mean +0.0001): Wilcoxon is significant, the CI of the mean spans 0, so
    no side is called better; the clear com_shift difference keeps its winner."""
    res = rows(warn=False, steps=False)
    sel = (res["method"] == "sam") & (res["metric"] == "stability_spearman")
    for e in EPS:
        at = sel & np.isclose(res["point"], e)
        base = res.loc[(res["method"] == "ann_gradcam") & (res["model"] == SNN)
                       & (res["metric"] == "stability_spearman") & np.isclose(res["point"], e), "value"].to_numpy()
        d = np.full(N, 0.01)
        d[-1] = -0.01 * (N - 1) + 0.002                      # mean difference +0.0001
        res.loc[at, "value"] = base + d
    write_results(res, tmp_path / "results.csv")
    (tmp_path / "run.json").write_text(json.dumps(run_json()))
    p = paired_frame(load_report_data(tmp_path))
    sp = p[p["metric"] == "stability_spearman"]
    assert (sp["p_holm"] < 0.05).all() and (sp["ci_lo"] < 0).all() and (sp["ci_hi"] > 0).all()
    assert (sp["diff_mean"] > 0).all() and (sp["better"] == "").all()
    assert (p.loc[p["metric"] == "stability_com_shift", "better"] == "sam").all()


def test_report_roles_come_from_run_json(tmp_path):
    """Report roles recorded in run.json decide (no name list in the report package); a run
    recorded before run.json held roles gets those of the registered specs of the same names."""
    write_run(tmp_path, warn=True, new_keys=False)
    rd = load_report_data(tmp_path)
    assert rd.pairs() == [("sam", "ann_gradcam")] and rd.attack_gallery_methods() == ["sam", "ann_gradcam"]
    assert rd.audit_metrics() == {"accuracy": "adversarial_accuracy", "whitebox": "attack_success_whitebox",
                                  "transfer": "attack_success_transfer", "noise": "attack_success_noise",
                                  "zero_gradient": "attack_zero_gradient"}
    run = json.loads((tmp_path / "run.json").read_text())
    # a recording holds every role field of its time for every entry (absent entries: none)
    run["roles"] = {"methods": {"sam": {"compare_with": [], "attack_gallery": False},
                                "ann_gradcam": {"compare_with": ["sam"], "attack_gallery": False}},
                    "metrics": {"attack_success_noise": {"audit_role": "whitebox"}}}
    (tmp_path / "run.json").write_text(json.dumps(run))
    rd = load_report_data(tmp_path)
    assert rd.pairs() == [("ann_gradcam", "sam")] and rd.attack_gallery_methods() == []
    assert len(paired_frame(rd)) == 0  # ann_gradcam never ran on the probed SNN itself
    assert rd.audit_metrics() == {"whitebox": "attack_success_noise"}
    a = robustness.audit_frame(rd)
    r = a[(a["model"] == SNN) & np.isclose(a["eps_255"], 8)].iloc[0]
    assert r["success_whitebox"] == pytest.approx(N_NOISE_ONLY / N)  # the noise rows, in the white-box role
    assert np.isnan(r["success_transfer"]) and np.isnan(r["clean_acc"])
