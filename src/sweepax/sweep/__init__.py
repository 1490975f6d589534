"""Sweep files: load, validate, plan (vmap axis vs job-array axis), write ``runs/``."""
