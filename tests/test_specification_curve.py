"""The specification curve: its joint test under the null (analysis.grid.null_curve) and its stage.

The joint test's draws are seeded tasks (the same p-values serially and on two workers), its null is
imposed (on the null data the curve is centred near zero, far below the observed one), and the stage
writes its tables, figures in both languages and a typed ``results.json`` section (heavy tier; the
default tier runs the notebook under nbval and in the pipeline, tests/test_notebooks.py). The test's
size under the design is not measured here (the module docstring says so).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.grid.null_curve import curve_statistics, null_tasks, null_test, two_sided_statistics
from analysis.grid.specification import grid_data, grid_points, run_grid
from analysis.i18n import t
from analysis.report.results_schema import COMPLETE, SpecificationCurveSection
from analysis.stages import specification_curve

LEVELS = {"estimator": ["cs"], "method": ["dr"], "covariates": ["none", "baseline"], "cluster": ["township"],
          "min_months": ["6"], "window": ["all"], "anticipation": ["1"]}
"""Four Callaway-Sant'Anna points (comparison group x covariates) per outcome."""


@pytest.fixture(scope="module")
def small(city_store):
    data = grid_data(city_store)
    plan = grid_points(["income_per_capita"], LEVELS)
    return data, plan, run_grid(plan, data, serial=True)


def test_curve_statistics_and_draw_seeds():
    med, share = curve_statistics(np.array([3.0, -1.0, 2.0, np.nan]), np.array([1.0, -2.0, -0.5, 0.0]),
                                  np.array([4.0, 0.5, 4.0, 1.0]), -1.0)
    assert med == -2.0 and share == 0.0  # in the headline's (negative) direction nothing is significant
    # The joint test's statistics take no direction: |median| and the larger significant share.
    assert two_sided_statistics(np.array([3.0, -1.0, 2.0, np.nan]), np.array([1.0, -2.0, -0.5, 0.0]),
                                np.array([4.0, 0.5, 4.0, 1.0])) == (2.0, 1 / 3, 0.0, 1 / 3)
    assert two_sided_statistics(np.array([-3.0, -2.0, 1.0]), np.array([-4.0, -3.0, -1.0]),
                                np.array([-1.0, -0.5, 2.0])) == (-2.0, 0.0, 2 / 3, 2 / 3)
    assert all(np.isnan(two_sided_statistics(np.array([np.nan]), np.array([0.0]), np.array([1.0]))))
    a, b = null_tasks(5, 7), null_tasks(5, 7)
    assert a == b and len({t.seed for t in a}) == 5 and null_tasks(6, 7)[:5] == a
    with pytest.raises(ValueError, match="at least 1"):
        null_tasks(0, 7)


def test_the_joint_test_imposes_the_null_and_does_not_depend_on_workers(small, tmp_path):
    data, plan, grid = small
    one, dist = null_test(grid, data, plan.points, 3, 11, serial=True)
    two, dist2 = null_test(grid, data, plan.points, 3, 11, workers=2, results_dir=tmp_path)
    pd.testing.assert_frame_equal(one, two)
    pd.testing.assert_frame_equal(dist, dist2)
    r = one.iloc[0]
    assert r["specifications"] == 4 and r["draws"] == 3
    # The observed income curve is far from zero; on the null data it is centred near zero.
    assert r["median"] > 100 and r["share_significant"] == 1.0
    assert dist["median"].abs().max() < 0.5 * r["median"]
    assert r["p_median"] == r["p_share_significant"] == 0.25  # (1 + 0) / (1 + 3): no draw as extreme


@pytest.mark.slow  # the default tier runs the stage through its notebook (nbval and the pipeline)
def test_stage_writes_tables_figures_and_a_typed_section(city_store, tmp_path):
    from analysis.core.panel import load_analysis_panel
    from analysis.data import store as db
    from analysis.stages.base import save

    panel = load_analysis_panel(city_store)
    params = {"outcomes": ["income_per_capita"], "postings": db.read_postings(city_store), "first_year": 2018,
              "last_year": 2024, "min_months": 6.0, "control_group": "notyet",
              "covariates": ["distance_km", "terrain", "distinctive_industry"], "cluster": "township",
              "null_draws": 1, "seed": 5, "lang": "en"}
    before = panel.copy()
    res = specification_curve.run(panel, params)
    pd.testing.assert_frame_equal(panel, before)  # the caller's panel is not modified
    curve, summary = res.tables["07_specification_curve"], res.tables["07_curve_summary"]
    assert len(curve) == 72 and curve["headline"].sum() == 1 and list(curve["rank"]) == list(range(1, 73))
    assert curve["estimate"].is_monotonic_increasing
    s = summary.iloc[0]
    assert s["specifications"] == 72 and s["null_specifications"] == 12 and s["p_median"] == 0.5
    SpecificationCurveSection.model_validate(res.payload, context=COMPLETE)
    assert res.payload["options"]["specifications_per_outcome"] == 72
    assert "72 specifications" in res.findings[0] and "Joint test" in res.findings[0]
    save(res, tmp_path)
    for lang in ("zh", "en"):
        assert (tmp_path / "figures" / lang / "07_curve_income_per_capita.png").is_file()
    assert (tmp_path / "tables" / "07_curve_summary.tex").is_file()


