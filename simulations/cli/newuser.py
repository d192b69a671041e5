"""``fedotl newuser``: held-out subjects as new users of a federation (see docs/newuser.md)."""

from __future__ import annotations

import argparse
import json

from fedotl.simulations.newuser import ALL_KEYS, CURVE_AT, ORDERS, NewUserOptions


def register(sub: argparse._SubParsersAction) -> None:
    from fedotl.simulations.arguments import add_force
    from fedotl.client.newuser import DEFAULT_CALIBRATION, DEFAULT_TOP_K, TARGET_INPUTS
    from fedotl.client.summary import DISTANCES
    from fedotl.simulations.arguments import add_dataset_args, bounded, positive_int

    p = sub.add_parser(
        "newuser",
        help="new users start from a federation: its models as online-transfer sources",
        description=(
            "Each held-out subject's devices stream their windows, test-then-train, through the "
            "federated global model, PA-I from scratch, and online transfer learners whose sources "
            "are the federation's global head and the clients' shared heads, chosen by distance "
            "on the device's first unlabelled windows."
        ),
    )
    add_dataset_args(p)
    p.add_argument("--federation", required=True, metavar="RUN_DIR", help="--out folder of a fedotl simulate run (FedHealth, heads shared)")
    p.add_argument("--subjects", nargs="+", required=True, metavar="S", help="held-out subjects to stream (not in the federation)")
    p.add_argument("--position", default=None, help="one body position (default: every position, one device each)")
    p.add_argument("--order", choices=ORDERS, default="permuted", help="seeded permutations (the papers' protocol) or the recorded order (default %(default)s)")
    p.add_argument("--permutations", type=positive_int, default=20, help="permutations to average (default 20)")
    p.add_argument("--top-k", type=bounded(int, lambda v: v >= 0, "an integer >= 0"), default=DEFAULT_TOP_K, metavar="K", help="sources kept by distance, 0 for all (default %(default)s)")
    p.add_argument("--distance", choices=DISTANCES, default="mmd", help="distance to each client's feature summary (default %(default)s)")
    p.add_argument("--target-inputs", choices=TARGET_INPUTS, default=NewUserOptions.target_inputs, help="what the ensembles' own PA-I learner reads (default %(default)s)")
    p.add_argument("--no-global-source", dest="include_global", action="store_false", help="leave the global head out of HomOTLMS's sources")
    p.add_argument("--horizon", type=positive_int, default=None, metavar="T", help="Hedge horizon of HomOTLMS and ODDM (default: the stream's length)")
    p.add_argument("--oddm-mu", type=bounded(float, lambda v: v > 0, "a positive number"), default=NewUserOptions.oddm_mu, metavar="MU", help="ODDM's projection-update strength μ (default %(default)s)")
    p.add_argument("--calibration", type=bounded(int, lambda v: v >= 2, "an integer >= 2"), default=DEFAULT_CALIBRATION, metavar="N", help="unlabelled windows that calibrate the device before its stream (default %(default)s)")
    p.add_argument("--label-budget", type=bounded(float, lambda v: 0 < v <= 1, "a fraction in (0, 1]"), default=1.0, metavar="F", help="share of windows whose label arrives (default 1)")
    p.add_argument("--no-offline", dest="offline", action="store_false", help="skip the personalized_offline reference (it trains two models per device)")
    p.add_argument("--learners", default=",".join(ALL_KEYS), help="comma-separated keys to run (default: all of %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, metavar="RUN_DIR", help="run directory: newuser.json (the whole result), metrics.json, plots and the report")
    add_force(p, "RUN_DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_newuser)


def options_from_args(args: argparse.Namespace) -> NewUserOptions:
    return NewUserOptions(
        order=args.order, permutations=args.permutations, top_k=args.top_k, distance=args.distance,
        target_inputs=args.target_inputs, include_global=args.include_global, horizon=args.horizon,
        calibration=args.calibration, label_budget=args.label_budget, offline=args.offline, oddm_mu=args.oddm_mu, seed=args.seed,
        learners=tuple(k.strip() for k in args.learners.split(",") if k.strip()),
    )


def write_outputs(run_dir, out: dict, opts: NewUserOptions) -> None:
    """newuser.json, and metrics.json (the ``online`` piece) with its plots and report."""
    from fedotl.simulations.cli.device import write_json
    from fedotl.simulations.report import metrics as M
    from fedotl.simulations.report import write_run_report

    write_json(str(run_dir / "newuser.json"), out)
    metrics = M.new_metrics("newuser", config={**out["options"], "federation": out["federation"]}, seed=opts.seed)
    metrics["dataset"] = {"name": out["dataset"], "new_users": " ".join(out["subjects"]), "federated": " ".join(out["federated_subjects"])}
    metrics["online"] = M.online_from_newuser(out)
    metrics["online_protocol"] = (f"Held-out devices, test-then-train after {opts.calibration} unlabelled calibration windows, "
                                  f"{out['protocol']}: final cumulative mistake rate, mean over devices.")
    if out["note"]:
        metrics["notes"].append(out["note"])
    write_run_report(run_dir, M.finish(metrics))


def cmd_newuser(args: argparse.Namespace) -> int:
    from fedotl.simulations.arguments import load_from_args
    from fedotl.simulations.newuser import run_newuser

    opts = options_from_args(args)
    opts.check()
    if args.out is None:
        out = run_newuser(load_from_args(args), args.federation, args.subjects, opts, args.position)
    else:
        from fedotl.simulations.rundir import run_dir

        with run_dir(args.out, fresh=True, force=args.force) as args.out:  # a bad --out fails before the work; a failed run leaves no empty folder
            out = run_newuser(load_from_args(args), args.federation, args.subjects, opts, args.position)
            write_outputs(args.out, out, opts)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"federation {out['federation']} ({', '.join(out['federated_subjects'])}); {out['protocol']}")
    if out["note"]:
        print(f"note: {out['note']}")
    keys = [k for k in ALL_KEYS if any(k in d["learners"] for s in out["subjects"].values() for d in s["devices"].values())]
    print(f"{'device':<10}" + "".join(f"{k[:14]:>15}" for k in keys))
    for subject, s in out["subjects"].items():
        for pos, d in s["devices"].items():
            row = "".join(f"{d['learners'][k]['mistake_rate_mean']:>15.3f}" if k in d["learners"] else f"{'':>15}" for k in keys)
            print(f"{subject + '@' + pos:<10}{row}")
    print(f"final cumulative mistake rate; curves at {', '.join(map(str, CURVE_AT))} windows are in --json")
    if args.out is not None:
        from fedotl.simulations.report import REPORT_HTML

        print(f"report: {args.out / REPORT_HTML}")
    return 0
