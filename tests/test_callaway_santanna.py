"""Tests of the Callaway & Sant'Anna estimator and the multiplier bootstrap.

Three kinds, as the project's style asks:

* published numbers: R ``did`` 2.5.x output on mpdta (``tests/reference/mpdta``, see its
  README for provenance) to 1e-6, with R's analytic convention
  (``small_sample="asymptotic"``: no ``G/(G-1)`` factor, normal critical values) and R's
  chi-square pre-test (``pretest(..., test="wald_chi2")``);
* an independent implementation: diff-diff 3.13.0 (and csdid 0.4.3 when installed) on
  mpdta and on a seeded simulated staggered panel;
* known truth: a simulated panel with covariate-dependent trends and known effects.

Plus the bootstrap's determinism and block-splitting invariance, the error messages and
the caller's frame being left untouched.
"""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.estimators import callaway_santanna as cs_module
from analysis.estimators.callaway_santanna import aggregate, att_gt, pretest
from analysis.inference import multiplier
from analysis.inference.multiplier import (
    block_seeds,
    bootstrap_draws,
    cluster_sums,
    multiplier_bootstrap,
    summarize,
    task_blocks,
)
from analysis.paths import REFERENCE_DIR
from analysis.results import TIDY_COLUMNS

MPDTA_DIR = REFERENCE_DIR / "mpdta"
MPDTA = dict(outcome="lemp", unit="countyreal", time="year", cohort="first.treat")

# R scenario name -> att_gt options. R's defaults: base_period="varying", est_method="dr".
SCENARIOS = {
    "mpdta_nev_dr": dict(control_group="never", method="dr"),
    "mpdta_nyt_dr": dict(control_group="notyet", method="dr"),
    "mpdta_nev_ipw": dict(control_group="never", method="ipw"),
    "mpdta_nev_reg_cov": dict(control_group="never", method="reg", covariates=["lpop"]),
}
R_TYPES = {"simple": "simple", "group": "group", "dynamic": "event", "calendar": "calendar"}
TOL_R = 1e-6
# R did's (and diff-diff's, csdid's) analytic convention: no small-sample factor, normal quantiles.
R = dict(small_sample="asymptotic")


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return pd.read_csv(MPDTA_DIR / "mpdta.csv")


@pytest.fixture(scope="module")
def r_ref():
    return {name: pd.read_csv(MPDTA_DIR / f"r_did_{name}.csv")
            for name in ("attgt", "aggte", "pretest")}


@pytest.fixture(scope="module")
def fits(mpdta):
    return {name: att_gt(mpdta, **MPDTA, **opts, **R) for name, opts in SCENARIOS.items()}


def _is_overall(t: pd.DataFrame) -> pd.Series:
    return t["term"].str.startswith("overall") | (t["term"] == "ATT")


# ----------------------------------------------------------------------------------
# simulated staggered panel with known effects
# ----------------------------------------------------------------------------------
YEARS = np.arange(2001, 2009)
COHORTS = np.array([0, 2004, 2006, 2008])


def true_att(g, t):
    """True ATT(g,t): dynamic effect 1 + 0.5 e, plus 0.25 for the first cohort."""
    g, t = np.asarray(g, float), np.asarray(t, float)
    return np.where((g > 0) & (t >= g), 1.0 + 0.5 * (t - g) + 0.25 * (g == 2004), 0.0)


