"""The study's stages: one module per notebook, with the notebook's name.

========================  ======================================
notebook                  stage module
========================  ======================================
``00_data_audit``         :mod:`analysis.stages.data_audit`
``01_targeting``          :mod:`analysis.stages.targeting`
``02_main_effects``       :mod:`analysis.stages.main_effects`
``03_event_studies``      :mod:`analysis.stages.event_studies`
``04_heterogeneity``      :mod:`analysis.stages.heterogeneity`
``05_robustness``         :mod:`analysis.stages.robustness`
``06_simulation_check``   :mod:`analysis.stages.simulation_check`
========================  ======================================

Every stage exposes one entry point, ``run(panel, params, truth=None) -> StageResult``
(:mod:`analysis.stages.base`); :func:`analysis.stages.notebook.run_notebook` is what each notebook
calls to validate its parameters, load the data, run its stage and save the result.
"""
