"""Tests of the Rambachan & Roth (2023) sensitivity analysis (``analysis.inference.honest``).

* published numbers: the Medicaid example of the R ``HonestDiD`` README and of the Stata
  ``honestdid`` README, and the ``BCdata_EventStudy`` FLCI/relative-magnitudes values
  generated from R (provenance in ``tests/reference/honestdid/README.md``);
* an independent implementation: the ARP test statistic and truncation points against
  linear programmes solved by HiGHS, the FLCI's worst-case bias against a linear
  programme, the identified sets against closed forms;
* known truth: a linear differential trend with (almost) no noise, and a small coverage
  simulation (``slow``);
* properties: widening in M, bounds containing the estimate, breakdown values consistent
  with the bounds, the conventional interval at Mbar = 0, input validation, and results
  from the project's estimators (the caller's result is not changed).
"""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from analysis.estimators.callaway_santanna import aggregate, att_gt
from analysis.estimators.twfe import twfe_event_study
from analysis.inference import honest
from analysis.inference.honest import (
    breakdown_value,
    flci_sd,
    honest_bounds,
    honest_from_result,
    identified_set,
    original_ci,
    rm_ci,
)
from analysis.paths import REFERENCE_DIR

REF = REFERENCE_DIR / "honestdid"
MPDTA = dict(outcome="lemp", unit="countyreal", time="year", cohort="first.treat")


# ----------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def medicaid():
    t = pd.read_csv(REF / "medicaid_betahat_sigma.csv")
    return t["betahat"].to_numpy(), t.filter(like="sigma_").to_numpy()


@pytest.fixture(scope="module")
def published():
    return pd.read_csv(REF / "medicaid_published.csv", dtype={"lb": str, "ub": str})


@pytest.fixture(scope="module")
def bc():
    t = pd.read_csv(REF / "bc_eventstudy.csv")
    return t["betahat"].to_numpy(), t.filter(regex=r"^s\d").to_numpy()


@pytest.fixture(scope="module")
def mpdta():
    return pd.read_csv(REFERENCE_DIR / "mpdta" / "mpdta.csv")


@pytest.fixture(scope="module")
def cs_event(mpdta):
    res = att_gt(mpdta, **MPDTA, base_period="universal")
    return aggregate(res, "event")


def _half_unit(s: str) -> float:
    """Half a unit in the last printed decimal of ``s``."""
    return 0.5 * 10.0 ** -len(s.split(".")[1])


