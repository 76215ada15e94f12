"""Difference-in-differences evaluation of the village first-secretary programme.

The package holds everything the notebooks call: the calibrated synthetic city
(:mod:`analysis.data.synthetic`), the data contract (:mod:`analysis.data.schema`),
ingest into the DuckDB store (:mod:`analysis.data.ingest`, :mod:`analysis.data.store`),
the shared contracts (:mod:`analysis.core`: the headline specification, the analysis panel,
treatment timing), the estimators and inference, and the study's stages
(:mod:`analysis.stages`, one module per notebook).
"""

__version__ = "0.1.0"
