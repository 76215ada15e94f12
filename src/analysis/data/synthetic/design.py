"""The synthetic city's design: geography, village traits, who gets a first secretary, and the postings.

Geography
---------
3,224 villages in exactly 178 townships in nine county-level districts. Codes use the
fictional province prefix ``99`` (no real province has it), so synthetic codes can
never be mistaken for real ones: county ``99PPCC`` (``PP``, ``CC`` from the county's
index), township = county + 3 digits, village = township + 3 digits. The first
county, ``990101``, is the pilot district and holds about 19% of the villages.
At other sizes the counts scale with ``n_villages`` and the pilot region is the first
``round(n_counties / 9)`` counties.

Covariates (population, distance, terrain, industry, party members, share of members
over 60) are not affected by treatment, so they can be conditioned on in any period.

Roll-out (timing is only ever derived from the postings)
---------------------------------------------------------
* Pilot: 420 first secretaries start in December 2022 in the pilot district. Under
  the six-month rule of :mod:`analysis.core.treatment` December gives less than a month
  of exposure, so these villages form **cohort 2023**.
* City-wide first batch: after the June 2023 implementing opinions and a week of
  training, 1,038 secretaries arrive between 15 July and 30 September 2023 in the
  other districts: less than six months in 2023, so **cohort 2024**. Pilot and city
  batch together give exactly 1,458 villages with a first secretary by the end of
  2023, 45.2% of 3,224, as in the report.
* ``later_batches=((year, count), ...)``: ``count`` more villages (from those still
  without a secretary, any district) whose secretaries start in March-May of
  ``year``: cohort ``year``.
* About 5% of secretaries are replaced at a mid-year review (poor performers): the
  posting ends in mid-June to early July and a successor from the same sending unit
  starts between a week before and four weeks after. In the cohort year this makes
  the six-month threshold depend on the *union* of the two postings.
  Secretaries otherwise stay in post (``end_date`` empty).
At other sizes the pilot (420) and the first batch (1,458) scale with
``n_villages / 3224``.

Targeting and cadre type (non-random, as the report describes)
-----------------------------------------------------------------
Each village has a latent public-order problem ``z_order`` (drives disputes, cases and
petitions), an expected income level, a distinctive industry flag, terrain and
distance. Villages are drawn without replacement (Gumbel top-k) with weights
``exp(index)``, ``index = 1.0 z_order - 1.1 z_income + 0.9 industry + 0.3 mountain +
0.15 hill``: poor, disorderly and industry villages are much more likely to get a
secretary. Selection uses *levels* only (latent village traits and covariates), never
transitory shocks. The cadre type follows the village's problem: public-order problem
(``z_order > 0.7``) -> ``law``; else distinctive industry -> ``agriculture``; else weak
economy (``z_income < -0.3``) -> ``economic``; else ``other``; 15% of postings ignore
the rule and draw a type at random.

Every part draws from its own generator (:func:`analysis.data.synthetic.city.simulate_city`
spawns them), so each part's draws are in a fixed order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis.data import schema
from analysis.data.synthetic.calibration import (
    CADRES,
    CITY_BATCH_YEAR,
    CITY_NAME,
    CITY_START,
    CITY_START_DAYS,
    INCOME,
    PANEL_DECIMALS,
    PILOT_DISTRICT_SHARE,
    PILOT_SECRETARIES,
    PILOT_START,
    PILOT_START_DAYS,
    PROVINCE_PREFIX,
    REPLACEMENT_SHARE,
    REPORT_COUNTIES,
    REPORT_FIRST_BATCH,
    REPORT_YEAR,
    RULE_NOISE,
    scaled,
)

_S1 = np.array(
    list(
        "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
        "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏付方白邹孟熊秦邱江尹薛段雷侯龙史陶贺顾毛郝龚邵"
        "柳桃杏梨槐杨松柏榆枣桑竹荷兰凤龙鹤鹿马牛羊"
    )
)

_S2 = np.array(list("家庄营屯集店河湾沟坡岭山桥寨堡洼坊塘岗台铺园楼峪口窑峰林湖滩圩泉井"))

_S0 = np.array(list("前后东西南北大小上下新老"))

_COUNTY_A = np.array(list("东西南北安平宁永丰清长兴"))

_COUNTY_B = np.array(list("山川河阳城林原丘水江"))

_UNIT_SUFFIX = {
    "law": ("公安局", "人民检察院", "人民法院", "司法局"),
    "agriculture": ("农业农村局", "水产技术推广站", "畜牧兽医局", "农业技术推广中心"),
    "economic": ("财政局", "税务局", "农村商业银行", "供电公司", "国有资产投资公司"),
    "other": ("委组织部", "委宣传部", "教育局", "卫生健康局", "民政局", "委办公室"),
}


@dataclass(frozen=True)
class Geography:
    """Counties, townships and villages (arrays by village unless named otherwise).

    Attributes
    ----------
    n_pilot_counties : int
        The first counties form the pilot region.
    county_of_village, township_of_village : numpy.ndarray
        Index of each village's county and township.
    county_of_township : numpy.ndarray
        Index of each township's county.
    village_code, township_code, county_code : numpy.ndarray
        Codes (by village, township and county).
    county_name : numpy.ndarray
        Name of each county.
    pilot : numpy.ndarray
        Whether each village is in the pilot region.
    """

    n_pilot_counties: int
    county_of_village: np.ndarray
    township_of_village: np.ndarray
    county_of_township: np.ndarray
    village_code: np.ndarray
    township_code: np.ndarray
    county_code: np.ndarray
    county_name: np.ndarray
    pilot: np.ndarray


@dataclass(frozen=True)
class Covariates:
    """Observed village traits (by village).

    Attributes
    ----------
    terrain : numpy.ndarray
        0 plain, 1 hill, 2 mountain.
    plain, hill, mountain : numpy.ndarray
        Terrain dummies (float).
    distance : numpy.ndarray
        Kilometres to the county seat.
    industry : numpy.ndarray
        Distinctive industry (0/1).
    pop : numpy.ndarray
        Population in the report year.
    pop_growth : numpy.ndarray
        Yearly log growth of the population.
    members : numpy.ndarray
        Party members in the report year.
    over60 : numpy.ndarray
        Share of members over 60 in the report year.
    """

    terrain: np.ndarray
    plain: np.ndarray
    hill: np.ndarray
    mountain: np.ndarray
    distance: np.ndarray
    industry: np.ndarray
    pop: np.ndarray
    pop_growth: np.ndarray
    members: np.ndarray
    over60: np.ndarray


@dataclass(frozen=True)
class LatentTraits:
    """Traits the study does not observe (by village).

    Attributes
    ----------
    u_inc : numpy.ndarray
        Income shock behind the income level.
    z_order : numpy.ndarray
        Public-order problem (drives cases, disputes, petitions and targeting).
    alpha, slope : numpy.ndarray
        Income level and trend slope (yuan).
    kappa : numpy.ndarray
        The village's share in the region's growth (mean 1, independent of targeting).
    level_2022 : numpy.ndarray
        Expected untreated income in 2022.
    z_income : numpy.ndarray
        Standardised log income level of 2022 (targeting favours low values).
    u : numpy.ndarray
        Six rows of independent standard normal draws used by other outcomes.
    omega : numpy.ndarray
        The village's effect scale (log-normal, mean 1).
    """

    u_inc: np.ndarray
    z_order: np.ndarray
    alpha: np.ndarray
    slope: np.ndarray
    kappa: np.ndarray
    level_2022: np.ndarray
    z_income: np.ndarray
    u: np.ndarray
    omega: np.ndarray


@dataclass(frozen=True)
class Assignment:
    """Who gets a first secretary, when, and of which type (by village unless named otherwise).

    Attributes
    ----------
    index : numpy.ndarray
        Targeting index.
    batch_year : numpy.ndarray
        Year of the village's batch (0: none).
    kind : numpy.ndarray
        ``pilot``, ``city``, ``later`` or ``""``.
    label : numpy.ndarray
        Batch label (``pilot-2022``, ``city-2023``, ...).
    start : numpy.ndarray
        Start date of the first posting (NaT: none).
    cadre : numpy.ndarray
        Cadre type by the rule (index into :data:`~analysis.data.synthetic.calibration.CADRES`).
    order_problem, weak : numpy.ndarray
        Public-order problem and weak economy flags of the rule.
    n_pilot, n_city : int
        Secretaries of the pilot and of the city batch.
    """

    index: np.ndarray
    batch_year: np.ndarray
    kind: np.ndarray
    label: np.ndarray
    start: np.ndarray
    cadre: np.ndarray
    order_problem: np.ndarray
    weak: np.ndarray
    n_pilot: int
    n_city: int


def _apportion(totals: np.ndarray, weights: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Split integer ``totals[g]`` over the items of each group in proportion to ``weights``.

    Largest-remainder rounding, vectorised; ties broken by item order.
    """
    totals = np.asarray(totals, dtype=np.int64)
    n_groups = len(totals)
    wsum = np.bincount(group, weights=weights, minlength=n_groups)
    raw = totals[group] * weights / wsum[group]
    base = np.floor(raw).astype(np.int64)
    short = totals - np.bincount(group, weights=base, minlength=n_groups).astype(np.int64)
    order = np.lexsort((-(raw - base), group))
    g_sorted = group[order]
    first = np.searchsorted(g_sorted, np.arange(n_groups))
    rank = np.arange(len(order)) - first[g_sorted]
    add = np.zeros_like(base)
    add[order] = (rank < short[g_sorted]).astype(np.int64)
    return base + add