# ----------------------------------------------------------------------------------
# published numbers: Medicaid (HonestDiD README)
# ----------------------------------------------------------------------------------
def test_medicaid_inputs_reproduce_from_data(medicaid):
    pytest.importorskip("pyfixest")
    import importlib.util

    spec = importlib.util.spec_from_file_location("mk", REF / "make_medicaid_inputs.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    b, V = mk.medicaid_event_study()
    np.testing.assert_allclose(b, medicaid[0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(V, medicaid[1], rtol=1e-10, atol=0)


def test_medicaid_original_ci(medicaid, published):
    b, V = medicaid
    for target, lv in (("e=0", None), ("average", [0.5, 0.5])):
        row = published[(published["source"] == "stata_readme") & (published["method"] == "original")
                        & (published["target"] == target)]
        lb, ub = original_ci(b, V, 5, 2, lv)
        assert round(lb, 3) == float(row["lb"].iloc[0])
        assert round(ub, 3) == float(row["ub"].iloc[0])


def test_medicaid_relative_magnitudes_match_r(medicaid, published):
    """R's C-LF bounds are points of a 1,000-point grid on [-20 sd, 20 sd]: each published
    endpoint lies inside ours by at most one grid step (plus the printed rounding)."""
    b, V = medicaid
    sd = np.sqrt(V[5, 5])
    step = 40 * sd / 999
    pub = published.query("source == 'r_readme' and method == 'rm'")
    out = honest_bounds(b, V, 5, 2, "rm", pub["M"].to_numpy()).iloc[1:]
    for (_, p), (_, o) in zip(pub.iterrows(), out.iterrows(), strict=True):
        r_lb, r_ub = float(p["lb"]), float(p["ub"])
        slack_lb, slack_ub = _half_unit(p["lb"]), _half_unit(p["ub"])
        assert -slack_lb <= r_lb - o["lb"] <= step + slack_lb, (p["M"], r_lb, o["lb"])
        assert -slack_ub <= o["ub"] - r_ub <= step + slack_ub, (p["M"], r_ub, o["ub"])
        assert abs(r_lb - o["lb"]) < 1e-3 and abs(r_ub - o["ub"]) < 1e-3


def test_medicaid_relative_magnitudes_match_another_r_build(medicaid, published):
    """Another build of the R README prints endpoints up to 3.5e-4 from the first (R's simulated
    least-favourable critical value): each lies inside ours by at most one grid step, give or take that spread."""
    b, V = medicaid
    step = 40 * np.sqrt(V[5, 5]) / 999
    builds = {src: published.query(f"source == '{src}' and method == 'rm'").reset_index(drop=True)
              for src in ("r_readme", "r_readme_other_build")}
    spread = max(float((builds["r_readme"][c].astype(float) - builds["r_readme_other_build"][c].astype(float))
                       .abs().max()) for c in ("lb", "ub"))
    assert 3e-4 < spread < 4e-4  # measured from the two printed sets
    pub = builds["r_readme_other_build"]
    out = honest_bounds(b, V, 5, 2, "rm", pub["M"].to_numpy()).iloc[1:]
    outside_one_step = 0
    for (_, p), (_, o) in zip(pub.iterrows(), out.iterrows(), strict=True):
        r_lb, r_ub = float(p["lb"]), float(p["ub"])
        d_lb, d_ub = r_lb - o["lb"], o["ub"] - r_ub
        for d, s in ((d_lb, _half_unit(p["lb"])), (d_ub, _half_unit(p["ub"]))):
            assert -(s + spread) <= d <= step + s + spread, (p["M"], d)
            outside_one_step += not (-s <= d <= step + s)
        assert abs(d_lb) < 1e-3 and abs(d_ub) < 1e-3
    assert outside_one_step == 3  # tests/reference/honestdid/README.md


def test_medicaid_smoothness_flci_matches_r(medicaid, published):
    """FLCI endpoints agree with R to the printed precision plus 1e-4 (R's folded-normal
    quantile comes from 10^6 simulated draws)."""
    b, V = medicaid
    pub = published.query("source == 'r_readme' and method == 'sd'")
    out = honest_bounds(b, V, 5, 2, "sd", pub["M"].to_numpy()).iloc[1:]
    for (_, p), (_, o) in zip(pub.iterrows(), out.iterrows(), strict=True):
        assert abs(float(p["lb"]) - o["lb"]) <= _half_unit(p["lb"]) + 1e-4, (p["M"], p["lb"], o["lb"])
        assert abs(float(p["ub"]) - o["ub"]) <= _half_unit(p["ub"]) + 1e-4, (p["M"], p["ub"], o["ub"])


def test_medicaid_matches_stata_readme(medicaid, published):
    """Stata prints three decimals; its grids and simulations are its own (tolerance 1e-3)."""
    b, V = medicaid
    pub = published.query("source == 'stata_readme' and method != 'original'")
    for (target, method), grp in pub.groupby(["target", "method"], sort=False):
        lv = [0.5, 0.5] if target == "average" else None
        out = honest_bounds(b, V, 5, 2, method, grp["M"].to_numpy(), l_vec=lv).iloc[1:]
        np.testing.assert_allclose(out["lb"], grp["lb"].astype(float), atol=1e-3)
        np.testing.assert_allclose(out["ub"], grp["ub"].astype(float), atol=1e-3)


def test_medicaid_breakdown(medicaid):
    """R: 'the breakdown value for a significant effect is Mbar = 2' (grid 0.5, ..., 2) and
    'M ~ 0.03' for smoothness (grid 0, 0.01, ..., 0.05)."""
    b, V = medicaid
    bd_rm = breakdown_value(b, V, 5, 2, "rm", tol=1e-3)
    assert 1.5 < bd_rm < 2.0
    bd_sd = breakdown_value(b, V, 5, 2, "sd", m_max=0.05, tol=1e-5)
    assert 0.02 < bd_sd < 0.03
    # consistent with the bounds: excludes zero at the breakdown value, not just above it
    for method, bd, tol in (("rm", bd_rm, 1e-3), ("sd", bd_sd, 1e-5)):
        t = honest_bounds(b, V, 5, 2, method, [bd, bd + tol]).iloc[1:]
        assert t["lb"].iloc[0] > 0 and t["lb"].iloc[1] <= 0


# ----------------------------------------------------------------------------------
# published numbers: BCdata_EventStudy (R, via HonestDiD.jl's reference file)
# ----------------------------------------------------------------------------------
def test_bc_flci_matches_r(bc):
    b, V = bc
    pub = pd.read_csv(REF / "bc_published.csv")
    orig = pub.query("quantity == 'original'").iloc[0]
    np.testing.assert_allclose(original_ci(b, V, 4, 4), (orig["lb"], orig["ub"]), atol=1e-9)
    for _, p in pub.query("quantity == 'flci'").iterrows():
        r = flci_sd(b, V, 4, 4, M=p["M"])
        # R's half-length uses a simulated folded-normal quantile (10^6 draws, seed 0): its
        # standard error is ~0.1% of the quantile; allow three standard errors
        assert abs(r.half_length - p["half_length"]) < 3e-3 * p["half_length"]
        assert abs(r.lb - p["lb"]) < 1e-4 and abs(r.ub - p["ub"]) < 1e-4
    # R's optimal vector at M = 0.1: beta_{post,1} + beta_{pre,-1} (linear extrapolation)
    np.testing.assert_allclose(flci_sd(b, V, 4, 4, M=0.1).weights, [0, 0, 0, 1, 1, 0, 0, 0], atol=1e-6)


def test_bc_relative_magnitudes_against_r_grid(bc):
    """R (gridPoints = 200 on [-20 sd, 20 sd]) accepts (0.07055, 0.31844) at Mbar = 1: the true
    endpoints lie between those grid points and their rejected neighbours."""
    b, V = bc
    pub = pd.read_csv(REF / "bc_published.csv").query("quantity == 'rm_grid200'")
    sd = np.sqrt(V[4, 4])
    step = 40 * sd / 199
    lb, ub = rm_ci(b, V, 4, 4, 1.0, inference="Conditional")
    r = pub.query("inference == 'Conditional'").iloc[0]
    assert r["lb"] - step < lb <= r["lb"] and r["ub"] <= ub < r["ub"] + step
    # C-LF: the least-favourable critical value is simulated (different generator)
    lb, ub = rm_ci(b, V, 4, 4, 1.0)
    r = pub.query("inference == 'C-LF'").iloc[0]
    assert r["lb"] - step - 1e-3 < lb <= r["lb"] + 1e-3 and r["ub"] - 1e-3 <= ub < r["ub"] + step + 1e-3


# ----------------------------------------------------------------------------------
# independent implementations
# ----------------------------------------------------------------------------------
def _rm_test(b, V, K, T, mbar, s, positive, lv):
    A, post = honest._rm_constraints(K, T, mbar, s, positive)
    Ar = A[post]
    AGi = Ar[:, K:] @ honest._gamma_inverse(lv)
    SY = Ar @ V @ Ar.T
    test = honest._ArpTest(Ar @ b, AGi[:, 0], AGi[:, 1:], SY, 0.05, False, None)
    return test, Ar @ b, AGi[:, 0], AGi[:, 1:], SY


def test_arp_statistic_and_truncation_against_linear_programmes(medicaid):
    """eta equals R's primal LP min eta s.t. y - X tau <= eta sd; [v_lo, v_up] is where the
    dual LP max_{gamma in P} (s + c x)' gamma equals x (R's bisection, .vlo_vup_dual_fn)."""
    b, V = medicaid
    rng = np.random.default_rng(7)
    for mbar, s, positive, lv in ((1.0, 0, True, [1.0, 0.0]), (0.5, -2, False, [0.5, 0.5]),
                                  (2.0, -4, True, [0.3, 0.7])):
        test, Y, a, X, SY = _rm_test(b, V, 5, 2, mbar, s, positive, np.asarray(lv))
        sd = np.sqrt(np.diag(SY))
        m, k = X.shape
        for theta in rng.normal(0.05, 0.03, size=4):
            y = Y - a * theta
            lp = optimize.linprog(np.r_[1.0, np.zeros(k)], A_ub=-np.column_stack([sd, X]), b_ub=-y,
                                  bounds=[(None, None)] * (k + 1), method="highs")
            eta, _, vlo, vup, _ = (v[0] for v in test.statistics(theta))
            assert abs(lp.fun - eta) < 1e-12

            gstar = test.G[np.argmax(test.G @ y)]
            c = SY @ gstar / (gstar @ SY @ gstar)
            s_vec = y - c * (gstar @ y)

            def f(x, s_vec=s_vec, c=c, X=X, sd=sd, m=m):
                r = optimize.linprog(-(s_vec + c * x), A_eq=np.vstack([X.T, sd]),
                                     b_eq=np.r_[np.zeros(X.shape[1]), 1.0], bounds=[(0, None)] * m,
                                     method="highs")
                return -r.fun

            assert abs(f(eta) - eta) < 1e-10
            span = 1e-6 * (1 + abs(eta))
            for v, outward in ((vlo, -1.0), (vup, 1.0)):
                if np.isfinite(v):
                    assert abs(f(v - outward * span) - (v - outward * span)) < 1e-10  # inside
                    assert f(v + outward * span) > v + outward * span + 1e-12        # outside


def test_flci_bias_formula_against_linear_programme():
    """Worst-case bias of an affine estimator over Delta^SD(M) from the closed form equals the LP."""
    rng = np.random.default_rng(11)
    for K, T in ((1, 1), (3, 2), (4, 3), (2, 4)):
        lv = rng.random(T)
        B, w0, c_post = honest._sd_structure(K, T, lv)
        g = rng.normal(size=B.shape[1])
        w = B @ g + w0
        t = np.r_[np.arange(-K, 0), np.arange(1, T + 1)]
        assert abs(w @ t[:K] + lv @ t[K:]) < 1e-12  # unbiased for linear trends
        A = honest._sd_constraints(K, T)
        res = optimize.linprog(-np.r_[w, lv], A_ub=np.vstack([A, -A]), b_ub=np.ones(2 * A.shape[0]),
                               bounds=[(None, None)] * (K + T), method="highs")
        assert abs(-res.fun - (np.abs(g).sum() + c_post)) < 1e-9


def test_flci_is_optimal_against_multistart_search():
    rng = np.random.default_rng(5)
    for K, T, M in ((3, 2, 0.2), (4, 1, 2.0), (2, 3, 0.05)):
        A = rng.normal(size=(K + T, K + T))
        V = A @ A.T / (K + T) + 0.1 * np.eye(K + T)
        b = rng.normal(size=K + T)
        r = flci_sd(b, V, K, T, M)
        B, w0, c_post = honest._sd_structure(K, T, np.eye(T)[0])

        def chi(g, B=B, w0=w0, c_post=c_post, V=V, M=M, T=T):
            v = np.r_[B @ g + w0, np.eye(T)[0]]
            sd = np.sqrt(v @ V @ v)
            return sd * honest._cv_folded(M * (np.abs(g).sum() + c_post) / sd, 0.05)

        best = min(optimize.minimize(chi, rng.normal(size=K - 1) * 3, method="Nelder-Mead",
                                     options={"xatol": 1e-10, "fatol": 1e-14, "maxfev": 20000}).fun
                   for _ in range(8))
        assert r.half_length <= best * (1 + 1e-9)


def test_folded_normal_quantile():
    from scipy import stats

    for x in (0.0, 0.3, 2.0, 10.0, 60.0):
        c = honest._cv_folded(x, 0.05)
        assert abs(stats.norm.cdf(c - x) - stats.norm.cdf(-c - x) - 0.95) < 1e-12
    assert abs(honest._cv_folded(0.0, 0.05) - 1.959963984540054) < 1e-12


# ----------------------------------------------------------------------------------
# known truth and properties
# ----------------------------------------------------------------------------------
def test_identified_set_linear_trend_closed_forms():
    """beta = gamma * t with no effect: Delta^RM(Mbar) bounds tau_1 by gamma*(1 -/+ Mbar)... as
    theta = beta_1 - delta_1 with |delta_1| <= Mbar*gamma; Delta^SD(0) identifies theta = 0."""
    g = 0.4
    t = np.r_[np.arange(-3, 0), np.arange(1, 3)].astype(float)
    b = g * t
    for mbar in (0.0, 0.5, 1.0, 2.0):
        lo, hi = identified_set(b, 3, 2, "rm", mbar)
        assert abs(lo - g * (1 - mbar)) < 1e-9 and abs(hi - g * (1 + mbar)) < 1e-9
        lo, hi = identified_set(b, 3, 2, "rm", mbar, l_vec=[0.5, 0.5])  # delta_2 <= 2 Mbar gamma
        assert abs(lo - 1.5 * g * (1 - mbar)) < 1e-9 and abs(hi - 1.5 * g * (1 + mbar)) < 1e-9
    for M in (0.0, 0.1):
        lo, hi = identified_set(b, 3, 2, "sd", M)
        assert abs(lo + M) < 1e-9 and abs(hi - M) < 1e-9  # delta_1 in [g - M, g + M]


def test_robust_intervals_converge_to_identified_set():
    """With (almost) no sampling noise the robust intervals are the identified sets."""
    g = 0.4
    t = np.r_[np.arange(-3, 0), np.arange(1, 3)].astype(float)
    b = g * t
    V = 1e-12 * (np.eye(5) + 0.3)
    for mbar in (0.5, 1.0):
        lb, ub = rm_ci(b, V, 3, 2, mbar)
        assert abs(lb - g * (1 - mbar)) < 1e-4 and abs(ub - g * (1 + mbar)) < 1e-4
    r = flci_sd(b, V, 3, 2, M=0.0)
    assert abs(r.lb) < 1e-4 and abs(r.ub) < 1e-4
    r = flci_sd(b, V, 3, 2, M=0.1)
    assert abs(r.lb + 0.1) < 1e-4 and abs(r.ub - 0.1) < 1e-4


def test_intervals_widen_with_m_and_contain_the_estimate(medicaid):
    b, V = medicaid
    for lv in (None, [0.5, 0.5]):
        rm = honest_bounds(b, V, 5, 2, "rm", [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0], l_vec=lv).iloc[1:]
        assert np.all(np.diff(rm["lb"]) <= 1e-9) and np.all(np.diff(rm["ub"]) >= -1e-9)
        est = float(np.asarray(lv if lv is not None else [1.0, 0.0]) @ b[5:])
        assert np.all(rm["lb"] <= est) and np.all(rm["ub"] >= est)
        lens = [flci_sd(b, V, 5, 2, m, lv).half_length for m in (0.0, 0.005, 0.01, 0.02, 0.05)]
        assert np.all(np.diff(lens) > 0)
        for m in (0.0, 0.02):
            r = flci_sd(b, V, 5, 2, m, lv)
            assert r.lb <= r.estimate <= r.ub


def test_rm_at_zero_is_the_conventional_interval(medicaid):
    """With Mbar = 0 post-period trends equal the reference period's: the C-LF interval is the
    conventional one up to the simulated least-favourable critical value."""
    b, V = medicaid
    for lv in ([1.0, 0.0], [0.5, 0.5], [0.0, 1.0]):
        lo0, hi0 = original_ci(b, V, 5, 2, lv)
        lb, ub = rm_ci(b, V, 5, 2, 0.0, lv)
        se = (hi0 - lo0) / (2 * 1.959963984540054)
        assert abs(lb - lo0) < 0.05 * se and abs(ub - hi0) < 0.05 * se
        lb, ub = rm_ci(b, V, 5, 2, 0.0, lv, inference="Conditional")  # exact: conventional CI
        assert abs(lb - lo0) < 1e-6 * se and abs(ub - hi0) < 1e-6 * se


def test_single_post_period_and_single_pre_period(medicaid):
    b, V = medicaid
    b1, V1 = b[:6], V[:6, :6]  # five pre-periods, one post-period (no nuisance parameters)
    t = honest_bounds(b1, V1, 5, 1, "rm", [0.0, 1.0, 2.0]).iloc[1:]
    assert np.all(np.diff(t["lb"]) <= 1e-9) and np.all(np.diff(t["ub"]) >= -1e-9)
    b2, V2 = b[4:], V[4:, 4:]  # one pre-period
    for method in ("rm", "sd"):
        t = honest_bounds(b2, V2, 1, 2, method, [0.0, 0.5]).iloc[1:]
        assert np.all(t["lb"] < t["ub"])


def test_deterministic(medicaid):
    b, V = medicaid
    a = honest_bounds(b, V, 5, 2, "rm", [1.0], seed=3)
    c = honest_bounds(b, V, 5, 2, "rm", [1.0], seed=3)
    pd.testing.assert_frame_equal(a, c)


@pytest.mark.slow
def test_rm_coverage_simulation():
    """Coverage of the C-LF interval for delta in Delta^RM(1) (seeded, 300 draws)."""
    ss = np.random.SeedSequence(20230601)
    rng = np.random.default_rng(ss.spawn(1)[0])
    K, T = 3, 2
    A = rng.normal(size=(K + T, K + T))
    V = 0.01 * (A @ A.T / (K + T) + 0.5 * np.eye(K + T))
    delta = np.array([-0.15, -0.1, -0.05, 0.05, 0.1])  # largest pre change 0.05, post 0.05: Mbar=1
    tau = np.array([0.2, 0.3])
    beta = delta + np.r_[np.zeros(K), tau]
    draws = rng.multivariate_normal(beta, V, size=300)
    cover = [lb <= tau[0] <= ub for lb, ub in (rm_ci(d, V, K, T, 1.0, lf_sims=1000) for d in draws)]
    assert np.mean(cover) >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 300)


# ----------------------------------------------------------------------------------
# from the project's estimators
# ----------------------------------------------------------------------------------
def test_from_callaway_santanna_event_study(cs_event):
    before = cs_event.table.copy()
    h = honest_from_result(cs_event, rm_grid=[0.0, 1.0], sd_grid=[0.0, 0.01], breakdown=False)
    pd.testing.assert_frame_equal(cs_event.table, before)
    assert h.num_pre == 3 and h.num_post == 4 and h.info["reference_period"] == -1
    np.testing.assert_array_equal(h.event_times, [-4, -3, -2, 0, 1, 2, 3])
    assert set(h.bounds["target"]) == {"e=0", "e=1", "e=2", "e=3", "average"}
    # the same as calling honest_bounds on the extracted inputs
    t = cs_event.tidy().set_index("term")
    np.testing.assert_allclose(h.betahat[3], t.loc["e=0", "estimate"])
    np.testing.assert_allclose(np.sqrt(h.sigma[3, 3]), t.loc["e=0", "std_error"], rtol=1e-12)
    direct = honest_bounds(h.betahat, h.sigma, 3, 4, "rm", [0.0, 1.0], l_vec=np.full(4, 0.25))
    got = h.bounds.query("target == 'average'")
    np.testing.assert_allclose(got["lb"].to_numpy()[:3], direct["lb"].to_numpy())
    np.testing.assert_allclose(got["ub"].to_numpy()[:3], direct["ub"].to_numpy())


def test_from_result_breakdown_consistent(cs_event):
    h = honest_from_result(cs_event, methods="rm", rm_grid=[0.0, 0.5, 1.0])
    assert list(h.breakdown["target"]) == ["e=0", "e=1", "e=2", "e=3", "average"]
    e0 = h.bounds.query("target == 'e=0' and method == 'rm' and M == 0")
    if e0["lb"].iloc[0] <= 0 <= e0["ub"].iloc[0]:
        assert np.isnan(h.breakdown["breakdown"].iloc[0])
    avg = h.breakdown.query("target == 'average'")["breakdown"].iloc[0]
    b = h.bounds.query("target == 'average' and method == 'rm'").set_index("M")
    assert (avg >= 0.5) == bool(b.loc[0.5, "ub"] < 0 or b.loc[0.5, "lb"] > 0)


def test_from_twfe_event_study(mpdta):
    es = twfe_event_study(mpdta, **MPDTA)
    h = honest_from_result(es, rm_grid=[1.0], sd_grid=[0.0], breakdown=False)
    assert h.num_pre == 3 and h.num_post == 4
    V = es.vcov
    np.testing.assert_allclose(h.sigma, V.loc[[-4, -3, -2, 0, 1, 2, 3], [-4, -3, -2, 0, 1, 2, 3]].to_numpy())
    # binned endpoints are dropped (they pool event times)
    es_b = twfe_event_study(mpdta, **MPDTA, leads=3, lags=2)
    h_b = honest_from_result(es_b, methods="sd", sd_grid=[0.0], breakdown=False)
    np.testing.assert_array_equal(h_b.event_times, [-2, 0, 1])
    assert any("binned" in d for d in h_b.info["dropped"])


def test_from_result_rejects_varying_base_period(mpdta):
    es = aggregate(att_gt(mpdta, **MPDTA), "event")
    with pytest.raises(ValueError, match="base_period='universal'"):
        honest_from_result(es)


# ----------------------------------------------------------------------------------
# input validation
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(sigma=np.ones((3, 2))), "square"),
        (dict(sigma=np.eye(4)), "4x4 but betahat has 3"),
        (dict(sigma=np.array([[1.0, 0.5, 0], [0.0, 1, 0], [0, 0, 1]])), "symmetric"),
        (dict(sigma=np.diag([1.0, -1.0, 1.0])), "positive semi-definite"),
        (dict(num_pre=0, num_post=3), "num_pre must be an integer >= 1"),
        (dict(num_pre=2, num_post=2), "num_pre \\+ num_post"),
        (dict(l_vec=[1.0, 0.0]), "l_vec must have num_post = 1"),
        (dict(l_vec=[0.0]), "not all zero"),
        (dict(alpha=1.5), "alpha"),
        (dict(method="linear"), "method must be one of"),
        (dict(grid=[-1.0]), "grid must be"),
        (dict(betahat=[0.0, np.nan, 1.0]), "missing or infinite"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(betahat=[0.1, 0.0, 1.0], sigma=np.eye(3), num_pre=2, num_post=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        honest_bounds(**args)


def test_bad_result_and_inference():
    with pytest.raises(ValueError, match="DiDResult"):
        honest_from_result(pd.DataFrame())
    with pytest.raises(ValueError, match="inference"):
        rm_ci([0.1, 0.0, 1.0], np.eye(3), 2, 1, inference="LF")


def test_doctests():
    failed, _ = doctest.testmod(honest, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failed == 0
