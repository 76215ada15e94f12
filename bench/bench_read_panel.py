"""Benchmark: peak memory and time of reading the analysis panel from a store.

Every notebook starts with :func:`analysis.core.panel.load_analysis_panel`: the canonical panel
read from the DuckDB store, its nullable integers made plain, the treatment timing joined on.
At national size (5 million rows) this step alone held about 5 GB before any estimate. This
script measures, each in its own process on the same store:

``current``
    ``load_analysis_panel`` as the package does it now (rows through Arrow, the connection
    closed before the pandas frame is built, shallow copies, the treatment joined by lookup);
``fetchdf``
    the earlier way, kept here as the peer: the rows through DuckDB's ``fetchdf``, a deep copy
    for the plain dtypes and a ``merge`` for the treatment (the same frame, checked equal).

For each: wall time, the process's peak resident memory (``ru_maxrss``) and its peak above
the memory it had after the imports (the step's own memory), the frame's own size, and the
ratio current / fetchdf. The two frames are compared column by column (``DataFrame.equals``
after the same column order). The load average is printed before and after.

Run: ``.venv/bin/python bench/bench_read_panel.py --store data/national/study.duckdb``
(any store; ``make study-national`` writes a national one).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

WAYS = ("current", "fetchdf")


def _rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def _fetchdf_panel(store: Path):
    """The peer: the panel as it was read before the Arrow path (fetchdf, copies, merge)."""
    import pandas as pd

    from analysis.core.panel import resolve_window
    from analysis.core.treatment import derive_treatment
    from analysis.data import schema
    from analysis.data.store import open_store, read_postings

    window = resolve_window(store)
    con = open_store(store)
    try:
        names = schema.column_names("panel")
        sql = f"SELECT {', '.join(names)} FROM panel ORDER BY village_code, year"
        panel = schema.to_canonical(con.execute(sql).fetchdf(), "panel")
    finally:
        con.close()
    nullable = [c for c in panel.columns if isinstance(panel[c].dtype, pd.Int64Dtype)]
    plain = panel.copy(deep=True)
    for c in nullable:
        plain[c] = plain[c].astype("float64") if plain[c].isna().any() else plain[c].astype("int64")
    del panel
    treatment = derive_treatment(read_postings(store), window.first_year, window.last_year)
    cols = treatment[["village_code", "cohort", "cadre_type", "batch"]]
    out = plain.merge(cols, on="village_code", how="left")
    return out


def child(store: Path, way: str) -> None:
    """Load the panel one way in this process and print a JSON line of measurements."""
    import pandas as pd

    from analysis.core.panel import load_analysis_panel

    base = _rss_gb()
    t0 = time.perf_counter()
    if way == "current":
        frame = load_analysis_panel(store)
        frame = frame[[c for c in frame.columns if c not in ("event_time", "treated")]]
    else:
        frame = _fetchdf_panel(store)
        frame["cohort"] = frame["cohort"].fillna(0).astype("int64")
        frame["cadre_type"] = frame["cadre_type"].where(frame["cohort"] > 0, "none")
        frame["batch"] = frame["batch"].where(frame["cohort"] > 0, "none")
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    digest.update(repr(list(zip(frame.columns, map(str, frame.dtypes), strict=True))).encode())
    print(json.dumps({"way": way, "seconds": seconds, "peak_gb": peak, "own_gb": peak - base,
                      "frame_gb": frame.memory_usage(deep=True).sum() / 1e9, "rows": len(frame),
                      "hash": digest.hexdigest()}))


def main() -> int:
    """Run both ways in their own processes and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--child", choices=WAYS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.store, args.child)
        return 0
    print(f"store {args.store}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    results = {}
    for way in WAYS:
        proc = subprocess.run([sys.executable, __file__, "--store", str(args.store), "--child", way],
                              capture_output=True, text=True, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results[way] = r
        print(f"  {way:8s} {r['rows']:>10,} rows  {r['seconds']:6.1f} s  peak {r['peak_gb']:5.2f} GB  "
              f"own {r['own_gb']:5.2f} GB  frame {r['frame_gb']:4.2f} GB")
    cur, old = results["current"], results["fetchdf"]
    print(f"current / fetchdf: time {cur['seconds'] / old['seconds']:.2f}, peak {cur['peak_gb'] / old['peak_gb']:.2f}, "
          f"own memory {cur['own_gb'] / old['own_gb']:.2f}; same frame: {cur['hash'] == old['hash']}")
    print(f"load average after {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0 if cur["hash"] == old["hash"] else 1


if __name__ == "__main__":
    sys.exit(main())
