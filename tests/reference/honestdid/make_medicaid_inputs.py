"""Regenerate ``medicaid_betahat_sigma.csv`` from ``ehec_data.csv`` (the HonestDiD README example).

The R README runs ``fixest::feols(dins ~ i(year, D, ref = 2013) | stfips + year,
cluster = "stfips")`` on the years before 2016, without the states first treated in 2015,
with ``D = 1`` for the states that expanded Medicaid in 2014. This script runs the same
regression with pyfixest (whose default clustered small-sample correction equals fixest's)
and writes the seven event-study coefficients and their covariance.

Run from the repository root::

    .venv/bin/python tests/reference/honestdid/make_medicaid_inputs.py
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
YEARS = (2008, 2009, 2010, 2011, 2012, 2014, 2015)


def medicaid_event_study(path: Path = HERE / "ehec_data.csv") -> tuple[np.ndarray, np.ndarray]:
    import pyfixest as pf

    df = pd.read_csv(path)
    d = df[(df["year"] < 2016) & (df["yexp2"].isna() | (df["yexp2"] != 2015))].copy()
    d["D"] = (d["yexp2"] == 2014).astype(int)
    names = [f"D_{y}" for y in YEARS]
    for y, n in zip(YEARS, names, strict=True):
        d[n] = d["D"] * (d["year"] == y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.feols("dins ~ " + " + ".join(names) + " | stfips + year", data=d,
                       vcov={"CRV1": "stfips"})
    coef = fit.coef()
    idx = [list(coef.index).index(n) for n in names]
    return coef.to_numpy(float)[idx], np.asarray(fit._vcov, dtype=float)[np.ix_(idx, idx)]


def main() -> None:
    b, V = medicaid_event_study()
    out = pd.DataFrame(V, columns=[f"sigma_{y}" for y in YEARS])
    out.insert(0, "betahat", b)
    out.insert(0, "year", YEARS)
    out.to_csv(HERE / "medicaid_betahat_sigma.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
