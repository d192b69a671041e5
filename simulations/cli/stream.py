"""``fedotl stream``: online transfer learners on a target subject's window stream."""

from __future__ import annotations

import argparse
import json
import math

from fedotl.online.evaluation import evaluate, results_to_dict
from fedotl.simulations.progress import progress

DEFAULT_PRIOR_WEIGHT = 20.0


def register(sub: argparse._SubParsersAction) -> None:
    from fedotl.simulations.arguments import add_dataset_args, bounded, positive_int
    from fedotl.simulations.readers import DATASETS
    from fedotl.online.oddm import MU_UNIT
    from fedotl.simulations.stream import DEFAULT_LEARNERS, LEARNERS, ODDM_SLICE, SLICE_FROM, TARGET_STANDARDIZE

    p = sub.add_parser(
        "stream",
        help="online transfer learning on a target subject's stream",
        description=(
            "Stream a target subject's feature windows (test-then-train) through online "
            "transfer learners whose source classifiers come from other subjects or positions. "
            "Reports the final cumulative mistake rate, mean ± std over random permutations "
            "of the stream (the OTL papers' protocol), or in time order with --time-order."
        ),
    )
    add_dataset_args(p)
    p.add_argument("--target-subject", required=True, help="subject whose windows form the stream")
    p.add_argument("--source-subjects", nargs="+", default=None, help="source subjects (default: all others)")
    p.add_argument("--target-position", default=None, help="body position of the target stream (e.g. LA)")
    p.add_argument("--source-position", default=None, help="body position of the sources (e.g. RA)")
    p.add_argument("--source-dataset", choices=DATASETS, default=None, help="take the sources from another dataset (shared activities only)")
    p.add_argument("--source-path", default=None, help="PATH of --source-dataset")
    p.add_argument(
        "--learners",
        default=",".join(DEFAULT_LEARNERS),
        help=f"comma-separated, from {','.join(LEARNERS)} (default: %(default)s)",
    )
    p.add_argument(
        "--target-standardize",
        choices=TARGET_STANDARDIZE,
        default="source",
        help="standardise the stream with the sources' statistics only (source, the default), or "
        "re-standardise each window with the target windows before it (online)",
    )
    p.add_argument(
        "--prior-weight",
        type=bounded(float, lambda v: math.isfinite(v) and v > 0, "a positive finite number"),
        default=None,
        metavar="M",
        help="with --target-standardize online: pseudo-windows of the source scale (mean 0, "
        f"variance 1) the running statistics start from (default {DEFAULT_PRIOR_WEIGHT:g})",
    )
    p.add_argument(
        "--oddm-slice",
        type=bounded(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
        default=ODDM_SLICE,
        metavar="F",
        help="share of the target's windows held out as ODDM's unlabelled JDA slice; every learner "
        "streams the other windows (default %(default)s, as the ODDM authors; 0: stream all, no oddm)",
    )
    p.add_argument("--oddm-slice-from", choices=SLICE_FROM, default=SLICE_FROM[0],
                   help="take the slice at random (seeded by --seed) or from the start of the recording (default %(default)s)")
    p.add_argument("--oddm-mu-unit", type=bounded(float, lambda v: v >= 0, "a number >= 0"), default=MU_UNIT, metavar="MU",
                   help="ODDM's projection-update strength per unit of feature scale (default %(default)s; 0: off)")
    p.add_argument("--permutations", type=positive_int, default=20, help="random orders to average (default 20)")
    p.add_argument("--time-order", action="store_true", help="stream in recorded order (adds the persistence baseline)")
    p.add_argument("--window", type=float, default=5.0, help="window length in seconds (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--curve-points", type=positive_int, default=50, help="points of each curve in the JSON (default 50)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_stream)


def run_stream(args: argparse.Namespace) -> dict:
    from fedotl.simulations.arguments import load_from_args
    from fedotl.simulations.stream import build_task, learner_factories

    names = [n.strip() for n in args.learners.split(",") if n.strip()]
    if not names:
        raise ValueError("--learners is empty")
    online_std = args.target_standardize == "online"
    if args.prior_weight is not None and not online_std:
        raise ValueError("--prior-weight applies to --target-standardize online only")
    prior_weight = args.prior_weight if args.prior_weight is not None else DEFAULT_PRIOR_WEIGHT
    ds = load_from_args(args)
    source_ds = None
    if (args.source_dataset is None) != (args.source_path is None):
        raise ValueError("give both --source-dataset and --source-path, or neither")
    if args.source_dataset is not None:
        from fedotl.simulations.readers import load_dataset

        source_ds = load_dataset(args.source_dataset, args.source_path)
    task = build_task(
        ds,
        args.target_subject,
        args.source_subjects,
        target_position=args.target_position,
        source_position=args.source_position,
        window_s=args.window,
        source_ds=source_ds,
        oddm_slice=args.oddm_slice,
        oddm_slice_from=args.oddm_slice_from,
        seed=args.seed,
    )
    factories = learner_factories(
        task, names, seed=args.seed, target_standardize=args.target_standardize, prior_weight=prior_weight,
        oddm_mu_unit=args.oddm_mu_unit,
    )
    results = {}
    # One learner at a time so the bar moves; evaluate() pairs them on the same orders.
    for name in progress(names, desc="learners", unit="learner"):
        results.update(
            evaluate({name: factories[name]}, task.target.X, task.target.y,
                     n_permutations=args.permutations, seed=args.seed, time_order=args.time_order)
        )
    return {
        "dataset": ds.name,
        "target": task.target.name,
        "sources": [s.name for s in task.sources],
        "protocol": "time-order" if args.time_order else f"{args.permutations} permutations",
        "n": int(len(task.target.y)),
        "oddm_slice": {"fraction": args.oddm_slice, "from": args.oddm_slice_from,
                       "windows": 0 if task.unlabeled is None else int(len(task.unlabeled.y))},
        "d": int(task.target.X.shape[1]),
        "target_standardize": args.target_standardize,
        "prior_weight": prior_weight if online_std else None,
        "learners": results_to_dict(results, args.curve_points),
    }


def cmd_stream(args: argparse.Namespace) -> int:
    out = run_stream(args)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"target {out['target']} ({out['n']} windows, d={out['d']}); sources {', '.join(out['sources'])}")
    if out["target_standardize"] == "online":
        print(f"target standardised online (prior weight {out['prior_weight']:g})")
    print(f"final cumulative mistake rate, {out['protocol']}")
    best = min(v["mistake_rate_mean"] for v in out["learners"].values())
    for name, r in out["learners"].items():
        mark = "  <- best" if r["mistake_rate_mean"] == best else ""
        print(f"  {name:<12}{r['mistake_rate_mean']:.3f} ± {r['mistake_rate_std']:.3f}{mark}")
    return 0
