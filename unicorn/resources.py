"""Where the files that ship with the project live: the default config, the world seeds and the checkpoints.

In a checkout (or an editable install) they sit at the repository root. A regular `pip install .` copies them
to `<prefix>/share/unicorn/` (pyproject's data-files), so the installed package finds them there. A relative
path that exists from the current folder always wins, so a user's own `configs/` or `checkpoints/` is used first.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

SHIPPED = ("configs", "seeds", "checkpoints")


def roots() -> list[Path]:
    """Folders that may hold the shipped files, most specific first."""
    candidates = [Path(__file__).resolve().parents[1], Path(sys.prefix) / "share" / "unicorn"]
    data = sysconfig.get_paths().get("data")
    if data:
        candidates.append(Path(data) / "share" / "unicorn")
    return [c for c in dict.fromkeys(candidates) if (c / "configs").is_dir()]


def shipped(relative: str) -> Path:
    """The shipped file or folder `relative` (e.g. `checkpoints/world-clip`); the first root that has it."""
    for root in roots():
        if (root / relative).exists():
            return root / relative
    return Path(__file__).resolve().parents[1] / relative  # where it would be in a checkout, for the error message
