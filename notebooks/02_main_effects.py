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
# # 02 · Main effects / 主要效应
#
# **Question.** By how much did a first secretary change a village's income, cases and party
# organisation, compared with similar villages that did not (yet) have one?
#
# For every outcome of the three families in `analysis.data.schema.OUTCOME_FAMILIES` (income, cases,
# organisation) this notebook reports
#
# * the **headline** (parameter `estimator`, default `cs`): Callaway-Sant'Anna, doubly robust,
#   not-yet-treated comparison villages, baseline covariates, standard errors clustered by township,
#   aggregated to the simple ATT (the average effect over all treated village-years, cohort-size
#   weighted; the specification `analysis.core.spec.HEADLINE`); its interval and p-value use the
#   study's small-sample convention, `G/(G-1)` and t(G-1) critical values with G = 178 townships, and
#   a wild cluster score bootstrap when clusters are fewer than 50 (`analysis.inference.small_sample`;
#   the rule used is the result's `options["inference"]`);
# * the **TWFE benchmark** (static two-way fixed effects, no covariates), the naive comparison;
# * for the count outcomes (cases and new party members) the **Poisson** (PPML, extended TWFE)
#   percentage change;
# * the **untreated mean** (never-treated villages, post-treatment years) and the effect as a
#   percentage of it;
# * **Romano-Wolf** p-values adjusted within each family (joint multiplier bootstrap; with another
#   headline estimator, which has no influence functions, Holm's adjustment);
# * the **true effect** when the store holds the synthetic city.
#
# All computations are in `analysis.stages.main_effects`; the table goes to `tables/02_main_effects`, the
# forest plot to `figures/02_forest`, the numbers for the brief to `results.json` (`main_effects`).

# %% tags=["parameters"]
store = "data/study.duckdb"
truth_dir = "data/synthetic"
output_dir = "outputs/dev"
first_year = None  # None: the first year the store holds
last_year = None  # None: the last year the store holds
min_months = 6.0
control_group = "notyet"
covariates = ["distance_km", "terrain", "distinctive_industry"]
estimator = "cs"
cluster = "township"
bootstrap_draws = 999
seed = 20230601
lang = "zh"

# %%
from analysis.stages import main_effects
from analysis.stages.notebook import run_notebook

result = run_notebook(main_effects, globals())
print(*result.notes, sep="\n")

# %% [markdown]
# ## Estimates / 估计结果
#
# One row per outcome, the columns a reader needs: the headline (CS simple ATT, in the outcome's unit,
# named with the outcome) with its 95% interval and p-value, the Romano-Wolf p-value adjusted within the
# family, the effect in **percent** of the never-treated villages' mean over the post-treatment years, the
# TWFE benchmark and the true effect where known. The full table `tables/02_main_effects.csv` also has the
# standard errors, the unadjusted bootstrap p-value (`p_boot`), the intervals in percent (`effect_pct_*`),
# the TWFE interval and the Poisson percentage change of the count outcomes (`ppml_pct*`: the change of the
# treated villages' own counterfactual).

# %%
result.show("02_main_effects")

# %% [markdown]
# ## Romano-Wolf adjustment / 多重检验校正
#
# Each family is one set of hypotheses (effect = 0). The adjusted p-value is never below the unadjusted
# bootstrap p-value; Holm and Bonferroni (valid under any dependence, conservative) are shown for reference.

# %%
result.show("02_romano_wolf")

# %% [markdown]
# ## Forest plot / 森林图
#
# Effects as a percentage of the never-treated villages' mean in the post-treatment years, with 95%
# intervals: CS (circles) and static TWFE (squares) for each outcome; the black tick is the true
# effect where known. Each family has its own horizontal scale.

# %%
result.show("02_forest")

# %% [markdown]
# ## What the main effects show / 主要结论

# %%
print(*result.findings, sep="\n\n")
