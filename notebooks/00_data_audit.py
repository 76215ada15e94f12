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
# # 00 · Data audit / 数据核查
#
# **Question.** What data does the study rest on: which villages and years, when did first
# secretaries arrive where, what do the outcomes look like, and what is missing?
#
# Every table is written to `tables/` and every figure to `figures/` of the run folder.

# %% tags=["parameters"]
store = "data/study.duckdb"
truth_dir = "data/synthetic"
output_dir = "outputs/dev"
first_year = None  # None: the first year the store holds
last_year = None  # None: the last year the store holds
min_months = 6.0
lang = "zh"
seed = 20230601

# %%
from analysis.stages import data_audit
from analysis.stages.notebook import run_notebook

result = run_notebook(data_audit, globals())
print(*result.notes, sep="\n")

# %% [markdown]
# ## Coverage of the panel / 面板覆盖

# %%
result.show("00_coverage")

# %% [markdown]
# ## Roll-out / 派驻进度
#
# Cohort = first year with at least `min_months` months of exposure (see `analysis.core.treatment`);
# 0 = never treated within the window.

# %%
result.show("00_rollout_by_cohort", "00_rollout")

# %%
result.show("00_rollout_by_county", "00_rollout_by_township")

# %% [markdown]
# ## Outcome distributions / 结果变量分布

# %%
result.show("00_outcome_distributions")

# %% [markdown]
# ## Missingness / 缺失情况

# %%
result.show("00_missingness")

# %% [markdown]
# ## What the audit shows / 核查结论

# %%
print(*result.findings, sep="\n\n")