def simulate(n: int = 2000, seed: int = 7) -> pd.DataFrame:
    """Staggered panel: units with high x are treated more often and trend up faster.

    Parallel trends hold only conditional on x (trend 0.3 x per year), so the
    unconditional estimator is biased upwards; effects do not depend on x.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    lin = np.column_stack([np.zeros(n)] + [0.8 * x - 0.2] * 3)
    p = np.exp(lin)
    p /= p.sum(axis=1, keepdims=True)
    g = COHORTS[(rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)]
    T = len(YEARS)
    t = np.tile(YEARS, n)
    gg, xx = np.repeat(g, T), np.repeat(x, T)
    a = np.repeat(rng.normal(size=n) + 0.5 * x, T)
    y = a + 0.2 * (t - 2001) + 0.3 * xx * (t - 2001) + true_att(gg, t) + rng.normal(size=n * T)
    return pd.DataFrame({"id": np.repeat(np.arange(n), T), "year": t, "y": y, "x": xx,
                         "g": gg, "town": np.repeat(np.arange(n) // 20, T)})


SIM = dict(outcome="y", unit="id", time="year", cohort="g")


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    return simulate()


# ----------------------------------------------------------------------------------
# schema and published numbers (R did 2.5.x on mpdta)
# ----------------------------------------------------------------------------------
def test_tidy_schema_and_rows(fits):
    t = fits["mpdta_nev_dr"].tidy()
    assert tuple(t.columns) == TIDY_COLUMNS
    assert len(t) == 12 and (t["aggregation"] == "att_gt").all()
    assert (t["estimator"] == "cs").all() and (t["band"] == "pointwise").all()
    assert (t["event_time"] == t["year"] - t["cohort"]).all()
    row = t.query("cohort == 2004 and year == 2004").iloc[0]
    assert row["term"] == "g=2004,t=2004" and row["n_units"] == 20 + 309
    assert row["n_obs"] == 2 * (20 + 309) and row["n_clusters"] == 329
    assert fits["mpdta_nev_dr"].influence.shape == (500, 12)


# The reference files also hold a scenario "sim_nev_dr" on a simulated panel whose data is not
# shipped, so it cannot be reproduced and is not listed (see tests/reference/mpdta/README.md).
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_att_gt_matches_r(scenario, fits, r_ref):
    ref = r_ref["attgt"].query("scenario == @scenario")
    got = fits[scenario].tidy().merge(ref, left_on=["cohort", "year"], right_on=["group", "t"])
    assert len(got) == len(ref) == 12
    np.testing.assert_allclose(got["estimate"], got["att"], rtol=0, atol=TOL_R)
    np.testing.assert_allclose(got["std_error"], got["se"], rtol=0, atol=TOL_R)


@pytest.mark.parametrize("rtype", list(R_TYPES))
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_aggregations_match_r(scenario, rtype, fits, r_ref):
    ref = r_ref["aggte"].query("scenario == @scenario and type == @rtype")
    t = aggregate(fits[scenario], R_TYPES[rtype]).tidy()
    assert (t["aggregation"] == R_TYPES[rtype]).all()
    overall = t[_is_overall(t)]
    assert len(overall) == 1
    assert overall["estimate"].iloc[0] == pytest.approx(ref["overall_att"].iloc[0], abs=TOL_R)
    assert overall["std_error"].iloc[0] == pytest.approx(ref["overall_se"].iloc[0], abs=TOL_R)
    if rtype == "simple":
        return
    key = {"group": "cohort", "dynamic": "event_time", "calendar": "year"}[rtype]
    got = t[~_is_overall(t)].merge(ref, left_on=key, right_on="egt")
    assert len(got) == len(ref) == len(t) - 1
    np.testing.assert_allclose(got["estimate"], got["att_egt"], rtol=0, atol=TOL_R)
    np.testing.assert_allclose(got["std_error"], got["se_egt"], rtol=0, atol=TOL_R)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_pretest_matches_r(scenario, fits, r_ref):
    ref = r_ref["pretest"].query("scenario == @scenario").iloc[0]
    pt = pretest(fits[scenario], test="wald_chi2")
    assert pt.df == 5 and pt.test == "wald_chi2"
    assert pt.statistic == pytest.approx(ref["W"], abs=TOL_R)
    assert pt.p_value == pytest.approx(ref["Wpval"], abs=1e-5)  # R rounds to 5 decimals


def test_dr_with_lpop_matches_drdid_port(mpdta):
    res = att_gt(mpdta, **MPDTA, covariates=["lpop"], method="dr", **R)
    simple = aggregate(res, "simple").tidy().iloc[0]
    # DRDID::drdid_panel's port (Hajek normalisation; tests/reference/mpdta/README.md) prints -0.041752
    # (SE 0.011503); ours, to the digits the README quotes: -0.0417518 (SE 0.0115028). diff-diff's doubly
    # robust estimator (Horvitz-Thompson normalisation) gives -0.0417515 (SE 0.0115029): 2.7e-7 away, which
    # these tolerances tell apart.
    assert simple["estimate"] == pytest.approx(-0.0417518, abs=5e-8)
    assert simple["std_error"] == pytest.approx(0.0115028, abs=5e-8)
    assert abs(simple["estimate"] - (-0.0417515)) > 2e-7 and abs(simple["std_error"] - 0.0115029) > 5e-8
    cell = res.tidy().query("cohort == 2004 and year == 2004").iloc[0]
    assert cell["estimate"] == pytest.approx(-0.014530, abs=1e-5)


def test_universal_base_period(mpdta, fits):
    uni = att_gt(mpdta, **MPDTA, base_period="universal", **R).tidy()
    var = fits["mpdta_nev_dr"].tidy()
    assert len(uni) == 15
    ref = uni[uni["year"] == uni["cohort"] - 1]
    assert (ref["estimate"] == 0).all() and ref["std_error"].isna().all()
    post_u = uni[uni["year"] >= uni["cohort"]].reset_index(drop=True)
    post_v = var[var["year"] >= var["cohort"]].reset_index(drop=True)
    np.testing.assert_allclose(post_u["estimate"], post_v["estimate"], atol=1e-14)
    np.testing.assert_allclose(post_u["std_error"], post_v["std_error"], atol=1e-14)


# ----------------------------------------------------------------------------------
# independent implementations
# ----------------------------------------------------------------------------------
DD_CONTROL = {"never": "never_treated", "notyet": "not_yet_treated"}


def _diff_diff_fit(data, cols, covariates, **kw):
    dd = pytest.importorskip("diff_diff")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dd.CallawaySantAnna(**kw).fit(
            data, outcome=cols["outcome"], unit=cols["unit"], time=cols["time"],
            first_treat=cols["cohort"], covariates=covariates)


def _compare_cells(ours: pd.DataFrame, gte: dict, se_scale: float = 1.0):
    n = 0
    for (g, t), v in gte.items():
        if not np.isfinite(v["effect"]):
            continue
        row = ours[(ours["cohort"] == g) & (ours["year"] == t)]
        assert len(row) == 1, (g, t)
        assert row["estimate"].iloc[0] == pytest.approx(v["effect"], abs=1e-8), (g, t)
        if np.isfinite(v["se"]):
            assert row["std_error"].iloc[0] * se_scale == pytest.approx(v["se"], abs=1e-6)
        n += 1
    assert n == len(ours)


@pytest.mark.parametrize("base_period", ["varying", "universal"])
@pytest.mark.parametrize("control_group", ["never", "notyet"])
@pytest.mark.parametrize(("method", "covariates"), [
    ("dr", None), ("ipw", None), ("reg", None), ("ipw", "cov"), ("reg", "cov")])
@pytest.mark.parametrize("dataset", ["mpdta", "sim"])
def test_agrees_with_diff_diff(dataset, method, covariates, control_group, base_period,
                               mpdta, sim):
    data, cols = (mpdta, MPDTA) if dataset == "mpdta" else (sim, SIM)
    covs = None if covariates is None else (["lpop"] if dataset == "mpdta" else ["x"])
    ours = att_gt(data, **cols, covariates=covs, method=method, control_group=control_group,
                  base_period=base_period, **R)
    dd = _diff_diff_fit(data, cols, covs, estimation_method=method, base_period=base_period,
                        control_group=DD_CONTROL[control_group])
    _compare_cells(ours.tidy(), dd.group_time_effects)
    simple = aggregate(ours, "simple").tidy().iloc[0]
    assert simple["estimate"] == pytest.approx(dd.overall_att, abs=1e-8)
    assert simple["std_error"] == pytest.approx(dd.overall_se, abs=1e-6)
    es = aggregate(ours, "event").tidy()
    es_dd = dd.aggregate("event_study").to_dataframe()
    both = es.merge(es_dd, on="event_time")
    assert len(both) == len(es) - 1
    np.testing.assert_allclose(both["estimate"], both["att"], atol=1e-8)
    ok = both["se"].notna() & both["std_error"].notna()
    np.testing.assert_allclose(both.loc[ok, "std_error"], both.loc[ok, "se"], atol=1e-6)


@pytest.mark.parametrize("dataset", ["mpdta", "sim"])
def test_dr_with_covariates_vs_diff_diff_is_a_normalisation_difference(dataset, mpdta, sim):
    """diff-diff's DR divides the comparison term by n_treated (Horvitz-Thompson);
    R's drdid_panel (and ours) by the sum of the comparison weights (Hajek).

    Both are recomputed here from scratch (statsmodels logit + least squares) for a few
    cells: ours equals the Hajek form and diff-diff the HT form, to 1e-8.
    """
    sm = pytest.importorskip("statsmodels.api")
    data, cols, x = (mpdta, MPDTA, "lpop") if dataset == "mpdta" else (sim, SIM, "x")
    ours = att_gt(data, **cols, covariates=[x]).tidy()
    dd = _diff_diff_fit(data, cols, [x], estimation_method="dr")
    wide = data.pivot(index=cols["unit"], columns=cols["time"], values=cols["outcome"])
    per_unit = data.groupby(cols["unit"])[[cols["cohort"], x]].first()
    checked = 0
    for (g, t) in list(dd.group_time_effects)[::3]:
        base = g - 1 if t >= g else t - 1
        keep = (per_unit[cols["cohort"]] == g) | (per_unit[cols["cohort"]] == 0)
        dy = (wide[t] - wide[base])[keep].to_numpy()
        D = (per_unit.loc[keep, cols["cohort"]] == g).to_numpy(float)
        X = sm.add_constant(per_unit.loc[keep, x].to_numpy())
        ps = sm.Logit(D, X).fit(disp=0, tol=1e-12).predict(X)
        beta = np.linalg.lstsq(X[D == 0], dy[D == 0], rcond=None)[0]
        res = dy - X @ beta
        w = ps * (1 - D) / (1 - ps)
        hajek = res[D == 1].mean() - (w * res).sum() / w.sum()
        ht = res[D == 1].mean() - (w * res).sum() / D.sum()
        mine = ours[(ours["cohort"] == g) & (ours["year"] == t)]["estimate"].iloc[0]
        assert mine == pytest.approx(hajek, abs=1e-8)
        assert dd.group_time_effects[(g, t)]["effect"] == pytest.approx(ht, abs=1e-8)
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize(("dataset", "control_group", "base_period"), [
    ("mpdta", "never", "varying"), ("mpdta", "notyet", "varying"),
    ("mpdta-timevarying", "notyet", "universal"), ("sim", "never", "varying"),
    ("sim", "notyet", "universal")])
def test_dr_with_covariates_agrees_with_csdid(dataset, control_group, base_period, mpdta, sim):
    """csdid 0.4.3 (d2cml-ai, a line-by-line port of R did + DRDID), when installed."""
    pytest.importorskip("csdid")
    from csdid.att_gt import ATTgt

    data, cols, x = (mpdta, MPDTA, "lpop") if dataset.startswith("mpdta") else (sim, SIM, "x")
    if dataset == "mpdta-timevarying":  # enters at the earlier period of each 2x2
        data = mpdta.assign(xv=mpdta["lpop"] + np.random.default_rng(0).normal(0, 0.3, 2500))
        x = "xv"
    ours = att_gt(data, **cols, covariates=[x], control_group=control_group,
                  base_period=base_period, **R)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ATTgt(yname=cols["outcome"], tname=cols["time"], idname=cols["unit"],
                    gname=cols["cohort"], data=data, xformla=f"{cols['outcome']} ~ {x}",
                    control_group={"never": "nevertreated", "notyet": "notyettreated"}[
                        control_group]).fit(est_method="dr", base_period=base_period,
                                            bstrap=False)
    t = ours.tidy()
    np.testing.assert_allclose(t["estimate"], np.asarray(ref.results["att"]), atol=1e-8)
    np.testing.assert_allclose(t["std_error"], np.asarray(ref.results["se"]), atol=1e-6)


@pytest.mark.parametrize(("method", "covariates"), [
    ("dr", None), ("reg", None), ("ipw", ["lpop"]), ("dr", ["lpop"])])
def test_unbalanced_panel_agrees_with_diff_diff(method, covariates, mpdta):
    """R's allow_unbalanced_panel route: ATT to 1e-8; diff-diff's SE carries a CR1
    factor sqrt(n/(n-1)) over units, removed here."""
    rng = np.random.default_rng(3)
    unb = mpdta.drop(index=rng.choice(len(mpdta), 150, replace=False)).reset_index(drop=True)
    with pytest.raises(ValueError, match="allow_unbalanced=True"):
        att_gt(unb, **MPDTA)
    ours = att_gt(unb, **MPDTA, covariates=covariates, method=method, allow_unbalanced=True, **R)
    assert ours.options["estimator_2x2"] == "repeated_cross_section"
    dd = _diff_diff_fit(unb, MPDTA, covariates, estimation_method=method,
                        allow_unbalanced_panel=True)
    n = unb["countyreal"].nunique()
    _compare_cells(ours.tidy(), dd.group_time_effects, se_scale=np.sqrt(n / (n - 1)))


def test_allow_unbalanced_on_balanced_panel_uses_panel_estimator(mpdta, fits):
    res = att_gt(mpdta, **MPDTA, allow_unbalanced=True, **R)
    assert res.options["estimator_2x2"] == "panel"
    pd.testing.assert_frame_equal(
        res.tidy().drop(columns="options"), fits["mpdta_nev_dr"].tidy().drop(columns="options"))


def test_anticipation_matches_diff_diff_cells(mpdta):
    ours = att_gt(mpdta, **MPDTA, covariates=["lpop"], method="ipw", control_group="notyet",
                  anticipation=1, **R)
    t = ours.tidy()
    assert set(t["cohort"]) == {2006, 2007}  # 2004 has no period before 2004 - 1
    dd = _diff_diff_fit(mpdta, MPDTA, ["lpop"], estimation_method="ipw", anticipation=1,
                        control_group="not_yet_treated")
    _compare_cells(t, dd.group_time_effects)


# ----------------------------------------------------------------------------------
# known truth
# ----------------------------------------------------------------------------------
def test_recovers_known_effects_and_unconditional_is_biased(sim):
    units = sim.groupby("id")["g"].first().to_numpy()
    res = att_gt(sim, **SIM, covariates=["x"], method="dr")
    cells = res.tidy()
    # every ATT(g,t), pre-period placebos included, within 3 standard errors of the truth
    z = (cells["estimate"] - true_att(cells["cohort"], cells["year"])) / cells["std_error"]
    assert z.abs().max() < 3
    post = cells[cells["year"] >= cells["cohort"]]
    pg = np.array([np.mean(units == g) for g in post["cohort"]])
    truth = np.sum(pg * true_att(post["cohort"], post["year"])) / pg.sum()
    simple = aggregate(res, "simple").tidy().iloc[0]
    assert simple["conf_low"] < truth < simple["conf_high"]
    es = aggregate(res, "event").tidy()
    for row in es[~_is_overall(es)].itertuples():
        e = row.event_time
        gs = [g for g in COHORTS[1:] if g + e in YEARS]
        w = np.array([np.mean(units == g) for g in gs])
        truth_e = np.sum(w * true_att(gs, np.array(gs) + e)) / w.sum()
        assert abs(row.estimate - truth_e) < 3 * row.std_error, e
    # trends rise with x and treated units have higher x: ignoring x biases upwards
    naive = aggregate(att_gt(sim, **SIM, method="dr"), "simple").tidy().iloc[0]
    assert (naive["estimate"] - truth) / naive["std_error"] > 5
    assert naive["conf_low"] > truth


def test_group_and_calendar_recover_truth(sim):
    units = sim.groupby("id")["g"].first().to_numpy()
    res = att_gt(sim, **SIM, covariates=["x"], control_group="notyet")
    grp = aggregate(res, "group").tidy()
    for row in grp[~_is_overall(grp)].itertuples():
        ts = YEARS[YEARS >= row.cohort]
        assert abs(row.estimate - true_att(row.cohort, ts).mean()) < 3 * row.std_error
    cal = aggregate(res, "calendar").tidy()
    for row in cal[~_is_overall(cal)].itertuples():
        gs = np.array([g for g in COHORTS[1:] if g <= row.year])
        w = np.array([np.mean(units == g) for g in gs])
        truth = np.sum(w * true_att(gs, row.year)) / w.sum()
        assert abs(row.estimate - truth) < 3 * row.std_error


def test_balance_e_and_event_window(mpdta, fits):
    es = aggregate(fits["mpdta_nev_dr"], "event", balance_e=1).tidy()
    detail = es[~_is_overall(es)]
    assert detail["event_time"].tolist() == [-2, -1, 0, 1]
    # with balance_e=1 only cohorts 2004 and 2006 enter; e=1 is their cohort-weighted mean
    cells = fits["mpdta_nev_dr"].tidy().set_index(["cohort", "year"])["estimate"]
    units = mpdta.groupby("countyreal")["first.treat"].first()
    w = np.array([(units == 2004).mean(), (units == 2006).mean()])
    e1 = np.dot(w, [cells[(2004, 2005)], cells[(2006, 2007)]]) / w.sum()
    assert detail.set_index("event_time").loc[1, "estimate"] == pytest.approx(e1, abs=1e-14)
    win = aggregate(fits["mpdta_nev_dr"], "event", min_e=-1, max_e=2).tidy()
    assert win.loc[~_is_overall(win), "event_time"].tolist() == [-1, 0, 1, 2]


# ----------------------------------------------------------------------------------
# bootstrap
# ----------------------------------------------------------------------------------
def test_bootstrap_is_deterministic(mpdta):
    a = att_gt(mpdta, **MPDTA, bootstrap=199, seed=11).tidy()
    b = att_gt(mpdta, **MPDTA, bootstrap=199, seed=11).tidy()
    c = att_gt(mpdta, **MPDTA, bootstrap=199, seed=12).tidy()
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["std_error"], c["std_error"])


def test_block_splitting_invariance():
    psi = np.random.default_rng(0).standard_t(5, size=(700, 4))
    clusters = np.arange(700) % 37
    sums = cluster_sums(psi, clusters)
    B, seed = 999, 2024
    whole = bootstrap_draws(sums, 700, B, seed)
    assert whole.shape == (B, 4)
    for n_tasks in (2, 3, 8):
        parts = [bootstrap_draws(sums, 700, B, seed, blocks=r) for r in task_blocks(B, n_tasks)]
        np.testing.assert_array_equal(np.vstack(parts), whole)
    # tiny memory chunks draw the same multipliers (only the BLAS summation order changes)
    np.testing.assert_allclose(bootstrap_draws(sums, 700, B, seed, max_bytes=1), whole,
                               rtol=0, atol=1e-15)
    # block j is seeded from SeedSequence(seed).spawn(k)[j]
    _, kids = block_seeds(seed, B)
    spawned = np.random.SeedSequence(seed).spawn(len(kids))
    assert [k.spawn_key for k in kids] == [s.spawn_key for s in spawned]
    j = 3
    rng = np.random.Generator(np.random.PCG64(spawned[j]))
    u = rng.random((multiplier.BLOCK_SIZE, sums.shape[0]), dtype=np.float32)
    v = np.where(u < np.float32((np.sqrt(5) + 1) / (2 * np.sqrt(5))), (1 - np.sqrt(5)) / 2,
                 (1 + np.sqrt(5)) / 2)
    start = j * multiplier.BLOCK_SIZE
    np.testing.assert_allclose(whole[start:start + multiplier.BLOCK_SIZE], v @ sums / 700,
                               rtol=0, atol=1e-14)
    se_whole, crit_whole = summarize(whole)
    res = multiplier_bootstrap(psi, n_draws=B, seed=seed, clusters=clusters)
    np.testing.assert_array_equal(res.se, se_whole)
    assert res.crit_value == crit_whole and res.n_clusters == 37


def test_bootstrap_close_to_analytic_on_mpdta(fits, mpdta):
    res = att_gt(mpdta, **MPDTA, bootstrap=999, seed=1)
    ratio = res.tidy()["std_error"] / res.analytic_se
    assert ratio.between(0.88, 1.12).all(), ratio.tolist()
    assert (res.tidy()["band"] == "simultaneous").all()
    assert res.crit_value > 1.96
    es_a = aggregate(fits["mpdta_nev_dr"], "event").tidy()
    es_b = aggregate(fits["mpdta_nev_dr"], "event", bootstrap=999, seed=1).tidy()
    assert (es_b["std_error"] / es_a["std_error"]).between(0.88, 1.12).all()
    np.testing.assert_array_equal(es_a["estimate"], es_b["estimate"])
    crit = (es_b["conf_high"] - es_b["estimate"]) / es_b["std_error"]
    detail = ~_is_overall(es_b)
    assert len(es_b[detail]) == 7
    assert (crit[detail] > 1.96).all() and np.allclose(crit[detail], crit[detail].iloc[0])
    assert (es_b.loc[detail, "band"] == "simultaneous").all()
    assert es_b.loc[~detail, "band"].iloc[0] == "pointwise"
    assert crit[~detail].iloc[0] == pytest.approx(1.959964, abs=1e-6)


def test_clustered_standard_errors(mpdta, fits):
    df = mpdta.assign(block=mpdta["countyreal"] // 10, same=mpdta["countyreal"])
    same = att_gt(df, **MPDTA, cluster="same", **R).tidy()
    np.testing.assert_allclose(same["std_error"], fits["mpdta_nev_dr"].tidy()["std_error"],
                               rtol=1e-12)
    res = att_gt(df, **MPDTA, cluster="block")
    psi = res.influence
    codes = res.clusters
    sums = np.vstack([np.bincount(codes, weights=psi[:, j]) for j in range(psi.shape[1])])
    G = df["block"].nunique()
    manual = np.sqrt((sums**2).sum(axis=1) * G / (G - 1)) / psi.shape[0]  # CR1 factor
    np.testing.assert_allclose(res.tidy()["std_error"], manual, rtol=1e-12)
    asym = att_gt(df, **MPDTA, cluster="block", **R)
    np.testing.assert_allclose(asym.tidy()["std_error"], manual * np.sqrt((G - 1) / G), rtol=1e-12)
    assert res.n_clusters == G
    boot = att_gt(df, **MPDTA, cluster="block", bootstrap=999, seed=3)
    assert (boot.tidy()["std_error"] / manual).between(0.85, 1.15).all()
    agg = aggregate(res, "simple").tidy().iloc[0]
    assert agg["n_clusters"] == df["block"].nunique()
    sums_s = np.bincount(codes, weights=aggregate(res, "simple").influence[:, 0])
    assert agg["std_error"] == pytest.approx(np.sqrt((sums_s**2).sum() * G / (G - 1)) / psi.shape[0])
    pt_c = pretest(res)
    assert np.isfinite(pt_c.statistic) and pt_c.df == 5


# ----------------------------------------------------------------------------------
# small-sample convention, the few-clusters rule and the pre-tests
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["simple", "event", "group", "calendar"])
def test_cell_weights_reproduce_every_aggregate(kind, sim):
    res = att_gt(sim, **SIM, covariates=["x"], control_group="notyet")
    agg = aggregate(res, kind, wild_below=0)
    W = agg.cell_weights
    assert W.shape == (len(agg.table), len(res.cells))
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(W @ res.cells["estimate"].to_numpy(), agg.table["estimate"], atol=1e-12)


def test_headline_switches_to_the_wild_score_bootstrap_below_the_rule(sim):
    df = sim.assign(region=sim["id"] // 250)  # 8 clusters
    res = att_gt(df, **SIM, covariates=["x"], control_group="notyet", cluster="region")
    wild = aggregate(res, "simple")
    assert wild.wild is not None and wild.wild.enumerated and wild.wild.B == 2**8
    assert wild.options["inference"].startswith("wild cluster score bootstrap-t (WCR, rademacher, 256 enumerated")
    row = wild.tidy().iloc[0]
    assert (row["conf_low"], row["conf_high"], row["p_value"]) == (
        wild.wild.conf_low, wild.wild.conf_high, wild.wild.p_value_zero)
    analytic = aggregate(res, "simple", wild_below=0)
    a = analytic.tidy().iloc[0]
    assert analytic.wild is None and analytic.options["inference"] == "analytic influence function, CR1 G/(G-1), t(7)"
    assert a["std_error"] == pytest.approx(row["std_error"], rel=1e-12)  # the reported SE stays CR1
    assert a["conf_high"] - a["estimate"] == pytest.approx(stats.t.ppf(0.975, 7) * a["std_error"])
    # 100 townships are not few: analytic by default; forcing the rule gives a sampled bootstrap
    town = att_gt(df, **SIM, covariates=["x"], control_group="notyet", cluster="town")
    assert aggregate(town, "simple").wild is None
    forced = aggregate(town, "simple", wild_below=10**6, wild_draws=499, seed=3)
    assert not forced.wild.enumerated and forced.wild.B == 499
    assert forced.tidy().iloc[0]["conf_low"] == aggregate(town, "simple", wild_below=10**6, wild_draws=499,
                                                          seed=3).tidy().iloc[0]["conf_low"]
    assert aggregate(res, "event").wild is None  # the rule is for the headline (simple) only
    with pytest.raises(ValueError, match="wild_below must be"):
        aggregate(res, "simple", wild_below=-1)


def test_pretests_and_their_order(fits, mpdta):
    res = fits["mpdta_nev_dr"]
    out = {t: pretest(res, test=t) for t in ("wild", "htz", "hotelling", "wald_chi2")}
    assert pretest(res).test == "wild" and out["wild"].B == 999
    for t, pt in out.items():
        assert pt.test == t and pt.df == 5 and pt.n_clusters == 500 and 0 < pt.p_value < 1
        assert 10 < pt.effective_clusters <= 499  # heavy-tailed influence functions: about 69
    h = out["htz"]
    assert h.statistic == pytest.approx(h.wald * h.df_denominator / (5 * h.effective_clusters))
    assert h.wald == pytest.approx(out["wald_chi2"].wald * 499 / 500)  # CR1 vs R's covariance
    assert out["hotelling"].df_denominator == 500 - 5
    assert out["htz"].p_value >= out["hotelling"].p_value >= out["wald_chi2"].p_value
    assert pretest(res, seed=5).p_value == pretest(res, seed=5).p_value
    with pytest.raises(ValueError, match="test must be one of"):
        pretest(res, test="chi2")


# ----------------------------------------------------------------------------------
# errors and hygiene
# ----------------------------------------------------------------------------------
def _no_never(df):
    return df[df["first.treat"] > 0]


def _one_cohort(df):
    return df[df["first.treat"] == 2006]


def _separated(df):
    rng = np.random.default_rng(0)
    x = np.where(df["first.treat"] == 2004, 10.0, 0.0) + rng.normal(0, 0.1, len(df))
    return df.assign(sep=x)


@pytest.mark.parametrize(("mutate", "kwargs", "match"), [
    (None, dict(outcome="nope"), "outcome column 'nope' does not exist"),
    (None, dict(covariates=["lpop", "ghost"]), "covariate column 'ghost' does not exist"),
    (None, dict(cluster="state"), "cluster column 'state' does not exist"),
    (lambda d: d.assign(k=1.0), dict(covariates=["k"]), "covariate 'k' has no variation"),
    (_no_never, dict(), "no never-treated units .*control_group='notyet'"),
    (_one_cohort, dict(control_group="notyet"), "cohort 2006 has no untreated comparison"),
    (lambda d: d.assign(lemp=d["lemp"].where(d.index != 7)), dict(),
     "outcome 'lemp' has 1 missing values"),
    (lambda d: d.iloc[1:], dict(), "unbalanced.*allow_unbalanced=True"),
    (_separated, dict(covariates=["sep"]), "overlap condition violated for cohort 2004"),
    (None, dict(method="ols"), "method must be one of"),
    (lambda d: pd.concat([d, d.iloc[:1]]), dict(), "appears more than once"),
])
def test_clear_errors(mpdta, mutate, kwargs, match):
    df = mpdta if mutate is None else mutate(mpdta)
    with pytest.raises(ValueError, match=match):
        att_gt(df, **{**MPDTA, **kwargs})


def test_no_comparison_units_in_a_period_of_an_unbalanced_panel(mpdta):
    df = mpdta[~((mpdta["first.treat"] == 0) & (mpdta["year"] == 2007))]
    with pytest.raises(ValueError, match="no comparison units observed for cohort 2004 in "
                                         "period 2007"):
        att_gt(df, **MPDTA, allow_unbalanced=True)


def test_aggregate_errors(fits):
    with pytest.raises(ValueError, match="kind must be one of"):
        aggregate(fits["mpdta_nev_dr"], "dynamic")
    with pytest.raises(ValueError, match="no post-treatment"):
        aggregate(fits["mpdta_nev_dr"], "simple", max_e=-1)


def test_callers_frame_is_not_mutated(mpdta):
    rng = np.random.default_rng(5)
    df = mpdta.sample(frac=1.0, random_state=1).assign(
        block=lambda d: d["countyreal"] // 10).drop(index=rng.choice(mpdta.index, 40))
    before = df.copy(deep=True)
    res = att_gt(df, **MPDTA, covariates=["lpop"], cluster="block", allow_unbalanced=True,
                 bootstrap=49, seed=1)
    aggregate(res, "event")
    pretest(res)
    pd.testing.assert_frame_equal(df, before)
    assert list(df.columns) == list(before.columns) and df.index.equals(before.index)


def test_docstring_examples_run():
    for mod in (cs_module, multiplier):
        failures, tried = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert tried > 0 and failures == 0, mod.__name__


@pytest.mark.parametrize("weights", ["mammen", "rademacher"])
def test_multiplier_weights_and_scale(weights):
    psi = np.random.default_rng(4).normal(size=(3000, 2)) * [1.0, 3.0]
    res = multiplier_bootstrap(psi, n_draws=999, seed=9, weights=weights)
    analytic = np.sqrt((psi**2).sum(axis=0)) / 3000
    np.testing.assert_allclose(res.se, analytic, rtol=0.1)
    assert res.weights == weights and res.n_draws == 999 and res.n_clusters == 3000
    assert 1.96 < res.crit_value < 2.6  # two nearly independent columns
    with pytest.raises(ValueError, match="weights must be"):
        multiplier_bootstrap(psi, n_draws=9, seed=1, weights="webb")
    with pytest.raises(ValueError, match="n_draws must be a positive"):
        multiplier_bootstrap(psi, n_draws=0)
