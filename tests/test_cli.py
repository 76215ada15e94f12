"""The `study` command: help on every subcommand, clear errors for bad parameters (before any work)."""

import json
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


def test_simulate_villages_scales_townships_and_counties(tmp_path, capsys):
    import pandas as pd

    out, store = tmp_path / "s", tmp_path / "s.duckdb"
    assert main(["simulate", "--villages", "900", "--out", str(out), "--store", str(store), "--quiet"]) == 0
    said = capsys.readouterr().out
    # 900 villages at the report's ratios (3,224 : 178 : 9): round(178 * 900 / 3224) = 50 townships,
    # round(9 * 900 / 3224) = 3 counties
    assert "900 villages in 50 townships and 3 counties" in said
    panel = pd.read_csv(out / "panel.csv", dtype=str)
    assert panel["village_code"].nunique() == 900 and panel["township_code"].nunique() == 50
    assert "6300 panel rows" in said  # 900 villages x 7 years (2018-2024)


def test_simulate_too_few_villages_is_a_clear_error(tmp_path, capsys):
    args = ["simulate", "--out", str(tmp_path / "s"), "--store", str(tmp_path / "s.duckdb")]
    assert main([*args, "--villages", "12"]) == 2
    assert "--villages must be a whole number of at least 40, got 12" in capsys.readouterr().err
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


HEADLINE_INCOME = 183.5697637  # notebook 02's headline for income_per_capita on the default city (results.json)
ARRIVAL_KEPT_INCOME = 169.8011213  # the same with the arrival year kept (--anticipation 0)


def test_estimate_defaults_to_the_headline_over_the_stores_years(city_store, study, tmp_path):
    import json

    r = study("estimate", "--outcome", "income_per_capita", "--store", city_store, "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    simple = next(x for x in rows if x["aggregation"] == "simple")
    assert simple["estimate"] == pytest.approx(HEADLINE_INCOME, rel=1e-9)
    # p = 8.1e-11 (t(177), G/(G-1)); JSON keeps 10 decimals, so it reads 1e-10 there
    assert simple["p_value"] <= 1e-10 and (simple["first_year"], simple["last_year"]) == (2018, 2024)
    assert json.loads(simple["options"])["covariates"] == ["base_distance_km", "base_terrain_hill",
                                                           "base_terrain_mountain", "base_distinctive_industry"]
    # the window and every option are printed (on stderr when stdout is the data)
    assert "Analysis window 2018-2024: every year the store holds." in r.stderr
    assert "Options (the headline specification): estimator cs, comparison villages notyet, covariates " \
           "distance_km, terrain, distinctive_industry, standard errors clustered by township" in r.stderr


def test_estimate_table_shows_p_values_window_and_options(city_store, capsys):
    assert main(["estimate", "--outcome", "income_per_capita", "--store", str(city_store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "Analysis window 2018-2024: every year the store holds. Store: " + str(city_store) + "."
    assert lines[2].startswith("Options (the headline specification): estimator cs")
    assert lines[3].split()[-1] == "p-value"
    simple = next(line for line in lines if line.startswith("simple"))
    # p from t(177) with G/(G-1) (analysis.inference.small_sample); with normal critical values it was 4.0e-12
    assert simple.split()[2] == "183.5698" and simple.split()[-1] == "8.1e-11"
    assert lines[2].endswith("anticipation 1 (years before the cohort year left out of the comparisons).")
    assert main(["estimate", "--outcome", "income_per_capita", "--store", str(city_store), "--anticipation", "0",
                 "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["estimate"] == pytest.approx(ARRIVAL_KEPT_INCOME, rel=1e-9)
    assert "differs from the headline in: anticipation" in captured.err
    assert main(["estimate", "--outcome", "income_per_capita", "--store", str(city_store), "--covariates", "none",
                 "--estimator", "twfe", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "p_value" in captured.out.splitlines()[0]
    assert "differs from the headline in: estimator, covariates" in captured.err


def test_estimate_by_cadre_type_puts_the_equality_test_in_its_own_row_and_section(city_store, capsys):
    import io

    import pandas as pd

    base = ["estimate", "--outcome", "income_per_capita", "--by", "cadre_type", "--store", str(city_store)]
    assert main([*base, "--format", "csv"]) == 0
    t = pd.read_csv(io.StringIO(capsys.readouterr().out))
    levels = t[t["aggregation"] == "group_by"]
    assert levels[["estimate", "std_error", "conf_low", "conf_high", "p_value"]].notna().all().all()
    assert levels["statistic"].isna().all()
    test = t[t["aggregation"] == "equality_test"].iloc[0]
    assert pd.isna(test["estimate"]) and pd.isna(test["std_error"])  # no statistic in the estimate column
    assert test["statistic"] > 0 and test["df"] == 3 and 0 < test["p_value"] < 1
    assert main(base) == 0
    out = capsys.readouterr().out
    table, _, tests = out.partition("tests (not estimates: a statistic and its p-value)")
    assert "cadre_type=agriculture" in table and "equal effects" not in table
    assert "H0: equal effects across cadre_type" in tests and ", df 3, p-value " in tests


def test_a_window_beyond_the_data_is_refused_with_the_years_the_store_holds(city_store, study, tmp_path):
    r = study("estimate", "--outcome", "income_per_capita", "--last-year", "2027", "--store", city_store, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"error: last_year = 2027 is outside the data: the store {city_store} holds the years 2018-2024. "
        "Choose one of them, or leave last_year out to use every year the store holds.")


def test_a_store_holding_2016_2024_is_analysed_whole_without_flags(study, tmp_path):
    store = tmp_path / "s.duckdb"
    r = study("simulate", "--first-year", "2016", "--store", store, "--out", tmp_path / "syn", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 1  # --quiet: one line
    r = study("estimate", "--outcome", "income_per_capita", "--estimator", "twfe", "--store", store, "--format", "csv",
              cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Analysis window 2016-2024: every year the store holds." in r.stderr
    import io

    import pandas as pd

    t = pd.read_csv(io.StringIO(r.stdout))
    assert (t["n_obs"] == 3224 * 9).all() and (t["first_year"] == 2016).all()


def test_history_is_a_table_whose_row_numbers_study_restore_accepts(store_2025, study, tmp_path):
    import shutil

    store = tmp_path / "study.duckdb"
    shutil.copyfile(store_2025, store)
    r = study("history", "--store", store, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["#", "time", "(UTC)", "kind", "ingest", "id", "what", "changed"]
    assert lines[1].split()[0] == "1" and lines[2].split()[0] == "2" and "2025年村级统计.xlsx" in lines[2]
    assert f"`study restore 2 --store {store}` undoes the last one" in lines[-1]
    assert "restore(store" not in r.stdout
    r = study("restore", "2", "--dry-run", "--store", store, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Dry run" in r.stdout and "3,224 removed" in r.stdout
    r = study("restore", "7", "--store", store, cwd=tmp_path)
    assert r.returncode == 2
    assert "'7' is neither a row number of `study history` (rows 1-2) nor one ingest id" in r.stderr
    assert "history()" not in r.stderr


def test_run_names_that_are_not_plain_folder_names_are_refused(city_store, tmp_path, capsys):
    for name in ("latest", "../elsewhere", ".hidden"):
        assert main(["run", "--run-id", name, "--store", str(city_store), "--outputs", str(tmp_path / "o")]) == 2
        assert "is not a run name" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
