"""The calibrated synthetic city: village panel, postings and the true effects.

No village-level micro data on the first-secretary programme is public, so the study
runs on a synthetic city calibrated to the municipal report (``CONTEXT.md``) whose true
effects are known. Where each part is made:

:mod:`~analysis.data.synthetic.calibration`
    the report's figures and every parameter (effects, untreated outcomes, roll-out);
:mod:`~analysis.data.synthetic.design`
    villages, townships and counties, village traits, targeting (who gets a first
    secretary, when, of which cadre type) and the postings;
:mod:`~analysis.data.synthetic.outcomes`
    untreated paths, effects and realised values of every outcome;
:mod:`~analysis.data.synthetic.scenarios`
    stress scenarios (clustered shocks, partial exposure, anticipation, non-linear and
    differential trends, effect size, spillover rules, few clusters), each off by default;
:mod:`~analysis.data.synthetic.truth`
    the true effect of every cell, its aggregates, and whether the truth applies to a
    store;
:mod:`~analysis.data.synthetic.city`
    :func:`simulate_city`, which puts them together;
:mod:`~analysis.data.synthetic.files`
    the city's files and ``study simulate`` (:func:`simulate_to_store`).
"""

from analysis.data.synthetic.city import SyntheticCity, simulate_city
from analysis.data.synthetic.files import simulate_to_store, summarise_city, write_city
from analysis.data.synthetic.scenarios import SCENARIOS, Scenario, get_scenario
from analysis.data.synthetic.truth import aggregate_truth, load_truth, truth_status

__all__ = [
    "SCENARIOS",
    "Scenario",
    "SyntheticCity",
    "aggregate_truth",
    "get_scenario",
    "load_truth",
    "simulate_city",
    "simulate_to_store",
    "summarise_city",
    "truth_status",
    "write_city",
]
