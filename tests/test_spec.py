"""The headline specification and the parameter checks, defined once (analysis.core.spec)."""

import pandas as pd
import pytest

from analysis.core import params, spec
from analysis.core.spec import DEFAULT_COVARIATES, HEADLINE, Spec
from analysis.data import schema


def test_headline_is_the_documented_specification():
    assert (HEADLINE.estimator, HEADLINE.control_group, HEADLINE.cluster) == ("cs", "notyet", "township")
    assert HEADLINE.covariates == DEFAULT_COVARIATES == ("distance_km", "terrain", "distinctive_industry")
    assert HEADLINE.METHOD == "dr" and HEADLINE.aggregation == "simple"
    assert HEADLINE.cluster_column == "township_code"
    # The arrival year (issue 11): left out of every comparison, decided by the partial-exposure Monte Carlo.
    assert HEADLINE.anticipation == spec.ANTICIPATION == 1


def test_cs_arguments_carry_every_choice():
    args = HEADLINE.cs_arguments(["base_distance_km"])
    assert args == {"unit": "village_code", "time": "year", "cohort": "cohort", "covariates": ["base_distance_km"],
                    "control_group": "notyet", "method": "dr", "cluster": "township_code", "anticipation": 1}
    assert HEADLINE.replace(anticipation=0).cs_arguments([])["anticipation"] == 0
    assert HEADLINE.replace(cluster="county").cs_arguments([], cohort="exposure_cohort")["covariates"] is None
    assert HEADLINE.replace(cluster="county").cs_arguments([], cohort="exposure_cohort")["cohort"] == "exposure_cohort"


def test_variants_are_checked_when_made():
    assert HEADLINE.replace(estimator="twfe", covariates=()).aggregation == "coef"
    assert Spec(covariates="terrain").covariates == ("terrain",)
    with pytest.raises(ValueError, match="cluster must be one of 'township', 'county', 'village', got 'province'"):
        HEADLINE.replace(cluster="province")
    with pytest.raises(ValueError, match="estimator 'ols' is not known"):
        Spec(estimator="ols")
    with pytest.raises(ValueError, match="control group 'all' is not known; choose 'never' or 'notyet'"):
        Spec(control_group="all")
    with pytest.raises(ValueError, match="unknown covariate"):
        Spec(covariates=("altitude",))
    for bad in (-1, 4, 1.0, True):
        with pytest.raises(ValueError, match="anticipation must be 0-3 years"):
            Spec(anticipation=bad)


def test_from_params_takes_the_notebook_names_and_keeps_the_rest():
    s = Spec.from_params({"estimator": "sa", "covariates": ["terrain"], "seed": 1, "lang": "en"})
    assert s == Spec(estimator="sa", covariates=("terrain",))
    assert Spec.from_params({}) == HEADLINE


def test_parameter_catalogue_allows_exactly_the_specification_values():
    assert params.CATALOGUE["estimator"].choices == spec.ESTIMATORS
    assert params.CATALOGUE["control_group"].choices == spec.CONTROL_GROUPS
    assert params.CATALOGUE["cluster"].choices == spec.CLUSTERS == tuple(spec.CLUSTER_COLUMNS)


def test_outcome_and_draw_checks():
    panel = pd.DataFrame({"income_per_capita": [1.0], "disputes": [0]})
    assert spec.check_outcomes(panel, "disputes") == ["disputes"]
    with pytest.raises(ValueError, match=r"unknown outcome\(s\) 'gdp' \(not in the panel\); choose from "
                                         + schema.OUTCOMES[0]):
        spec.check_outcomes(panel, ["gdp"])
    with pytest.raises(ValueError, match=r"outcome\(s\) 'petitions' are not in the panel"):
        spec.check_outcomes(panel, ["petitions"])
    with pytest.raises(ValueError, match="outcomes is empty"):
        spec.check_outcomes(panel, [])
    assert spec.check_draws(0) == 0
    with pytest.raises(ValueError, match="bootstrap_draws must be at least 1 for the test, got 0"):
        spec.check_draws(0, 1, "for the test")
    with pytest.raises(ValueError, match="bootstrap_draws"):
        spec.check_draws(True)
