"""Benchmark: a national-size synthetic panel (500,000 villages x 10 years).

Target (task brief): under a minute of wall time and under 4 GiB peak memory.
Run: ``.venv/bin/python bench/bench_simulate.py`` (prints wall time and peak RSS).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import psutil

from analysis.data.synthetic import simulate_city


def peak_rss_gib() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform != "darwin" else peak / 2**30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--villages", type=int, default=500_000)
    parser.add_argument("--townships", type=int, default=27_600)
    parser.add_argument(
        "--counties",
        type=int,
        default=1_400,
        help="county-level units (at most 999 townships each; China has ~2,800)",
    )
    parser.add_argument("--seed", type=int, default=20230601)
    args = parser.parse_args()

    rss0 = psutil.Process().memory_info().rss / 2**30
    t0 = time.perf_counter()
    city = simulate_city(
        seed=args.seed,
        n_villages=args.villages,
        n_townships=args.townships,
        n_counties=args.counties,
        first_year=2015,
        last_year=2024,
    )
    wall = time.perf_counter() - t0
    rss1 = psutil.Process().memory_info().rss / 2**30
    treated = int((city.treatment["cohort"] > 0).sum())
    print(
        f"villages={args.villages:,} townships={args.townships:,} counties={args.counties:,} "
        f"years=2015-2024"
    )
    print(
        f"panel rows={len(city.panel):,} postings={len(city.postings):,} treated={treated:,} "
        f"({treated / args.villages:.1%}) truth rows={len(city.truth):,}"
    )
    print(f"panel memory={city.panel.memory_usage(deep=True).sum() / 2**30:.2f} GiB")
    print(
        f"wall time={wall:.1f} s  peak RSS={peak_rss_gib():.2f} GiB  "
        f"(RSS before={rss0:.2f} GiB, after={rss1:.2f} GiB)"
    )
    ok = wall < 60 and peak_rss_gib() < 4
    print("within target (< 60 s, < 4 GiB):", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
