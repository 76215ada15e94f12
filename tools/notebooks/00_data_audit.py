"""Cells of notebooks/00_data_audit.ipynb (see tools/make_notebooks.py)."""

from tools.nbcells import code, md

CELLS = [
    md("""
# 00 · Data audit / 数据核查

**Question.** What data does the study rest on: which villages and years, when did first
secretaries arrive where, what do the outcomes look like, and what is missing?

Every table is written to `tables/` and every figure to `figures/` of the run folder.
"""),
    code("""
store = "data/study.duckdb"
truth_dir = "data/synthetic"
output_dir = "outputs/dev"
first_year = 2018
last_year = 2024
min_months = 6.0
lang = "zh"
seed = 20230601
""", tags=["parameters"]),
    code("""
from analysis import audit, params, paths
from analysis.data import schema, store as db
from analysis.report.figures import save_figure, setup_fonts
from analysis.report.results_json import write_section
from analysis.data.synthetic.truth import truth_status
from analysis.report.tables import save_table
from analysis.treatment import attach_treatment, derive_treatment

P = params.validate_params(dict(store=store, truth_dir=truth_dir, output_dir=output_dir, first_year=first_year,
                                last_year=last_year, min_months=min_months, lang=lang, seed=seed))
out = paths.resolve(P["output_dir"])
setup_fonts()
panel_raw = db.read_panel(paths.resolve(P["store"]), years=range(P["first_year"], P["last_year"] + 1))
postings = db.read_postings(paths.resolve(P["store"]))
treatment = derive_treatment(postings, P["first_year"], P["last_year"], min_months=P["min_months"])
panel = attach_treatment(panel_raw, treatment)
report_year = min(2023, P["last_year"])
"""),
    md("## Coverage of the panel / 面板覆盖"),
    code("""
cov = audit.coverage(panel)
save_table(cov, "00_coverage", out)
cov
"""),
    md("""
## Roll-out / 派驻进度

Cohort = first year with at least `min_months` months of exposure (see `analysis.treatment`);
0 = never treated within the window.
"""),
    code("""
roll = audit.rollout_by_cohort(panel)
save_table(roll, "00_rollout_by_cohort", out)
save_figure(audit.plot_rollout(panel, lang=P["lang"]), "00_rollout", out)
roll
"""),
    code("""
by_county = audit.rollout_by_area(panel, "county_code")
save_table(by_county, "00_rollout_by_county", out)
by_township = audit.township_summary(panel)
save_table(by_township, "00_rollout_by_township", out)
display(by_county)
by_township
"""),
    md("## Outcome distributions / 结果变量分布"),
    code("""
dist = audit.outcome_summary(panel, list(schema.OUTCOMES), year=report_year)
save_table(dist, "00_outcome_distributions", out)
save_figure(audit.plot_outcome_distributions(panel, list(schema.OUTCOMES), report_year, lang=P["lang"]),
            "00_outcome_distributions", out)
dist
"""),
    md("## Missingness / 缺失情况"),
    code("""
miss = audit.missingness(panel_raw)
save_table(miss, "00_missingness", out)
miss[miss["missing"] > 0] if (miss["missing"] > 0).any() else "no missing cells"
"""),
    md("## What the audit shows / 核查结论"),
    code("""
truth_ok, truth_note = truth_status(paths.resolve(P["store"]), paths.resolve(P["truth_dir"]))
write_section(out, "data", {**audit.audit_summary(panel, report_year), "synthetic": truth_ok, "truth_note": truth_note})
print(audit.audit_statement(panel, report_year, lang=P["lang"]))
print(truth_note)
"""),
]
