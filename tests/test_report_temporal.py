"""The report on time-varying inputs (``[T * C, H, W]``, step-major): galleries show the last
step, filmstrips show every step with its mask and each method's map of that step.

Known answers: step t of the synthetic frames is one pure colour per step (red before the last
step, green at it), the object is one pixel column that moves right one pixel per step, and the
temporal method's map of step t is that step's mask."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from bench.explain_figure import Panel, _shown, draw_figure
from bench.report import build_report, filmstrip, gallery
from bench.report.data import load_report_data
from bench.report.display import Layout, mean_rgb, step_gray, step_layout, step_rgb
from bench.store.results import ALL_COLUMNS, write_results
from bench.store.rundir import write_examples

T, H, N, K = 8, 12, 6, 2          # steps, image side, scored samples, example samples
RED, GREEN = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)


# -- display: the channel layout and how a step is drawn ---------------------------------------
@pytest.mark.parametrize("channels, steps, want", [
    (1, None, (1, 1)), (3, None, (1, 3)), (24, None, (8, 3)), (16, None, (8, 2)), (12, 6, (6, 2)),
    (12, None, (4, 3)), (5, None, (5, 1)), (24, 8, (8, 3)), (24, 5, (8, 3))])
def test_step_layout(channels, steps, want):
    lay = step_layout(channels, steps)
    assert (lay.steps, lay.channels) == want


def frames(t_colour=lambda t: GREEN if t == T - 1 else RED) -> np.ndarray:
    """``[T * 3, H, H]``: step t filled with ``t_colour(t)``."""
    return np.concatenate([np.broadcast_to(np.array(t_colour(t), np.float32)[:, None, None], (3, H, H))
                           for t in range(T)])


def events() -> np.ndarray:
    """``[T * 2, H, H]``: at step t an ON event at (0, t) and an OFF event at (H - 1, t)."""
    x = np.zeros((T, 2, H, H), np.float32)
    for t in range(T):
        x[t, 0, 0, t] = 1
        x[t, 1, H - 1, t] = 1
    return x.reshape(T * 2, H, H)


def test_frames_step_and_mean():
    img, lay = frames(), Layout(T, 3)
    assert np.array_equal(step_rgb(img, lay), np.broadcast_to(GREEN, (H, H, 3)))      # last step
    assert np.array_equal(step_rgb(img, lay, 0), np.broadcast_to(RED, (H, H, 3)))
    np.testing.assert_allclose(mean_rgb(img, lay)[0, 0], [(T - 1) / T, 1 / T, 0], rtol=1e-6)
    np.testing.assert_allclose(step_gray(img, lay, 0), np.full((H, H), 1 / 3), rtol=1e-6)


def test_events_are_on_red_off_blue():
    img, lay = events(), Layout(T, 2)
    rgb = step_rgb(img, lay, 3)
    assert rgb[0, 3].tolist() == [1, 0, 0] and rgb[H - 1, 3].tolist() == [0, 0, 1]
    assert rgb.sum() == 2                                   # nothing else lit at step 3
    assert mean_rgb(img, lay)[0, :T, 0].tolist() == [1] * T  # every step's ON events
    assert step_gray(img, lay, 3)[H - 1, 3] == 0.5 and step_gray(img, lay, 3).sum() == 1


# -- a synthetic temporal run ----------------------------------------------------------------
def step_masks() -> np.ndarray:
    """``[K, T, H, H]``: the object is column t + 2 at step t."""
    m = np.zeros((K, T, H, H), bool)
    for t in range(T):
        m[:, t, :, t + 2] = True
    return m


def rows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    out = []

    def add(method, values, timestep=np.nan):
        for i, v in enumerate(values):
            out.append({"run_id": "tmp-1", "dataset": "shapes_motion", "split": "test", "sample_id": i,
                        "target": i % 2, "pred": i % 2, "model": "snn", "method": method,
                        "method_model": "snn", "layer": "", "metric": "step_pointing_game",
                        "timestep": timestep, "point": np.nan, "value": v, "degenerate": 0})

    for method, p in (("sam", 0.9), ("center", 0.3)):
        add(method, (rng.uniform(size=N) < p).astype(float))
        for t in range(T):
            add(method, (rng.uniform(size=N) < p).astype(float), timestep=t)
    return pd.DataFrame(out, columns=list(ALL_COLUMNS))


def run_json() -> dict:
    meta = {"summary": "", "version": "1", "reference": ""}
    return {
        "run_id": "tmp-1", "suite": "tmp", "config_hash": "abc", "command": "hand-built", "seed": 0,
        "config": {"run": {"examples": K}, "report": {"n_boot": 50, "ci": 0.95, "alpha": 0.05}},
        "versions": {"methods": {"sam": {**meta, "temporal": True, "baseline": False},
                                 "center": {**meta, "temporal": False, "baseline": True}},
                     "metrics": {"step_pointing_game": {**meta, "category": "localization",
                                                        "higher_is_better": True, "per_timestep": True}}},
        "models": ["snn"], "models_used": {"snn": {"accuracy": 0.5}},
        "dataset": {"name": "shapes_motion", "split": "test", "n_samples": N, "fingerprint": "f",
                    "class_names": ["disk", "ring"]},
        "git": {"commit": "0" * 40, "dirty": False}, "packages": {"numpy": np.__version__},
        "device": {"device": "cpu"}, "timing": {"wall_s": 1.0, "stages_s": {}}, "cost": [],
        "skipped": [], "n_rows": 0,
    }


def make_run(d, image: np.ndarray) -> None:
    """A run dir whose K example inputs are ``image``; sam's step t map is step t's mask, its
    aggregate the union; center's one map is a centred square."""
    write_results(rows(), d / "results.csv")
    (d / "run.json").write_text(json.dumps(run_json()))
    sm = step_masks()
    write_examples(d / "examples" / "inputs.npz", {
        "position": np.arange(K), "sample_id": np.arange(K) + 10, "label": np.arange(K) % 2,
        "image": np.stack([image] * K).astype(np.float16), "mask": sm.any(1), "step_mask": sm})
    common = {"position": np.arange(K), "sample_id": np.arange(K) + 10, "target": np.arange(K) % 2,
              "pred": np.arange(K) % 2, "degenerate": np.zeros(K, bool)}
    centre = np.zeros((K, H, H), np.float16)
    centre[:, 4:8, 4:8] = 1
    write_examples(d / "examples" / "snn" / "sam.npz", {
        **common, "maps": sm.any(1).astype(np.float16), "steps": sm.transpose(1, 0, 2, 3).astype(np.float16)})
    write_examples(d / "examples" / "snn" / "center.npz", {**common, "maps": centre})


