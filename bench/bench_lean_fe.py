"""Benchmark: peak memory and time of the lean fixed-effects engine against pyfixest, per fit.

The regressions of stages 02 and 03, fitted once through pyfixest and once through
:mod:`analysis.estimators.lean_fe` (forced with :func:`analysis.estimators.fixest.use_engine`),
on a synthetic city of ``--villages`` villages x 10 years (default 100,000: 1 million rows):

``ppml``
    the Poisson ETWFE of stage 02 (``criminal_cases``, the headline's covariates);
``sa``
    Sun-Abraham of stage 03 (``collective_income``, the covariates' year trends);
``bjs``
    the imputation estimator of stage 03 with its pre-trend regression (``pretrends=3``);
``twfe_es``
    the binned TWFE event study of stage 03.

The city is simulated once (its panel pickled into a scratch folder, deleted at the end). Each
fit runs in its own process, which loads the panel, notes its resident memory, fits, and
reports the wall time of the fit, its process's peak resident memory (``ru_maxrss``) and the
peak above the loaded panel. The ratios lean / pyfixest are printed per fit, with the largest
difference between the two engines' estimates and standard errors. The machine's load
(``os.getloadavg``) is printed before and after: on a shared machine read times as upper bounds.

Run: ``.venv/bin/python bench/bench_lean_fe.py [--villages 100000] [--fits ppml sa bjs twfe_es]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

FITS = ("ppml", "sa", "bjs", "twfe_es")
COMMON = dict(unit="village_code", time="year", cohort="cohort", cluster="township_code")
COVARIATES = ["distance_km", "terrain", "distinctive_industry"]


def prepare(n_villages: int, path: Path) -> int:
    """Simulate the city (10 years), attach its treatment, pickle the panel; return its rows."""
    from analysis.core.treatment import attach_treatment
    from analysis.data.synthetic import simulate_city
    from analysis.data.synthetic.calibration import scaled_units

    _, n_town, n_county = scaled_units(n_villages)
    city = simulate_city(first_year=2015, last_year=2024, n_villages=n_villages, n_townships=n_town,
                         n_counties=n_county)
    panel = attach_treatment(city.panel, city.treatment)
    with path.open("wb") as f:
        pickle.dump(panel, f, protocol=pickle.HIGHEST_PROTOCOL)
    return len(panel)


def _rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def child(fit: str, engine: str, panel_path: Path, out: Path) -> None:
    """Fit one model with one engine; write time, peaks, estimates and SEs to ``out`` (JSON)."""
    import gc

    from analysis.core.panel import covariate_columns, covariate_year_interactions
    from analysis.estimators.fixest import use_engine
    from analysis.estimators.imputation import imputation
    from analysis.estimators.poisson import ppml
    from analysis.estimators.sun_abraham import sun_abraham
    from analysis.estimators.twfe import twfe_event_study

    with panel_path.open("rb") as f:
        panel = pickle.load(f)
    data, covs = covariate_columns(panel, COVARIATES)
    reg, trend = covariate_year_interactions(data, covs) if fit in ("sa", "bjs") else (None, None)
    del panel
    gc.collect()
    loaded = _rss_gb()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    calls = {
        "ppml": lambda: ppml(data, "criminal_cases", covariates=covs, **COMMON),
        "sa": lambda: sun_abraham(reg, "collective_income", control="never", ref=-1, covariates=trend, **COMMON),
        "bjs": lambda: imputation(reg, "collective_income", covariates=trend, pretrends=3, **COMMON),
        "twfe_es": lambda: twfe_event_study(data, "collective_income", ref=-1, leads=4, lags=4,
                                            bin_endpoints=True, **COMMON),
    }
    t0 = time.perf_counter()
    with warnings.catch_warnings(), use_engine(engine):
        warnings.simplefilter("ignore")
        res = calls[fit]()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    tidy = res.tidy()
    out.write_text(json.dumps({
        "seconds": seconds, "peak_gb": peak, "loaded_gb": loaded, "peak_before_gb": peak_before,
        "n_obs": int(tidy["n_obs"].iloc[0]), "engine": res.options.get("engine"),
        "estimate": tidy["estimate"].tolist(), "std_error": tidy["std_error"].tolist(),
    }))


def _maxrel(a: list[float], b: list[float]) -> float:
    import numpy as np

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = ~(np.isnan(x) | np.isnan(y))
    if not ok.any():
        return 0.0
    scale = np.maximum(np.abs(y[ok]), np.max(np.abs(y[ok])) * 1e-6)
    return float(np.max(np.abs(x[ok] - y[ok]) / scale))


def main() -> int:
    """Run the benchmark; print one line per fit and engine and the ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--villages", type=int, default=100_000)
    ap.add_argument("--fits", nargs="+", choices=FITS, default=list(FITS))
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        fit, engine, panel_path, out = args.child
        child(fit, engine, Path(panel_path), Path(out))
        return 0
    load0 = os.getloadavg()
    print(f"bench_lean_fe: {args.villages:,} villages x 10 years; load average {load0[0]:.1f} {load0[1]:.1f} "
          f"{load0[2]:.1f}; {os.cpu_count()} CPUs", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench_lean_fe_"))
    try:
        panel_path = scratch / "panel.pkl"
        t0 = time.perf_counter()
        rows = prepare(args.villages, panel_path)
        print(f"  simulated {rows:,} rows in {time.perf_counter() - t0:.0f} s", flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONHASHSEED": "0"}
        for fit in args.fits:
            res = {}
            for engine in ("pyfixest", "lean"):
                out = scratch / f"{fit}-{engine}.json"
                proc = subprocess.run([sys.executable, __file__, "--child", fit, engine, str(panel_path), str(out)],
                                      capture_output=True, text=True, env=env)
                if proc.returncode != 0:
                    print(f"  {fit:<8} {engine:<9} FAILED (exit {proc.returncode})\n{proc.stderr[-2000:]}", flush=True)
                    continue
                r = json.loads(out.read_text())
                res[engine] = r
                print(f"  {fit:<8} {engine:<9} {r['seconds']:7.1f} s  peak {r['peak_gb']:5.2f} GB "
                      f"(panel loaded {r['loaded_gb']:.2f} GB, fit's own {r['peak_gb'] - r['loaded_gb']:5.2f} GB)  "
                      f"n_obs {r['n_obs']:,}", flush=True)
            if len(res) == 2:
                p, q = res["pyfixest"], res["lean"]
                own_p, own_q = p["peak_gb"] - p["loaded_gb"], q["peak_gb"] - q["loaded_gb"]
                print(f"  {fit:<8} lean/pyfixest: time {q['seconds'] / p['seconds']:.2f}, peak "
                      f"{q['peak_gb'] / p['peak_gb']:.2f}, fit's own memory {own_q / max(own_p, 1e-9):.2f}; "
                      f"max relative difference: estimates {_maxrel(q['estimate'], p['estimate']):.1e}, "
                      f"SEs {_maxrel(q['std_error'], p['std_error']):.1e}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
