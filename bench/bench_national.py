"""Benchmark: the whole study on a scaled synthetic city, from the command line, stage by stage.

What ``make study-national`` (500,000 villages x 10 years) and ``make study-provincial`` (30,000
villages x 10 years) run. Everything goes into its own folder (default ``data/<name>/``: the
canonical files, the store, and the run folders under ``<folder>/outputs``), never the default
city's store. Each step is the ``study`` command a user would type, run in its own process:

``simulate``
    ``study simulate --villages N --first-year Y --no-ingest``: the city's files (townships and
    counties at the report's ratios).
``first ingest``
    ``study ingest`` of the panel's first T-1 years and the postings into a new scratch store
    (the years are split out of ``panel.csv`` first, untimed).
``add one year``
    ``study ingest`` of the last year into that store (the store is copied and swapped in
    atomically, so a kill leaves the old store). The scratch store is then deleted.
``ingest``
    ``study ingest`` of the city's own ``panel.csv`` and ``postings.csv`` into the study's store
    (what ``study simulate`` does; the truth of the city applies to a store written from exactly
    these files).
``NN_name``
    ``study run --memory-limit GB --jobs N``: each notebook's wall time and its kernel's peak resident
    memory as the run's ``MANIFEST`` records them (:class:`analysis.pipeline.MemoryWatch`); ``N``
    notebooks at a time (default 2 on these 2-core machines), so the whole run's time is less than
    the sum of the notebooks'.
``brief``
    ``study brief`` of the run.

Peak memory of the ``simulate``, ``ingest`` and ``brief`` processes is sampled by this script
(resident memory of the process and its children, every 0.1 s); every process is stopped if it
exceeds ``--memory-limit`` (the notebooks' kernels by ``study run`` itself, with its plain
message). The machine's load (``os.getloadavg``) is printed before and after: on a shared
machine read the times as upper bounds.

Targets (issue 12): national whole run <= 20 min and every process <= 8 GB; first national
ingest <= 60 s and <= 4 GB; adding one year to a nine-year national store <= 30 s; provincial
whole study <= 3 min.

Run: ``.venv/bin/python bench/bench_national.py --villages 30000 --name provincial``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
STUDY = [sys.executable, "-m", "analysis"]


class Step:
    """One process, timed, its tree's resident memory sampled, killed above the limit."""

    def __init__(self, name: str, args: list[str], limit_gb: float) -> None:
        self.name, self.args, self.limit_gb = name, args, limit_gb
        self.peak_gb = 0.0
        self.seconds = 0.0
        self.returncode = 0
        self.output = ""
        self.killed = False

    def run(self) -> Step:
        t0 = time.perf_counter()
        proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        done = threading.Event()

        def sample() -> None:
            try:
                p = psutil.Process(proc.pid)
            except psutil.Error:
                return
            while not done.wait(0.1):
                try:
                    tree = [p, *p.children(recursive=True)]
                    rss = sum(q.memory_info().rss for q in tree)
                except psutil.Error:
                    continue
                self.peak_gb = max(self.peak_gb, rss / 1e9)
                if rss / 1e9 > self.limit_gb:
                    self.killed = True
                    for q in tree:
                        try:
                            q.kill()
                        except psutil.Error:
                            pass

        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        self.output, _ = proc.communicate()
        done.set()
        watcher.join()
        self.returncode = proc.returncode
        self.seconds = time.perf_counter() - t0
        return self