def test_the_brief_says_the_curve_in_one_sentence_only_when_the_run_has_it():
    from analysis.report.brief.content import describe_curve, say
    from analysis.report.results_schema import Results

    assert describe_curve("income_per_capita", Results(), "en") is None
    row = {"specifications": 72, "estimated": 72, "headline_estimate": 184.0, "median": 127.0, "min": 12.0,
           "max": 186.0, "share_same_sign": 1.0, "share_significant": 0.92, "share_significant_same_sign": 0.92,
           "null_specifications": 12, "null_draws": 19, "p_median": 0.05, "p_share_significant": 0.05}
    r = Results.model_validate({"specification_curve": {"options": None, "outcomes": {"income_per_capita": row}}})
    c = describe_curve("income_per_capita", r, "en")
    assert c is not None and c["same"] == "100" and c["sig"] == "92"
    text = say("en", "curve", c)
    assert "Across 72 ways" in text and "92% also exclude zero." in text
    # the joint test over-rejects under the design (bench/size_null_curve.py): the brief does not cite it
    assert "joint" not in text and "p =" not in text
    assert "72种估计设定" in say("zh", "curve", describe_curve("income_per_capita", r, "zh"))


def _size_bench():
    import importlib.util

    from analysis import paths

    spec = importlib.util.spec_from_file_location("size_null_curve", paths.ROOT / "bench" / "size_null_curve.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_and_notebook_07_quote_the_measured_size_of_the_joint_test():
    # The committed per-city p-values of bench/size_null_curve.py (100 no-effect cities, 19 draws) give the
    # rates the README, notebook 07 and its note quote: two-sided, and the first version's one-sided test.
    from analysis import paths

    cities = pd.read_csv(paths.ROOT / "data" / "montecarlo" / "null_curve_size.csv")
    assert len(cities) == 100 and set(cities["specifications"]) == {12}
    r = {k: (f"{100 * v[0]:.1f}%", f"{100 * v[1]:.1f}") for k, v in _size_bench().rejection_rates(cities).items()}
    readme = " ".join((paths.ROOT / "README.md").read_text(encoding="utf-8").split())
    assert (f"is {r['p_median'][0]} for the median and {r['p_share_significant'][0]} for the share significant at a "
            f"nominal 5% (Monte Carlo SE {r['p_median'][1]} and {r['p_share_significant'][1]} points)") in readme
    assert (f"it rejects {r['p_median_one_sided'][0]} and {r['p_share_one_sided'][0]} (Monte Carlo SE "
            f"{r['p_median_one_sided'][1]} and {r['p_share_one_sided'][1]})") in readme
    nb = " ".join((paths.ROOT / "notebooks" / "07_specification_curve.py").read_text(encoding="utf-8")
                  .replace("#", " ").split())
    assert f"{r['p_median'][0]} (median) and {r['p_share_significant'][0]} (share significant) at 5%" in nb
    note = t("specification_curve.note.joint", "en", draws=19, k=12, smallest=0.05)
    assert f"in {r['p_median'][0]} (median) and {r['p_share_significant'][0]} (share significant)" in note
    # The two-sided p-values are not the one-sided ones (the records hold both tests).
    assert (cities["p_median"] != cities["p_median_one_sided"]).any()


@pytest.mark.slow
def test_the_size_records_are_what_the_code_produces():
    # The first no-effect city of the committed size records, recomputed (about a minute).
    from analysis import paths

    cities = pd.read_csv(paths.ROOT / "data" / "montecarlo" / "null_curve_size.csv")
    first = cities.iloc[0]
    seed = int(cities["seed"].iloc[0])  # from the int64 column: the row Series is float (63-bit seeds do not fit)
    fresh = _size_bench().one_city((0, seed, 19)).iloc[0]
    for col in ("median", "share_significant", "p_median", "p_share_significant", "p_median_one_sided",
                "p_share_one_sided"):
        assert fresh[col] == pytest.approx(first[col], rel=1e-8), col


def test_resampled_codes_group_and_sort_as_the_copied_strings_would():
    from analysis.grid.null_curve import _copy_codes

    rng = np.random.default_rng(2)
    # codes of different lengths, one the prefix of another ("110" / "1101"), digits and letters
    pool = np.array(["110", "1101", "11", "2", "110a", "09", "1100", "A1", "a"])
    values = pd.Series(rng.choice(pool, 400), dtype="string")
    for n_copies in (3, 12, 25):  # 12 and 25 copies: "10" sorts before "2"
        idx = rng.integers(0, len(values), 300)
        copy = rng.integers(0, n_copies, 300)
        strings = values.to_numpy()[idx].astype(str).astype(object) + "~" + copy.astype(str)
        ints = _copy_codes(values, idx, copy, n_copies)
        assert np.array_equal(pd.factorize(ints, sort=True)[0], pd.factorize(strings, sort=True)[0])
    assert _copy_codes(pd.Series(["a~b", "c"]), np.array([0, 1]), np.array([0, 0]), 1) is None
