"""The synthetic city: :func:`simulate_city` puts the design, the outcomes and the truth together.

:func:`simulate_city` returns the canonical ``panel`` and ``postings`` tables
(:mod:`analysis.data.schema`), the cohorts derived from the postings by
:func:`analysis.core.treatment.derive_treatment`, and the truth. The design is documented in
:mod:`~analysis.data.synthetic.design` (geography, roll-out, targeting),
:mod:`~analysis.data.synthetic.outcomes` (untreated outcomes, effects, TWFE bias,
spillover) and :mod:`~analysis.data.synthetic.truth`; the numbers in
:mod:`~analysis.data.synthetic.calibration`.

Determinism
-----------
Every draw comes from generators spawned from ``numpy.random.SeedSequence(seed)``,
one child per part (geography, covariates, latent traits, selection, postings,
names, and one per outcome). Same arguments, same bytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.core.treatment import NEVER_TREATED, derive_treatment
from analysis.data import schema
from analysis.data.synthetic.calibration import (
    BASELINE,
    CADRES,
    CITY_BATCH_YEAR,
    CITY_NAME,
    CITY_START,
    CITY_START_DAYS,
    COHORT_MULT,
    EFFECT_KIND,
    EFFECTS,
    INCOME,
    PANEL_DECIMALS,
    PILOT_DISTRICT_SHARE,
    PILOT_START,
    PILOT_START_DAYS,
    PROVINCE_PREFIX,
    REPLACEMENT_SHARE,
    REPORT_COUNTIES,
    REPORT_FIRST_BATCH,
    REPORT_INCOME,
    REPORT_TOWNSHIPS,
    REPORT_VILLAGES,
    REPORT_YEAR,
    RULE_NOISE,
    scaled,
)
from analysis.data.synthetic.design import (
    Assignment,
    Covariates,
    Geography,
    LatentTraits,
    assign,
    covariates,
    geography,
    latent_traits,
    string_array,
    village_names,
)
from analysis.data.synthetic.design import postings as draw_postings
from analysis.data.synthetic.outcomes import TreatmentDesign, baseline, simulate_outcome
from analysis.data.synthetic.scenarios import (
    Scenario,
    get_scenario,
    nonlinear_index,
    shift_untreated,
    untreated_shift,
)
from analysis.data.synthetic.truth import truth_aggregates, truth_table


@dataclass(frozen=True)
class SyntheticCity:
    """A simulated city: canonical tables, derived treatment and the truth.

    Attributes
    ----------
    panel : pandas.DataFrame
        Canonical village-year panel (:data:`analysis.data.schema.PANEL_COLUMNS`, in
        order), sorted by ``village_code``, ``year``.
    postings : pandas.DataFrame
        Canonical postings (:data:`analysis.data.schema.POSTINGS_COLUMNS`), sorted by
        ``secretary_id``; dates are ISO strings, ``end_date`` missing while in post.
    truth : pandas.DataFrame
        True effects, one row per outcome x effect x cohort x year: ``outcome``,
        ``effect`` (``direct``; ``spillover`` rows only when spillover is on),
        ``cohort``, ``year``, ``event_time``, ``att`` (mean over the cell's villages of
        ``E[Y(1) - Y(0)]``), ``att_prop`` (``sum E[Y(1)-Y(0)] / sum E[Y(0)]``, the
        proportional effect), ``y0_mean``, ``y1_mean`` and ``n_villages``.
    truth_aggregates : pandas.DataFrame
        Output of :func:`aggregate_truth` for the direct effects.
    treatment : pandas.DataFrame
        ``derive_treatment(postings, first_year, last_year)``.
    villages : pandas.DataFrame
        One row per village with the latent traits behind the simulation (intended
        batch, cohort and cadre type, targeting index, expected income level, public-order
        problem, effect scale). Not written to files; for diagnostics and tests.
    params : dict
        Every parameter used, seed included (written to ``params.json``).
    """

    panel: pd.DataFrame
    postings: pd.DataFrame
    truth: pd.DataFrame
    truth_aggregates: pd.DataFrame
    treatment: pd.DataFrame
    villages: pd.DataFrame
    params: dict


def _validate(
    first_year: int,
    last_year: int,
    n_villages: int,
    n_townships: int,
    n_counties: int,
    later_batches: Sequence[tuple[int, int]],
) -> tuple[tuple[int, int], ...]:
    ints = dict(
        first_year=first_year,
        last_year=last_year,
        n_villages=n_villages,
        n_townships=n_townships,
        n_counties=n_counties,
    )
    for name, value in ints.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if not 1990 <= first_year <= 2022:
        raise ValueError(
            f"first_year must be between 1990 and 2022 (the pilot's cohort 2023 needs at least "
            f"one pre-treatment year), got {first_year}"
        )
    if not 2023 <= last_year <= 2100:
        raise ValueError(f"last_year must be between 2023 and 2100, got {last_year}")
    if last_year - first_year > 40:
        raise ValueError(f"the window {first_year}-{last_year} is longer than 41 years")
    if n_counties < 2:
        raise ValueError(
            f"n_counties must be at least 2 (a pilot district and the rest), got {n_counties}"
        )
    if n_counties > 99 * 99:
        raise ValueError(f"n_counties must be at most 9801 (4 code digits), got {n_counties}")
    if not n_counties <= n_townships <= n_villages:
        raise ValueError(
            f"need n_counties <= n_townships <= n_villages, got {n_counties}, {n_townships}, "
            f"{n_villages}"
        )
    if n_townships > 900 * n_counties:
        raise ValueError(
            f"{n_townships} townships in {n_counties} counties is "
            f"{n_townships / n_counties:.0f} per county, but the 3-digit township code allows "
            f"at most 999: pass n_counties >= {int(np.ceil(n_townships / 900))}"
        )
    if n_villages > 500 * n_townships:
        raise ValueError(
            f"{n_villages} villages in {n_townships} townships is too many per township for the "
            f"3-digit village code: pass n_townships >= {int(np.ceil(n_villages / 500))}"
        )
    if n_villages < 40:
        raise ValueError(f"n_villages must be at least 40, got {n_villages}")
    later: list[tuple[int, int]] = []
    for item in later_batches:
        try:
            year, count = item
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"later_batches items must be (year, count) pairs, got {item!r}"
            ) from exc
        if isinstance(year, bool) or isinstance(count, bool):
            raise ValueError(f"later batch {item!r}: year and count must be integers")
        year, count = int(year), int(count)
        if year <= CITY_BATCH_YEAR:
            raise ValueError(
                f"a later batch must start after the {CITY_BATCH_YEAR} city-wide batch, "
                f"got year {year}"
            )
        if year > last_year:
            raise ValueError(
                f"later batch starting in {year} needs last_year >= {year} "
                f"(got last_year={last_year}): "
                f"its secretaries arrive in spring {year}, so its cohort {year} would fall outside "
                f"the panel window"
            )
        if count <= 0:
            raise ValueError(f"later batch {year}: count must be positive, got {count}")
        later.append((year, count))
    years = [y for y, _ in later]
    if years != sorted(set(years)):
        raise ValueError(f"later batch years must be distinct and increasing, got {years}")
    free = n_villages - scaled(REPORT_FIRST_BATCH, n_villages)
    if sum(c for _, c in later) > free:
        raise ValueError(
            f"later batches total {sum(c for _, c in later)} villages but only {free} villages "
            f"have no first secretary after the first batch"
        )
    return tuple(later)


def simulate_city(
    seed: int = 20230601,
    first_year: int = 2018,
    last_year: int = 2024,
    n_villages: int = REPORT_VILLAGES,
    n_townships: int = REPORT_TOWNSHIPS,
    n_counties: int = REPORT_COUNTIES,
    later_batches: Sequence[tuple[int, int]] = (),
    scenario: Scenario | str | None = None,
) -> SyntheticCity:
    """Simulate the calibrated synthetic city with known true effects.

    The design (roll-out, targeting, outcomes, effects, truth, TWFE bias, conditional
    parallel trends, spillover) is documented in the module docstring.

    Parameters
    ----------
    seed : int, default 20230601
        Seed of every random draw (``numpy.random.SeedSequence(seed)``).
    first_year, last_year : int, default 2018, 2024
        Panel window; ``first_year <= 2022`` (the pilot's cohort 2023 needs a
        pre-period) and ``last_year >= 2023``.
    n_villages, n_townships, n_counties : int, default 3224, 178, 9
        Size of the city. The pilot (420) and the first batch (1,458, 45.2%) scale
        with ``n_villages / 3224``; a national panel needs more counties
        (at most 999 townships per county, e.g. ``n_counties=1_400`` for 27,600).
    later_batches : sequence of (year, count), default ()
        More batches: ``count`` villages whose secretaries start in spring of
        ``year`` (cohort ``year``); ``2024 <= year <= last_year``.
    scenario : Scenario or str, optional
        Stress scenario (:mod:`~analysis.data.synthetic.scenarios`: clustered shocks,
        partial exposure in the arrival year, anticipation, non-linear or differential
        trends, effect size, spillover) or the name of a preset of
        :data:`~analysis.data.synthetic.scenarios.SCENARIOS`. Default: none, the
        calibrated city (byte-identical to the city simulated without a scenario).

    Returns
    -------
    SyntheticCity
        Panel, postings, derived treatment, truth, aggregates, village traits, params.

    Raises
    ------
    ValueError
        If a parameter is out of range, e.g. a later batch beyond ``last_year``.

    Examples
    --------
    >>> city = simulate_city(seed=1, n_villages=400, n_townships=24)
    >>> sorted(city.treatment["cohort"].unique().tolist())
    [2023, 2024]
    """
    later = _validate(
        first_year,
        last_year,
        n_villages,
        n_townships,
        n_counties,
        later_batches,
    )
    scn = get_scenario(scenario)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    years = np.arange(first_year, last_year + 1)
    ss = np.random.SeedSequence(seed)
    ss_geo, ss_cov, ss_lat, ss_sel, ss_post, ss_names, ss_out = ss.spawn(7)
    rng_out = [np.random.default_rng(s) for s in ss_out.spawn(len(schema.OUTCOMES))]

    geo = geography(np.random.default_rng(ss_geo), n_villages, n_townships, n_counties)
    cov = covariates(np.random.default_rng(ss_cov), geo)
    lat = latent_traits(np.random.default_rng(ss_lat), cov)
    asg = assign(np.random.default_rng(ss_sel), geo, cov, lat, n_villages, later)
    postings = draw_postings(np.random.default_rng(ss_post), geo, asg, last_year)
    names = village_names(np.random.default_rng(ss_names), n_villages)

    # Treatment timing comes from the postings, by the documented rule -- and only from there.
    treatment = derive_treatment(postings, first_year, last_year)
    design, intended = _treatment_design(treatment, geo, lat, asg, years, n_townships, scn)
    # Stress scenarios draw from a stream of their own, spawned after the others: the
    # default city's draws are untouched.
    rng_shock: list = [None] * len(schema.OUTCOMES)
    if scn.shocks:
        rng_shock = [np.random.default_rng(s) for s in ss.spawn(1)[0].spawn(len(schema.OUTCOMES))]
    q = nonlinear_index(cov.distance, cov.industry, cov.hill, cov.mountain) if scn.nonlinear_trend else None
    panel_cols: dict[str, np.ndarray] = {}
    truth_parts: list[pd.DataFrame] = []
    cadre_parts: list[pd.DataFrame] = []
    for outcome, rng, rng_s in zip(schema.OUTCOMES, rng_out, rng_shock, strict=True):
        base = baseline(outcome, rng, cov, lat, years)
        if scn.shifts_untreated:
            f = untreated_shift(scn, years, geo.township_of_village, geo.county_of_township, q, asg.index, rng_s)
            base = shift_untreated(EFFECT_KIND[outcome], base, f)
        drawn = simulate_outcome(outcome, base, design, rng)
        panel_cols[outcome] = drawn.values.ravel()
        truth_parts += drawn.truth
        cadre_parts.append(drawn.truth_by_cadre)

    truth = truth_table(truth_parts)
    direct_cells = truth[truth["effect"] == "direct"].drop(columns=["effect"])
    aggregates = truth_aggregates(direct_cells, pd.concat(cadre_parts, ignore_index=True))

    panel = _assemble_panel(geo, cov, names, years, panel_cols)
    villages = _villages(geo, lat, asg, design, intended)
    params = _params(
        seed,
        first_year,
        last_year,
        n_villages,
        n_townships,
        n_counties,
        later,
        scn,
        geo,
        asg,
    )
    return SyntheticCity(
        panel=panel,
        postings=postings,
        truth=truth,
        truth_aggregates=aggregates,
        treatment=treatment,
        villages=villages,
        params=params,
    )


def _treatment_design(
    treatment: pd.DataFrame,
    geo: Geography,
    lat: LatentTraits,
    asg: Assignment,
    years: np.ndarray,
    n_townships: int,
    scenario: Scenario,
) -> tuple[TreatmentDesign, np.ndarray]:
    """Build the design every outcome shares from the derived treatment; check it against the intended one."""
    n_villages = len(geo.village_code)
    pos = pd.Index(geo.village_code).get_indexer(treatment["village_code"].to_numpy())
    cohort = np.zeros(n_villages, dtype=np.int64)
    cohort[pos] = treatment["cohort"].to_numpy()
    cadre = np.full(n_villages, -1)
    cadre_map = {c: i for i, c in enumerate(CADRES)}
    cadre[pos] = treatment["cadre_type"].map(cadre_map).to_numpy()
    # Intended cohorts: pilot (Dec 2022) -> 2023, city batch (Jul-Sep 2023) -> 2024, spring Y -> Y.
    by = asg.batch_year
    intended = np.where(by == 2022, 2023, np.where(by == CITY_BATCH_YEAR, CITY_BATCH_YEAR + 1, by))
    intended = np.where(intended > years[-1], NEVER_TREATED, intended)
    if not np.array_equal(cohort, intended) or not np.array_equal(cadre[pos], asg.cadre[pos]):
        raise RuntimeError(
            "internal error: cohorts derived from the postings disagree with the design"
        )

    # Effect index: theta[i, t] = base[outcome, cadre] * scale_i * profile(k), k = t - g + a.
    treated = cohort > 0
    kind_mult = np.select([asg.kind == k for k in COHORT_MULT], list(COHORT_MULT.values()), 0.0)
    scale = np.where(treated, kind_mult * lat.omega, 0.0)
    if scenario.effect_scale != 1.0:
        scale = scale * scenario.effect_scale
    k = np.where(treated[:, None], years[None, :] - cohort[:, None] + scenario.anticipation, -1)
    partial = _arrival_exposure(asg.start, cohort, years, k) if scenario.partial_exposure else None
    cohorts = np.unique(cohort[treated])
    c_index = np.full(n_villages, -1)
    c_index[treated] = np.searchsorted(cohorts, cohort[treated])
    n_g = np.bincount(c_index[treated], minlength=len(cohorts))

    # Spillover: heavily treated townships; cells with no direct effect.
    township = geo.township_of_village
    n_t = np.bincount(township, minlength=n_townships)
    heavy = (
        np.bincount(township, weights=treated, minlength=n_townships) >= scenario.spillover_share * n_t
    )
    design = TreatmentDesign(
        years=years,
        cohort=cohort,
        cohorts=cohorts,
        c_index=c_index,
        n_g=n_g,
        cadre=cadre,
        scale=scale,
        k=k,
        township=township,
        heavy=heavy,
        spillover=scenario.spillover,
        partial=partial,
    )
    return design, intended


def _arrival_exposure(start: np.ndarray, cohort: np.ndarray, years: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Share of the arrival year in post (months / 12) in the arrival year before the cohort year, else 0."""
    arrival = start.astype("datetime64[Y]").astype(np.int64) + 1970  # NaT (no posting) gives a huge negative
    dec31 = (arrival - 1970 + 1).astype("datetime64[Y]").astype("datetime64[D]") - np.timedelta64(1, "D")
    days = np.where(np.isnat(start), 0, (dec31 - start).astype("timedelta64[D]").astype(np.int64) + 1)
    leap = (arrival % 4 == 0) & ((arrival % 100 != 0) | (arrival % 400 == 0))
    share = np.clip(days / np.where(leap, 366.0, 365.0), 0.0, 1.0)
    before = (cohort > 0) & (arrival < cohort)
    hit = before[:, None] & (years[None, :] == arrival[:, None]) & (k < 0)
    return np.where(hit, share[:, None], 0.0)


