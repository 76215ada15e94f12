"""Benchmark: ingest a national-size year (500,000 villages) from a bureau-format CSV.

Setup (not timed): a synthetic country of 500,000 villages (``simulate_city``), a store
holding its 2024 panel, and its 2025 panel written as the statistics bureau would send
it (GBK CSV, Chinese headers, money with thousands separators, shares as ``35.2%``, codes
exported as ``….0``, ``—`` for a few distances, a 合计 row, no year column: the year comes
from the file name), as in ``analysis.data.examples``.

Timed, each in a fresh process (wall time, and peak RSS of that process: ``VmHWM``, which
exec resets, unlike ``ru_maxrss`` on Linux):

``floor``
    ``pandas.read_csv`` of the same file + a DuckDB insert of the frame as it is into a
    copy of the store: no validation, no conversion, no atomic copy. The least any
    ingest of the file can cost.
``ingest``
    ``analysis.data.ingest.ingest_files([csv], store, mapping_dir=data/mappings)``:
    every reading rule, every canonical check, the code-continuity check and the
    warnings against 2024, the atomic copy-on-write of the store and the history.

Target (issue 6): under 30 s and under 4 GiB for the ingest.
Run: ``.venv/bin/python bench/bench_ingest.py`` (``--villages 50000`` for a quick run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FLOOR = """
import json, resource, sys, time
import duckdb, pandas as pd

def peak():
    # VmHWM is reset by exec; ru_maxrss is not on Linux (it would report the parent's peak)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
csv, db = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
df = pd.read_csv(csv, encoding="gbk", dtype=str)
con = duckdb.connect(db)
con.register("df", df)
con.execute("CREATE TABLE raw_2025 AS SELECT * FROM df")
con.close()
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "rss": peak(), "rows": len(df)}))
"""

INGEST = """
import json, resource, sys, time
from analysis import paths
from analysis.data.ingest import ingest_files

def peak():
    # VmHWM is reset by exec; ru_maxrss is not on Linux (it would report the parent's peak)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
csv, db = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
report = ingest_files([csv], db, mapping_dir=paths.MAPPINGS_DIR, accept_warnings=True)
wall = time.perf_counter() - t0
f = report.files[0]
print(json.dumps({"wall": wall, "rss": peak(), "rows": f.rows,
                  "inserted": f.inserted, "warnings": len(report.warnings),
                  "notes": [n.text for n in report.notes.get(f.file_name, [])]}))
"""


def _child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--villages", type=int, default=500_000)
    parser.add_argument("--townships", type=int, default=27_600)
    parser.add_argument("--counties", type=int, default=1_400)
    parser.add_argument("--seed", type=int, default=20230601)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the files in (default: temporary)")
    args = parser.parse_args()

    from analysis.data import store
    from analysis.data.examples import bureau_csv_rows, gbk_csv_bytes
    from analysis.data.synthetic import simulate_city

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    city = simulate_city(
        seed=args.seed,
        n_villages=args.villages,
        n_townships=args.townships,
        n_counties=args.counties,
        first_year=2022,
        last_year=2025,
    )
    p = city.panel
    base = work / "base.duckdb"
    if base.exists():
        base.unlink()
    store.write_tables(base, panel=p[p["year"] == 2024])
    rng = np.random.default_rng(args.seed)
    header, rows = bureau_csv_rows(p[p["year"] == 2025].reset_index(drop=True), rng)
    csv = work / "2025年村级统计.csv"
    csv.write_bytes(gbk_csv_bytes(header, rows))
    del city, p, rows
    setup = time.perf_counter() - t0
    print(f"setup: {args.villages:,} villages, store with 2024 ({base.stat().st_size / 2**20:.0f} MiB), "
          f"bureau CSV for 2025 ({csv.stat().st_size / 2**20:.0f} MiB, GBK) in {setup:.1f} s")

    results = {}
    for name, code in (("floor", FLOOR), ("ingest", INGEST)):
        db = work / f"{name}.duckdb"
        shutil.copyfile(base, db)
        results[name] = _child(code, str(csv), str(db))
        r = results[name]
        print(f"{name:>6}: {r['wall']:6.1f} s wall, peak RSS {r['rss'] / 2**20:.2f} GiB, {r['rows']:,} rows")
    r = results["ingest"]
    print(f"ingest: inserted {r['inserted']:,}, warnings accepted {r['warnings']}; notes:")
    for n in r["notes"]:
        print(f"  - {n}")
    ok = r["wall"] < 30 and r["rss"] / 2**20 < 4
    print(f"ingest / floor: {r['wall'] / results['floor']['wall']:.1f}x time, "
          f"{r['rss'] / results['floor']['rss']:.1f}x memory; target <30 s and <4 GiB: {'met' if ok else 'NOT met'}")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
