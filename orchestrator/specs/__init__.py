"""Sweep files -> typed specs -> trials: YAML, one frozen SweepSpec, its trials with stable ids, their cost."""
