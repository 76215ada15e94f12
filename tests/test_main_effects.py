"""Main effects (analysis.stages.main_effects) on the default synthetic city.

Reference values: the headline is re-estimated independently here with
``aggregate(att_gt(...), "simple")`` and the TWFE/PPML benchmarks with ``analysis.estimate``;
the untreated mean and the percentages are recomputed from the panel with pandas; the truth is
``SyntheticCity.truth_aggregates`` (the simulator's expected-value ATT, R did's weights).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.core.panel import covariate_columns
from analysis.core.spec import DEFAULT_COVARIATES
from analysis.core.treatment import attach_treatment
from analysis.data import schema
from analysis.data.synthetic import simulate_city
from analysis.estimate import estimate
from analysis.estimators.callaway_santanna import aggregate, att_gt
from analysis.inference.multiple import romano_wolf_did
from analysis.report.results_json import write_section
from analysis.report.tables import save_table
from analysis.stages import main_effects as M

SEED = 20230601
B = 199


@pytest.fixture(scope="module")
def city():
    c = simulate_city(seed=SEED)
    return c, attach_treatment(c.panel, c.treatment)


@pytest.fixture(scope="module")
def run(city):
    c, panel = city
    before = panel.copy(deep=True)
    me = M.estimate_main_effects(panel, bootstrap_draws=B, seed=SEED, truth=c.truth_aggregates,
                                 ppml_outcomes=("criminal_cases",))
    return me, panel, before


def test_table_has_every_outcome_of_every_family(run):
    me, _, _ = run
    expected = [(f, o) for f, os_ in schema.OUTCOME_FAMILIES.items() for o in os_]
    assert list(zip(me.table["family"], me.table["outcome"], strict=True)) == expected
    assert list(me.table.columns) == list(M.TABLE_COLUMNS)
    assert me.table["unit"].tolist() == [M.outcome_unit(o) for _, o in expected]
    assert (me.table["n_units"] == 3224).all() and (me.table["n_clusters"] == 178).all()


def test_headline_equals_independent_callaway_santanna(run):
    me, panel, _ = run
    data, covs = covariate_columns(panel, list(DEFAULT_COVARIATES))
    t = me.table.set_index("outcome")
    for oc in schema.OUTCOMES:
        # the headline leaves the arrival year out: anticipation 1 (analysis.core.spec, issue 11)
        ref = aggregate(att_gt(data, oc, "village_code", "year", "cohort", covariates=covs, control_group="notyet",
                               method="dr", cluster="township_code", anticipation=1), "simple").tidy().iloc[0]
        for col in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
            assert t.loc[oc, col] == pytest.approx(ref[col], rel=1e-12, abs=1e-300), (oc, col)


def test_twfe_benchmark_is_static_without_covariates(run):
    me, panel, _ = run
    t = me.table.set_index("outcome")
    for oc in ("income_per_capita", "petitions"):
        ref = estimate(panel, oc, "twfe").tidy("coef").iloc[0]
        assert t.loc[oc, "twfe_estimate"] == pytest.approx(ref["estimate"], rel=1e-10)
        assert t.loc[oc, "twfe_conf_low"] == pytest.approx(ref["conf_low"], rel=1e-10)


def test_untreated_mean_is_never_treated_mean_over_post_years(run):
    me, panel, _ = run
    post = sorted(panel.loc[panel["treated"] == 1, "year"].unique())
    assert post == [2023, 2024] == M.post_treatment_years(panel)
    never = panel[(panel["cohort"] == 0) & panel["year"].isin(post)]
    for r in me.table.itertuples():
        assert r.untreated_mean == pytest.approx(never[r.outcome].astype(float).mean(), rel=1e-12)


def test_percent_of_untreated_mean(run):
    me, panel, _ = run
    post = panel["year"].isin([2023, 2024]) & (panel["cohort"] == 0)
    for r in me.table.itertuples():
        um = panel.loc[post, r.outcome].astype(float).sum() / post.sum()
        assert r.effect_pct == pytest.approx(100 * r.estimate / um, rel=1e-10)
        assert r.effect_pct_low == pytest.approx(100 * r.conf_low / um, rel=1e-10)
        assert r.effect_pct_high == pytest.approx(100 * r.conf_high / um, rel=1e-10)
        assert r.twfe_pct == pytest.approx(100 * r.twfe_estimate / um, rel=1e-10)


def test_romano_wolf_at_least_unadjusted_and_reproducible(run):
    me, _, _ = run
    t = me.table
    assert (t["rw_p"] >= t["p_boot"] - 1e-15).all()
    assert (t["rw_p"] >= 1 / (B + 1) - 1e-15).all() and (t["rw_p"] <= 1).all()
    # the bootstrap and analytic unadjusted p-values agree roughly (same influence functions)
    assert np.allclose(t["p_boot"], t["p_value"], atol=0.05)
    fam = "cases"
    ref = romano_wolf_did({oc: me.headline[oc] for oc in schema.OUTCOME_FAMILIES[fam]}, B=B, seed=SEED)
    got = t[t["family"] == fam].set_index("outcome")["rw_p"]
    assert np.allclose(got.loc[list(schema.OUTCOME_FAMILIES[fam])], ref.table["p_romano_wolf"], rtol=0, atol=0)
    rw = M.romano_wolf_table(me)
    assert len(rw) == len(schema.OUTCOMES) and (rw["p_holm"] >= rw["p_unadjusted"]).all()


def test_truth_next_to_estimate_and_covered(run, city):
    me, _, _ = run
    ta = city[0].truth_aggregates
    simple = ta[(ta["aggregation"] == "simple") & ta["cadre_type"].isna()].set_index("outcome")["value"]
    for r in me.table.itertuples():
        assert r.truth == pytest.approx(simple[r.outcome], rel=1e-12)
        # known truth: the headline 95% interval covers the simulator's simple ATT
        assert r.conf_low <= r.truth <= r.conf_high, r.outcome
    assert M.truth_simple(None, "disputes") is None


def test_ppml_percentage_change_for_counts(run, city):
    me, panel, _ = run
    t = me.table.set_index("outcome")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = estimate(panel, "criminal_cases", "ppml", covariates=DEFAULT_COVARIATES).tidy("simple_pct").iloc[0]
    assert t.loc["criminal_cases", "ppml_pct"] == pytest.approx(100 * ref["estimate"], rel=1e-10)
    assert t.drop(index="criminal_cases")["ppml_pct"].isna().all()
    assert set(M.PPML_OUTCOMES) == {*schema.OUTCOME_FAMILIES["cases"], "new_members"}


def test_payload_shape(run, tmp_path):
    me, _, _ = run
    pay = M.payload(me)
    assert set(pay) == {"families", "options", "outcomes"}
    assert pay["families"] == {f: list(o) for f, o in schema.OUTCOME_FAMILIES.items()}
    keys = {"family", "unit", "headline", "twfe", "untreated_mean", "pct_of_untreated_mean", "romano_wolf_p",
            "ppml_pct", "truth"}
    for r in me.table.itertuples():
        o = pay["outcomes"][r.outcome]
        assert set(o) == keys
        assert o["headline"]["estimate"] == pytest.approx(r.estimate, rel=1e-9)  # records keep 10 digits
        assert o["headline"]["estimator"] == "cs" and o["headline"]["aggregation"] == "simple"
        assert o["twfe"]["estimator"] == "twfe"
        assert o["pct_of_untreated_mean"]["estimate"] == pytest.approx(r.effect_pct / 100, rel=1e-12)
        assert o["romano_wolf_p"] == pytest.approx(r.rw_p, rel=1e-9)
        assert (o["ppml_pct"] is None) == (r.outcome != "criminal_cases")
    a = write_section(tmp_path / "a", "main_effects", pay).read_bytes()
    b = write_section(tmp_path / "b", "main_effects", M.payload(me)).read_bytes()
    assert a == b and json.loads(a)["outcomes"]["disputes"]["family"] == "cases"


def test_deterministic_with_seed(city, tmp_path):
    _, panel = city
    fam = {"cases": ["criminal_cases", "disputes"]}
    runs = [M.estimate_main_effects(panel, fam, bootstrap_draws=99, seed=5, ppml_outcomes=()) for _ in range(2)]
    paths = [save_table(r.table, "02_main_effects", tmp_path / str(i))["csv"] for i, r in enumerate(runs)]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    other = M.estimate_main_effects(panel, fam, bootstrap_draws=99, seed=6, ppml_outcomes=())
    assert not np.array_equal(other.romano_wolf["cases"].boot_t, runs[0].romano_wolf["cases"].boot_t)


def test_caller_frame_not_mutated(run):
    _, panel, before = run
    pd.testing.assert_frame_equal(panel, before)


def test_forest_and_findings(run):
    from matplotlib import pyplot as plt

    from analysis.report.figures import setup_fonts

    setup_fonts()
    me, _, _ = run
    for lang in ("en", "zh"):
        fig = M.plot_forest(me.table, lang)
        assert len(fig.axes) == len(schema.OUTCOME_FAMILIES)
        plt.close(fig)
    text = "\n".join(M.findings(me.table, "en"))
    assert "Romano-Wolf" in text and "Static TWFE" in text and "synthetic truth" in text
    n_sig = int((me.table["rw_p"] <= 0.05).sum())
    counts = [int(s.split(" effects are")[0].split()[-3]) for s in text.splitlines()[:3]]
    assert sum(counts) == n_sig
    no_truth = "\n".join(M.findings(me.table.assign(truth=np.nan), "zh"))
    assert "真实效应" not in no_truth and "Romano-Wolf" in no_truth


def test_bad_arguments(city):
    _, panel = city
    with pytest.raises(ValueError, match="cluster"):
        M.estimate_main_effects(panel, {"cases": ["disputes"]}, cluster="province")
    with pytest.raises(ValueError, match="bootstrap_draws"):
        M.estimate_main_effects(panel, {"cases": ["disputes"]}, bootstrap_draws=0)
    with pytest.raises(ValueError, match="not in the panel"):
        M.estimate_main_effects(panel, {"cases": ["no_such_outcome"]})


def test_a_headline_without_influence_functions_is_adjusted_by_holm_and_says_so(city_store):
    """Issue 11: with a non-CS headline the family-wise p-values are Holm's, stored and worded as Holm's.

    Also the crash this fixes: notebook 02 with ``-p estimator=sa`` failed in ``romano_wolf_table``.
    """
    import warnings

    from analysis.core.panel import load_analysis_panel
    from analysis.inference.multiple import holm
    from analysis.stages import main_effects as m

    panel = load_analysis_panel(city_store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        me = m.estimate_main_effects(panel, estimator="sa", bootstrap_draws=19, seed=1,
                                     families={"income": ["income_per_capita", "collective_income"]})
    tab = m.romano_wolf_table(me)
    assert tab["p_romano_wolf"].isna().all()
    np.testing.assert_allclose(tab["p_holm"], holm(tab["p_unadjusted"]), rtol=1e-15)
    np.testing.assert_allclose(me.table["rw_p"], tab["p_holm"], rtol=1e-15)
    assert me.options["romano_wolf"]["method"].startswith("holm")
    text = m.findings(me.table, lang="en", adjustment="holm")[0]
    assert "after Holm's adjustment" in text and "Holm p = " in text
    assert "Romano-Wolf" not in text and "RW p" not in text
    assert "经 Holm 族内校正后" in m.findings(me.table, lang="zh", adjustment="holm")[0]


def test_fits_are_kept_light_so_memory_does_not_grow_with_outcomes(run):
    """The stage keeps rows, covariances and the headline's influence functions, not pyfixest's design matrices."""
    me = run[0]
    for results in (me.headline, me.twfe, me.ppml):
        for r in results.values():
            assert r.fit is None and r.details is None and r.att_gt is None
    head = next(iter(me.headline.values()))
    assert head.influence is not None and head.influence.shape[0] == 3224  # Romano-Wolf draws from it
    assert next(iter(me.twfe.values())).vcov is not None
