"""``write_jobs --onager``: prelaunch a study's tasks for onager (https://pypi.org/project/onager/).

For labs that launch with ``onager launch --backend slurm``: job ``i + 1`` of onager's jobfile
``.onager/scripts/<study>/jobs.json`` is line ``i`` of ``runs/<study>.txt`` (onager numbers jobs
from 1), tagged ``<study>_<index>__<task_id>``. The jobfile is written with onager's own writer, and
``.onager/`` is created so that ``onager launch`` does not stop to ask for it.
"""

from __future__ import annotations

import typing as tp
from pathlib import Path

from sweepax.errors import UserError


def _onager() -> tp.Any:
    try:
        from onager import constants, utils
    except ImportError:
        raise UserError(
            "onager is not installed: it comes with the lock file's `onager` group "
            "(nox reinstalls .venv from requirements.lock), or `pip install onager==0.1.3`"
        ) from None
    return constants, utils


def jobfile(study: str, project: Path = Path(".")) -> Path:
    """Where onager looks for the study's jobs (``onager launch --jobname <study>``)."""
    constants, _ = _onager()
    return project / constants.defaultjobfile.format(jobname=study)


def prelaunch(manifest: dict, project: Path = Path(".")) -> Path:
    """Write onager's jobfile for ``manifest``'s tasks; its path."""
    constants, utils = _onager()
    study = manifest["study"]
    for folder in (constants.default_logs_folder, constants.default_scripts_folder):
        (project / folder).mkdir(parents=True, exist_ok=True)
    jobs = {
        task["index"] + 1: (task["command"], f"{study}_{task['index']}__{task['task_id']}")
        for task in manifest["tasks"]
    }
    path = jobfile(study, project)
    path.parent.mkdir(parents=True, exist_ok=True)
    utils.save_jobfile(jobs, str(path))
    return path


def launch_hint(study: str) -> str:
    return (
        f"onager launch --backend slurm --jobname {study} --venv .venv "
        f"(or --backend local --jobname {study} --max-tasks 2)"
    )
