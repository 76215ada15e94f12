r"""Calibration of two robustness checks under their nulls: randomisation inference and the spillover check.

The robustness stage (notebook ``05_robustness``) prints a randomisation-inference p-value and a
spillover estimate; this module measures how often they reject on simulated cities where the
truth is known (:mod:`analysis.data.synthetic`), so the notebook and the README can say which
verdicts to trust.

What one replication does (:func:`check_replication`)
-----------------------------------------------------
Simulate one city of a scenario (:data:`analysis.data.synthetic.SCENARIOS`) with the task's seed,
attach the cohorts derived from the postings, and for each outcome of :data:`OUTCOMES`:

* **randomisation inference** (``check == "randomisation"``), once per strata of
  :data:`analysis.core.spec.RANDOMISATION_STRATA` (``method`` is the strata): the stage's
  :func:`analysis.stages.robustness.randomisation_summary` with ``draws`` re-drawn assignments.
  Under ``no_effect`` its sharp null (no effect in any village) holds, so every rejection is a
  false one -- *given* that assignment is as good as random within the strata, which the city's
  deliberate targeting makes untrue within county alone;
* **the spillover check** (``check == "spillover"``), at each threshold of ``thresholds``
  (``method`` ``threshold_0.5``, ...): :func:`analysis.stages.robustness.spillover_did`. Its null
  (no spillover onto never-treated villages of high-share townships) holds unless the scenario
  has spillovers (``spillover_rule``: 0.3 of the township's direct effect on untreated villages
  of townships with at least 35% of villages treated, a rule unlike the check's default 50%).

Records have the columns of :data:`RECORD_COLUMNS`; :func:`summarise` turns them into
rejection rates with Monte Carlo standard errors :math:`\sqrt{r(1-r)/R}`.

Replications as tasks
---------------------
:func:`tasks` returns independent, picklable ``functools.partial`` objects, each with a city seed
spawned from one ``numpy.random.SeedSequence`` (:func:`analysis.grid.montecarlo.replication_seeds`);
the draws of randomisation inference are seeded from the city seed. The records are the same
whether the tasks run serially (:func:`run`), in a process pool or on Dask.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["OUTCOMES", "RECORD_COLUMNS", "SCENARIOS", "THRESHOLDS", "check_replication", "main", "markdown_table",
           "run", "summarise", "tasks", "write_meta"]

OUTCOMES: tuple[str, ...] = ("income_per_capita", "criminal_cases", "collective_income")
"""One outcome per family: income, cases, collective economy."""
SCENARIOS: tuple[str, ...] = ("no_effect", "spillover_rule")
"""Scenarios of the calibration: every null true, and a spillover with a rule unlike the check's."""
THRESHOLDS: tuple[float, ...] = (0.35, 0.5)
"""Thresholds of the spillover check in every scenario: the ``spillover_rule`` scenario's rule and the check's
default (:data:`analysis.stages.robustness.HIGH_SHARE`)."""
RECORD_COLUMNS: tuple[str, ...] = ("scenario", "replication", "seed", "outcome", "check", "method", "estimate",
                                   "p_value", "null_true", "error")
"""Columns of a record (one check of one outcome in one city)."""


def _ri_seed(seed: int) -> int:
    """Seed of a city's randomisation draws, spawned from the city seed."""
    return int(np.random.SeedSequence([seed, 23]).generate_state(1)[0])


