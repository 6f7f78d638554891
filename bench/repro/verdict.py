"""The verdict rule: from paired comparisons to supported / not supported / partly / inconclusive.

One *comparison* tests the paper's claimed direction ("a scores better than b on metric m",
"better" respecting the metric's direction) on paired samples. Its outcome:

- ``"for"``: the Holm-corrected Wilcoxon p < alpha **and** the bootstrap CI of the mean paired
  difference excludes 0 on the claimed side (the same two-part rule the report uses to call a
  side "better": the location test can be significant while the mean is ~0);
- ``"against"``: the same, on the other side;
- ``"neither"``: otherwise (no detectable difference at this n).

A *claim* is checked on several conditions (layers, models, metrics); its verdict combines the
outcomes of all of them:

| outcomes | verdict |
|---|---|
| every comparison "for" | supported |
| at least one "for", and at least one "against" or "neither" | partly |
| none "for", at least one "against" | not supported |
| all "neither" (or no comparison) | inconclusive |

"partly" pages list which conditions were for and against: these are the conditions under
which the claim holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

FOR, AGAINST, NEITHER = "for", "against", "neither"
SUPPORTED, NOT_SUPPORTED, PARTLY, INCONCLUSIVE = "supported", "not supported", "partly", "inconclusive"


def outcome(diff_lo: float, diff_hi: float, p_holm: float, claimed_sign: int, alpha: float = 0.05) -> str:
    """One comparison's outcome. ``diff_lo, diff_hi``: the CI of the mean of (a - b);
    ``claimed_sign``: +1 when the claim says a - b > 0 (a higher), -1 when a - b < 0."""
    if claimed_sign not in (1, -1):
        raise ValueError(f"claimed_sign must be +1 or -1, got {claimed_sign}")
    if not (math.isfinite(p_holm) and p_holm < alpha and math.isfinite(diff_lo) and math.isfinite(diff_hi)):
        return NEITHER
    if diff_lo > 0:
        side = 1
    elif diff_hi < 0:
        side = -1
    else:
        return NEITHER
    return FOR if side == claimed_sign else AGAINST


def combine(outcomes: Iterable[str]) -> str:
    """A claim's verdict from its comparisons' outcomes (the table in the module doc)."""
    got = list(outcomes)
    bad = set(got) - {FOR, AGAINST, NEITHER}
    if bad:
        raise ValueError(f"unknown outcomes {sorted(bad)}")
    n_for, n_against = got.count(FOR), got.count(AGAINST)
    if got and n_for == len(got):
        return SUPPORTED
    if n_for:
        return PARTLY
    if n_against:
        return NOT_SUPPORTED
    return INCONCLUSIVE


RULE = ("A comparison counts *for* the claim when the Holm-corrected Wilcoxon signed-rank p < "
        "alpha and the 95% bootstrap CI of the mean paired difference excludes 0 on the claimed "
        "side, *against* when both hold on the other side, else *neither*. Verdict: **supported** "
        "if every comparison is for; **partly** if at least one is for and at least one is not; "
        "**not supported** if none is for and at least one is against; **inconclusive** if all "
        "are neither.")
