"""The rich console for tables: the terminal's width, or wide when piped to a log."""

from __future__ import annotations

import sys

from rich.console import Console

LOG_WIDTH = 160  # nox and SLURM logs are not terminals; rich would otherwise assume 80 columns


def make_console() -> Console:
    """A console that does not truncate tables when output goes to a file or pipe."""
    return Console() if sys.stdout.isatty() else Console(width=LOG_WIDTH)
