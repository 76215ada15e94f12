"""Notebook parameters are validated with messages that name the parameter and the allowed values."""

import pytest

from analysis.core.params import ParameterError, validate_params


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"lang": "fr"}, "parameter 'lang' = 'fr' is not valid: allowed values are 'zh', 'en'"),
        ({"control_group": "all"}, "'never', 'notyet'"),
        ({"estimator": "ols"}, "'cs', 'twfe', 'sa', 'bjs', 'ppml'"),
        ({"outcomes": ["income_per_capita", "gdp"]}, "'gdp' not allowed"),
        ({"seed": "seven"}, "parameter 'seed' = 'seven' is not valid: expected a whole number"),
        ({"first_year": 2024, "last_year": 2018}, "is after 'last_year'"),
        ({"colour": "red"}, "unknown parameter(s) 'colour'"),
        ({"store": "/nonexistent/study.duckdb"}, "study simulate"),
        ({"min_months": 13}, "(0, 12]"),
        ({"spillover_threshold": 0}, "'spillover_threshold' = 0.0 is not valid: expected a share of villages"),
        ({"spillover_threshold": 1.5}, "in (0, 1]"),
        ({"randomisation_strata": "township"}, "allowed values are 'county_propensity', 'county'"),
    ],
)
def test_bad_parameters_are_named(params, fragment):
    with pytest.raises(ParameterError) as err:
        validate_params(params)
    assert fragment in str(err.value)


def test_good_parameters_are_normalised(tmp_path):
    store = tmp_path / "s.duckdb"
    store.write_bytes(b"")
    out = validate_params({"outcomes": "income_per_capita, disputes", "min_months": 6, "store": store,
                           "seed": 3, "lang": "en"})
    assert out == {"outcomes": ["income_per_capita", "disputes"], "min_months": 6.0, "store": str(store),
                   "seed": 3, "lang": "en"}
