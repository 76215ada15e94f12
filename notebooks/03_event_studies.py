# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python (study)
#     language: python
#     name: study
# ---

# %% [markdown]
# # 03 · Event studies / 事件研究
#
# **Question.** How does the effect of a first secretary evolve with the years since arrival, were
# treated and comparison villages on parallel paths before, and why does the naive two-way
# fixed-effects (TWFE) estimate differ from the robust ones?
#
# For each key outcome this notebook estimates the effect by event time `e` (years since the
# cohort year; `e = -1` is the reference) with four estimators:
#
# * **CS** -- Callaway-Sant'Anna (doubly robust, covariates, not-yet-treated controls, universal base
#   period), with a 95% **simultaneous** (sup-t) band from the multiplier bootstrap;
# * **TWFE** -- the dynamic TWFE event study (endpoints binned, no covariates), the naive benchmark;
# * **Sun-Abraham** -- interaction-weighted, never-treated controls, covariate-by-year terms;
# * **BJS** -- imputation; its pre-period points are the leads of the BJS pre-trend regression.
#
# Then the CS pre-test (Wald test that all pre-treatment ATT(g,t) are zero) and the Goodman-Bacon
# decomposition of the static TWFE estimate: which 2x2 comparisons it averages, and how much weight
# goes to "forbidden" comparisons that use already-treated villages as controls.
#
# With cohorts 2023 and 2024 in a 2018-2024 panel only `e = -6 .. 1` exist; later batches and a later
# year of data add more post-treatment years. All computations are in `analysis.stages.event_studies`.

# %% tags=["parameters"]
store = "data/study.duckdb"
truth_dir = "data/synthetic"
output_dir = "outputs/dev"
first_year = None  # None: the first year the store holds
last_year = None  # None: the last year the store holds
min_months = 6.0
outcomes = ["income_per_capita", "criminal_cases", "new_members"]
control_group = "notyet"
covariates = ["distance_km", "terrain", "distinctive_industry"]
cluster = "township"
bootstrap_draws = 999
seed = 20230601
lang = "zh"

# %%
from analysis.stages import event_studies
from analysis.stages.notebook import run_notebook

result = run_notebook(event_studies, globals())
print(*result.notes, sep="\n")

# %% [markdown]
# ## Estimates by event time / 按事件时间的估计

# %%
result.show("03_event_studies")

# %% [markdown]
# ## Event-study figures / 事件研究图
#
# Markers are offset horizontally by estimator; whiskers are 95% pointwise intervals; the shaded band is
# the CS 95% simultaneous band; hollow markers at `e = -1` are the normalised reference period; the dotted
# line is where the first secretary arrives. The dashed black line is the true effect where known.

# %%
result.show("03_event_*", tables=False)

# %% [markdown]
# ## Pre-trend tests and the TWFE decomposition / 预趋势检验与 TWFE 分解
#
# `cs_pretest_p`: CS Wald pre-test (varying base period, R `did`'s default); `bjs_pretest_p`: BJS
# pre-trend test; `forbidden_weight`: share of the static TWFE estimate that comes from comparing
# later-treated villages with already-treated ones.

# %%
result.show("03_summary", "03_bacon")

# %%
result.show("03_bacon_*")

# %% [markdown]
# ## What the event studies show / 事件研究结论

# %%
print(*result.findings, sep="\n\n")
