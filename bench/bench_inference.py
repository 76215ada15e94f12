"""Benchmark few-cluster and randomisation inference on the default synthetic city.

Data: ``simulate_city()`` with its defaults (seed 20230601; 3,224 villages in 178
townships x 7 years), cohorts attached with ``attach_treatment``; outcome
``income_per_capita``. Each contender runs in a fresh subprocess so that its peak memory
is measured on its own (a psutil sampler thread, every 5 ms; ``rss_before`` is the RSS
after the data are built):

* ``wild``: :func:`analysis.inference.wild.wild_cluster_bootstrap`, WCR, 999 Webb draws,
  township clusters, with the test-inversion confidence interval;
* ``wild-pyfixest``: pyfixest's ``Feols.wildboottest`` (the ``wildboottest`` package;
  unit and year fixed effects expanded into dummies), 999 Webb draws. Before running it
  the memory it needs is estimated: its design has ``k = 1 + U + T - 1`` columns and it
  keeps one ``k x k`` matrix ``X_g'X_g`` per cluster, ``G k^2 8`` bytes. If that exceeds
  the cap (4 GB) it is **skipped** and the estimate printed; it also runs under a watchdog
  that kills it if its RSS passes the cap. To still compare it, it is also run on a small
  city (400 villages, 24 townships), where it fits, next to ours on the same data;
* ``ri``: :func:`analysis.inference.randomisation.randomisation_inference`, 999 draws,
  CS simple ATT (not-yet-treated), permutations within county; ``ri-2jobs`` the same with
  ``n_jobs=2`` (identical draws; its peak RSS is the parent's, the two workers are not
  counted); ``ri-twfe`` with the TWFE statistic;
* ``honest``: :func:`analysis.inference.honest.honest_bounds`, relative magnitudes, four
  values of Mbar, on the HonestDiD README's Medicaid event study
  (``tests/reference/honestdid/medicaid_betahat_sigma.csv``; moderndid took 9.3 s there);
* ``wild-score``: the headline's few-clusters inference, the wild cluster score bootstrap-t
  of the Callaway-Sant'Anna simple ATT (doubly robust, not-yet-treated, the headline
  covariates) with 9 county clusters (all 512 Rademacher sign vectors) and, forced, with 178
  townships (9,999 sampled draws), each with its test-inversion interval (the ``att_gt`` fit
  is not timed);
* ``pretest``: the four pre-tests of
  :func:`analysis.estimators.callaway_santanna.pretest` on the same fit (township clusters;
  the wild test with 999 draws);
* ``calibration``: one replication of :func:`analysis.inference.calibration.replication`
  with its defaults and the BJS pre-test (5 leads): what one of the heavy tier's 500 tasks
  costs.

Usage::

    .venv/bin/python bench/bench_inference.py
    .venv/bin/python bench/bench_inference.py --only wild
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time

import numpy as np
import psutil

SEED = 20230601
OUTCOME = "income_per_capita"
CAP_BYTES = 4 * 10**9
CONTENDERS = ("wild", "wild-pyfixest", "wild-small", "wild-pyfixest-small", "ri", "ri-2jobs", "ri-twfe", "honest",
              "wild-score", "pretest", "calibration")


class PeakRSS:
    """Context manager sampling the process RSS in a thread; ``peak`` in bytes."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self):
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def city_panel(small: bool = False):
    """Return the default city's panel with cohorts (or the small city's)."""
    from analysis.core.treatment import attach_treatment
    from analysis.data.synthetic import simulate_city

    city = simulate_city(seed=SEED, n_villages=400, n_townships=24) if small else simulate_city(seed=SEED)
    return attach_treatment(city.panel, city.treatment)


def pyfixest_bytes(panel) -> int:
    """Estimate the memory pyfixest's wildboottest needs: G per-cluster k x k Gram matrices + X."""
    G = panel["township_code"].nunique()
    k = 1 + panel["village_code"].nunique() + panel["year"].nunique() - 1
    return int(G * k * k * 8 + 3 * len(panel) * k * 8)


def run_honest() -> dict:
    """Time Rambachan-Roth relative-magnitude bounds for four Mbar on the Medicaid example."""
    from pathlib import Path

    import pandas as pd

    from analysis.inference.honest import honest_bounds

    ref = Path(__file__).resolve().parents[1] / "tests" / "reference" / "honestdid" / "medicaid_betahat_sigma.csv"
    t = pd.read_csv(ref)
    b, V = t["betahat"].to_numpy(), t.filter(like="sigma_").to_numpy()
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        honest_bounds(b, V, 5, 2, "rm", [0.5, 1.0, 1.5, 2.0])
        seconds = time.perf_counter() - t0
    return {"contender": "honest", "seconds": round(seconds, 3), "peak_rss_mb": round(mem.peak / 2**20)}


