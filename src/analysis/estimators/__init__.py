"""Difference-in-differences estimators, one module per estimator.

Every estimator is a plain function that takes a data frame plus column names and
returns a :class:`analysis.results.DiDResult` with the fixed tidy schema.
"""
