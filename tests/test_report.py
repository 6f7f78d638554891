"""The report from a hand-built results table: every file is written and the leaderboard
shows what the numbers say (best in bold, significance marker, direction arrows)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench.report import build_report
from bench.report.data import load_report_data
from bench.report.leaderboard import boards
from bench.store.results import ALL_COLUMNS, read_results, write_results
from bench.store.rundir import write_examples

N, T = 24, 4


def synthetic_rows() -> pd.DataFrame:
    """Two models; methods good > mid > random on 'loc' (per time step for 'good'), a
    deletion curve, and a model-scope accuracy-vs-eps curve."""
    rng = np.random.default_rng(0)
    rows = []

    def add(model, method, metric, values, timestep=np.nan, point=np.nan):
        for i, v in enumerate(values):
            rows.append({"run_id": "syn-1", "dataset": "shapes", "split": "test", "sample_id": i,
                         "target": i % 3, "pred": i % 3, "model": model, "method": method,
                         "method_model": model if method else "", "layer": "", "metric": metric,
                         "timestep": timestep, "point": point, "value": v, "degenerate": 0})

    for model in ("snn", "ann"):
        base = rng.uniform(0, 1, N)
        for method, shift in (("good", 0.6), ("mid", 0.3), ("random", 0.0)):
            add(model, method, "loc", np.clip(base * 0.3 + shift, 0, 1))
            auc = 1 - shift + rng.normal(0, 0.01, N)
            add(model, method, "deletion", auc)
            for p in np.linspace(0, 1, 5):
                add(model, method, "deletion", np.exp(-p * (1 + 3 * shift)) + rng.normal(0, 0.01, N), point=p)
        for t in range(T):
            add(model, "good", "loc", np.clip(base * 0.3 + 0.15 * t, 0, 1), timestep=t)
        add(model, "", "adv_acc", rng.uniform(0, 1, N))
        for p in (0.0, 0.01, 0.02):
            add(model, "", "adv_acc", (rng.uniform(0, 1, N) > p * 30).astype(float), point=p)
    return pd.DataFrame(rows, columns=list(ALL_COLUMNS))


def run_json() -> dict:
    meta = {"summary": "", "version": "1", "reference": ""}
    return {
        "run_id": "syn-1", "suite": "syn", "config_hash": "abc", "command": "hand-built",
        "seed": 0, "config": {"run": {"examples": 2}, "report": {"n_boot": 100, "ci": 0.95, "alpha": 0.05}},
        "versions": {
            "methods": {"good": {**meta, "temporal": True, "baseline": False},
                        "mid": {**meta, "temporal": False, "baseline": False},
                        "random": {**meta, "temporal": False, "baseline": True}},
            "metrics": {"loc": {**meta, "category": "localization", "higher_is_better": True},
                        "deletion": {**meta, "category": "faithfulness", "higher_is_better": False},
                        "adv_acc": {**meta, "category": "robustness", "higher_is_better": True}}},
        "models": ["snn", "ann"], "models_used": {"snn": {"accuracy": 0.9}, "ann": {"accuracy": 0.95}},
        "dataset": {"name": "shapes", "split": "test", "n_samples": N, "fingerprint": "f",
                    "class_names": ["a", "b", "c"]},
        "git": {"commit": "0" * 40, "dirty": False}, "packages": {"numpy": np.__version__},
        "device": {"device": "cpu"}, "timing": {"wall_s": 1.0, "stages_s": {"explain": 0.5}},
        "cost": [{"model": "snn", "method": "good", "metric": "", "stage": "explain", "wall_s": 0.1,
                  "n_samples": N, "forwards": 3, "samples": N, "backwards": 0}],
        "skipped": [{"model": "", "method": "", "metric": "iou", "reason": "no masks"}], "n_rows": 0,
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    write_results(synthetic_rows(), d / "results.csv")
    (d / "run.json").write_text(json.dumps(run_json()))
    rng = np.random.default_rng(1)
    write_examples(d / "examples" / "inputs.npz", {
        "position": np.arange(2), "sample_id": np.arange(2), "label": np.array([0, 1]),
        "image": rng.uniform(0, 1, (2, 3, 8, 8)).astype(np.float16), "mask": rng.uniform(size=(2, 8, 8)) > 0.5})
    for model in ("snn", "ann"):
        for m in ("good", "mid", "random"):
            arr = {"position": np.arange(2), "sample_id": np.arange(2), "target": np.array([0, 1]),
                   "pred": np.array([0, 2]), "degenerate": np.array([False, m == "mid"]),
                   "maps": rng.uniform(size=(2, 8, 8)).astype(np.float16)}
            if m == "good":
                arr["steps"] = rng.uniform(size=(T, 2, 8, 8)).astype(np.float16)
            write_examples(d / "examples" / model / f"{m}.npz", arr)
    return d


def test_results_roundtrip_is_canonical(run_dir):
    df = read_results(run_dir)
    assert list(df.columns) == list(ALL_COLUMNS)
    assert df["timestep"].notna().sum() == 2 * T * N
    text = (run_dir / "results.csv").read_text()
    write_results(df.sample(frac=1, random_state=0), run_dir / "again.csv")
    assert (run_dir / "again.csv").read_text() == text


def test_leaderboard_content(run_dir):
    rd = load_report_data(run_dir)
    bs = {b.model: b for b in boards(rd)}
    assert set(bs) == {"snn", "ann"}
    b = bs["snn"]
    assert b.methods[-1] == "random"              # baselines listed last
    assert b.metrics == ["loc", "deletion"]        # ordered by category
    assert b.cells[("good", "loc")]["best"] and not b.cells[("mid", "loc")]["best"]
    assert b.cells[("good", "deletion")]["best"]   # lower is better
    assert b.cells[("good", "loc")]["better_than_next"]
    lo, hi = b.cells[("good", "loc")]["ci_lo"], b.cells[("good", "loc")]["ci_hi"]
    assert lo <= b.cells[("good", "loc")]["mean"] <= hi


def test_report_writes_every_file(run_dir):
    out = build_report(run_dir)
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.tex", "report.html"):
        assert (out / name).is_file() and (out / name).stat().st_size > 100, name
    figs = {p.name for p in (out / "figures").glob("*.png")}
    for kind in ("points", "curves_faithfulness", "timesteps", "ranks", "agreement", "steps", "models"):
        assert f"{kind}_shapes.png" in figs, kind
    assert {"gallery_shapes_snn.png", "gallery_shapes_ann.png"} <= figs
    md = (out / "leaderboard.md").read_text()
    assert "loc ↑" in md and "deletion ↓" in md and "**" in md and "†" in md
    assert "random *(baseline)*" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/webp;base64,") + html.count("data:image/png;base64,") == len(figs)
    assert "src=\"http" not in html                 # self-contained
    tex = (out / "leaderboard.tex").read_text()
    assert r"\textbf" in tex and r"\toprule" in tex
    csv = pd.read_csv(out / "leaderboard.csv")
    assert {"mean", "ci_lo", "ci_hi", "rank", "best", "better_than_next"} <= set(csv.columns)


def test_report_command(run_dir, tmp_path, capsys):
    from bench.cli import main

    assert main(["report", str(run_dir), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.html").is_file()
    assert "report: report.html" in capsys.readouterr().err  # progress lines while it works
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