def _top_k(rng: np.random.Generator, index: np.ndarray, pool: np.ndarray, k: int) -> np.ndarray:
    """Draw ``k`` of ``pool`` without replacement with probabilities proportional to exp(index)."""
    if k == 0:
        return np.empty(0, dtype=np.int64)
    key = index[pool] + rng.gumbel(size=len(pool))
    chosen = np.argpartition(-key, k - 1)[:k]
    return np.sort(pool[chosen])


def string_array(values: np.ndarray, take: np.ndarray | None = None) -> pd.arrays.ArrowStringArray:
    """Return numpy strings (optionally taken at ``take``) as a pandas ``str`` array, through Arrow.

    Parameters
    ----------
    values : numpy.ndarray
        Strings.
    take : numpy.ndarray, optional
        Positions to take (repeats allowed).

    Returns
    -------
    pandas.arrays.ArrowStringArray
        The strings.
    """
    arr = pa.array(values, type=pa.string())
    if take is not None:
        arr = arr.take(pa.array(take))
    return pd.array(arr, dtype="str")


def geography(rng: np.random.Generator, n_villages: int, n_townships: int, n_counties: int) -> Geography:
    """Draw the counties, townships and villages and their codes (module docstring).

    Parameters
    ----------
    rng : numpy.random.Generator
        The geography's stream.
    n_villages, n_townships, n_counties : int
        Size of the city.

    Returns
    -------
    Geography
        Codes, names and the pilot region.
    """
    n_pilot = max(1, round(n_counties / REPORT_COUNTIES))
    n_pilot = min(n_pilot, n_counties - 1)
    share = np.empty(n_counties)
    share[:n_pilot] = PILOT_DISTRICT_SHARE * rng.dirichlet(np.full(n_pilot, 20.0))
    share[n_pilot:] = (1 - PILOT_DISTRICT_SHARE) * rng.dirichlet(np.full(n_counties - n_pilot, 8.0))
    zeros = np.zeros(n_counties, dtype=np.int64)
    t_per_county = 1 + _apportion(np.array([n_townships - n_counties]), share, zeros)
    v_per_county = t_per_county + _apportion(np.array([n_villages - n_townships]), share, zeros)
    t_county = np.repeat(np.arange(n_counties), t_per_county)
    t_weight = rng.gamma(4.0, 1.0, size=n_townships)
    v_per_township = 1 + _apportion(v_per_county - t_per_county, t_weight, t_county)
    if t_per_county.max() > 999 or v_per_township.max() > 999:
        raise ValueError(
            "the allocation puts more than 999 townships in a county or villages in a township "
            "(3-digit codes): use more counties or townships"
        )
    t_first = np.concatenate([[0], np.cumsum(t_per_county)[:-1]])
    t_within = np.arange(n_townships) - t_first[t_county]
    v_township = np.repeat(np.arange(n_townships), v_per_township)
    v_first = np.concatenate([[0], np.cumsum(v_per_township)[:-1]])
    v_within = np.arange(n_villages) - v_first[v_township]
    c_idx = np.arange(n_counties)
    c_num = int(PROVINCE_PREFIX) * 10_000 + (c_idx // 99 + 1) * 100 + (c_idx % 99 + 1)
    t_num = c_num[t_county] * 1000 + t_within + 1
    v_num = t_num[v_township] * 1000 + v_within + 1
    v_county = t_county[v_township]
    c_name = np.char.add(
        np.char.add(
            _COUNTY_A[c_idx % len(_COUNTY_A)], _COUNTY_B[(c_idx // len(_COUNTY_A)) % len(_COUNTY_B)]
        ),
        np.where(c_idx < n_pilot, "区", "县"),
    )
    return Geography(
        n_pilot_counties=n_pilot,
        county_of_village=v_county,
        township_of_village=v_township,
        county_of_township=t_county,
        village_code=v_num.astype("U12"),
        township_code=t_num.astype("U9"),
        county_code=c_num.astype("U6"),
        county_name=c_name,
        pilot=v_county < n_pilot,
    )


def village_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw village names (two syllables, sometimes a prefix; 村 or 社区).

    Parameters
    ----------
    rng : numpy.random.Generator
        The names' stream.
    n : int
        Villages.

    Returns
    -------
    numpy.ndarray
        Names.
    """
    name = np.char.add(_S1[rng.integers(0, len(_S1), n)], _S2[rng.integers(0, len(_S2), n)])
    prefix = rng.random(n) < 0.15
    name = np.where(prefix, np.char.add(_S0[rng.integers(0, len(_S0), n)], name), name)
    suffix = np.where(rng.random(n) < 0.06, "社区", "村")
    return np.char.add(name, suffix)


def covariates(rng: np.random.Generator, geo: Geography) -> Covariates:
    """Draw the observed village traits: terrain, distance, industry, population, party members.

    Parameters
    ----------
    rng : numpy.random.Generator
        The covariates' stream.
    geo : Geography
        The villages' counties.

    Returns
    -------
    Covariates
        One value per village.
    """
    n = len(geo.county_of_village)
    n_counties = len(geo.county_code)
    p_mountain = rng.uniform(0.05, 0.45, n_counties)[geo.county_of_village]
    p_hill = rng.uniform(0.15, 0.35, n_counties)[geo.county_of_village]
    u = rng.random(n)
    terrain = np.where(u < p_mountain, 2, np.where(u < p_mountain + p_hill, 1, 0))  # 0 plain
    hill = (terrain == 1).astype(float)
    mountain = (terrain == 2).astype(float)
    plain = (terrain == 0).astype(float)
    distance = 0.5 + rng.gamma(2.0, 8.0 + 6.0 * hill + 12.0 * mountain)
    distance = np.round(np.minimum(distance, 150.0), PANEL_DECIMALS["distance_km"])
    industry = (rng.random(n) < 0.15 + 0.10 * hill).astype(np.int64)
    pop = 1300.0 * (1 + 0.1 * plain - 0.2 * mountain) * np.exp(rng.normal(-0.08, 0.4, n))
    pop = np.clip(pop, 80.0, 20_000.0)
    pop_growth = rng.normal(-0.006, 0.006, n)
    members = np.maximum(3, rng.poisson(pop * 0.034 * np.exp(rng.normal(-0.03, 0.25, n))))
    over60 = np.clip(rng.beta(8.0, 13.0, n) + 0.06 * mountain + 0.03 * hill, 0.0, 0.95)
    return Covariates(
        terrain=terrain,
        plain=plain,
        hill=hill,
        mountain=mountain,
        distance=distance,
        industry=industry,
        pop=pop,
        pop_growth=pop_growth,
        members=members.astype(float),
        over60=over60,
    )


def latent_traits(rng: np.random.Generator, cov: Covariates) -> LatentTraits:
    """Draw the traits the study does not observe: income level and trend, public-order problem.

    Parameters
    ----------
    rng : numpy.random.Generator
        The latent traits' stream.
    cov : Covariates
        Observed traits (income depends on terrain, industry and distance).

    Returns
    -------
    LatentTraits
        One value per village (``u``: independent normal draws for other outcomes).
    """
    n = len(cov.terrain)
    z = rng.standard_normal((9, n))
    u_inc = z[0]
    z_order = -0.35 * u_inc + np.sqrt(1 - 0.35**2) * z[1]
    plain, mountain, industry, dist = (
        cov.plain,
        cov.mountain,
        cov.industry,
        cov.distance,
    )
    alpha = INCOME.level * (1 + 0.3 * plain - 0.3 * mountain) * np.exp(0.8 * u_inc - 0.32)
    slope = INCOME.slope * (
        1 + 0.12 * plain - 0.12 * mountain + 0.1 * industry - 0.0025 * (dist - 25.0)
    )
    # Scale both so that the untreated expected city mean in the report year is on target.
    norm = INCOME.target_2023 / (alpha.mean() + slope.mean())
    alpha, slope = alpha * norm, slope * norm
    # kappa: the village's share in the region's growth, independent of targeting (it is
    # not part of the "economic base" officials judge), so trends stay parallel given X.
    kappa = np.exp(INCOME.kappa_sd * z[2] - 0.5 * INCOME.kappa_sd ** 2)
    level_2022 = alpha + slope * INCOME.growth ** (2022 - REPORT_YEAR)
    z_income = (np.log(level_2022) - np.log(level_2022).mean()) / np.log(level_2022).std()
    return LatentTraits(
        u_inc=u_inc,
        z_order=z_order,
        alpha=alpha,
        slope=slope,
        kappa=kappa,
        level_2022=level_2022,
        z_income=z_income,
        u=z[3:],
        omega=np.exp(0.25 * rng.standard_normal(n) - 0.03125),
    )


def assign(
    rng: np.random.Generator,
    geo: Geography,
    cov: Covariates,
    lat: LatentTraits,
    n_villages: int,
    later: tuple[tuple[int, int], ...],
) -> Assignment:
    """Choose the villages of every batch, their start dates and their cadre types (targeting).

    Parameters
    ----------
    rng : numpy.random.Generator
        The selection's stream.
    geo, cov, lat : Geography, Covariates, LatentTraits
        The villages.
    n_villages : int
        Villages of the city.
    later : tuple of (int, int)
        Later batches (year, count).

    Returns
    -------
    Assignment
        Batch, start date and cadre type of every village.

    Raises
    ------
    ValueError
        If the pilot region is too small for the pilot batch.
    """
    index = (
        1.0 * lat.z_order
        - 1.1 * lat.z_income
        + 0.9 * cov.industry
        + 0.3 * cov.mountain
        + 0.15 * cov.hill
    )
    n_pilot = scaled(PILOT_SECRETARIES, n_villages)
    n_city = scaled(REPORT_FIRST_BATCH, n_villages) - n_pilot
    pilot_pool = np.flatnonzero(geo.pilot)
    city_pool = np.flatnonzero(~geo.pilot)
    if n_pilot > 0.9 * len(pilot_pool) or n_city > len(city_pool):
        raise ValueError("the pilot district is too small for the pilot batch: use more villages")
    batch_year = np.zeros(n_villages, dtype=np.int64)  # 0 = no posting
    kind = np.full(n_villages, "", dtype="U5")
    label = np.full(n_villages, "", dtype="U16")
    start = np.full(n_villages, np.datetime64("NaT"), dtype="datetime64[D]")
    chosen = _top_k(rng, index, pilot_pool, n_pilot)
    batch_year[chosen], kind[chosen], label[chosen] = 2022, "pilot", "pilot-2022"
    start[chosen] = PILOT_START + rng.integers(0, PILOT_START_DAYS, len(chosen))
    chosen = _top_k(rng, index, city_pool, n_city)
    batch_year[chosen], kind[chosen], label[chosen] = (
        CITY_BATCH_YEAR,
        "city",
        f"city-{CITY_BATCH_YEAR}",
    )
    start[chosen] = CITY_START + rng.integers(0, CITY_START_DAYS, len(chosen))
    for year, count in later:
        pool = np.flatnonzero(batch_year == 0)
        chosen = _top_k(rng, index, pool, count)
        batch_year[chosen], kind[chosen], label[chosen] = year, "later", f"city-{year}"
        spring = np.datetime64(f"{year}-03-01")
        start[chosen] = spring + rng.integers(0, 92, len(chosen))
    # Cadre type follows the village's problem; some postings ignore the rule.
    order_problem = lat.z_order > 0.7
    weak = lat.z_income < -0.3
    rule = np.where(order_problem, 0, np.where(cov.industry == 1, 1, np.where(weak, 2, 3)))
    noisy = rng.random(n_villages) < RULE_NOISE
    cadre = np.where(noisy, rng.integers(0, 4, n_villages), rule)
    return Assignment(
        index=index,
        batch_year=batch_year,
        kind=kind,
        label=label,
        start=start,
        cadre=cadre,
        order_problem=order_problem,
        weak=weak,
        n_pilot=n_pilot,
        n_city=n_city,
    )


def postings(rng: np.random.Generator, geo: Geography, asg: Assignment, last_year: int) -> pd.DataFrame:
    """Write the postings of the assigned villages: sending units, replacements, ids.

    Parameters
    ----------
    rng : numpy.random.Generator
        The postings' stream.
    geo : Geography
        Village codes and county names.
    asg : Assignment
        Who gets a first secretary, when and of which type.
    last_year : int
        Last year of the panel (replacements happen up to it).

    Returns
    -------
    pandas.DataFrame
        Canonical postings, in chronological id order.
    """
    v = np.flatnonzero(asg.batch_year > 0)
    start = asg.start[v]
    start_year = start.astype("datetime64[Y]").astype(np.int64) + 1970
    cadre = asg.cadre[v]
    # Sending unit: a city- or county-level unit of the village's cadre type.
    suffix_table = np.array(
        [list(s) + [s[0]] * (6 - len(s)) for s in (_UNIT_SUFFIX[c] for c in CADRES)]
    )
    n_suffix = np.array([len(_UNIT_SUFFIX[c]) for c in CADRES])
    suffix = suffix_table[cadre, rng.integers(0, 10**6, len(v)) % n_suffix[cadre]]
    county_level = rng.random(len(v)) < 0.5
    prefix = np.where(county_level, geo.county_name[geo.county_of_village[v]], CITY_NAME)
    unit = np.char.add(prefix, suffix)
    # Replacements at a mid-year review, at least six months after arrival.
    lo = start_year + 1
    eligible = lo <= last_year
    replaced = eligible & (rng.random(len(v)) < REPLACEMENT_SHARE)
    span = np.maximum(last_year - lo + 1, 1)
    rep_year = lo + np.floor(rng.random(len(v)) * span).astype(np.int64)
    mid_june = (rep_year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + 165  # ~15 June
    end = mid_june + rng.integers(0, 21, len(v))
    successor = end + rng.integers(-7, 29, len(v))
    r = np.flatnonzero(replaced)
    n_post = len(v) + len(r)
    village = np.concatenate([v, v[r]])
    starts = np.concatenate([start, successor[r]])
    ends = np.concatenate(
        [np.where(replaced, end, np.datetime64("NaT")), np.full(len(r), np.datetime64("NaT"))]
    )
    units = np.concatenate([unit, unit[r]])
    types = np.concatenate([cadre, cadre[r]])
    labels = asg.label[village]
    order = np.lexsort((village, starts))  # chronological ids
    village, starts, ends, units, types, labels = (
        a[order] for a in (village, starts, ends, units, types, labels)
    )
    ids = np.char.add("FS", np.char.zfill(np.arange(1, n_post + 1).astype(str), 7))
    end_str = np.where(np.isnat(ends), np.array(None, dtype=object),
                       np.datetime_as_string(ends, unit="D").astype(object))
    return pd.DataFrame(
        {
            "village_code": string_array(geo.village_code[village]),
            "secretary_id": string_array(ids),
            "start_date": string_array(np.datetime_as_string(starts, unit="D")),
            "end_date": pd.array(end_str, dtype="str"),
            "sending_unit": string_array(units),
            "unit_type": string_array(np.array(CADRES)[types]),
            "batch": string_array(labels),
        }
    )[schema.column_names("postings")]
