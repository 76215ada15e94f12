"""Cells of notebooks/01_targeting.ipynb (see tools/make_notebooks.py)."""

from tools.nbcells import code, md

CELLS = [
    md("""
# 01 · Who got a first secretary / 哪些村派驻了第一书记

**Question.** Which villages received a first secretary, and why does comparing them with the
other villages (or with themselves before and after) mislead?

The programme chose weak villages on purpose: poor public order and many disputes, a weak
economic base, a distinctive industry (see `CONTEXT.md`). This notebook shows

1. baseline levels of treated and never-treated villages, overall and by cadre type;
2. pre-treatment trends, unconditionally and given the baseline covariates (conditional
   parallel trends, which the covariate-adjusted estimators of notebooks 02-05 assume);
3. a propensity model of selection and the overlap it implies;
4. the pilot district against the other districts.

*Treated* = ever treated within the window (cohort > 0); *never* = cohort 0. The baseline year
is the first year of the window; the pre-period is every year before the first cohort. All
functions are in `analysis.stages.targeting`; tables go to `tables/`, figures to `figures/`.
"""),
    code("""
store = "data/study.duckdb"
output_dir = "outputs/dev"
first_year = 2018
last_year = 2024
min_months = 6.0
outcomes = ["income_per_capita", "criminal_cases", "disputes"]
covariates = ["distance_km", "terrain", "distinctive_industry"]
cluster = "township"
lang = "zh"
""", tags=["parameters"]),
    code("""
from IPython.display import Image
from matplotlib import pyplot as plt

from analysis import paths
from analysis.core import params
from analysis.stages import targeting as tg
from analysis.core.panel import load_analysis_panel
from analysis.report.figures import save_figure, setup_fonts
from analysis.report.results_json import write_section
from analysis.report.tables import save_table

P = params.validate_params(dict(store=store, output_dir=output_dir, first_year=first_year, last_year=last_year,
                                min_months=min_months, outcomes=outcomes, covariates=covariates, cluster=cluster,
                                lang=lang))
out = paths.resolve(P["output_dir"])
setup_fonts()
panel = load_analysis_panel(paths.resolve(P["store"]), P["first_year"], P["last_year"], P["min_months"])
base_year = tg.baseline_year(panel)
pre_years = tg.pre_period_years(panel)
print(f"baseline year {base_year}; pre-period {pre_years[0]}-{pre_years[-1]}; "
      f"pilot counties {tg.pilot_counties(panel)}")
"""),
    md("""
## 1 · Baseline levels / 基期水平

Means in the baseline year of every outcome and covariate, for all treated villages and for
each cadre type, against never-treated villages. The standardised difference is the
difference in means divided by the pooled SD, `sqrt((var_group + var_never) / 2)`; beyond
±0.1 (dashed lines) groups are conventionally called imbalanced. Level differences do not
bias DiD by themselves: they show *who* was chosen.
"""),
    code("""
balance = tg.baseline_balance(panel)
save_table(balance, "01_baseline_balance", out)
std_diff = tg.std_diff_matrix(balance)
save_table(std_diff, "01_baseline_std_diff", out)
fig = tg.plot_balance(balance, base_year, lang=P["lang"])
shown = save_figure(fig, "01_baseline_std_diff", out)
plt.close(fig)
display(Image(filename=str(shown["png"])))
std_diff.round(3)
"""),
    md("""
## 2 · Pre-treatment trends / 派驻前趋势

Mean paths over the pre-period, indexed to its first year (= 100), then the gap in the
average yearly change (village-level OLS of the change on a group dummy, standard errors
clustered by `cluster`), without and with the baseline `covariates`. DiD needs parallel
*trends*: a gap that remains given the covariates would bias even the covariate-adjusted
estimates.

The index shows *proportional* growth; the gap table measures changes in the outcome's own
units (yuan, cases), which is what DiD in levels compares. When groups start at different
levels the two can disagree, even in sign: parallel trends in levels and in logs are different
assumptions.
"""),
    code("""
paths_pre = tg.pretrend_paths(panel, P["outcomes"])
save_table(paths_pre, "01_pretrend_paths", out)
fig = tg.plot_pretrend_paths(paths_pre, lang=P["lang"])
shown = save_figure(fig, "01_pretrend_paths", out)
plt.close(fig)
display(Image(filename=str(shown["png"])))
index_table = paths_pre.pivot_table(index=["outcome", "year"], columns="group", values="index", sort=False)
index_table = index_table.reset_index()
save_table(index_table, "01_pretrend_index", out)
index_table.round(1)
"""),
    code("""
gaps = tg.pretrend_gaps(panel, P["outcomes"], P["covariates"], cluster=P["cluster"])
save_table(gaps, "01_pretrend_gaps", out)
gaps.round(4)
"""),
    md("""
## 3 · Propensity of selection / 派驻倾向得分

Logit of ever-treated on the baseline `covariates` (terrain as indicators, plain the
reference) and the baseline outcomes the report names as targeting criteria:
`log(1 + income)`, disputes and criminal cases (`analysis.stages.targeting.PROPENSITY_OUTCOMES`).
Scores near 1 for treated villages (or near 0 for untreated ones) mean there are few
comparable villages on the other side: weighting estimators then lean on a few controls.
"""),
    code("""
ps = tg.fit_propensity(panel, P["covariates"])
save_table(ps.coefficients, "01_propensity_logit", out)
overlap = tg.overlap_summary(ps.scores)
save_table(overlap, "01_propensity_overlap", out)
fig = tg.plot_propensity(ps.scores, lang=P["lang"])
shown = save_figure(fig, "01_propensity_overlap", out)
plt.close(fig)
display(Image(filename=str(shown["png"])))
print(f"villages {ps.n_obs}, McFadden pseudo R2 {ps.pseudo_r2:.3f}")
display(ps.coefficients.round(4))
overlap.round(4)
"""),
    md("""
## 4 · The pilot district against the rest / 试点区县与其他区县

The pilot = the counties holding the first cohort (secretaries from December 2022). All its
villages (treated or not) against all villages of the other districts.
"""),
    code("""
pilot = tg.pilot_comparison(panel, P["outcomes"], P["covariates"], cluster=P["cluster"])
for name in ("summary", "balance", "paths", "gaps"):
    save_table(pilot[name], f"01_pilot_{name}", out)
fig = tg.plot_pretrend_paths(pilot["paths"], groups=("rest", "pilot"), lang=P["lang"])
shown = save_figure(fig, "01_pilot_pretrend_paths", out)
plt.close(fig)
display(Image(filename=str(shown["png"])))
display(pilot["summary"])
display(pilot["balance"][["variable", "mean", "mean_reference", "std_diff"]].round(3))
pilot["gaps"].round(4)
"""),
    md("## What the targeting shows / 结论"),
    code("""
summary = tg.targeting_summary(balance, gaps, ps, overlap, pilot, baseline=base_year, pre_years=pre_years,
                               covariates=P["covariates"], cluster=P["cluster"])
write_section(out, "targeting", summary)
print(tg.findings(summary, lang=P["lang"]))
"""),
]