def run_headline_inference(which: str) -> dict:
    """Time the headline's wild score bootstrap, the pre-tests, or one calibration replication."""
    import warnings

    from analysis.core.panel import covariate_columns
    from analysis.core.spec import DEFAULT_COVARIATES
    from analysis.estimators.callaway_santanna import PRETESTS, aggregate, att_gt, pretest
    from analysis.inference import calibration

    out: dict = {"contender": which}
    if which == "calibration":
        task = calibration.tasks(1, seed=SEED, bjs_leads=5)[0]
        with warnings.catch_warnings(), PeakRSS() as mem:
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            out["records"] = len(task())
            out["seconds"] = round(time.perf_counter() - t0, 2)
        out["peak_rss_mb"] = round(mem.peak / 2**20)
        return out
    data, covs = covariate_columns(city_panel(), list(DEFAULT_COVARIATES))
    spec = dict(unit="village_code", time="year", cohort="cohort", covariates=covs, control_group="notyet")
    fits = {c: att_gt(data, OUTCOME, cluster=f"{c}_code", **spec) for c in ("county", "township")}
    with PeakRSS() as mem:
        if which == "pretest":
            for test in PRETESTS:
                t0 = time.perf_counter()
                pt = pretest(fits["township"], test=test)
                out[test] = {"seconds": round(time.perf_counter() - t0, 4), "p_value": round(pt.p_value, 4)}
        else:
            for c, kw in (("county", {}), ("township", {"wild_below": 10**6})):
                t0 = time.perf_counter()
                res = aggregate(fits[c], "simple", seed=SEED, **kw)
                row = res.tidy().iloc[0]
                out[c] = {"seconds": round(time.perf_counter() - t0, 3), "draws": res.wild.B,
                          "conf_int": [round(row["conf_low"], 2), round(row["conf_high"], 2)]}
    out["peak_rss_mb"] = round(mem.peak / 2**20)
    return out


def run_one(which: str) -> dict:
    """Run one contender in this process and return its figures."""
    if which == "honest":
        return run_honest()
    if which in ("wild-score", "pretest", "calibration"):
        return run_headline_inference(which)
    small = which.endswith("-small")
    panel = city_panel(small)
    out = {"contender": which, "rows": len(panel), "villages": int(panel["village_code"].nunique()),
           "clusters": int(panel["township_code"].nunique()),
           "rss_before_mb": round(psutil.Process().memory_info().rss / 2**20)}
    if which.startswith("wild-pyfixest"):
        import warnings

        import pyfixest as pf

        need = pyfixest_bytes(panel)
        out["estimated_gb"] = round(need / 1e9, 2)
        if need > CAP_BYTES:
            out["skipped"] = f"needs about {need / 1e9:.1f} GB > {CAP_BYTES / 1e9:.0f} GB cap"
            return out
        # integer cluster codes: wildboottest's numba kernel cannot type an array of strings
        df = panel.assign(D=panel["treated"].astype(float),
                          township_id=panel["township_code"].factorize(sort=True)[0])
        with warnings.catch_warnings(), PeakRSS() as mem:
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            fit = pf.feols(f"{OUTCOME} ~ D | village_code + year", data=df, vcov={"CRV1": "township_id"})
            res = fit.wildboottest(param="D", reps=999, weights_type="webb", seed=SEED)
            out["seconds"] = round(time.perf_counter() - t0, 2)
        out["peak_rss_mb"] = round(mem.peak / 2**20)
        out["p_value"] = float(res["Pr(>|t|)"])
        out["t_stat_own_ssc"] = round(float(res["t value"]), 4)
    elif which.startswith("wild"):
        from analysis.inference.wild import wild_cluster_bootstrap

        with PeakRSS() as mem:
            t0 = time.perf_counter()
            res = wild_cluster_bootstrap(panel, OUTCOME, "village_code", "year", "cohort", cluster="township_code",
                                         weights="webb", B=999, seed=SEED)
            out["seconds"] = round(time.perf_counter() - t0, 3)
        out["peak_rss_mb"] = round(mem.peak / 2**20)
        out.update(estimate=round(res.estimate, 4), std_error=round(res.std_error, 4), t_stat=round(res.t_stat, 4),
                   p_value=res.p_value, conf_int=[round(res.conf_low, 3), round(res.conf_high, 3)])
    else:
        from analysis.inference.randomisation import randomisation_inference

        statistic = "twfe" if which == "ri-twfe" else "cs_simple"
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            res = randomisation_inference(panel, OUTCOME, "village_code", "year", "cohort", statistic=statistic,
                                          strata="county_code", B=999, seed=SEED,
                                          n_jobs=2 if which == "ri-2jobs" else 1)
            out["seconds"] = round(time.perf_counter() - t0, 3)
        out["peak_rss_mb"] = round(mem.peak / 2**20)
        out.update(statistic=statistic, observed=round(res.observed, 4), p_value=res.p_value,
                   draws_sd=round(float(np.std(res.draws)), 4))
    return out


def run_watched(which: str) -> dict:
    """Run a contender in a subprocess, killing it if its RSS passes the cap."""
    proc = subprocess.Popen([sys.executable, __file__, "--only", which], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss
        except psutil.NoSuchProcess:
            break
        peak = max(peak, rss)
        if rss > CAP_BYTES:
            proc.kill()
            proc.wait()
            return {"contender": which, "killed": f"RSS {rss / 1e9:.1f} GB > {CAP_BYTES / 1e9:.0f} GB cap"}
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    if proc.returncode:
        return {"contender": which, "failed": stderr[-1500:]}
    return json.loads(stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    """Run every contender in its own subprocess and print one JSON line each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=CONTENDERS)
    args = ap.parse_args(argv)
    if args.only:
        print(json.dumps(run_one(args.only)))
        return
    contenders = list(CONTENDERS)
    try:
        import wildboottest  # noqa: F401
    except ImportError:
        print("wildboottest not installed: skipping pyfixest's wild bootstrap")
        contenders = [c for c in contenders if "pyfixest" not in c]
    print(f"default synthetic city (seed {SEED}), outcome {OUTCOME}, {psutil.cpu_count()} CPUs, "
          f"memory cap for the peer {CAP_BYTES / 1e9:.0f} GB")
    for c in contenders:
        print(json.dumps(run_watched(c)), flush=True)


if __name__ == "__main__":
    main()