def check_replication(seed: int, scenario: str = "no_effect", replication: int = 0,
                      outcomes: Sequence[str] = OUTCOMES, draws: int = 199,
                      thresholds: Sequence[float] = THRESHOLDS) -> list[dict[str, Any]]:
    """Simulate one city and record randomisation inference and the spillover check on it.

    Parameters
    ----------
    seed : int
        Seed of the city.
    scenario : str, default "no_effect"
        Preset of :data:`analysis.data.synthetic.SCENARIOS`.
    replication : int, default 0
        Replication number, recorded.
    outcomes : sequence of str, default :data:`OUTCOMES`
        Outcomes checked.
    draws : int, default 199
        Re-drawn assignments of randomisation inference.
    thresholds : sequence of float, default :data:`THRESHOLDS`
        Thresholds of the spillover check.

    Returns
    -------
    list of dict
        Records with the keys :data:`RECORD_COLUMNS`, in a fixed order. A check that fails on a
        city (for example no never-treated village in a high-share township) is recorded with
        its error and no p-value.
    """
    from analysis.core.spec import HEADLINE, RANDOMISATION_STRATA
    from analysis.core.treatment import attach_treatment
    from analysis.data.synthetic import simulate_city
    from analysis.data.synthetic.scenarios import get_scenario
    from analysis.stages import robustness

    scn = get_scenario(scenario)
    city = simulate_city(seed=seed, scenario=scn)
    panel = attach_treatment(city.panel, city.treatment)
    cells = city.truth
    no_effect = bool((cells["att"] == 0).all())
    rows: list[dict[str, Any]] = []

    def add(outcome: str, check: str, method: str, estimate: float = np.nan, p_value: float = np.nan,
            null_true: bool | float = np.nan, error: str = "") -> None:
        rows.append({"scenario": scn.name, "replication": int(replication), "seed": int(seed), "outcome": outcome,
                     "check": check, "method": method, "estimate": float(estimate), "p_value": float(p_value),
                     "null_true": null_true, "error": error})

    for oc in outcomes:
        for strata in RANDOMISATION_STRATA:
            ri = robustness.randomisation_summary(panel, oc, B=draws, seed=_ri_seed(seed),
                                                  control_group=HEADLINE.control_group, strata=strata)
            if ri is None or not ri.get("available", True):
                add(oc, "randomisation", strata, null_true=no_effect, error=(ri or {}).get("note", "not available"))
            else:
                add(oc, "randomisation", strata, ri["observed"], ri["p_value"], no_effect)
        spill = cells[(cells["outcome"] == oc) & (cells["effect"] == "spillover")]
        spill_null = bool((spill["att"] == 0).all())
        for thr in thresholds:
            method = f"threshold_{thr:g}"
            try:
                r = robustness.spillover_did(panel, oc, covariates=HEADLINE.covariates, cluster=HEADLINE.cluster,
                                             threshold=float(thr)).tidy().iloc[0]
            except ValueError as err:
                add(oc, "spillover", method, null_true=spill_null, error=str(err)[:300])
                continue
            add(oc, "spillover", method, r["estimate"], r["p_value"], spill_null)
    return rows


def tasks(replications: int, seed: int, scenarios: Sequence[str] = SCENARIOS,
          **kwargs: Any) -> list[Callable[[], list[dict[str, Any]]]]:
    """Return the replications of every scenario as independent, picklable tasks.

    Parameters
    ----------
    replications : int
        Cities per scenario.
    seed : int
        Root seed; the city seeds are ``analysis.grid.montecarlo.replication_seeds(seed, replications)``,
        the same cities' draws for every scenario (common random numbers).
    scenarios : sequence of str, default :data:`SCENARIOS`
        Scenario presets.
    **kwargs
        Passed to :func:`check_replication`.

    Returns
    -------
    list of callable
        One ``functools.partial(check_replication, ...)`` per scenario and city, scenario-major.

    Raises
    ------
    ValueError
        If ``replications`` is not a positive integer.
    """
    from analysis.grid.montecarlo import replication_seeds

    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise ValueError(f"replications must be a positive integer, got {replications!r}")
    seeds = replication_seeds(seed, replications)
    return [functools.partial(check_replication, seed=s, scenario=scn, replication=i, **kwargs)
            for scn in scenarios for i, s in enumerate(seeds)]


def run(task_list: Sequence[Callable[[], list[dict[str, Any]]]]) -> pd.DataFrame:
    """Run the tasks serially and stack their records.

    Parameters
    ----------
    task_list : sequence of callable
        Output of :func:`tasks`.

    Returns
    -------
    pandas.DataFrame
        One row per record with the columns :data:`RECORD_COLUMNS`, in task order.
    """
    return pd.DataFrame([rec for t in task_list for rec in t()], columns=list(RECORD_COLUMNS))


