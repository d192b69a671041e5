"""``fedotl demo``: the whole system end to end (embedded synthetic DSADS by default), and its report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from fedotl.simulations.arguments import add_force, positive_int
    from fedotl.simulations.readers import DATASETS

    p = sub.add_parser(
        "demo",
        help="the main job: federate, serve new users as streaming devices, write a report (embedded data by default)",
        description=(
            "Load a dataset (default: embedded synthetic DSADS, no download), partition it into devices with some "
            "subjects held out as new users, federate local-only, FedAvg and FedHealth on Flower's Simulation Engine, "
            "replay the held-out subjects as streaming devices that start from the federation, and write "
            "metrics.json, plots, report.md and report.html into the run directory."
        ),
    )
    p.add_argument("--dataset", nargs=2, metavar=("D", "PATH"), default=None,
                   help=f"a real dataset instead of the embedded default: D is one of {', '.join(DATASETS)}")
    p.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/demo-<time>)")
    add_force(p, "DIR")
    p.add_argument("--quick", action="store_true", help="small and short: 3 synthetic subjects, 2 rounds (a smoke test)")
    p.add_argument("--rounds", type=positive_int, default=None, metavar="R", help="federated rounds (default 8; 2 with --quick)")
    p.add_argument("--holdout-subjects", nargs="+", default=None, metavar="S", help="new users (default: the last quarter of the subjects)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print metrics.json on stdout instead of the tables")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fedotl.simulations.demo import DemoOptions, run_demo
    from fedotl.simulations.readers import DATASETS
    from fedotl.simulations.report import REPORT_HTML, REPORT_MD
    from fedotl.simulations.report.render import headline, text
    from fedotl.simulations.rundir import default_run_dir

    dataset, path = args.dataset if args.dataset else (None, None)
    if dataset is not None and dataset not in DATASETS:
        raise ValueError(f"--dataset {dataset}: choose one of {', '.join(DATASETS)}")
    opts = DemoOptions(dataset=dataset, path=path, quick=args.quick, seed=args.seed, rounds=args.rounds, holdout=args.holdout_subjects)
    out = args.out or default_run_dir("demo")
    say = (lambda _m: None) if args.json else (lambda m: print(m, flush=True))
    metrics = run_demo(opts, out, say, force=args.force)
    if args.json:
        print(json.dumps(metrics))
        return 0
    for t in headline(metrics):
        print()
        print(text(t))
    root = Path(out).resolve()
    print(f"\nreport: {root / REPORT_HTML}\n        {root / REPORT_MD}")
    return 0