@pytest.fixture(scope="module")
def frames_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("frames_run")
    make_run(d, frames())
    return d


def shown(ax) -> np.ndarray:
    """The array of an axes' first image (what imshow was given)."""
    return np.asarray(ax.get_images()[0].get_array())


def test_gallery_shows_the_last_frame_of_a_24_channel_input(frames_run):
    rd = load_report_data(frames_run)
    fig = gallery.fig_gallery(rd, "snn", rd.examples())
    ax = fig.axes[0]                          # input row, first sample
    assert np.array_equal(shown(ax), np.broadcast_to(GREEN, (H, H, 3)))
    assert ax.get_ylabel() == "input\n(last step)"
    under = shown(fig.axes[K])               # first method row: the gray underlay of the last frame
    np.testing.assert_allclose(under, np.full((H, H), 1 / 3), rtol=1e-3)


def test_filmstrip_shows_each_step_its_mask_and_its_map(frames_run):
    rd = load_report_data(frames_run)
    ex = rd.examples()
    assert filmstrip.example_ids(ex) == [10, 11]
    fig = filmstrip.fig_filmstrip(rd, ex, 1)
    axes = np.array(fig.axes).reshape(-1, T + 1)
    assert axes.shape[0] == 4                 # frames, mask, sam, center
    sm = step_masks()[1]
    labels = [a.get_ylabel() for a in axes[:, 0]]
    assert labels == ["frames", "mask", "sam", "center\n(one map)"]
    for t in range(T):
        assert np.array_equal(shown(axes[0, t]), np.broadcast_to(GREEN if t == T - 1 else RED, (H, H, 3)))
        assert np.array_equal(shown(axes[1, t]), sm[t].astype(float))
        heat = axes[2, t].get_images()[1].get_array()
        assert np.array_equal(np.asarray(heat), sm[t].astype(np.float32))  # the step's own map
        centre = np.asarray(axes[3, t].get_images()[1].get_array())
        assert centre[4:8, 4:8].min() == 1 and centre.sum() == 16             # the same map every step
    assert np.array_equal(np.asarray(axes[2, T].get_images()[1].get_array()), sm.any(0).astype(np.float32))
    assert axes[0, T].get_title() == "all steps"


