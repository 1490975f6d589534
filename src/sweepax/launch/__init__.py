"""Launching tasks: here (``local``), as SLURM arrays (``slurm``); status, sync, onager."""
