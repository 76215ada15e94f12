"""Cells of notebooks/04_heterogeneity.ipynb (see tools/make_notebooks.py)."""

from tools.nbcells import code, md

CELLS = [
    md("""
# 04 · Heterogeneity / 异质性：谁的效果更大

**Questions.** The report sends different cadres to different villages: law-enforcement cadres
(公检法司) to villages with poor public order, agriculture cadres to villages with a distinctive
industry, cadres of financially strong units to weak villages. Does a law-enforcement cadre reduce
cases more, an agriculture cadre raise income more? Do the pilot (cohort 2023) and the city-wide
batch (cohort 2024) differ (and later batches when present)? Do weak villages gain more?

**Method.** Callaway-Sant'Anna (doubly robust with the baseline covariates, not-yet-treated
comparison villages shared by all subgroups) estimated within each subgroup of treated villages
(`analysis.estimators.heterogeneity`), with a Wald test that all subgroup effects are equal, from
the joint covariance of the subgroups' influence functions (clustered by township by default).
Contrasts (one cadre type against all other treated villages) use the same joint covariance.

**Caveats.** Cadre types and batches are *not* randomly assigned: a difference between cadre types
mixes the effect of the cadre with that of the villages it was sent to. A cohort's average effect
θ(g) averages over the years it is observed (the 2024 cohort only in its first year), so only the
first-year effects ATT(g,g) compare like with like. p-values are pointwise (many comparisons are
made here). If a subgroup leaves no comparable untreated villages for the covariates (the propensity
score fails overlap: small subgroups chosen by the same traits), that outcome is estimated without
covariates and the `note` column says so. On synthetic data the true values (×) are shown beside the
estimates.
"""),
    code("""
store = "data/study.duckdb"
truth_dir = "data/synthetic"
output_dir = "outputs/dev"
first_year = 2018
last_year = 2024
min_months = 6.0
outcomes = ["income_per_capita", "criminal_cases", "disputes", "projects", "new_members"]
control_group = "notyet"
covariates = ["distance_km", "terrain", "distinctive_industry"]
cluster = "township"
lang = "zh"
""", tags=["parameters"]),
    code("""
import pandas as pd
from IPython.display import Image
from matplotlib import pyplot as plt

from analysis import heterogeneity_report as hr, params, paths
from analysis.panel import COHORT, load_analysis_panel
from analysis.report.figures import save_figure, setup_fonts
from analysis.report.results_json import write_section
from analysis.report.tables import save_table
from analysis.data.synthetic.truth import load_truth, truth_status

P = params.validate_params(dict(store=store, truth_dir=truth_dir, output_dir=output_dir, first_year=first_year,
                                last_year=last_year, min_months=min_months, outcomes=outcomes,
                                control_group=control_group, covariates=covariates, cluster=cluster, lang=lang))
out = paths.resolve(P["output_dir"])
store_path, truth_path = paths.resolve(P["store"]), paths.resolve(P["truth_dir"])
setup_fonts()
pd.set_option("display.width", 200)
panel = load_analysis_panel(store_path, P["first_year"], P["last_year"], P["min_months"])
truth_aggregates = load_truth(store_path, truth_path)
truth = hr.truth_levels(truth_aggregates, hr.load_truth_cells(store_path, truth_path))
opts = dict(control_group=P["control_group"], covariates=P["covariates"], cluster=P["cluster"])
O = P["outcomes"]
batches = hr.cohort_batches(panel)
print(truth_status(store_path, truth_path)[1])
print("cohorts (batches):", batches)
"""),
    md("""
## By cadre type / 按派出单位类型

Simple ATT within the treated villages of each cadre type (mean effect per treated village and
year), the equality test across the four types, and the mean outcome of each type's villages in
the year before treatment (`pre_mean`, for scale; `pct_of_pre` = estimate in % of it).
"""),
    code("""
cadre = hr.subgroup_effects(panel, O, "cadre_type", **opts)
tab_cadre = hr.subgroup_table(cadre, "cadre_type", truth, pre_means=hr.pre_treatment_means(panel, "cadre_type", O))
save_table(tab_cadre, "04_cadre_type", out)
fig = hr.plot_levels(tab_cadre, ["cadre_type"], hr.term("title_cadre_type", P["lang"]), P["lang"])
shown = save_figure(fig, "04_cadre_type", out)
plt.close(fig)
display(Image(filename=str(shown["png"])))
tab_cadre
"""),
    md("""
## The report's questions as contrasts / 对比检验

Law-enforcement cadres against all other treated villages on criminal cases and disputes;
agriculture cadres against all others on income. The difference's interval comes from the joint
covariance of the two subgroup estimates (they share their comparison villages).
"""),
    code("""
con = hr.contrasts(panel, O, truth_aggregates=truth_aggregates, **opts)
save_table(con, "04_contrasts", out)
for s in con.to_dict("records"):
    print("-", hr.contrast_statement(s, P["lang"]))
con
"""),
    md("""
## By cohort (batch) / 按队列（批次）

θ(g): the cohort's mean effect over its post-treatment years; ATT(g,g): its effect in the first
year of exposure, the like-for-like comparison (the pilot cohort 2023 is observed for two years,
the city-wide cohort 2024 for one, and effects grow with exposure).
"""),
    code("""
cohort = hr.cohort_effects(panel, O, **opts)
cohort_e0 = hr.cohort_e0_effects(cohort)
pre_cohort = hr.pre_treatment_means(panel, COHORT, O)
tab_cohort = pd.concat([hr.subgroup_table(cohort, "cohort", truth, batches, P["last_year"], pre_cohort),
                        hr.subgroup_table(cohort_e0, "cohort_e0", truth, batches, P["last_year"], pre_cohort)],
                       ignore_index=True)
save_table(tab_cohort, "04_cohort", out)
fig = hr.plot_levels(tab_cohort, ["cohort", "cohort_e0"], hr.term("title_cohort", P["lang"]), P["lang"])
shown = save_figure(fig, "04_cohort", out)
plt.close(fig)
display(Image(filename=str(shown["png"])))
tab_cohort
"""),
    md("""
## By baseline weakness / 按基期经济基础

A village is *weak* if its per-capita income in the first year of the window is below the median of
all villages. Effects are in the outcome's units; `pct_of_pre` puts them on a proportional scale.
"""),
    code("""
panel_w = hr.add_weakness(panel, P["first_year"])
weak = hr.subgroup_effects(panel_w, O, hr.WEAKNESS_COLUMN, **opts)
tab_weak = hr.subgroup_table(weak, "baseline_weakness", truth,
                             pre_means=hr.pre_treatment_means(panel_w, hr.WEAKNESS_COLUMN, O))
save_table(tab_weak, "04_baseline_weakness", out)
fig = hr.plot_levels(tab_weak, ["baseline_weakness"], hr.term("title_baseline_weakness", P["lang"]), P["lang"])
shown = save_figure(fig, "04_baseline_weakness", out)
plt.close(fig)
display(Image(filename=str(shown["png"])))
tab_weak
"""),
    md("## What the heterogeneity analysis shows / 异质性结论"),
    code("""
results = {"cadre_type": cadre, "cohort": cohort, "cohort_e0": cohort_e0, "baseline_weakness": weak}
write_section(out, "heterogeneity", hr.section_payload(results, truth, con))
tables = {"cadre_type": tab_cadre, "cohort": tab_cohort[tab_cohort["dimension"] == "cohort"],
          "cohort_e0": tab_cohort[tab_cohort["dimension"] == "cohort_e0"], "baseline_weakness": tab_weak}
for s in hr.findings(tables, con, P["lang"]):
    print("-", s)
if truth_aggregates is None:
    print("(no known truth: real data, so the estimates are not compared with true values)")
"""),
]
