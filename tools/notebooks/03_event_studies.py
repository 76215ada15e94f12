"""Cells of notebooks/03_event_studies.ipynb (see tools/make_notebooks.py)."""

from tools.nbcells import code, md

CELLS = [
    md("""
# 03 · Event studies / 事件研究

**Question.** How does the effect of a first secretary evolve with the years since arrival, were
treated and comparison villages on parallel paths before, and why does the naive two-way
fixed-effects (TWFE) estimate differ from the robust ones?

For each key outcome this notebook estimates the effect by event time `e` (years since the
cohort year; `e = -1` is the reference) with four estimators:

* **CS** -- Callaway-Sant'Anna (doubly robust, covariates, not-yet-treated controls, universal base
  period), with a 95% **simultaneous** (sup-t) band from the multiplier bootstrap;
* **TWFE** -- the dynamic TWFE event study (endpoints binned, no covariates), the naive benchmark;
* **Sun-Abraham** -- interaction-weighted, never-treated controls, covariate-by-year terms;
* **BJS** -- imputation; its pre-period points are the leads of the BJS pre-trend regression.

Then the CS pre-test (Wald test that all pre-treatment ATT(g,t) are zero) and the Goodman-Bacon
decomposition of the static TWFE estimate: which 2x2 comparisons it averages, and how much weight
goes to "forbidden" comparisons that use already-treated villages as controls.

With cohorts 2023 and 2024 in a 2018-2024 panel only `e = -6 .. 1` exist; later batches and a later
`last_year` add more post-treatment years. All computations are in `analysis.event_studies`.
"""),
    code("""
store = "data/study.duckdb"
truth_dir = "data/synthetic"
output_dir = "outputs/dev"
first_year = 2018
last_year = 2024
min_months = 6.0
outcomes = ["income_per_capita", "criminal_cases", "new_members"]
control_group = "notyet"
covariates = ["distance_km", "terrain", "distinctive_industry"]
cluster = "township"
bootstrap_draws = 999
seed = 20230601
lang = "zh"
""", tags=["parameters"]),
    code("""
import pandas as pd
from IPython.display import display
from matplotlib import pyplot as plt

from analysis import event_studies as es_mod
from analysis import params, paths
from analysis.panel import load_analysis_panel
from analysis.report.figures import save_figure, setup_fonts
from analysis.report.results_json import write_section
from analysis.report.tables import save_table
from analysis.data.synthetic.truth import load_truth, truth_status

P = params.validate_params(dict(store=store, truth_dir=truth_dir, output_dir=output_dir, first_year=first_year,
                                last_year=last_year, min_months=min_months, outcomes=outcomes,
                                control_group=control_group, covariates=covariates, cluster=cluster,
                                bootstrap_draws=bootstrap_draws, seed=seed, lang=lang))
out = paths.resolve(P["output_dir"])
store_path = paths.resolve(P["store"])
setup_fonts()
panel = load_analysis_panel(store_path, P["first_year"], P["last_year"], P["min_months"])
truth = load_truth(store_path, paths.resolve(P["truth_dir"]))
print(truth_status(store_path, paths.resolve(P["truth_dir"]))[1])
"""),
    md("## Estimates by event time / 按事件时间的估计"),
    code("""
studies = {oc: es_mod.event_study(panel, oc, covariates=P["covariates"], control_group=P["control_group"],
                                  cluster=P["cluster"], bootstrap_draws=P["bootstrap_draws"], seed=P["seed"])
           for oc in P["outcomes"]}
frame = pd.concat([s.frame for s in studies.values()], ignore_index=True)
save_table(frame, "03_event_studies", out)
frame
"""),
    md("""
## Event-study figures / 事件研究图

Markers are offset horizontally by estimator; whiskers are 95% pointwise intervals; the shaded band is
the CS 95% simultaneous band; hollow markers at `e = -1` are the normalised reference period; the dotted
line is where the first secretary arrives. The dashed black line is the true effect where known.
"""),
    code("""
for oc, s in studies.items():
    fig = es_mod.plot_event_study(s, lang=P["lang"], truth=truth)
    save_figure(fig, f"03_event_{oc}", out)
    display(fig)
    plt.close(fig)
"""),
    md("""
## Pre-trend tests and the TWFE decomposition / 预趋势检验与 TWFE 分解

`cs_pretest_p`: CS Wald pre-test (varying base period, R `did`'s default); `bjs_pretest_p`: BJS
pre-trend test; `forbidden_weight`: share of the static TWFE estimate that comes from comparing
later-treated villages with already-treated ones.
"""),
    code("""
summary = es_mod.summary_table(studies)
save_table(summary, "03_summary", out)
bacon = pd.concat([es_mod.bacon_table(s.bacon) for s in studies.values()], ignore_index=True)
save_table(bacon, "03_bacon", out)
display(summary)
bacon
"""),
    code("""
for oc, s in studies.items():
    fig = es_mod.plot_bacon(s.bacon, lang=P["lang"], cs_att=float(s.cs_simple["estimate"]))
    save_figure(fig, f"03_bacon_{oc}", out)
    display(fig)
    plt.close(fig)
"""),
    md("## What the event studies show / 事件研究结论"),
    code("""
write_section(out, "event_studies", es_mod.results_payload(studies))
print(es_mod.findings(studies, lang=P["lang"]))
if truth is None:
    print("没有可用的真实效应（真实数据），图中未画真实值。" if P["lang"] == "zh" else
          "No truth is available (real data): the figures show no true effects.")
"""),
]