def _villages(
    geo: Geography, lat: LatentTraits, asg: Assignment, design: TreatmentDesign, intended: np.ndarray
) -> pd.DataFrame:
    """One row per village with the latent traits behind the simulation (for diagnostics and tests)."""
    township = design.township
    return pd.DataFrame(
        {
            "village_code": string_array(geo.village_code),
            "township_code": string_array(geo.township_code[township]),
            "county_code": string_array(geo.county_code[geo.county_of_village]),
            "pilot_district": geo.pilot,
            "batch": string_array(np.where(asg.label == "", "none", asg.label)),
            "intended_cohort": intended,
            "intended_cadre": string_array(
                np.where(asg.batch_year > 0, np.array(CADRES)[asg.cadre], "none")
            ),
            "targeting_index": asg.index,
            "income_level_2022": lat.level_2022,
            "z_income": lat.z_income,
            "z_order": lat.z_order,
            "order_problem": asg.order_problem,
            "weak_economy": asg.weak,
            "effect_scale": design.scale,
            "income_trend_slope": lat.slope,
            "heavy_township": design.heavy[township],
        }
    )


def _assemble_panel(
    geo: Geography, cov: Covariates, names: np.ndarray, years: np.ndarray, out: dict[str, np.ndarray]
) -> pd.DataFrame:
    n, n_years = len(names), len(years)
    rep = np.repeat(np.arange(n), n_years)
    dt = (years - REPORT_YEAR)[None, :]
    pop = np.clip(
        np.round(cov.pop[:, None] * np.exp(cov.pop_growth[:, None] * dt)), 1, 200_000
    )
    members = np.maximum(np.round(cov.members[:, None] * (1 + 0.01 * dt)), 0)
    over60 = np.clip(cov.over60[:, None] + 0.006 * dt, 0.0, 1.0)

    def village_level(a: np.ndarray) -> np.ndarray:
        return np.repeat(a, n_years)

    cols: dict[str, object] = {
        "village_code": string_array(geo.village_code, rep),
        "year": np.tile(years.astype(np.int64), n),
        "village_name": string_array(names, rep),
        "township_code": string_array(geo.township_code[geo.township_of_village], rep),
        "county_code": string_array(geo.county_code[geo.county_of_village], rep),
        "population": pop.ravel().astype(np.int64),
    }
    for name in schema.OUTCOMES:
        v = out[name]
        if name in PANEL_DECIMALS:
            cols[name] = np.round(v.astype(float), PANEL_DECIMALS[name])
        else:
            cols[name] = v.astype(np.int64)
    cols.update(
        {
            "distance_km": village_level(cov.distance),
            "terrain": string_array(np.array(schema.TERRAIN_LEVELS)[cov.terrain], rep),
            "distinctive_industry": village_level(cov.industry).astype(np.int64),
            "party_members": members.ravel().astype(np.int64),
            "share_members_over60": np.round(
                over60.ravel(), PANEL_DECIMALS["share_members_over60"]
            ),
        }
    )
    return pd.DataFrame(cols)[schema.column_names("panel")]