def summarise(records: pd.DataFrame, levels: Sequence[float] = (0.05, 0.10)) -> pd.DataFrame:
    """Rejection rates of each check by scenario, outcome and method, with Monte Carlo standard errors.

    Parameters
    ----------
    records : pandas.DataFrame
        Output of :func:`run`.
    levels : sequence of float, default (0.05, 0.10)
        Nominal levels.

    Returns
    -------
    pandas.DataFrame
        ``scenario, check, method, outcome, null_true, level, replications, failed,
        rejection_rate, mc_se``; ``replications`` counts the cities with a p-value, ``failed``
        those where the check could not run.

    Examples
    --------
    >>> rec = pd.DataFrame({"scenario": "s", "check": "c", "method": "m", "outcome": "y", "null_true": True,
    ...                     "p_value": [0.01, 0.5, np.nan], "error": ["", "", "no controls"]})
    >>> summarise(rec, levels=(0.05,))[["replications", "failed", "rejection_rate"]].values.tolist()
    [[2, 1, 0.5]]
    """
    rows = []
    keys = ["scenario", "check", "method", "outcome", "null_true"]
    for key, g in records.groupby(keys, sort=False, dropna=False):
        p = g["p_value"].to_numpy(float)
        ok = np.isfinite(p)
        for a in levels:
            r = float(np.mean(p[ok] <= a)) if ok.any() else float("nan")
            rows.append({**dict(zip(keys, key, strict=True)), "level": float(a), "replications": int(ok.sum()),
                         "failed": int((~ok).sum()), "rejection_rate": r,
                         "mc_se": float(np.sqrt(r * (1 - r) / max(int(ok.sum()), 1)))})
    return pd.DataFrame(rows)


def markdown_table(records: pd.DataFrame, level: float = 0.05) -> str:
    """Rejection rates at ``level`` as the Markdown table of the README ("Calibration of the checks").

    Parameters
    ----------
    records : pandas.DataFrame
        Output of :func:`run` (or the committed records).
    level : float, default 0.05
        Nominal level.

    Returns
    -------
    str
        One row per check, method and scenario; one column per outcome with the rejection rate in %
        and its Monte Carlo standard error in parentheses.
    """
    s = summarise(records, levels=(level,))
    s = s[s["level"] == level]
    outcomes = list(dict.fromkeys(s["outcome"]))
    head = "| check | method | scenario | null true | " + " | ".join(outcomes) + " | cities |"
    lines = [head, "|" + "---|" * (5 + len(outcomes))]
    for (check, method, scenario), g in s.groupby(["check", "method", "scenario"], sort=False):
        g = g.set_index("outcome")
        cells = [f"{100 * g.loc[o, 'rejection_rate']:.1f} ({100 * g.loc[o, 'mc_se']:.1f})" for o in outcomes]
        null = "yes" if bool(g["null_true"].iloc[0]) else "no"
        lines.append(f"| {check} | {method} | {scenario} | {null} | " + " | ".join(cells)
                     + f" | {int(g['replications'].min())} |")
    return "\n".join(lines)


def write_meta(records_path: str | os.PathLike, replications: int, seed: int, draws: int) -> Path:
    """Write the JSON beside a records file: what was run, and the command that reruns it.

    Parameters
    ----------
    records_path : path-like
        The records file (``check_records.csv.gz``); the JSON is the same name with ``.json``
        instead of ``.csv.gz``.
    replications, seed, draws : int
        The run's cities per scenario, root seed and randomisation draws.

    Returns
    -------
    pathlib.Path
        The JSON file.
    """
    import json

    p = Path(records_path)
    meta = {"seed": seed, "replications": replications, "draws": draws, "scenarios": list(SCENARIOS),
            "outcomes": list(OUTCOMES), "thresholds": list(THRESHOLDS),
            "command": f"python -m analysis.grid.checks --replications {replications} --seed {seed} "
                       f"--draws {draws} --out {p.as_posix()}"}
    out = p.with_name(p.name.removesuffix(".gz").removesuffix(".csv") + ".json")
    out.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Run the calibration and write its records (``python -m analysis.grid.checks --help``).

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default ``sys.argv[1:]``).
    """
    import argparse

    ap = argparse.ArgumentParser(prog="python -m analysis.grid.checks", description=main.__doc__)
    ap.add_argument("--replications", type=int, default=500, help="cities per scenario (default 500)")
    ap.add_argument("--seed", type=int, default=20230601, help="root seed (default 20230601)")
    ap.add_argument("--draws", type=int, default=199, help="randomisation draws per city (default 199)")
    ap.add_argument("--out", required=True, help="records file to write (.csv.gz)")
    a = ap.parse_args(argv)
    records = run(tasks(a.replications, a.seed, draws=a.draws))
    out = Path(a.out)
    tmp = out.with_name(out.name + ".tmp")
    records.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n",
                   compression={"method": "gzip", "mtime": 0} if out.suffix == ".gz" else None)
    os.replace(tmp, out)
    write_meta(out, a.replications, a.seed, a.draws)
    print(markdown_table(records))


if __name__ == "__main__":
    main()
