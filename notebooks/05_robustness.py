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
# # 05 · Robustness / 稳健性检验
#
# **Question.** How much of the headline effect (Callaway-Sant'Anna simple ATT, doubly robust with baseline
# covariates, not-yet-treated comparison villages, township clusters) survives when its assumptions are relaxed?
#
# 1. *Parallel trends may fail* — HonestDiD robust intervals (Rambachan & Roth 2023) with breakdown values.
# 2. *The pre-test may be weak* — which linear pre-trends would the pre-test even detect (Roth 2022)?
# 3. *Inference* — wild cluster bootstrap for the TWFE benchmark; randomisation inference for the sharp null.
# 4. *Choices* — the headline with one specification choice changed at a time.
# 5. *Spillovers* — do untreated villages in heavily treated townships move, and does the headline move without
#    them as controls?
#
# All computations live in `analysis.stages.robustness`; tables go to `tables/05_*`, figures to `figures/05_*`.

# %% tags=["parameters"]
store = "data/study.duckdb"
output_dir = "outputs/dev"
first_year = None  # None: the first year the store holds
last_year = None  # None: the last year the store holds
min_months = 6.0
outcomes = ["income_per_capita", "criminal_cases", "new_members"]
control_group = "notyet"
covariates = ["distance_km", "terrain", "distinctive_industry"]
cluster = "township"
bootstrap_draws = 999
randomisation_strata = "county_propensity"  # or "county"
spillover_threshold = 0.5  # share of a township's villages with a secretary that makes it high-share
seed = 20230601
lang = "zh"

# %%
from analysis.stages import robustness
from analysis.stages.notebook import run_notebook

result = run_notebook(robustness, globals())
print(*result.notes, sep="\n")

# %% [markdown]
# ## 1. If parallel trends fail: HonestDiD / 平行趋势不成立时的稳健区间
#
# The event study is re-estimated with a **universal base period** (every coefficient relative to the year before
# treatment, `e = -1`), which the sensitivity analysis needs (R's `honest_did` refuses the varying base period too).
# Targets: the effect in the first treated year (`e = 0`) and the average of the post-period effects.
#
# * **Relative magnitudes** `M̄`: post-period violations of parallel trends at most `M̄` times the largest change
#   between consecutive pre-periods (`M̄ = 1`: no worse than the worst pre-period year).
# * **Smoothness** `M`: the slope of a differential trend may change by at most `M` per year (`M = 0`: a linear
#   trend extrapolated from the pre-periods). The grid is in multiples of the mean pre-period standard error, so it
#   is scaled to each outcome.
#
# The **breakdown value** is the largest `M̄` (or `M`) at which the robust 95% interval still excludes zero.

# %%
result.show("05_honest_*")

# %% [markdown]
# ## 2. Power of the pre-test / 事前趋势检验的功效
#
# A pre-test that cannot detect a plausible violation is weak evidence for parallel trends. For the joint Wald
# pre-test of the pre-period coefficients (the test notebook 03 reports), the table gives the slope of a linear
# differential trend (outcome units per year) detected with 50% and 80% probability, and the bias such a trend puts
# on the average post-period effect (`avg_bias_*`; `bias_share_80` = that bias relative to the estimated effect).

# %%
result.show("05_pretrend_power")

# %% [markdown]
# ## 3. Wild cluster bootstrap / 野聚类自助法
#
# The static TWFE benchmark (no covariates), with a restricted wild cluster bootstrap-t (Webb's six-point
# weights, township clusters, `bootstrap_draws` draws from `seed`), beside its conventional CRV1 interval. With
# 178 townships the two should agree closely; the bootstrap matters when clusters are few (e.g. the 9 counties).
# The TWFE coefficient itself is a biased benchmark here (staggered, growing effects; see notebook 02): the bootstrap
# fixes its inference, not its estimand.

# %%
result.show("05_wild_bootstrap")

# %% [markdown]
# ## 4. Randomisation inference / 随机化推断
#
# Sharp null: no effect on any village in any year. Cohorts are re-drawn by permutation **within county x propensity
# quintile** (`randomisation_strata = "county_propensity"`): the pilot district keeps its cohort pattern (it alone has
# cohort-2023 villages), every other district keeps its number of 2024 and never-treated villages, and a village is
# re-assigned only the cohort of a village of its county with a similar propensity of selection (a logit of
# ever-treated on the headline's covariates, cut into quintiles within each county). The null is therefore "no effect
# anywhere, and assignment as good as random among villages of the same county and propensity quintile" — the design
# counterpart of the headline's parallel trends given the covariates. `randomisation_strata = "county"` permutes within
# county only, a null the city's deliberate targeting (weaker villages first) contradicts. The statistic is the
# unconditional CS simple ATT, so its observed value differs from the headline.
#
# How often each verdict is wrong on a city built like this one is in the calibration table of section 6.

# %%
result.show("05_randomisation")

# %% [markdown]
# ## 5. Alternative specifications / 替代设定
#
# One choice changed at a time: the other comparison group; the arrival year kept as base and comparison year (the
# headline leaves it out, because secretaries who arrive mid-year may already act in it; see notebook 02); excluding
# the pilot district (the county of the earliest cohort); an unbalanced panel (5% of village-years dropped at random,
# seeded by `seed`); no covariates; county clusters (9 clusters: treat those SEs with caution); and comparison
# villages only from townships where under half of the villages got a first secretary (see section 6).

# %%
result.show("05_alternatives")

# %% [markdown]
# ## 6. Spillovers / 溢出效应
#
# A first secretary may help (or draw resources from) neighbouring villages of the same township. Two checks:
#
# * **Spillover DiD** among never-treated villages: "exposed" = in a *high-share* township (at least
#   `spillover_threshold`, by default half, of its villages got a first secretary), from the year of the township's
#   first cohort; comparison = never-treated villages of the other townships. CS simple ATT with the baseline
#   covariates, township clusters.
# * **Headline without possibly exposed controls**: never-treated comparison villages only from townships below the
#   same threshold. A stricter rule (controls only from townships with no treated village at all) leaves almost none,
#   as the counts show.
#
# The threshold is a parameter because nobody knows the rule by which spillovers travel: if they reach untreated
# villages of townships with fewer treated villages than the threshold, those villages sit in the comparison group
# and the check looks in the wrong place. The calibration table below measures this on simulated cities
# (`analysis.grid.checks`): under `no_effect` every rejection is a false one; under `spillover_rule` (spillovers in
# townships with at least 35% of villages treated) the rejections are detections, at the default threshold and at the
# true one.

# %%
result.show("05_spillover")

# %%
result.show("05_check_calibration")

# %% [markdown]
# ## Summary / 汇总

# %%
result.show("05_robustness_summary")

# %% [markdown]
# ## What the checks show / 结论

# %%
print(*result.findings, sep="\n\n")