def split_years(panel_csv: Path, folder: Path) -> tuple[Path, Path, int]:
    """Write the panel's first T-1 years and its last year as two canonical files."""
    import pandas as pd

    panel = pd.read_csv(panel_csv, dtype=str, keep_default_na=False)
    last = int(panel["year"].astype(int).max())
    early, late = folder / "panel_early.csv", folder / f"panel_{last}.csv"
    panel[panel["year"].astype(int) < last].to_csv(early, index=False)
    panel[panel["year"].astype(int) == last].to_csv(late, index=False)
    return early, late, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--villages", type=int, default=500_000)
    parser.add_argument("--years", type=int, default=10, help="panel years, ending in 2024 (default: %(default)s)")
    parser.add_argument("--name", default="national", help="folder name under data/ (default: %(default)s)")
    parser.add_argument("--folder", default=None, help="folder instead of data/NAME")
    parser.add_argument("--memory-limit", type=float, default=12.0, metavar="GB",
                        help="stop any step above this resident memory (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="notebooks at a time (`study run --jobs`; default: study run's, 2 on 2 cores)")
    parser.add_argument("--seed", type=int, default=20230601)
    parser.add_argument("--json", default=None, help="also write the measurements here")
    args = parser.parse_args()

    folder = Path(args.folder) if args.folder else ROOT / "data" / args.name
    if folder.exists():
        shutil.rmtree(folder)
    synthetic, store, outputs = folder / "synthetic", folder / "study.duckdb", folder / "outputs"
    first_year = 2024 - args.years + 1
    load0 = os.getloadavg()
    print(f"{args.name}: {args.villages:,} villages x {args.years} years ({first_year}-2024) into {folder}; "
          f"load average {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f}; {psutil.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 1e9:.0f} GB", flush=True)
    steps: list[dict] = []
    t_all = time.perf_counter()

    def record(step: Step) -> bool:
        ok = step.returncode == 0 and not step.killed
        steps.append({"step": step.name, "seconds": round(step.seconds, 1), "peak_gb": round(step.peak_gb, 2),
                      "ok": ok})
        print(f"  {step.name:<22} {step.seconds:7.1f} s  peak {step.peak_gb:5.2f} GB  {'ok' if ok else 'FAILED'}",
              flush=True)
        if not ok:
            print(step.output[-3000:], flush=True)
        return ok

    ok = record(Step("simulate", [*STUDY, "simulate", "--villages", str(args.villages), "--first-year",
                                  str(first_year), "--seed", str(args.seed), "--out", str(synthetic), "--store",
                                  str(store), "--no-ingest", "--quiet"], args.memory_limit).run())
    if ok:
        early, late, last = split_years(synthetic / "panel.csv", folder)
        scratch = folder / "ingest-bench.duckdb"
        ok = record(Step(f"first ingest ({args.years - 1} years)",
                         [*STUDY, "ingest", str(early), str(synthetic / "postings.csv"), "--store", str(scratch)],
                         args.memory_limit).run())
        if ok:
            ok = record(Step(f"add one year ({last})", [*STUDY, "ingest", str(late), "--store", str(scratch)],
                             args.memory_limit).run())
        for leftover in folder.glob("ingest-bench.duckdb*"):
            leftover.unlink()
        early.unlink()
        late.unlink()
    if ok:
        # the study's store: the city's own files, so that its truth applies (the truth is tied to their sha256)
        ok = record(Step(f"ingest ({args.years} years)", [*STUDY, "ingest", str(synthetic / "panel.csv"),
                                                          str(synthetic / "postings.csv"), "--store", str(store)],
                         args.memory_limit).run())
    run_dir = outputs / args.name
    if ok:
        from analysis.pipeline import default_jobs

        jobs = args.jobs or default_jobs()
        run = Step("study run", [*STUDY, "run", "--store", str(store), "--outputs", str(outputs), "--run-id",
                                 args.name, "--seed", str(args.seed), "--memory-limit", str(args.memory_limit),
                                 "--jobs", str(jobs), "-p", f"truth_dir={synthetic}"],
                   # each notebook's kernel is stopped by `study run` itself at the limit, with its plain message;
                   # this script's guard on the whole tree (study run + its `jobs` kernels) is only the safety net
                   jobs * args.memory_limit + 2).run()
        manifest = json.loads((run_dir / "MANIFEST").read_text()) if (run_dir / "MANIFEST").is_file() else {}
        for stem, info in manifest.get("notebooks", {}).items():
            steps.append({"step": stem, "seconds": info.get("seconds"), "peak_gb": info.get("peak_memory_gb"),
                          "ok": True})
            print(f"  {stem:<22} {info.get('seconds'):7.1f} s  peak {info.get('peak_memory_gb'):5.2f} GB  ok",
                  flush=True)
        for stem in manifest.get("missing", []):
            steps.append({"step": stem, "seconds": None, "peak_gb": None, "ok": False})
        ok = run.returncode == 0
        steps.append({"step": "study run (whole)", "seconds": round(run.seconds, 1), "peak_gb": None, "ok": ok})
        print(f"  {'study run (whole)':<22} {run.seconds:7.1f} s  {'ok' if ok else 'FAILED'}", flush=True)
        if not ok:
            print(run.output[-2000:], flush=True)
    if ok:
        ok = record(Step("brief", [*STUDY, "brief", "--run", str(run_dir)], args.memory_limit).run())
    wall = time.perf_counter() - t_all
    whole = sum(s["seconds"] or 0 for s in steps if s["step"].startswith(("simulate", "ingest", "study run", "brief")))
    load1 = os.getloadavg()
    peaks = [s["peak_gb"] for s in steps if s["peak_gb"] is not None]
    print(f"whole study (simulate, ingest, run, brief): {whole:.0f} s ({whole / 60:.1f} min); this script "
          f"{wall:.0f} s; largest process {max(peaks, default=0):.2f} GB, "
          f"{'complete' if ok else 'INCOMPLETE'}; load average now {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f}")
    if args.json:
        record_ = {"villages": args.villages, "years": args.years, "steps": steps, "wall_s": round(wall, 1),
                   "whole_study_s": round(whole, 1), "complete": ok, "load_before": load0, "load_after": load1}
        Path(args.json).write_text(json.dumps(record_, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
