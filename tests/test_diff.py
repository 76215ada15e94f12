"""study diff: moved estimates and the reasons, from two results.json documents."""

import json

from analysis.cli import main
from analysis.report.diff import diff_runs, reasons


def _rec(est, lo, hi, se):
    return {"estimate": est, "conf_low": lo, "conf_high": hi, "std_error": se, "estimator": "cs", "term": "ATT"}


def _doc(income, cases, years, cohorts, extra_outcome=False):
    outcomes = {"income_per_capita": {"headline": _rec(*income), "family": "income"},
                "criminal_cases": {"headline": _rec(*cases), "family": "cases"}}
    if extra_outcome:
        outcomes["petitions"] = {"headline": _rec(-0.01, -0.05, 0.03, 0.02), "family": "cases"}
    return {"data": {"year_hashes": years, "villages_by_cohort": cohorts},
            "main_effects": {"options": {"control_group": "notyet"}, "outcomes": outcomes}}


def _write(tmp_path, name, doc):
    d = tmp_path / name
    d.mkdir()
    (d / "results.json").write_text(json.dumps(doc))
    return d


def test_reasons_name_new_year_new_cohort_and_revisions():
    a = _doc((140, 97, 184, 22), (-0.1, -0.16, -0.03, 0.03), {"2023": "aa", "2024": "bb"}, {"2023": 420, "2024": 1038})
    b = _doc((150, 110, 190, 20), (-0.02, -0.08, 0.04, 0.03), {"2023": "aa", "2024": "cc", "2025": "dd"},
             {"2023": 420, "2024": 1038, "2025": 300})
    why = reasons(a, b)
    assert "new year(s) of data in B: 2025" in why
    assert "revised data for year(s): 2024" in why
    assert "new cohort 2025 in B (300 villages)" in why
    assert reasons(a, a) == []


def test_diff_runs_sorts_by_move_and_flags_significance_flips(tmp_path, capsys):
    a = _write(tmp_path, "A", _doc((140, 97, 184, 22), (-0.1, -0.16, -0.03, 0.03), {"2024": "x"}, {"2024": 1}))
    b = _write(tmp_path, "B", _doc((150, 110, 190, 20), (-0.02, -0.08, 0.04, 0.03), {"2024": "x"}, {"2024": 1},
                                   extra_outcome=True))
    df, why = diff_runs(a, b)
    assert why == []
    cases = df[df["outcome"] == "criminal_cases"].iloc[0]
    assert abs(cases["change"] - 0.08) < 1e-12 and abs(cases["change_in_se"] - 0.08 / 0.03) < 1e-12
    assert bool(cases["significant_a"]) and not bool(cases["significant_b"])
    assert df.iloc[0]["outcome"] == "criminal_cases"  # 2.67 SE beats income's 0.5 SE
    assert df.iloc[1]["outcome"] == "income_per_capita"
    assert df.iloc[-1]["outcome"] == "petitions"  # present in B only: listed last
    assert main(["diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "1 changed whether their 95% interval excludes zero" in out and "[B only]" in out


def test_diff_unknown_run_is_a_clear_error(tmp_path, capsys):
    assert main(["diff", "nope", "nada", "--outputs", str(tmp_path)]) == 2
    assert "run 'nope' not found" in capsys.readouterr().err
