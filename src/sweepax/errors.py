"""User-facing errors: one line naming the file, the key and the fix; exit code 2, no traceback."""

from __future__ import annotations

import functools
import sys
import typing as tp


class UserError(Exception):
    """Bad input from the user. ``str(err)`` is the complete one-line message."""


def cli(main: tp.Callable[..., int | None]) -> tp.Callable[..., int]:
    """Wrap a CLI ``main``: a ``UserError`` prints ``error: <message>`` and exits 2."""

    @functools.wraps(main)
    def wrapped(*args: tp.Any, **kwargs: tp.Any) -> int:
        try:
            return main(*args, **kwargs) or 0
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapped
