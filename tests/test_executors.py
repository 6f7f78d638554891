"""Executors (``snnxai run --executor``): where the cells run never changes what they write.

The Ray tests start a local Ray instance with 2 CPUs (skipped when Ray is not installed) and
run a small user-model suite (the model travels inside the plan, so the Ray workers need no
checkpoint cache or training): the assembled results.csv must be the same bytes as the local
executor's, a task whose worker dies is retried, and a resumed run skips the finished cells.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
from basic_models import SNNTORCH_USER_FILE

from bench.cli import main as cli_main
from bench.errors import BenchError
from bench.pipeline.executors import EXECUTORS, make_executor
from bench.pipeline.executors.local import LocalExecutor

USER_FILE = SNNTORCH_USER_FILE

SUITE = """
[run]
n_samples = 8
batch_size = 4
examples = 2
[data]
dataset = "shapes"
[data.params]
image_size = 16
[models.tiny_free]
adapter = "snntorch"
source = "{src}:build"
T = 3
[methods.sam]
[methods.snn_gradcam]
[methods.random]
[metrics.pointing_game]
[metrics.deletion]
n_steps = 3
[metrics.sparseness]
[report]
n_boot = 10
"""


def test_executor_choice_and_bad_input():
    assert EXECUTORS[0] == "local" and isinstance(make_executor("local"), LocalExecutor)
    with pytest.raises(BenchError, match="unknown executor 'dask'"):
        make_executor("dask")
    with pytest.raises(BenchError, match="--address needs --executor ray"):
        make_executor("local", address="auto")


def test_cli_rejects_an_unknown_executor(capsys):
    with pytest.raises(SystemExit):  # argparse choices: exit 2 with a usage line
        cli_main(["run", "smoke", "--executor", "dask"])
    assert "invalid choice: 'dask'" in capsys.readouterr().err


# -- Ray ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def user_suite(tmp_path_factory):
    from bench.suite import load_suite

    d = tmp_path_factory.mktemp("user")
    (d / "tiny_net.py").write_text(textwrap.dedent(USER_FILE))
    (d / "tiny.toml").write_text(SUITE.format(src=d / "tiny_net.py"))
    return load_suite(str(d / "tiny.toml"), [f'run.cache_dir="{d / "cache"}"'])


@pytest.fixture(scope="module")
def local_run(user_suite, tmp_path_factory):
    from bench.pipeline.run import run_suite

    return run_suite(user_suite, out=tmp_path_factory.mktemp("local") / "run", progress=False, report=False)


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")   # an optional extra: snn-xai-bench[ray]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def die_once(die_dir: Path, plan, data, cell):
    """A cell task whose worker process dies the first time it runs each cell (a killed
    worker; ``die_dir`` remembers); the retry computes the cell normally."""
    from bench.pipeline.executors.ray_executor import compute_cell

    marker = die_dir / f"{cell.model}-{cell.method or 'scope'}"
    if not marker.exists():
        marker.touch()
        os._exit(1)
    return compute_cell(plan, data, cell)


@pytest.mark.slow
def test_ray_results_are_the_local_bytes(user_suite, local_run, ray_local, tmp_path):
    from bench.pipeline.executors.ray_executor import RayExecutor
    from bench.pipeline.run import run_suite

    out = run_suite(user_suite, out=tmp_path / "ray", progress=False, report=False,
                    executor=RayExecutor(cpus_per_cell=1))
    assert (out / "results.csv").read_bytes() == (local_run / "results.csv").read_bytes()
    for rel in ("cells/tiny_free/sam.csv", "cells/tiny_free/random.csv", "cells/tiny_free/model.json"):
        assert (out / rel).read_bytes() == (local_run / rel).read_bytes(), rel


@pytest.mark.slow
def test_ray_retries_a_killed_worker_and_resumes(user_suite, local_run, ray_local, tmp_path):
    """Each cell's first worker dies (os._exit): Ray retries it and the table is unchanged. Then
    one cell file is removed: a resumed run recomputes that cell only."""
    from ray import cloudpickle

    from bench.pipeline.executors.ray_executor import RayExecutor
    from bench.pipeline.run import run_suite

    die_dir = tmp_path / "die"
    die_dir.mkdir()

    def task(plan, data, cell):
        return die_once(die_dir, plan, data, cell)

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this file
    try:
        out = run_suite(user_suite, out=tmp_path / "run", progress=False, report=False,
                        executor=RayExecutor(max_retries=2, task=task))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert len(list((tmp_path / "die").iterdir())) == 3            # 3 cells, each worker killed once
    assert (out / "results.csv").read_bytes() == (local_run / "results.csv").read_bytes()

    done = {p: p.stat().st_mtime_ns for p in (out / "cells" / "tiny_free").glob("*.json")}
    (out / "cells" / "tiny_free" / "random.json").unlink()
    (out / "results.csv").unlink()
    run_suite(user_suite, out=out, progress=False, report=False, executor=RayExecutor())
    again = {p: p.stat().st_mtime_ns for p in (out / "cells" / "tiny_free").glob("*.json")}
    changed = sorted(p.name for p in again if again[p] != done.get(p))
    assert changed == ["model.json", "random.json"]                # only the missing cell ran
    assert (out / "results.csv").read_bytes() == (local_run / "results.csv").read_bytes()
