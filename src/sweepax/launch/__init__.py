"""Launching tasks: on this machine (``local``), as SLURM arrays (``slurm``), status, sync, onager."""
