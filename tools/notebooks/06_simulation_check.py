"""Cells of notebooks/06_simulation_check.ipynb (see tools/make_notebooks.py)."""

from tools.nbcells import code, md

CELLS = [
    md("""
# 06 · Simulation check / 模拟检验：估计方法能否找回真实效应

**Question.** On the synthetic city the true effects are known. Does each estimator recover them,
and why is Callaway-Sant'Anna (CS) the headline estimator rather than the usual two-way
fixed-effects regression (TWFE)?

1. **This city.** Every headline estimate (the overall effect of CS, Sun-Abraham, BJS imputation and
   the static TWFE benchmark) next to the true simple ATT: bias and whether the 95% interval covers
   it. One city is one draw: a correct 95% interval still misses one time in twenty.
2. **Monte Carlo.** `replications` new cities of the same design (new draws of everything, seeds
   spawned from `seed`), each estimated with every estimator: bias, RMSE and coverage of the 95%
   interval, with Monte Carlo standard errors. The default (20) keeps the notebook fast; the study's
   reference run uses 500: `study run --only 06_simulation_check -p replications=500`.

On real data there is no truth: the notebook says so and skips both parts.
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
replications = 20
seed = 20230601
lang = "zh"
""", tags=["parameters"]),
    code("""
import pandas as pd
from IPython.display import Image
from matplotlib import pyplot as plt

from analysis import params, paths, simulation_check as sc
from analysis.panel import load_analysis_panel
from analysis.report.figures import save_figure, setup_fonts
from analysis.report.results_json import write_section
from analysis.report.tables import save_table
from analysis.data.synthetic.truth import load_truth, truth_status

P = params.validate_params(dict(store=store, truth_dir=truth_dir, output_dir=output_dir, first_year=first_year,
                                last_year=last_year, min_months=min_months, outcomes=outcomes,
                                control_group=control_group, covariates=covariates, cluster=cluster,
                                replications=replications, seed=seed, lang=lang))
out = paths.resolve(P["output_dir"])
store_path, truth_path = paths.resolve(P["store"]), paths.resolve(P["truth_dir"])
setup_fonts()
pd.set_option("display.width", 200)
truth = load_truth(store_path, truth_path)
available, status = truth_status(store_path, truth_path)
print(status)
if truth is None:
    print("No known truth (real data, or a store that no longer holds the simulated city): "
          "both checks are skipped." if P["lang"] == "en" else
          "没有已知的真实效应（真实数据，或数据库已不是模拟城市）：跳过两项检验。")
"""),
    md("""
## This city: estimates against the truth / 本城市：估计值与真实值

`covered`: the 95% interval contains the true simple ATT; `bias` = estimate − truth (in the
outcome's units per village and year), `relative_bias` = bias / |truth|. TWFE is compared with the
same truth: it is the number a TWFE user would report as "the effect".
"""),
    code("""
if truth is not None:
    panel = load_analysis_panel(store_path, P["first_year"], P["last_year"], P["min_months"])
    estimates = sc.headline_estimates(panel, P["outcomes"], control_group=P["control_group"],
                                      covariates=P["covariates"], cluster=P["cluster"])
    vs_truth = sc.estimates_vs_truth(estimates, truth)
    fig = sc.plot_estimates_vs_truth(vs_truth, P["lang"])
    shown = save_figure(fig, "06_estimates_vs_truth", out)
    plt.close(fig)
    display(Image(filename=str(shown["png"])))
else:
    estimates, vs_truth = None, pd.DataFrame(columns=list(sc.VS_TRUTH_COLUMNS))
save_table(vs_truth, "06_estimates_vs_truth", out)
vs_truth
"""),
    md("""
## Monte Carlo: bias and coverage under this city's design / 蒙特卡洛：偏差与覆盖率

Each replication is a new city of the default design (same roll-out, targeting and effect sizes,
new draws). Outcome: per-capita income, where the TWFE bias is largest (`sc.MC_OUTCOMES`; if
`outcomes` does not include it, the first outcome). Bars are ±1.96 Monte Carlo standard errors: with
20 replications a coverage of 95% cannot be told apart from 85%; run 500 for the reference numbers.
"""),
    code("""
mc_options = {"replications": P["replications"], "seed": P["seed"], "outcomes": sc.mc_outcomes(P["outcomes"]),
              "estimators": list(sc.ESTIMATORS), "design": "default synthetic city (analysis.data.simulate)"}
if truth is not None and P["replications"] > 0:
    mc, mc_summary = sc.run_monte_carlo(P["replications"], P["seed"], mc_options["outcomes"])
    fig = sc.plot_monte_carlo(mc_summary, P["lang"])
    shown = save_figure(fig, "06_monte_carlo", out)
    plt.close(fig)
    display(Image(filename=str(shown["png"])))
else:
    mc_summary = pd.DataFrame(columns=list(sc.MC_COLUMNS))
save_table(mc_summary, "06_monte_carlo", out)
mc_summary
"""),
    md("## What the simulation check shows / 模拟检验结论"),
    code("""
if truth is not None:
    note = (f"Estimates on the synthetic city compared with its known truth ({status}); Monte Carlo over "
            f"{P['replications']} simulated cities of the same design, seed {P['seed']}.")
    write_section(out, "simulation_check", sc.section_payload(estimates, vs_truth, mc_summary, note, mc_options))
    for s in sc.findings(vs_truth, mc_summary, P["lang"]):
        print("-", s)
else:
    write_section(out, "simulation_check", sc.not_available(f"no known truth: {status}"))
    print("No truth, nothing to check: " + status)
"""),
]
