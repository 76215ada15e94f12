"""The contracts every layer shares: the design's specification, the analysis panel, treatment timing.

* :mod:`analysis.core.params` -- the notebook parameters and their validation;
* :mod:`analysis.core.panel` -- store -> analysis panel (treatment timing attached, covariates expanded);
* :mod:`analysis.core.treatment` -- postings -> cohort, cadre type, batch (the documented timing rule);
"""
