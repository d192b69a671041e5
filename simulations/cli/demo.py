"""``fedotl demo``: the main job on embedded synthetic data (no download)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job on embedded synthetic data (no download)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fedotl.simulations.demo import run_demo

    result = run_demo(seed=args.seed, echo=None if args.json else print)
    if args.json:
        print(json.dumps(result))
    return 0
