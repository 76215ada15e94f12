"""Difference-in-differences evaluation of the village first-secretary programme.

The package holds everything the notebooks call: the calibrated synthetic city
(:mod:`analysis.data.synthetic`), the data contract (:mod:`analysis.data.schema`),
ingest into the DuckDB store (:mod:`analysis.data.ingest`, :mod:`analysis.data.store`),
treatment timing (:mod:`analysis.treatment`), and the estimators.
"""

__version__ = "0.1.0"
