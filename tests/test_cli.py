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
