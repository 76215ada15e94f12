"""The `study` command: help on every subcommand, clear errors for bad parameters (before any work)."""

import subprocess
import sys

import pytest

from analysis.cli import main


def test_python_m_analysis_help():
    r = subprocess.run([sys.executable, "-m", "analysis", "--help"], capture_output=True, text=True, check=False)
    assert r.returncode == 0
    for sub in ("simulate", "ingest", "run"):
        assert sub in r.stdout


@pytest.mark.parametrize(("sub", "fragment"), [("simulate", "--seed"), ("ingest", "--dry-run"), ("run", "--only")])
def test_each_subcommand_has_help(sub, fragment, capsys):
    with pytest.raises(SystemExit) as e:
        main([sub, "--help"])
    assert e.value.code == 0
    assert fragment in capsys.readouterr().out


def test_bad_notebook_parameter_stops_the_run_before_any_work(tmp_path, capsys):
    code = main(["run", "--store", str(tmp_path / "none.duckdb"), "--outputs", str(tmp_path / "out"),
                 "-p", "lang=fr"])
    err = capsys.readouterr().err
    assert code == 2
    assert "parameter 'lang' = 'fr' is not valid: allowed values are 'zh', 'en'" in err
    assert not (tmp_path / "out").exists()


def test_unknown_parameter_and_unknown_notebook(tmp_path, capsys):
    assert main(["run", "--outputs", str(tmp_path / "o"), "-p", "colour=red"]) == 2
    assert "unknown parameter(s) 'colour'" in capsys.readouterr().err
    assert main(["run", "--outputs", str(tmp_path / "o"), "--only", "99_nothing"]) == 2
    assert "00_data_audit" in capsys.readouterr().err
    assert main(["run", "--outputs", str(tmp_path / "o"), "-p", "seed"]) == 2
    assert "name=value" in capsys.readouterr().err


def test_missing_store_is_explained(tmp_path, capsys):
    assert main(["run", "--store", str(tmp_path / "none.duckdb"), "--outputs", str(tmp_path / "o")]) == 2
    assert "study simulate" in capsys.readouterr().err


def test_simulate_bad_option_is_a_clear_error(tmp_path, capsys):
    args = ["simulate", "--out", str(tmp_path / "s"), "--store", str(tmp_path / "s.duckdb")]
    assert main([*args, "--later-batch", "2025:300"]) == 2
    assert "needs last_year >= 2025" in capsys.readouterr().err
    assert main([*args, "--later-batch", "2025"]) == 2
    assert "YEAR:COUNT" in capsys.readouterr().err
    assert not (tmp_path / "s.duckdb").exists()


def test_estimate_prints_table_csv_and_json(city_store, tmp_path, capsys):
    import json

    import pandas as pd

    base = ["estimate", "--outcome", "income_per_capita", "--store", str(city_store)]
    assert main([*base, "--covariates", "distance_km,terrain,distinctive_industry"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cs estimates for income_per_capita") and "simple" in out and "e=1" in out
    assert main([*base, "--estimator", "twfe", "--format", "csv", "--output", str(tmp_path / "t.csv")]) == 0
    t = pd.read_csv(tmp_path / "t.csv")
    assert set(t["aggregation"]) == {"coef", "event"} and (t["estimator"] == "twfe").all()
    assert t.loc[t["aggregation"] == "coef", "n_clusters"].item() == 178  # township clusters
    capsys.readouterr()
    assert main([*base, "--estimator", "bjs", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["aggregation"] == "simple" for r in rows)


def test_estimate_bad_calls_exit_2_with_a_message(city_store, tmp_path, capsys):
    base = ["estimate", "--store", str(city_store)]
    assert main([*base, "--outcome", "gdp"]) == 2
    assert "outcome 'gdp' is not in the data" in capsys.readouterr().err
    assert main([*base, "--outcome", "income_per_capita", "--covariates", "rainfall"]) == 2
    assert "unknown covariate(s) 'rainfall'" in capsys.readouterr().err
    assert main(["estimate", "--outcome", "income_per_capita", "--store", str(tmp_path / "none.duckdb")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_estimate_by_cadre_type_reports_levels_and_the_equality_test(city_store, capsys):
    import io

    import pandas as pd

    args = ["estimate", "--outcome", "income_per_capita", "--by", "cadre_type", "--store", str(city_store),
            "--covariates", "distance_km,terrain,distinctive_industry", "--format", "csv"]
    assert main(args) == 0
    t = pd.read_csv(io.StringIO(capsys.readouterr().out))
    levels = t[t["aggregation"] == "group_by"]["term"].tolist()
    assert levels == ["cadre_type=agriculture", "cadre_type=economic", "cadre_type=law", "cadre_type=other"]
    assert (t["aggregation"] == "equality_test").sum() == 1
    assert main([*args[:-2], "--estimator", "twfe"]) == 2
    assert "--by is available with the Callaway-Sant'Anna estimator" in capsys.readouterr().err
