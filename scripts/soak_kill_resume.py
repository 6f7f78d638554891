"""Kill/resume soak: SIGKILL a run at random moments, resume it, and check the final table.

``python scripts/soak_kill_resume.py [--suite smoke] [--limit N] [--kills 20] [--seed 0]``

1. runs the suite once to completion into ``WORK/reference`` (the uninterrupted run);
2. then, trial after trial, starts the same run into a fresh ``WORK/trial<k>``, SIGKILLs its
   whole process group at a moment drawn uniformly from ``[--min-s, reference wall time]``,
   resumes it with the same command, and repeats (at most ``--per-trial`` kills, then one last
   resume that is let finish) until the run completes; trials go on until ``--kills`` kills
   have landed (a drawn moment after the run already finished is not a kill);
3. compares each trial's final ``results.csv`` byte for byte with the reference's.

Prints one row per trial (kills, resumes, cells already done at each kill, damaged-file notes
seen, identical) and a total; exit status 1 if any final table differs or any resume fails.
Every run uses the cache folder ``--cache`` (default ``WORK/cache``, via ``SNNXAI_CACHE``), so the
soak never touches the user's cache; ``--cold`` gives each trial an empty one, so kills also land
while heatmaps are being computed and cached.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


@dataclasses.dataclass
class Trial:
    """One run killed ``kills`` times (``done_at_kill``: finished cells at each kill), resumed
    ``resumes`` times; ``notes``: ``note:`` lines its resumes printed; ``identical``: its final
    results.csv equals the reference's bytes; ``error``: why it failed (empty: it did not)."""

    index: int
    kills: int = 0
    resumes: int = 0
    done_at_kill: list[int] = dataclasses.field(default_factory=list)
    notes: int = 0
    wall_s: float = 0.0
    identical: bool = False
    error: str = ""


def run_command(suite: str, out: Path, limit: int | None, report: bool) -> list[str]:
    cmd = [sys.executable, "-m", "bench", "run", suite, "--out", str(out), "--quiet"]
    if limit:
        cmd += ["--limit", str(limit)]
    return cmd + ([] if report else ["--no-report"])


def cells_done(out: Path) -> int:
    """Finished cells in a run directory: their ``.json`` records (``model.json`` and the
    checkpoint records under ``_checkpoints/`` are not cells)."""
    return sum(1 for p in (out / "cells").glob("*/*.json")
               if p.name != "model.json" and p.parent.name != "_checkpoints")


def attempt(cmd: list[str], env: dict[str, str], kill_after: float | None) -> tuple[str, str]:
    """Run ``cmd``; SIGKILL its process group after ``kill_after`` seconds (None: let it finish).
    Returns ``("killed" | "finished" | "failed", stderr)``."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: no child outlives the "crash"
            proc.wait()
            return "killed", ""
        err.seek(0)
        text = err.read().decode(errors="replace")
    return ("finished" if proc.returncode == 0 else "failed"), text


def soak(args: argparse.Namespace) -> list[Trial]:
    work = Path(args.work or tempfile.mkdtemp(prefix="snnxai-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache) if args.cache else work / "cache"
    env = {**os.environ, "SNNXAI_CACHE": str(cache)}
    rng = random.Random(args.seed)
    ref = work / "reference"
    shutil.rmtree(ref, ignore_errors=True)
    t0 = time.perf_counter()
    state, err = attempt(run_command(args.suite, ref, args.limit, args.report), env, None)
    ref_s = time.perf_counter() - t0
    if state != "finished":
        sys.exit(f"the reference run failed:\n{err}")
    reference = (ref / "results.csv").read_bytes()
    n_rows = reference.count(b"\n") - 1
    print(f"reference: {ref} ({ref_s:.1f} s, {cells_done(ref)} cells, {n_rows} rows); work folder {work}",
          flush=True)
    print(HEADER, flush=True)
    trials: list[Trial] = []
    kills = 0
    while kills < args.kills:
        t = Trial(index=len(trials) + 1)
        out = work / f"trial{t.index}"
        shutil.rmtree(out, ignore_errors=True)
        env_t = env if not args.cold else {**env, "SNNXAI_CACHE": str(work / f"cache{t.index}")}
        if args.cold:  # an empty heatmap cache, the models copied (training is not what is soaked)
            shutil.copytree(cache, work / f"cache{t.index}", ignore=shutil.ignore_patterns("heatmaps"),
                            dirs_exist_ok=True)
        cmd = run_command(args.suite, out, args.limit, args.report)
        start = time.perf_counter()
        while True:
            budget = t.kills < args.per_trial and kills < args.kills
            kill_after = rng.uniform(args.min_s, ref_s) if budget else None
            state, err = attempt(cmd, env_t, kill_after)
            t.notes += sum(1 for line in err.splitlines() if line.startswith("note:"))
            if state == "killed":
                t.kills += 1
                kills += 1
                t.done_at_kill.append(cells_done(out))
                t.resumes += 1   # the next attempt resumes the killed run
                continue
            if state == "failed":
                t.error = (err.strip().splitlines() or ["(no output)"])[-1]
            break
        t.wall_s = time.perf_counter() - start
        res = out / "results.csv"
        t.identical = not t.error and res.is_file() and res.read_bytes() == reference
        trials.append(t)
        print(row(t), flush=True)
    return trials


HEADER = f"{'trial':>5} {'kills':>5} {'resumes':>7} {'cells done at each kill':<26} {'notes':>5} {'wall_s':>7}  identical"


def row(t: Trial) -> str:
    at = ",".join(map(str, t.done_at_kill)) or "-"
    ok = "yes" if t.identical else f"NO {t.error}".rstrip()
    return f"{t.index:>5} {t.kills:>5} {t.resumes:>7} {at:<26} {t.notes:>5} {t.wall_s:>7.1f}  {ok}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="smoke", help="suite to soak (default smoke)")
    p.add_argument("--limit", type=int, default=None, help="run.n_samples (keep a big suite small)")
    p.add_argument("--kills", type=int, default=20, help="total kills to land (default 20)")
    p.add_argument("--per-trial", type=int, default=4, help="most kills of one trial before it is let finish")
    p.add_argument("--min-s", type=float, default=1.0, help="earliest kill moment in seconds")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--work", help="work folder (default: a new temporary folder)")
    p.add_argument("--cache", help="SNNXAI_CACHE for every run (default WORK/cache)")
    p.add_argument("--cold", action="store_true", help="each trial starts with an empty heatmap cache")
    p.add_argument("--report", action="store_true", help="also write the report in every run")
    args = p.parse_args(argv)
    trials = soak(args)
    print()
    print(HEADER)
    for t in trials:
        print(row(t))
    n_ok = sum(t.identical for t in trials)
    print(f"total: {len(trials)} trials, {sum(t.kills for t in trials)} kills, "
          f"{sum(t.resumes for t in trials)} resumes, {n_ok}/{len(trials)} final results.csv identical "
          f"to the uninterrupted run")
    return 0 if n_ok == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
