"""``fedotl report RUN_DIR``: rebuild a run's plots, report.md and report.html from its outputs."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild the plots, report.md and report.html of a run directory",
        description=(
            "Rebuild the report of any run directory: a demo, or the --out of simulate, replay or newuser (from its "
            "metrics.json), or a federated run of flwr run or the Deployment Engine (from its summary.json, or from "
            "its round events when it never finished, marked as partial)."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--json", action="store_true", help="print the written files as one JSON object")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from fedotl.simulations.report import build_report
    from fedotl.simulations.report.metrics import load_metrics

    metrics = load_metrics(args.run_dir)
    paths = build_report(args.run_dir, metrics)
    if args.json:
        print(json.dumps({"status": metrics.get("status"), **{k: str(v) for k, v in paths.items()}}))
        return 0
    if metrics.get("status") != "complete":
        print(f"note: the run is partial ({metrics.get('status')}); the report says so")
    print(f"report: {paths['html']}\n        {paths['markdown']}")
    print(f"plots:  {len(paths) - 2} in {paths['html'].parent / 'plots'}")
    return 0
