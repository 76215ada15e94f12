"""The ``study`` command (also ``python -m analysis``): thin subcommands over the stages.

Subcommands
-----------
simulate     write the calibrated synthetic city as canonical files and ingest them
ingest       validate canonical CSV/Parquet/XLSX files and write them into the store
history      the numbered list of ingests; ``restore N`` undoes row N
estimate     one outcome's effect (by default the headline specification over the store's years)
run          run the notebooks with papermill into ``outputs/<run-id>/``
brief        the findings brief of a complete run
pages        a run readable without Python: notebooks as HTML, summary.md/.json, index.html
diff         what moved between two runs, and why
stress       stress-test Monte Carlo (:mod:`analysis.grid.stress`)
montecarlo   the same on the Dask engine: --workers, --scheduler, a resumable results folder
grid         the specification grid on the Dask engine (:mod:`analysis.grid.specification`)
clean-store  delete the store, only if it holds nothing but the simulated city (or with ``--yes``)

The CLI holds no logic of its own: each subcommand parses its arguments and calls
one function of the package. Errors that a user can act on (bad input files, bad
parameters) are printed as plain messages with exit code 2, never as tracebacks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from analysis import paths
from analysis.core.params import ParameterError
from analysis.core.spec import CLUSTERS, CONTROL_GROUPS, ESTIMATORS, HEADLINE


class UserError(Exception):
    """An error the user can fix; printed without a traceback, exit code 2."""


def _parse_overrides(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"-p expects name=value, got {item!r} (example: -p seed=7)")
        name, value = item.split("=", 1)
        out[name.strip()] = value
    return out


def _cmd_simulate(args: argparse.Namespace) -> int:
    from analysis.data.synthetic import get_scenario, simulate_to_store

    later = []
    for spec in args.later_batch or []:
        try:
            year, n = spec.split(":")
            later.append((int(year), int(n)))
        except ValueError as exc:
            raise UserError(f"--later-batch expects YEAR:COUNT (example: 2025:300), got {spec!r}") from exc
    from analysis.data.problems import IngestError

    try:
        scenario = get_scenario(args.scenario)
        if args.spillover is not None:
            scenario = scenario.replace(spillover=args.spillover)
        report = simulate_to_store(
            seed=args.seed,
            first_year=args.first_year,
            last_year=args.last_year,
            later_batches=tuple(later),
            out_dir=Path(args.out),
            store=Path(args.store),
            ingest=not args.no_ingest,
            scenario=scenario,
            n_villages=args.villages,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    except IngestError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.quiet:
        lines = str(report).splitlines()
        print(f"simulate: {lines[0]}" + (f" {lines[-1]}" if len(lines) > 2 else ""))
    else:
        print(report)
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from analysis.data.ingest import ingest_files
    from analysis.data.problems import IngestError
    from analysis.data.store import StoreError

    try:
        report = ingest_files(
            [Path(f) for f in args.files],
            store=Path(args.store),
            dry_run=args.dry_run,
            accept_warnings=args.accept_warnings,
            year=args.year,
            crosswalk=Path(args.crosswalk) if args.crosswalk else None,
            mapping_dir=Path(args.mapping_dir) if args.mapping_dir else None,
            replace=args.replace,
        )
    except IngestError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except StoreError as exc:
        raise UserError(str(exc)) from exc
    print(report)
    return 0


def _history_table(h, store: Path) -> str:
    """Lay out :func:`analysis.data.store.history` as a table with headers and a restore hint."""
    import pandas as pd

    if h.empty:
        return "No ingest yet: the store is empty. Add data with `study ingest FILE...` or `study simulate`."
    rows = [("#", "time (UTC)", "kind", "ingest id", "what changed")]
    for r in h.itertuples():
        when = pd.Timestamp(r.ingested_at).strftime("%Y-%m-%d %H:%M")
        mark = "" if r.restorable else " (cannot be undone: written before the ingest log)"
        rows.append((str(r.seq), when, str(r.kind), str(r.ingest_id), f"{r.summary}{mark}"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"{row[0]:>{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]:<{widths[3]}}  {row[4]}"
             for row in rows]
    last = int(h["seq"].iloc[-1])
    where = "" if store.resolve() == Path(paths.DEFAULT_STORE).resolve() else f" --store {store}"
    lines.append("")
    lines.append(
        f"To undo ingest N (the store goes back to just before it): study restore N{where}; "
        f"e.g. `study restore {last}{where}` undoes the last one. `study restore N --after` keeps N and undoes "
        "what came after it; --dry-run shows what would change. A restore is listed here too, and can be undone."
    )
    return "\n".join(lines)


def _cmd_history(args: argparse.Namespace) -> int:
    from analysis.data.store import history

    store = Path(args.store)
    if not store.exists():
        raise UserError(f"the store {store} does not exist; nothing has been ingested yet")
    print(_history_table(history(store), store))
    return 0


def _ingest_of(store: Path, which: str) -> str:
    """Turn a row number of `study history` (or an ingest id, or its prefix) into an ingest id."""
    from analysis.data.store import history

    h = history(store)
    if which.isdigit() and 1 <= int(which) <= len(h):
        return str(h.loc[h["seq"] == int(which), "ingest_id"].iloc[0])
    if which and h["ingest_id"].astype(str).str.startswith(which).sum() == 1:
        return which
    rows = f"1-{len(h)}" if len(h) > 1 else ("1" if len(h) else "none")
    raise UserError(f"{which!r} is neither a row number of `study history` (rows {rows}) nor one ingest id of "
                    f"the store {store}; run `study history` to see them")


def _cmd_restore(args: argparse.Namespace) -> int:
    from analysis.data.store import StoreError, restore

    store = Path(args.store)
    if not store.exists():
        raise UserError(f"the store {store} does not exist; nothing has been ingested yet")
    ingest_id = _ingest_of(store, str(args.ingest_id).strip())
    try:
        result = restore(store, ingest_id, when="after" if args.after else "before", dry_run=args.dry_run)
    except StoreError as exc:
        raise UserError(str(exc)) from exc
    print(result)
    return 0


def _covariates(text: str) -> list[str]:
    if text.strip().lower() in ("", "none"):
        return []
    return [c.strip() for c in text.split(",") if c.strip()]


def _cmd_estimate(args: argparse.Namespace) -> int:
    import json

    from analysis.core.csvsafe import write_csv
    from analysis.core.panel import load_analysis_panel, resolve_window
    from analysis.core.spec import Spec
    from analysis.estimate import estimate, output_rows

    store = Path(args.store)
    if not store.exists():
        raise UserError(f"the store {store} does not exist; build it with `study simulate` or `study ingest FILE...`")
    covariates = _covariates(args.covariates)
    try:
        window = resolve_window(store, args.first_year, args.last_year)
        spec = Spec(args.estimator, args.control, tuple(covariates), args.cluster, args.anticipation)
        panel = load_analysis_panel(store, window.first_year, window.last_year, args.min_months)
        result = estimate(panel, args.outcome, args.estimator, control_group=args.control, covariates=covariates,
                          cluster=args.cluster, by=args.by, bootstrap=args.bootstrap, seed=args.seed,
                          anticipation=args.anticipation)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    differs = [f.replace("_", " ") for f in ("estimator", "control_group", "covariates", "cluster", "anticipation")
               if getattr(spec, f) != getattr(HEADLINE, f)]
    which = "the headline specification" if not differs else f"differs from the headline in: {', '.join(differs)}"
    context = [
        f"{window.describe()} Store: {store}.",
        f"Options ({which}): estimator {args.estimator}, comparison villages {args.control}, covariates "
        f"{', '.join(covariates) or 'none'}, standard errors clustered by {args.cluster}, "
        + (f"bootstrap {args.bootstrap} draws (seed {args.seed})" if args.bootstrap else "analytic standard errors")
        + f", treated from {args.min_months:g} months of exposure in a year"
        + (f", anticipation {args.anticipation} (years before the cohort year left out of the comparisons)"
           if args.estimator == "cs" else "")
        + (f", effects by {args.by}" if args.by else "") + ".",
    ]
    rows = output_rows(result, window, args.min_months)
    if args.format == "csv":
        text = write_csv(rows, index=False, float_format="%.6g", lineterminator="\n")
    elif args.format == "json":
        text = json.dumps(json.loads(rows.to_json(orient="records", double_precision=10)), indent=2,
                          ensure_ascii=False) + "\n"
    else:
        text = result.summary(context) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"written to {args.output}")
        if args.format != "table":
            print(*context, sep="\n")
    else:
        sys.stdout.write(text)
        if args.format != "table":
            print(*context, sep="\n", file=sys.stderr)
    return 0


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _cmd_stress(args: argparse.Namespace) -> int:
    from analysis.grid.stress import load_records, run_and_write, summarise_stress, summary_text

    try:
        if args.summary_only:
            summary = summarise_stress(load_records(args.out))
        else:
            summary = run_and_write(args.replications, args.seed, args.out, scenarios=_split(args.scenarios),
                                    outcomes=_split(args.outcomes),
                                    n_jobs=args.jobs, cache_dir=args.cache, progress=True,
                                    estimators=_split(args.estimators),
                                    checks=[] if args.checks.strip() == "none" else _split(args.checks))
            print(f"records written to {args.out}")
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    print(summary_text(summary))
    return 0


def _workers(n: int | None) -> int:
    import os

    if n is not None and n < 1:
        raise UserError(f"--workers must be at least 1, got {n}")
    return n if n is not None else (os.cpu_count() or 1)


def _engine_arguments(p: argparse.ArgumentParser) -> None:
    """Add the Dask engine's options (``--workers``, ``--scheduler``) to a subcommand."""
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="existing Dask scheduler, e.g. tcp://127.0.0.1:8786 (default: $DASK_SCHEDULER_ADDRESS, "
                   "else a local cluster)")


