"""What the recorded experiments share: running sweepax's commands from an experiment's folder,
and sweep files with a few values overridden (the rest of the file as written)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sweepax(out: Path, module: str, *args: str) -> None:
    """``python -m sweepax.<module> args``, from ``out``; stop the experiment if it fails."""
    command = [sys.executable, "-m", f"sweepax.{module}", *args]
    print(f"$ python -m sweepax.{module} {' '.join(args)}", flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    if subprocess.run(command, cwd=out, env=env).returncode:
        raise SystemExit(f"sweepax.{module} failed; fix it and run the experiment again")


def with_overrides(text: str, values: dict, why: str) -> str:
    """A sweep file's text with ``values`` set in every ``args`` dict (formatted as ruff would)."""
    literal = lambda v: json.dumps(v) if isinstance(v, str) else repr(v)  # noqa: E731
    items = "{" + ", ".join(f"{json.dumps(k)}: {literal(v)}" for k, v in values.items()) + "}"
    call = f"    _args.update({items})"
    if len(call) > 99:  # the project's line length
        call = f"    _args.update(\n        {items}\n    )"
    return text + f'\n# {why}\nfor _args in hparams["args"]:\n{call}\n'
