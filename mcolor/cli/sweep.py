"""``mcolor sweep CONFIG.yaml --out DIR``: run or continue a grid of bundle runs."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sweep", help="run a grid of bundle trainings (backbones x colour modules x schedules x fractions x seeds)",
        description="Each run goes through the bundle's train.json and evaluate.json. Finished runs are skipped, "
                    "so re-running the same command continues a killed sweep. Writes results.csv, summary.md and "
                    "learning_curve.png into OUT.",
    )
    p.add_argument("config", help="sweep YAML (see configs/experiments/)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--max-runs", type=int, default=None, help="stop after this many new runs")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="run only every N-th run starting at K (0-based), so N processes can share one grid; "
                        "re-run without --shard afterwards to write the combined reports")
    p.add_argument("--import-records", default=None, metavar="DIR",
                   help="first bring back the finished runs an earlier sweep kept with --export-records (same "
                        "sweep, same carve), so the grid continues instead of starting over")
    p.add_argument("--export-records", default=None, metavar="DIR",
                   help="after the reports, keep each finished run's result, per-image test scores (and a "
                        "source's colour module) plus the reports in DIR: a few KB per run, enough to "
                        "continue the sweep and rebuild its reports on another machine")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from mcolor.experiments.sweep import run_sweep

    path = run_sweep(args.config, args.out, max_runs=args.max_runs, dry_run=args.dry_run, shard=args.shard,
                     import_from=args.import_records, export_to=args.export_records)
    if not args.dry_run:
        print(f"results: {path}")
    return 0
