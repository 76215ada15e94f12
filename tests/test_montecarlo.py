"""Monte Carlo of bias and coverage (analysis.grid.montecarlo).

The default tier checks the machinery (seeding, worker invariance, the summary); the `slow`
tier runs the issue's coverage target: over 500 simulated cities the 95% interval of the
headline estimator (Callaway-Sant'Anna, doubly robust, not-yet-treated) covers the truth
between 93% and 97% of the time.
"""

import numpy as np
import pandas as pd
import pytest

from analysis.grid.montecarlo import monte_carlo, replication_seeds, summarise


def test_seeds_are_spawned_deterministically():
    a, b = replication_seeds(7, 5), replication_seeds(7, 5)
    assert a == b and len(set(a)) == 5
    assert replication_seeds(8, 5) != a
    assert replication_seeds(7, 6)[:5] == a  # adding replications keeps the earlier ones


def test_results_do_not_depend_on_the_number_of_workers():
    one = monte_carlo(2, 11, estimators=("cs", "twfe"))
    two = monte_carlo(2, 11, estimators=("cs", "twfe"), n_jobs=2)
    pd.testing.assert_frame_equal(one, two)
    assert set(one["estimator"]) == {"cs", "twfe"} and one["replication"].nunique() == 2


def test_summary_arithmetic():
    mc = pd.DataFrame({"outcome": "y", "estimator": "e", "estimate": [1.0, 3.0], "truth": [2.0, 2.0],
                       "conf_low": [0.0, 2.5], "conf_high": [1.5, 4.0], "replication": [0, 1]})
    s = summarise(mc).iloc[0]
    assert s["bias"] == 0.0 and s["rmse"] == 1.0 and s["coverage"] == 0.0 and s["replications"] == 2
    mc.loc[0, "conf_high"] = 2.0
    s = summarise(mc).iloc[0]
    assert s["coverage"] == 0.5 and np.isclose(s["coverage_mc_se"], np.sqrt(0.25 / 2))


def test_bad_calls():
    with pytest.raises(ValueError, match="replications"):
        monte_carlo(0, 1)
    with pytest.raises(ValueError, match="unknown estimator"):
        monte_carlo(1, 1, estimators=("ols",))


@pytest.mark.slow
def test_headline_estimator_coverage_over_500_cities():
    mc = monte_carlo(500, 20230601, outcomes=("income_per_capita",), estimators=("cs", "twfe"), n_jobs=2)
    s = summarise(mc).set_index("estimator")
    print(s.to_string())
    assert 0.93 <= s.loc["cs", "coverage"] <= 0.97
    # The benchmark is attenuated by design, and its interval undercovers.
    assert s.loc["twfe", "relative_bias"] < -0.3 and s.loc["twfe", "coverage"] < 0.5
    # The README's numbers (seeded, deterministic): 478 and 72 of 500 intervals cover the truth
    # (the headline, arrival year left out: 95.6%, the default-city income row of the committed
    # arrival-year records, data/montecarlo/arrival_records.csv.gz, same cities; with the arrival year
    # kept it was 485), TWFE's relative bias -56%.
    assert round(s.loc["cs", "coverage"] * 500) == 478 and round(s.loc["twfe", "coverage"] * 500) == 72
    assert s.loc["twfe", "relative_bias"] == pytest.approx(-0.5581, abs=5e-5)
