"""Paper reproductions as measured verdicts (``snnxai repro <paper>``).

A reproduction runs the suites it needs through :func:`bench.pipeline.run.run_suite` (resumable: the
runner skips finished cells) and turns their results into one report page per claim of the
paper: the claim, the setting, the measurement (mean, bootstrap CI, paired test), a verdict by
the rule of :mod:`bench.repro.verdict`, and the conditions under which it holds.

- :mod:`bench.repro.verdict`: the verdict rule (pure functions, known inputs -> known verdicts).
- :mod:`bench.repro.measure`: means with CIs and paired comparisons from a results table.
- :mod:`bench.repro.page`: a page as markdown (and a figure beside it).
- :mod:`bench.repro.kim2021`: Kim & Panda (2021), Sci. Rep. 11:19037.
"""