def _cmd_montecarlo(args: argparse.Namespace) -> int:
    from analysis.grid.stress import run_and_write, summary_text

    out = Path(args.out)
    try:
        summary = run_and_write(args.replications, args.seed, out / "records.csv.gz", scenarios=_split(args.scenarios),
                                outcomes=_split(args.outcomes), n_jobs=_workers(args.workers),
                                cache_dir=out / "tasks", progress=True, estimators=_split(args.estimators),
                                checks=[] if args.checks.strip() == "none" else _split(args.checks),
                                scheduler=args.scheduler)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    print(f"records written to {out / 'records.csv.gz'} (one file per city in {out / 'tasks'})")
    print(summary_text(summary))
    return 0


def _cmd_grid(args: argparse.Namespace) -> int:
    import pandas as pd

    from analysis.data import schema
    from analysis.grid.curve import curve_summary
    from analysis.grid.engine import RunStats
    from analysis.grid.specification import grid_data, grid_points, parse_levels, run_grid

    store = Path(args.store)
    if not store.is_file():
        raise UserError(f"the store {store} does not exist: run `study simulate` or `study ingest FILE` first")
    outcomes = list(schema.OUTCOMES) if args.outcomes == "all" else _split(args.outcomes)
    if args.null_draws < 0:
        raise UserError(f"--null-draws must be at least 0 (0: no joint test), got {args.null_draws}")
    out = Path(args.out)
    stats = RunStats()
    try:
        plan = grid_points(outcomes, parse_levels(args.level or []))
        print(plan.describe())
        data = grid_data(store, args.first_year, args.last_year)
        grid = run_grid(plan, data, results_dir=out / "tasks", workers=_workers(args.workers),
                        scheduler=args.scheduler, serial=args.serial, progress=True, stats=stats)
        tests = None
        if args.null_draws:
            from analysis.grid.null_curve import null_test

            points = [p for p in plan.points if args.null_points == "all"
                      or (p.estimator == "cs" and p.min_months == 6.0 and p.window == "all")]
            if not points:
                raise UserError("--null-points cs has no point in this grid (it needs cs, min_months 6, window all): "
                                "use --null-points all")
            tests, _ = null_test(grid, data, points, args.null_draws, args.seed, results_dir=out / "null",
                                 workers=_workers(args.workers), scheduler=args.scheduler, serial=args.serial,
                                 progress=True)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    import json

    from analysis.core.csvsafe import write_csv

    summary = curve_summary(grid)
    if tests is not None:
        summary = summary.merge(tests[["outcome", "draws", "p_median", "p_share_significant"]], on="outcome",
                                how="left")
    write_csv(grid, out / "grid.csv")
    write_csv(summary, out / "curve_summary.csv")
    meta = {"seed": args.seed, "null_draws": args.null_draws, "null_points": args.null_points,
            "store": str(store), "window": [data.first_year, data.last_year], "data": data.token,
            "outcomes": plan.outcomes, "skipped": plan.skipped,
            "levels": {k: [str(v) for v in vals] for k, vals in plan.levels.items()}}
    (out / "grid.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"{len(grid)} specifications in {stats.tasks} tasks ({stats.resumed} tasks read from {out / 'tasks'}, "
          f"{stats.ran} run, {stats.where}, {stats.workers} workers) in {stats.seconds:.1f} s; "
          f"{int((grid['note'] != '').sum())} gave no estimate (see 'note')")
    print(f"results: {out / 'grid.csv'}, {out / 'curve_summary.csv'}")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return 0


def _resolve_run(name: str, outputs: Path) -> Path:
    p = Path(name)
    if p.is_dir():
        return p
    if (outputs / name).is_dir():
        return outputs / name
    runs = sorted(d.name for d in outputs.iterdir() if d.is_dir() and d.name != "latest") if outputs.is_dir() else []
    if name == "latest":
        raise UserError(f"there is no complete run in {outputs} yet ({outputs / 'latest'} moves only when "
                        f"`study run` runs every notebook); runs there: {', '.join(runs) or 'none'}. "
                        "Use --run NAME for one of them.")
    raise UserError(f"run {name!r} not found (looked for {p} and {outputs / name}); runs: {', '.join(runs) or 'none'}")


def _cmd_diff(args: argparse.Namespace) -> int:
    from analysis.core.csvsafe import write_csv
    from analysis.report.diff import diff_runs, format_diff

    outputs = Path(args.outputs)
    a, b = _resolve_run(args.run_a, outputs), _resolve_run(args.run_b, outputs)
    try:
        df, why = diff_runs(a, b, min_change_in_se=args.min_se)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from exc
    if args.format == "csv":
        sys.stdout.write(write_csv(df, index=False, float_format="%.6g", lineterminator="\n"))
    else:
        sys.stdout.write(format_diff(df, why, limit=args.limit))
    return 0


def _cmd_brief(args: argparse.Namespace) -> int:
    from analysis.pipeline import RunError, write_brief

    outputs = Path(args.outputs)
    run = _resolve_run(args.run, outputs)
    earlier = _resolve_run(args.compare, outputs) if args.compare else None
    try:
        written = write_brief(run, lang=args.lang, compare_to=earlier, say=print)
    except (FileNotFoundError, ValueError, RunError) as exc:
        raise UserError(str(exc)) from exc
    folders = {p.parent for p in written.values()}
    where = f" in {folders.pop()}" if len(folders) == 1 else ""
    print(f"brief written{where}: {', '.join(p.name if where else str(p) for p in written.values())}")
    return 0


def _cmd_pages(args: argparse.Namespace) -> int:
    from analysis.report.manifest import refresh_outputs
    from analysis.report.run_pages import RunPagesError, run_summary, write_run_pages

    run = _resolve_run(args.run, Path(args.outputs))
    try:
        run_summary(run)
    except RunPagesError as exc:
        raise UserError(f"{exc}. Nothing was written.") from None
    written = write_run_pages(run)
    refresh_outputs(run)
    print(f"pages written in {run}: index.html, summary.md, summary.json, "
          f"{sum(p.suffix == '.html' and p.parent.name == 'notebooks' for p in written)} notebooks as HTML")
    if args.print:
        print()
        print((run / "summary.md").read_text(encoding="utf-8"), end="")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from analysis.pipeline import RunError, run_study

    overrides = _parse_overrides(args.param or [])
    if args.seed is not None:
        overrides.setdefault("seed", str(args.seed))
    for name in ("first_year", "last_year"):
        if getattr(args, name) is not None:
            overrides.setdefault(name, str(getattr(args, name)))
    try:
        run_study(
            only=args.only,
            overrides=overrides,
            store=Path(args.store),
            outputs=Path(args.outputs),
            run_id=args.run_id,
            force=args.force,
            stream=sys.stdout,
            memory_limit_gb=args.memory_limit,
            jobs=args.jobs,
        )
    except RunError as exc:
        raise UserError(str(exc)) from exc
    return 0


def _cmd_clean_store(args: argparse.Namespace) -> int:
    from analysis.clean import CleanError, remove_store

    try:
        removed = remove_store(Path(args.store), Path(args.synthetic), confirm=args.yes)
    except CleanError as exc:
        raise UserError(str(exc)) from exc
    if not removed:
        print(f"no store at {args.store}: nothing to remove")
    else:
        print(f"removed {', '.join(str(p) for p in removed)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``study`` command.

    Returns
    -------
    argparse.ArgumentParser
        Parser with the subcommands ``simulate``, ``ingest`` and ``run``.
    """
    parser = argparse.ArgumentParser(
        prog="study",
        description="Difference-in-differences evaluation of the village first-secretary programme.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from analysis.data.synthetic.scenarios import SCENARIOS
    store_help = f"DuckDB store (default: {paths.DEFAULT_STORE})"

    p = sub.add_parser(
        "simulate",
        help="write the calibrated synthetic city into data/synthetic/ and ingest it",
        description="Generate the synthetic city calibrated to the programme report, write it as "
        "canonical files (panel, postings, truth) and ingest the panel and postings into the store.",
    )
    p.add_argument("--seed", type=int, default=20230601, help="seed of every random draw (default: %(default)s)")
    p.add_argument("--first-year", type=int, default=2018, help="first panel year (default: %(default)s)")
    p.add_argument("--last-year", type=int, default=2024, help="last panel year (default: %(default)s)")
    p.add_argument(
        "--villages",
        type=int,
        default=None,
        metavar="N",
        help="size of the city: N villages, with townships and counties at the report's ratios (about 18 villages "
        "per township, 20 townships per county; 500000 makes a national panel). Default: the report's 3,224 "
        "villages in 178 townships and 9 counties",
    )
    p.add_argument(
        "--later-batch",
        action="append",
        metavar="YEAR:COUNT",
        help="add a later batch of COUNT first secretaries starting in YEAR (repeatable)",
    )
    p.add_argument(
        "--spillover",
        type=float,
        default=None,
        help="spillover on untreated villages in heavily treated townships, as a share of "
        "the direct effect (default: the scenario's, 0 for the calibrated city)",
    )
    p.add_argument(
        "--scenario",
        default="default",
        choices=list(SCENARIOS),
        help="stress scenario of the simulator (default: the calibrated city); see "
        "analysis.data.synthetic.scenarios",
    )
    p.add_argument(
        "--out", default=str(paths.SYNTHETIC_DIR), help="folder for the canonical files (default: %(default)s)"
    )
    p.add_argument("--store", default=str(paths.DEFAULT_STORE), help=store_help)
    p.add_argument("--no-ingest", action="store_true", help="only write the files")
    p.add_argument("--quiet", action="store_true", help="print one line (the city and the store) instead of the report")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser(
        "ingest",
        help="validate canonical files and write them into the store",
        description="Read canonical panel or postings files (CSV, Parquet or XLSX), validate them, and "
        "write each year in one transaction (replace-the-year). On any problem nothing is written, "
        "every problem is listed with file, row, column and what to do, and the full list is written "
        "beside each file as FILE.errors.csv and FILE.errors.xlsx. A panel year the store already holds "
        "is only changed with --replace.",
    )
    p.add_argument("files", nargs="+", help="panel and/or postings files")
    p.add_argument("--store", default=str(paths.DEFAULT_STORE), help=store_help)
    p.add_argument("--dry-run", action="store_true", help="validate and report what would change, write nothing")
    p.add_argument("--mapping-dir", nargs="?", const=str(paths.MAPPINGS_DIR), default=None, metavar="DIR",
                   help="read statistics-bureau / organisation-department files (Chinese headers, GBK, 万元, "
                   f"subtotal rows ...) through the header mappings in DIR (default when given bare: "
                   f"{paths.MAPPINGS_DIR})")
    p.add_argument("--year", type=int, default=None, help="year of a bureau file that has no year column")
    p.add_argument("--crosswalk", default=None, metavar="FILE",
                   help="village code changes (merged/split villages), see analysis.data.bureau.crosswalk")
    p.add_argument("--accept-warnings", action="store_true",
                   help="let suspicious but possible values through (they are recorded in the history)")
    p.add_argument("--replace", action="store_true",
                   help="let panel files change years the store already holds (without it the ingest refuses and "
                   "says how many rows and values would change, and by how much; the old rows stay in the history)")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser(
        "history",
        help="list the ingests and restores of the store: id, time, files, what changed",
        description="List every ingest (and restore) of the store, oldest first, numbered, with what it changed; "
        "`study restore N` undoes row N.",
    )
    p.add_argument("--store", default=str(paths.DEFAULT_STORE), help=store_help)
    p.set_defaults(func=_cmd_history)

    p = sub.add_parser(
        "restore",
        help="bring the store back to its state right before (or after) an ingest",
        description="Restore the store's content as it was right before ingest N of `study history` (or right "
        "after it, with --after). The restore is written atomically and is itself logged, so it can be undone.",
    )
    p.add_argument("ingest_id", metavar="N", help="a row number of `study history` (or an ingest id)")
    p.add_argument("--after", action="store_true", help="restore the state right after that ingest")
    p.add_argument("--dry-run", action="store_true", help="say what would change, write nothing")
    p.add_argument("--store", default=str(paths.DEFAULT_STORE), help=store_help)
    p.set_defaults(func=_cmd_restore)

    p = sub.add_parser(
        "estimate",
        help="estimate the effect on one outcome and print or write the tidy result",
        description="Estimate the effect of a first secretary on one outcome from the store and print the tidy "
        "result (overall effect and event study, with p-values). By default: the study's headline specification "
        "(Callaway-Sant'Anna, doubly robust, not-yet-treated comparisons, the baseline covariates, township "
        "clusters) over every year the store holds; the window and every option are printed with the result.",
    )
    p.add_argument("--outcome", required=True, help="outcome column, e.g. income_per_capita")
    p.add_argument("--estimator", default=HEADLINE.estimator, choices=list(ESTIMATORS),
                   help="cs = Callaway-Sant'Anna, doubly robust (default, the headline), twfe, sa = Sun-Abraham, "
                   "bjs = imputation, ppml = Poisson for counts")
    p.add_argument("--control", default=HEADLINE.control_group, choices=list(CONTROL_GROUPS),
                   help="comparison villages (default: %(default)s)")
    p.add_argument("--covariates", default=",".join(HEADLINE.covariates), metavar="A,B",
                   help="baseline covariates, comma-separated, or none (default: the headline's, %(default)s)")
    p.add_argument("--by", default=None, metavar="COLUMN", help="effects by subgroup, e.g. cadre_type (cs only)")
    p.add_argument("--cluster", default=HEADLINE.cluster, choices=list(CLUSTERS),
                   help="clustering level of standard errors (default: %(default)s)")
    p.add_argument("--bootstrap", type=int, default=0, help="multiplier-bootstrap draws (cs; default 0 = analytic)")
    p.add_argument("--seed", type=int, default=20230601, help="seed of the bootstrap (default: %(default)s)")
    p.add_argument("--first-year", type=int, default=None, help="first year (default: the store's first year)")
    p.add_argument("--last-year", type=int, default=None, help="last year (default: the store's last year)")
    p.add_argument("--anticipation", type=int, default=HEADLINE.anticipation,
                   help="years before the cohort year left out of the comparisons (cs; default: %(default)s, the "
                   "arrival year of the mid-year batches; 0 = the six-month coding alone)")
    p.add_argument("--min-months", type=float, default=6.0,
                   help="months of exposure in a year that make a village treated (default: %(default)s)")
    p.add_argument("--store", default=str(paths.DEFAULT_STORE), help=store_help)
    p.add_argument("--format", default="table", choices=["table", "csv", "json"], help="output format")
    p.add_argument("--output", default=None, metavar="FILE", help="write to FILE instead of printing")
    p.set_defaults(func=_cmd_estimate)

    p = sub.add_parser(
        "diff",
        help="list which headline estimates moved between two runs, by how much, and why",
        description="Compare the results.json of two runs (folder names under outputs/ or paths): the reasons "
        "(new year, new cohort, revised earlier data, changed options) and the estimates that moved, largest first.",
    )
    p.add_argument("run_a", help="the earlier run (name under outputs/ or a path)")
    p.add_argument("run_b", help="the later run")
    p.add_argument("--outputs", default=str(paths.OUTPUTS_DIR), help="outputs folder (default: %(default)s)")
    p.add_argument("--min-se", type=float, default=0.0, help="show only moves of at least this many standard errors")
    p.add_argument("--limit", type=int, default=40, help="rows shown in the text report (default: %(default)s)")
    p.add_argument("--format", default="text", choices=["text", "csv"], help="output format")
    p.set_defaults(func=_cmd_diff)

    p = sub.add_parser(
        "brief",
        help="write the findings brief (zh/en, docx and HTML) of a run",
        description="Write the policy office's findings brief from a run's results.json and figures into "
        "outputs/<run>/brief/: brief.zh.docx, brief.en.docx, brief.zh.html, brief.en.html. With --compare RUN_A, "
        "the brief also says what changed since that earlier run.",
    )
    p.add_argument("--run", default="latest", help="run folder name under outputs/ or a path (default: latest)")
    p.add_argument("--lang", default="both", choices=["zh", "en", "both"], help="language(s) (default: both)")
    p.add_argument("--compare", default=None, metavar="RUN_A",
                   help="an earlier run (name under outputs/ or a path): add a section on what changed since it")
    p.add_argument("--outputs", default=str(paths.OUTPUTS_DIR), help="outputs folder (default: %(default)s)")
    p.set_defaults(func=_cmd_brief)

    from analysis.grid.stress import CHECKS, STRESS_ESTIMATORS, STRESS_OUTCOMES

    p = sub.add_parser(
        "stress",
        help="stress-test Monte Carlo: every estimator, test and check under the simulator's stress scenarios",
        description="Simulate REPLICATIONS cities per stress scenario, run every estimator and check on each, "
        "write the records and print their summary (bias, coverage, rejection rates). Tasks are independent and "
        "seeded; --cache DIR keeps one file per city so an interrupted run resumes.",
    )
    p.add_argument("--replications", type=int, default=100, help="cities per scenario (default: %(default)s)")
    p.add_argument("--seed", type=int, default=20230601, help="study seed (default: %(default)s)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenarios (default: all)")
    p.add_argument("--outcomes", default=",".join(STRESS_OUTCOMES),
                   help="comma-separated outcomes (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default: %(default)s)")
    p.add_argument("--out", default=str(paths.STRESS_RECORDS), help="records file (default: %(default)s)")
    p.add_argument("--cache", default=None, metavar="DIR", help="folder of per-city records (resumable runs)")
    p.add_argument("--estimators", default=",".join(STRESS_ESTIMATORS),
                   help="comma-separated estimators (default: %(default)s)")
    p.add_argument("--checks", default=",".join(CHECKS),
                   help="comma-separated checks, 'none' for none (default: %(default)s)")
    p.add_argument("--summary-only", action="store_true", help="print the summary of the records file, run nothing")
    p.set_defaults(func=_cmd_stress)

    engine_help = ("Tasks run on Dask: by default a local cluster of --workers processes (one per core), or an "
                   "existing cluster with --scheduler tcp://HOST:8786 (or DASK_SCHEDULER_ADDRESS). Each finished "
                   "task is written to OUT/tasks/ as one Parquet file: rerunning the same command resumes. The "
                   "numbers do not depend on the number of workers or the order in which tasks finish.")
    p = sub.add_parser(
        "montecarlo",
        help="the stress-test Monte Carlo on the Dask engine (local cluster or --scheduler), resumable",
        description="Simulate REPLICATIONS cities per scenario and run every estimator and check on each "
        "(as `study stress`), writing OUT/records.csv.gz and its summary. " + engine_help,
    )
    p.add_argument("--replications", type=int, default=20, help="cities per scenario (default: %(default)s)")
    p.add_argument("--seed", type=int, default=20230601, help="study seed (default: %(default)s)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenarios (default: all)")
    p.add_argument("--outcomes", default=",".join(STRESS_OUTCOMES),
                   help="comma-separated outcomes (default: %(default)s)")
    p.add_argument("--estimators", default=",".join(STRESS_ESTIMATORS),
                   help="comma-separated estimators (default: %(default)s)")
    p.add_argument("--checks", default=",".join(CHECKS),
                   help="comma-separated checks, 'none' for none (default: %(default)s)")
    _engine_arguments(p)
    p.add_argument("--out", default="outputs/montecarlo", help="results folder (default: %(default)s)")
    p.set_defaults(func=_cmd_montecarlo)

    from analysis.grid.specification import LEVELS

    p = sub.add_parser(
        "grid",
        help="the specification grid: the effect under every combination of the defensible choices",
        description="Estimate the overall effect of every outcome under every combination of the grid's levels ("
        + "; ".join(f"{k}: {','.join(f'{v:g}' if isinstance(v, float) else str(v) for v in vals)}"
                    for k, vals in LEVELS.items())
        + "), skipping combinations that do not apply to an estimator; write OUT/grid.csv and the specification "
        "curve's summary OUT/curve_summary.csv. " + engine_help,
    )
    p.add_argument("--store", default=str(paths.DEFAULT_STORE), help=store_help)
    p.add_argument("--first-year", type=int, default=None, help="first year (default: the store's first year)")
    p.add_argument("--last-year", type=int, default=None, help="last year (default: the store's last year)")
    p.add_argument("--outcomes", default="all", help="comma-separated outcomes, or 'all' (default: %(default)s)")
    p.add_argument("--level", action="append", metavar="NAME=V1,V2",
                   help="values of one level instead of its default (repeatable), e.g. --level estimator=cs,sa")
    _engine_arguments(p)
    p.add_argument("--serial", action="store_true", help="run in this process, without Dask")
    p.add_argument("--seed", type=int, default=20230601,
                   help="study seed: the joint test's draws are spawned from it (the grid's analytic estimates draw "
                   "nothing) (default: %(default)s)")
    p.add_argument("--null-draws", type=int, default=0, metavar="B",
                   help="draws of the specification curve's joint test under the null (0: not run; default 0)")
    p.add_argument("--null-points", choices=["cs", "all"], default="cs",
                   help="points re-estimated on each draw: 'cs' the Callaway-Sant'Anna points at the 6-month rule "
                   "and all years, 'all' every point (default: %(default)s)")
    p.add_argument("--out", default="outputs/grid", help="results folder (default: %(default)s)")
    p.set_defaults(func=_cmd_grid)

    p = sub.add_parser(
        "pages",
        help="write a run's pages readable without Python: notebooks as HTML, summary.md/.json, index.html",
        description="Write into a run folder what a reader without Python opens: every executed notebook as one "
        "self-contained HTML page beside its .ipynb, summary.json and summary.md (the headline estimates with their "
        "95%% intervals, copied from results.json) and index.html linking the brief, notebooks, tables and figures. "
        "`study run` writes them itself; this writes them again, e.g. for a run folder made before they existed.",
    )
    p.add_argument("--run", default="latest", help="run folder name under outputs/ or a path (default: latest)")
    p.add_argument("--outputs", default=str(paths.OUTPUTS_DIR), help="outputs folder (default: %(default)s)")
    p.add_argument("--print", action="store_true", help="also print summary.md")
    p.set_defaults(func=_cmd_pages)

    p = sub.add_parser(
        "run",
        help="run the notebooks with papermill into outputs/<run-id>/",
        description="Execute every notebook (or one, with --only) with papermill into outputs/RUN-ID/. Parameters "
        "are validated and the analysis window (by default every year the store holds) is resolved before any "
        "work starts. outputs/latest moves to the run only when every notebook ran. A run folder holds one set "
        "of parameters: a used run name needs --force, and --only into an existing run must use its parameters.",
    )
    p.add_argument("--only", metavar="NAME",
                   help="run only this notebook (e.g. 00_data_audit); outputs/latest is not moved")
    p.add_argument("--memory-limit", type=float, default=None, metavar="GB",
                   help="stop a notebook whose kernel holds more than GB gigabytes of memory, with a plain message "
                   "and exit code 2 (default: no limit but the machine's)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="notebooks executed at a time, each in its own kernel; the results do not depend on it "
                   "(default: 2, or 1 on a one-core machine)")
    p.add_argument(
        "-p", "--param", action="append", metavar="NAME=VALUE", help="override a notebook parameter (repeatable)"
    )
    p.add_argument("--seed", type=int, default=None, help="seed passed to every notebook")
    p.add_argument("--store", default=str(paths.DEFAULT_STORE), help=store_help)
    p.add_argument("--outputs", default=str(paths.OUTPUTS_DIR), help="outputs folder (default: %(default)s)")
    p.add_argument("--first-year", type=int, default=None, help="first year (default: the store's first year)")
    p.add_argument("--last-year", type=int, default=None, help="last year (default: the store's last year)")
    p.add_argument("--run-id", default=None, help="name of the run folder (default: a timestamp)")
    p.add_argument("--force", action="store_true", help="replace an existing run folder of that name")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "clean-store",
        help="delete the store, only if it holds nothing but the simulated city (or with --yes)",
        description="Delete the store with its log, lock and temporary files. A store holding data that `study "
        "simulate` did not write (real files, the 2025 example) is kept unless --yes is given. `make clean-store` "
        "calls this (with CONFIRM=yes: --yes).",
    )
    p.add_argument("--store", default=str(paths.DEFAULT_STORE), help=store_help)
    p.add_argument("--synthetic", default=str(paths.SYNTHETIC_DIR),
                   help="folder `study simulate` wrote the city to (default: %(default)s)")
    p.add_argument("--yes", action="store_true", help="delete it even if it holds ingested data")
    p.set_defaults(func=_cmd_clean_store)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``study`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0 on success, 2 on an error the user can fix.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ParameterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C reaches the notebooks' kernels and workers too; what was written stays as each command
        # leaves it when stopped (an ingest not at all, a run partial with outputs/latest not moved)
        print(f"interrupted: `study {args.command}` was stopped (Ctrl-C) before it finished; nothing after that "
              "point was done", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
