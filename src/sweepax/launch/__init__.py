"""Launching tasks: on this machine (``local``); SLURM arrays come with issue #4."""
