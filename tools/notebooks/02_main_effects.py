"""Cells of notebooks/02_main_effects.ipynb (see tools/make_notebooks.py)."""

from tools.nbcells import code, md

CELLS = [
    md("""
# 02 · Main effects / 主要效应

**Question.** By how much did a first secretary change a village's income, cases and party
organisation, compared with similar villages that did not (yet) have one?

For every outcome of the three families in `analysis.data.schema.OUTCOME_FAMILIES` (income, cases,
organisation) this notebook reports

* the **headline** (parameter `estimator`, default `cs`): Callaway-Sant'Anna, doubly robust, not-yet-treated comparison villages, baseline
  covariates, standard errors clustered by township, aggregated to the simple ATT (the average
  effect over all treated village-years, cohort-size weighted);
* the **TWFE benchmark** (static two-way fixed effects, no covariates), the naive comparison;
* for the count outcomes (cases and new party members) the **Poisson** (PPML, extended TWFE)
  percentage change;
* the **untreated mean** (never-treated villages, post-treatment years) and the effect as a
  percentage of it;
* **Romano-Wolf** p-values adjusted within each family (joint multiplier bootstrap; with another
  headline estimator, which has no influence functions, Holm's adjustment);
* the **true effect** when the store holds the synthetic city.

All computations are in `analysis.main_effects`; the table goes to `tables/02_main_effects`, the
forest plot to `figures/02_forest`, the numbers for the brief to `results.json` (`main_effects`).
"""),
    code("""
store = "data/study.duckdb"
truth_dir = "data/synthetic"
output_dir = "outputs/dev"
first_year = 2018
last_year = 2024
min_months = 6.0
control_group = "notyet"
covariates = ["distance_km", "terrain", "distinctive_industry"]
estimator = "cs"
cluster = "township"
bootstrap_draws = 999
seed = 20230601
lang = "zh"
""", tags=["parameters"]),
    code("""
from IPython.display import display
from matplotlib import pyplot as plt

from analysis import main_effects as me_mod
from analysis import params, paths
from analysis.panel import load_analysis_panel
from analysis.report.figures import save_figure, setup_fonts
from analysis.report.results_json import write_section
from analysis.report.tables import save_table
from analysis.data.synthetic.truth import load_truth, truth_status

P = params.validate_params(dict(store=store, truth_dir=truth_dir, output_dir=output_dir, first_year=first_year,
                                last_year=last_year, min_months=min_months, control_group=control_group,
                                covariates=covariates, estimator=estimator, cluster=cluster,
                                bootstrap_draws=bootstrap_draws, seed=seed, lang=lang))
out = paths.resolve(P["output_dir"])
store_path = paths.resolve(P["store"])
setup_fonts()
panel = load_analysis_panel(store_path, P["first_year"], P["last_year"], P["min_months"])
truth = load_truth(store_path, paths.resolve(P["truth_dir"]))
print(truth_status(store_path, paths.resolve(P["truth_dir"]))[1])
print("post-treatment years:", me_mod.post_treatment_years(panel))
"""),
    md("""
## Estimates / 估计结果

One row per outcome. `estimate`, `conf_low`, `conf_high`, `p_value`: headline (CS simple ATT, in the
outcome's unit); `rw_p`: Romano-Wolf adjusted within the family (`p_boot`: the same bootstrap,
unadjusted); `effect_pct*`, `twfe_pct`, `ppml_pct*`, `truth_pct`: **percent** (of the never-treated
villages' mean over the post-treatment years, except `ppml_pct`, the Poisson percentage change of the
treated villages' own counterfactual).
"""),
    code("""
me = me_mod.estimate_main_effects(panel, covariates=P["covariates"], control_group=P["control_group"],
                                  estimator=P["estimator"],
                                  cluster=P["cluster"], bootstrap_draws=P["bootstrap_draws"], seed=P["seed"],
                                  truth=truth)
save_table(me.table, "02_main_effects", out)
me.table
"""),
    md("""
## Romano-Wolf adjustment / 多重检验校正

Each family is one set of hypotheses (effect = 0). The adjusted p-value is never below the unadjusted
bootstrap p-value; Holm and Bonferroni (valid under any dependence, conservative) are shown for reference.
"""),
    code("""
rw_table = me_mod.romano_wolf_table(me)
save_table(rw_table, "02_romano_wolf", out)
rw_table
"""),
    md("""
## Forest plot / 森林图

Effects as a percentage of the never-treated villages' mean in the post-treatment years, with 95%
intervals: CS (circles) and static TWFE (squares) for each outcome; the black tick is the true
effect where known. Each family has its own horizontal scale.
"""),
    code("""
fig = me_mod.plot_forest(me.table, lang=P["lang"])
save_figure(fig, "02_forest", out)
display(fig)
plt.close(fig)
"""),
    md("## What the main effects show / 主要结论"),
    code("""
write_section(out, "main_effects", me_mod.results_payload(me))
print(me_mod.findings(me.table, lang=P["lang"]))
if truth is None:
    print("没有可用的真实效应（真实数据），未与真实值比较。" if P["lang"] == "zh" else
          "No truth is available (real data): the comparison with the truth is skipped.")
"""),
]
