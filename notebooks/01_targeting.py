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
# # 01 · Who got a first secretary / 哪些村派驻了第一书记
#
# **Question.** Which villages received a first secretary, and why does comparing them with the
# other villages (or with themselves before and after) mislead?
#
# The programme chose weak villages on purpose: poor public order and many disputes, a weak
# economic base, a distinctive industry (see `CONTEXT.md`). This notebook shows
#
# 1. baseline levels of treated and never-treated villages, overall and by cadre type;
# 2. pre-treatment trends, unconditionally and given the baseline covariates (conditional
#    parallel trends, which the covariate-adjusted estimators of notebooks 02-05 assume);
# 3. a propensity model of selection and the overlap it implies;
# 4. the pilot district against the other districts.
#
# *Treated* = ever treated within the window (cohort > 0); *never* = cohort 0. The baseline year
# is the first year of the window; the pre-period is every year before the first cohort. All
# functions are in `analysis.stages.targeting`; tables go to `tables/`, figures to `figures/`.

# %% tags=["parameters"]
store = "data/study.duckdb"
output_dir = "outputs/dev"
first_year = None  # None: the first year the store holds
last_year = None  # None: the last year the store holds
min_months = 6.0
outcomes = ["income_per_capita", "criminal_cases", "disputes"]
covariates = ["distance_km", "terrain", "distinctive_industry"]
cluster = "township"
lang = "zh"

# %%
from analysis.stages import targeting
from analysis.stages.notebook import run_notebook

result = run_notebook(targeting, globals())
print(*result.notes, sep="\n")

# %% [markdown]
# ## 1 · Baseline levels / 基期水平
#
# Means in the baseline year of every outcome and covariate, for all treated villages and for
# each cadre type, against never-treated villages. The standardised difference is the
# difference in means divided by the pooled SD, `sqrt((var_group + var_never) / 2)`; beyond
# ±0.1 (dashed lines) groups are conventionally called imbalanced. Level differences do not
# bias DiD by themselves: they show *who* was chosen.

# %%
result.show("01_baseline_std_diff")

# %% [markdown]
# ## 2 · Pre-treatment trends / 派驻前趋势
#
# Mean paths over the pre-period, indexed to its first year (= 100), then the gap in the
# average yearly change (village-level OLS of the change on a group dummy, standard errors
# clustered by `cluster`, t(G-1) critical values), without and with the baseline `covariates`. DiD needs parallel
# *trends*: a gap that remains given the covariates would bias even the covariate-adjusted
# estimates.
#
# The index shows *proportional* growth; the gap table measures changes in the outcome's own
# units (yuan, cases), which is what DiD in levels compares. When groups start at different
# levels the two can disagree, even in sign: parallel trends in levels and in logs are different
# assumptions.

# %%
result.show("01_pretrend_paths", tables=False)
result.show("01_pretrend_index")

# %%
result.show("01_pretrend_gaps")

# %% [markdown]
# ## 3 · Propensity of selection / 派驻倾向得分
#
# Logit of ever-treated on the baseline `covariates` (terrain as indicators, plain the
# reference) and the baseline outcomes the report names as targeting criteria:
# `log(1 + income)`, disputes and criminal cases (`analysis.estimators.propensity.PROPENSITY_OUTCOMES`).
# Scores near 1 for treated villages (or near 0 for untreated ones) mean there are few
# comparable villages on the other side: weighting estimators then lean on a few controls.

# %%
result.show("01_propensity_logit", "01_propensity_overlap")

# %% [markdown]
# ## 4 · The pilot district against the rest / 试点区县与其他区县
#
# The pilot = the counties holding the first cohort (secretaries from December 2022). All its
# villages (treated or not) against all villages of the other districts.

# %%
result.show("01_pilot_*")

# %% [markdown]
# ## What the targeting shows / 结论

# %%
print(*result.findings, sep="\n\n")
