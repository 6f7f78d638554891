"""Keep the README's registry tables generated from the registries (one fact, one place).

The README holds blocks between ``<!-- begin ls WHAT -->`` and ``<!-- end ls WHAT -->``;
:func:`render_readme` replaces each with ``snnxai ls WHAT --markdown``. ``make readme``
rewrites the file; a test fails when the committed README is out of date.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bench.listing import render, table

BLOCK = re.compile(r"(<!-- begin ls (\w+) -->\n)(.*?)(<!-- end ls \2 -->)", re.S)


def render_readme(text: str) -> str:
    """Return ``text`` with every ``ls`` block regenerated from its registry."""
    def sub(m: re.Match) -> str:
        header, rows = table(m.group(2), builtin_only=True)  # never a plugin installed where it runs
        return f"{m.group(1)}{render(header, rows, markdown=True)}\n{m.group(4)}"

    return BLOCK.sub(sub, text)


def main(path: str = "README.md") -> int:
    p = Path(path)
    new = render_readme(p.read_text())
    if new != p.read_text():
        p.write_text(new)
        print(f"updated {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