def _params(
    seed,
    first_year,
    last_year,
    n_villages,
    n_townships,
    n_counties,
    later,
    scenario: Scenario,
    geo: Geography,
    asg: Assignment,
) -> dict:
    params = {
        "seed": seed,
        "first_year": int(first_year),
        "last_year": int(last_year),
        "n_villages": int(n_villages),
        "n_townships": int(n_townships),
        "n_counties": int(n_counties),
        "later_batches": [[int(y), int(c)] for y, c in later],
        "spillover": scenario.spillover,
        "anticipation": scenario.anticipation,
        "province_prefix": PROVINCE_PREFIX,
        "city_name": CITY_NAME,
        "pilot_counties": [str(c) for c in geo.county_code[: geo.n_pilot_counties]],
        "pilot_district_share": PILOT_DISTRICT_SHARE,
        "pilot_secretaries": int(asg.n_pilot),
        "city_batch_secretaries": int(asg.n_city),
        "first_batch_villages": int(asg.n_pilot + asg.n_city),
        "pilot_start": [str(PILOT_START), str(PILOT_START + PILOT_START_DAYS - 1)],
        "city_start": [str(CITY_START), str(CITY_START + CITY_START_DAYS - 1)],
        "later_batch_start": "1 March - 31 May of the batch year",
        "replacement_share": REPLACEMENT_SHARE,
        "rule_noise": RULE_NOISE,
        "heavy_township_share": scenario.spillover_share,
        "targeting_index": "1.0 z_order - 1.1 z_income + 0.9 industry + 0.3 mountain + 0.15 hill",
        "cadre_rule": (
            "z_order > 0.7 -> law; industry -> agriculture; z_income < -0.3 -> economic; else other"
        ),
        "cohort_multiplier": dict(COHORT_MULT),
        "effects": {o: dict(v) for o, v in EFFECTS.items()},
        "effect_kind": dict(EFFECT_KIND),
        "profile": "1 - 0.55^(k+1); team_reorganised 0.5^k; k = year - cohort + anticipation",
        "effect_scale_sd": 0.25,
        "baseline": dataclasses.asdict(BASELINE),
        "count_gamma_shape": 4.0,
        "income": dataclasses.asdict(INCOME),
        "report_income": REPORT_INCOME,
        "report_year": REPORT_YEAR,
        "truth": "att = mean over the cohort's villages of E[Y(1) - Y(0)] given village parameters",
    }
    if not scenario.is_default or scenario.name != "default":
        params["scenario"] = scenario.as_dict()
        if scenario.shocks:
            params["truth"] += " (and given the township- and county-year shocks of the scenario)"
    return params
