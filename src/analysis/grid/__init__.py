"""Loops over independent draws or specifications, written as lists of seeded tasks.

:mod:`analysis.grid.montecarlo` -- the Monte Carlo of bias and coverage (one task per simulated city).
"""
