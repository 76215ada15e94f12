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
# # 04 · Heterogeneity / 异质性：谁的效果更大
#
# **Questions.** The report sends different cadres to different villages: law-enforcement cadres
# (公检法司) to villages with poor public order, agriculture cadres to villages with a distinctive
# industry, cadres of financially strong units to weak villages. Does a law-enforcement cadre reduce
# cases more, an agriculture cadre raise income more? Do the pilot (cohort 2023) and the city-wide
# batch (cohort 2024) differ (and later batches when present)? Do weak villages gain more?
#
# **Method.** Callaway-Sant'Anna (doubly robust with the baseline covariates, not-yet-treated
# comparison villages shared by all subgroups) estimated within each subgroup of treated villages
# (`analysis.estimators.heterogeneity`), with a Wald test that all subgroup effects are equal, from
# the joint covariance of the subgroups' influence functions (clustered by township by default).
# Contrasts (one cadre type against all other treated villages) use the same joint covariance.
#
# **Caveats.** Cadre types and batches are *not* randomly assigned: a difference between cadre types
# mixes the effect of the cadre with that of the villages it was sent to. A cohort's average effect
# θ(g) averages over the years it is observed (the 2024 cohort only in its first year), so only the
# first-year effects ATT(g,g) compare like with like. p-values are pointwise (many comparisons are
# made here). If a subgroup leaves no comparable untreated villages for the covariates (the propensity
# score fails overlap: small subgroups chosen by the same traits), that outcome is estimated without
# covariates and the `note` column says so. On synthetic data the true values (×) are shown beside the
# estimates.

# %% tags=["parameters"]
store = "data/study.duckdb"
truth_dir = "data/synthetic"
output_dir = "outputs/dev"
first_year = None  # None: the first year the store holds
last_year = None  # None: the last year the store holds
min_months = 6.0
outcomes = ["income_per_capita", "criminal_cases", "disputes", "projects", "new_members"]
control_group = "notyet"
covariates = ["distance_km", "terrain", "distinctive_industry"]
cluster = "township"
lang = "zh"

# %%
from analysis.stages import heterogeneity
from analysis.stages.notebook import run_notebook

result = run_notebook(heterogeneity, globals())
print(*result.notes, sep="\n")

# %% [markdown]
# ## By cadre type / 按派出单位类型
#
# Simple ATT within the treated villages of each cadre type (mean effect per treated village and
# year), the equality test across the four types, and the mean outcome of each type's villages in
# the year before treatment (`pre_mean`, for scale; `pct_of_pre` = estimate in % of it).

# %%
result.show("04_cadre_type")

# %% [markdown]
# ## The report's questions as contrasts / 对比检验
#
# Law-enforcement cadres against all other treated villages on criminal cases and disputes;
# agriculture cadres against all others on income. The difference's interval comes from the joint
# covariance of the two subgroup estimates (they share their comparison villages).

# %%
result.show("04_contrasts")

# %% [markdown]
# ## By cohort (batch) / 按队列（批次）
#
# θ(g): the cohort's mean effect over its post-treatment years; ATT(g,g): its effect in the first
# year of exposure, the like-for-like comparison (the pilot cohort 2023 is observed for two years,
# the city-wide cohort 2024 for one, and effects grow with exposure).

# %%
result.show("04_cohort")

# %% [markdown]
# ## By baseline weakness / 按基期经济基础
#
# A village is *weak* if its per-capita income in the first year of the window is below the median of
# all villages. Effects are in the outcome's units; `pct_of_pre` puts them on a proportional scale.

# %%
result.show("04_baseline_weakness")

# %% [markdown]
# ## What the heterogeneity analysis shows / 异质性结论

# %%
print(*result.findings, sep="\n\n")