def png_pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def count(px: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> int:
    return int((np.abs(px - np.array(rgb)).max(-1) < tol).sum())


def test_report_of_a_frames_run_draws_the_frames(frames_run, tmp_path):
    out = build_report(frames_run, tmp_path / "rep")
    figs = {p.name for p in (out / "figures").glob("*.png")}
    assert {"gallery_shapes_motion_snn.png", "filmstrip_shapes_motion_10.png", "filmstrip_shapes_motion_11.png",
            "timesteps_shapes_motion.png"} <= figs
    gal = png_pixels(out / "figures" / "gallery_shapes_motion_snn.png")
    assert count(gal, (0, 255, 0)) > 100 and count(gal, (255, 0, 0)) == 0   # the last step only
    strip = png_pixels(out / "figures" / "filmstrip_shapes_motion_10.png")
    assert count(strip, (255, 0, 0)) > 7 * count(strip, (0, 255, 0)) > 0   # 7 red steps, 1 green
    assert "Filmstrip: sample 10 over time" in (out / "report.html").read_text()


def test_report_of_an_events_run_draws_on_red_off_blue(tmp_path):
    make_run(tmp_path, events())
    out = build_report(tmp_path, tmp_path / "rep")
    strip = png_pixels(out / "figures" / "filmstrip_shapes_motion_10.png")
    red, blue = count(strip, (255, 0, 0)), count(strip, (0, 0, 255))
    assert red > 0 and blue > 0 and abs(red - blue) <= 0.2 * red   # one ON and one OFF event per step
    rd = load_report_data(tmp_path)
    fig = filmstrip.fig_filmstrip(rd, rd.examples(), 0)
    assert fig.axes[0].get_ylabel().startswith("events")
    assert shown(fig.axes[3])[0, 3].tolist() == [1, 0, 0]    # step 3: its ON event, red


def test_no_filmstrip_for_static_inputs(tmp_path):
    make_run(tmp_path, frames()[-3:])
    ex = load_report_data(tmp_path).examples()
    ex["inputs"].pop("step_mask")
    assert filmstrip.example_ids(ex) == []


# -- the paper-style explanation figure ------------------------------------------------------
def test_explain_figure_draws_each_step_over_its_frame(tmp_path):
    image = torch.from_numpy(frames())
    assert np.array_equal(_shown(image, 0, None), np.broadcast_to(RED, (H, H, 3)))
    assert np.array_equal(_shown(image, None, None), np.broadcast_to(GREEN, (H, H, 3)))
    heat = torch.zeros(H, H)
    rows = [("sam", [Panel("input")] + [Panel(f"t={t}", heat, t) for t in range(T)] + [Panel("time mean", heat)])]
    px = png_pixels(draw_figure(image, rows, tmp_path / "fig.png"))
    # jet(0) = dark blue at alpha 0.5: over red (128, 0, 64), over green (0, 128, 64); steps 0-6
    # are red, step 7, the input and the time-mean panel are drawn over the last (green) step
    red, green = count(px, (128, 0, 64), 12), count(px, (0, 128, 64), 12)
    assert green > 0 and red > 2 * green


# -- the summary over time: per-step means and the tracking table ------------------------------
def _step_rows(method: str, metric: str, values: np.ndarray, timestep=None) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({"run_id": "r", "dataset": "shapes_motion", "split": "test", "sample_id": np.arange(n),
                         "target": 0, "pred": 0, "model": "m", "method": method, "method_model": "m",
                         "layer": "", "metric": metric, "timestep": np.nan if timestep is None else float(timestep),
                         "point": np.nan, "value": values, "degenerate": 0})


#: the step metrics of the synthetic run, in the report's column order (their ``over_time`` role)
STEPS = ("step_pointing_game", "step_energy_pointing_game", "step_mask_auroc", "step_deletion")


def tracking(df):
    from bench.report import temporal

    return temporal.tracking_table(df, ("tracking_lag",), ("tracking_residual",))


def test_step_and_tracking_tables_known_answers():
    from bench.report import temporal

    n = 20
    # "early": hits at steps 0-1 only (mean over 4 steps 0.5, first 1, last 0); "static": 0.25 everywhere
    parts = [_step_rows("early", "step_pointing_game", np.full(n, 1.0 if t < 2 else 0.0), t) for t in range(4)]
    parts += [_step_rows("static", "step_pointing_game", np.full(n, 0.25), t) for t in range(4)]
    parts += [_step_rows("early", "step_pointing_game", np.full(n, 0.9))]          # aggregated row: ignored
    lag = np.where(np.arange(n) < 15, 1.0, np.nan)                                 # 15 of 20 have a lag of 1
    parts += [_step_rows("early", "tracking_lag", lag), _step_rows("early", "tracking_residual", np.full(n, 2.5)),
              _step_rows("static", "tracking_lag", np.full(n, np.nan)),
              _step_rows("static", "tracking_residual", np.full(n, 4.0))]
    df = pd.concat(parts, ignore_index=True)
    steps = temporal.step_table(df, STEPS).set_index("method")
    assert steps.loc["early", "mean"] == pytest.approx(0.5) and steps.loc["early", "n"] == n
    assert (steps.loc["early", "first"], steps.loc["early", "last"]) == (1.0, 0.0)
    assert steps.loc["static", "ci"] == "0.250 [0.250, 0.250]"
    track = tracking(df).set_index("method")
    assert track.loc["early", "with_lag"] == pytest.approx(0.75) and track.loc["early", "lag"].startswith("1.000 [")
    assert track.loc["static", "with_lag"] == 0.0 and track.loc["static", "lag"] == "-"
    assert track.loc["static", "residual_px"] == "4.000 [4.000, 4.000]"
    lines = "\n".join(temporal.markdown(temporal.step_table(df, STEPS), tracking(df), STEPS))
    assert "## Over time" in lines and "0.500 [" in lines and "(1.00 -> 0.00)" in lines
    assert temporal.markdown(temporal.step_table(df.iloc[:0], STEPS), tracking(df.iloc[:0]), STEPS) == []
