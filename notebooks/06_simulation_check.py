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
# # 06 · Simulation check / 模拟检验：估计方法能否找回真实效应
#
# **Question.** On the synthetic city the true effects are known. Does each estimator recover them,
# and why is Callaway-Sant'Anna (CS) the headline estimator rather than the usual two-way
# fixed-effects regression (TWFE)?
#
# 1. **This city.** Every headline estimate (the overall effect of CS, Sun-Abraham, BJS imputation and
#    the static TWFE benchmark) next to the true simple ATT: bias and whether the 95% interval covers
#    it. One city is one draw: a correct 95% interval still misses one time in twenty.
# 2. **Monte Carlo.** `replications` new cities of the same design (new draws of everything, seeds
#    spawned from `seed`), each estimated with every estimator: bias, RMSE and coverage of the 95%
#    interval, with Monte Carlo standard errors. The default (20) keeps the notebook fast; the study's
#    reference run uses 500: `study run --only 06_simulation_check -p replications=500`.
#
# 3. **Stress test.** The same question under the design's realistic failures, one at a time: township- and
#    county-year shocks, nine county clusters, part of the effect in the arrival year, effects a year early,
#    untreated trends non-linear in the covariates or differing with targeting, a spillover rule the check does not
#    know, no effect at all (`analysis.data.synthetic.scenarios`). For each: bias, RMSE and coverage of every
#    estimator, and the rejection rate of every test and robustness check the study prints, where its null holds
#    (its size) and where it does not (its power). These are read from the measured records in
#    `data/montecarlo/` (made by `study stress`, about 4 s of CPU per city; README, "Stress test", with the
#    command), so they are shown on real data too: they describe the methods under this design, not the data in
#    the store.
#
# On real data there is no truth: the notebook says so and skips the first two parts.

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
replications = 20
seed = 20230601
lang = "zh"

# %%
from analysis.stages import simulation_check
from analysis.stages.notebook import run_notebook

result = run_notebook(simulation_check, globals())
print(*result.notes, sep="\n")

# %% [markdown]
# ## This city: estimates against the truth / 本城市：估计值与真实值
#
# `covered`: the 95% interval contains the true simple ATT; `bias` = estimate − truth (in the
# outcome's units per village and year), `relative_bias` = bias / |truth|. TWFE is compared with the
# same truth: it is the number a TWFE user would report as "the effect".

# %%
result.show("06_estimates_vs_truth")

# %% [markdown]
# ## Monte Carlo: bias and coverage under this city's design / 蒙特卡洛：偏差与覆盖率
#
# Each replication is a new city of the default design (same roll-out, targeting and effect sizes,
# new draws). Outcome: per-capita income, where the TWFE bias is largest
# (`analysis.stages.simulation_check.MC_OUTCOMES`; if `outcomes` does not include it, the first
# outcome). Bars are ±1.96 Monte Carlo standard errors: with
# 20 replications a coverage of 95% cannot be told apart from 85%; run 500 for the reference numbers.

# %%
result.show("06_monte_carlo")

# %% [markdown]
# ## Stress test: are the verdicts calibrated? / 压力测试：各检验是否可信
#
# Left of the figure (and `06_stress_estimators`): coverage of each estimator's 95% interval, by scenario and
# outcome, with `relative_bias`, `rmse` and `se_ratio` (mean standard error over the standard deviation of the
# estimates: 1 when the standard errors are right). Right (and `06_stress_checks`): the rejection rate at 5% of
# the pre-test, randomisation inference, the wild bootstrap (against the TWFE coefficient's own expectation), the
# spillover check and the test of equal effects by cadre type: filled where the test's null holds in that
# scenario (`rate_kind = size`: it should be 5%), hollow where it does not (`power`); diamonds are the coverage of
# HonestDiD's intervals for the average effect at the violation the scenario sets (relative magnitudes M̄ = 1,
# smoothness M = 0). `verdict` says whether a rate is within two Monte Carlo standard errors of its nominal level.
# With 80 cities per scenario (the committed records) a coverage of 95% has a Monte Carlo standard error of 2.4
# points and a size of 5% one of 2.4 points: the table shows each rate's own Monte Carlo SE, and its `verdict` allows
# for it, so a check is named as failing only when its rate is clearly off. Without the records (`data/montecarlo/`)
# this part is skipped and the notebook says how to make them.

# %%
result.show("06_stress_*")

# %% [markdown]
# ## What the simulation check shows / 模拟检验结论

# %%
print(*result.findings, sep="\n\n")
