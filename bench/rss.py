"""This process's memory, for the runner's per-cell record and the performance report.

``rss_gib`` is the resident set now (Linux ``/proc/self/statm``; elsewhere the peak, the best
the platform offers), ``peak_rss_gib`` the maximum so far (``getrusage``). Both in GiB.
"""

from __future__ import annotations

import os
import resource
import sys

GIB = 2**30


def peak_rss_gib() -> float:
    """This process's peak resident memory (max RSS) so far, GiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / GIB if sys.platform == "darwin" else rss * 1024 / GIB  # darwin: bytes, Linux: KiB


def rss_gib() -> float:
    """This process's resident memory now, GiB (the peak where /proc is not available)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return peak_rss_gib()
    return pages * os.sysconf("SC_PAGE_SIZE") / GIB
