"""``fedotl simulate``: federated learning on a dataset with Flower's Simulation Engine.

One SuperNode per device (per subject, per subject × body position, or a
Dirichlet share), each evaluated on its own later windows.  See
docs/federated.md.  Each flag below is a run-config key: its type, default,
choices and help come from :data:`fedotl.client.config.KEYS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fedotl.client.config import DEFAULTS, key, parse_value
from fedotl.simulations.report import REPORT_HTML
from fedotl.simulations.arguments import (
    add_dataset_args, add_force, add_key_flags, add_resume, add_server_subjects, config_value, dataset_config, given_keys, key_value,
    positive_int, resume_config, server_subjects,
)

# flag -> run-config key.  Value flags take the key's type, default and help.
FLAGS: dict[str, str] = {
    "--strategy": "strategy",
    "--clients-by": "clients-by",
    "--dirichlet-clients": "dirichlet-clients",
    "--dirichlet-alpha": "dirichlet-alpha",
    "--train-fraction": "train-fraction",
    "--rounds": "num-server-rounds",
    "--local-epochs": "local-epochs",
    "--seed": "seed",
    "--min-replies": "min-replies",
    "--model": "model",
    "--lr": "learning-rate",
    "--batch-size": "batch-size",
    "--fedhealth-aggregation": "fedhealth-aggregation",
    "--fedap-momentum": "fedap-momentum",
    "--coral-weight": "coral-weight",
    "--personalize-epochs": "personalize-epochs",
    "--pretrain-epochs": "pretrain-epochs",
    "--window": "window-seconds",
    "--eval-every": "eval-every",
    "--aggregation": "aggregation",
    "--trim-fraction": "trim-fraction",
    "--byzantine-fraction": "byzantine-fraction",
    "--fraction-train": "fraction-train",
    "--attack": "attack",
    "--attackers": "attackers",
    "--attack-scale": "attack-scale",
    "--dp": "dp",
    "--dp-noise": "dp-noise-multiplier",
    "--dp-clip": "dp-clipping-norm",
}
# Switches that set a boolean key to the opposite of its default.
SWITCHES: dict[str, str] = {"--no-augment": "augment", "--secagg": "secagg"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="federated learning with Flower's Simulation Engine (one node per device)",
        description="Run local, central, FedAvg, FedProx, FedBN, FedAP or FedHealth on a dataset, "
        "one Flower SuperNode per device, each evaluated on its own later windows.",
    )
    add_dataset_args(p)
    add_resume(p)
    add_key_flags(p, FLAGS)
    for flag, name in SWITCHES.items():
        p.add_argument(flag, dest=name, action="store_const", const=not key(name).default, default=None, help=f"{key(name).help} ({'off' if key(name).default else 'on'})")
    add_server_subjects(p)
    p.add_argument("--no-share-heads", dest="share_heads", action="store_false", default=True, help="FedHealth: keep every head and feature summary on its device (default: shared, so that the run can serve new users; see docs/newuser.md)")
    p.add_argument("--min-nodes", type=positive_int, default=None, metavar="N", help="Flower's minimum nodes sampled for training and evaluation per round (default 2; the simulation always waits for every device before round 1)")
    p.add_argument("--mu", type=config_value("proximal-mu"), default=None, help=f"proximal weight of the strategy run: proximal-mu for fedprox (default {DEFAULTS['proximal-mu']}), fedhealth-proximal-mu for fedhealth (default {DEFAULTS['fedhealth-proximal-mu']})")
    p.add_argument("--out", default=None, metavar="RUN_DIR", help="run directory (default runs/<strategy>-<time>)")
    add_force(p, "RUN_DIR")
    p.add_argument("--set", type=key_value, action="append", default=[], metavar="KEY=VALUE", help="any other run-config key (see fedotl/client/config.py)")
    p.add_argument("--verbose", action="store_true", help="show Flower's and Ray's logs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_simulate)


def config_from_args(args: argparse.Namespace) -> dict[str, object]:
    from fedotl.simulations.federated import make_config

    if args.resume is not None:
        return resume_config(args.resume)
    if args.dataset is None or args.path is None:
        raise ValueError("simulate needs --dataset D PATH, or --resume RUN_DIR")

    cfg = make_config(progress=True, out_dir=args.out or "")
    cfg["share-heads"] = bool(args.share_heads)  # on in simulation: the run can then serve new users
    cfg.update(dataset_config(args))
    cfg.update(given_keys(args, (*FLAGS.values(), *SWITCHES.values())))
    cfg["server-subjects"] = server_subjects(args)
    cfg["holdout-subjects"] = server_subjects(args, "holdout")
    if args.mu is not None:
        cfg["fedhealth-proximal-mu" if cfg["strategy"] == "fedhealth" else "proximal-mu"] = args.mu
    if args.min_nodes is not None:
        for name in ("min-available-nodes", "min-train-nodes", "min-evaluate-nodes"):
            cfg[name] = args.min_nodes
    for name, text in args.set:
        try:
            cfg[name] = parse_value(name, text)
        except ValueError as e:
            raise ValueError(f"--set {e}") from None
    return cfg


def write_report(summary: dict, cfg: dict) -> None:
    """metrics.json (the ``strategies`` piece), the plots and the report, in the run directory."""
    from fedotl.simulations.report import metrics as M
    from fedotl.simulations.report import write_run_report

    metrics = M.new_metrics("simulate", config=cfg, seed=int(cfg.get("seed", 0)))  # type: ignore[call-overload]
    metrics["dataset"] = {"name": str(cfg.get("dataset")), "devices": summary.get("clients")}
    metrics["strategies"] = {str(summary["strategy"]): M.strategy_piece(summary)}
    if summary.get("note"):
        metrics["notes"].append(str(summary["note"]))
    write_run_report(str(summary["run_dir"]), M.finish(metrics))


def cmd_simulate(args: argparse.Namespace) -> int:
    from fedotl.simulations.federated import Terminated, simulate

    cfg = config_from_args(args)
    try:
        summary = simulate(cfg, verbose=args.verbose, force=args.force)
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
    write_report(summary, cfg)
    if args.json:
        print(json.dumps(summary))
        return 0
    if summary.get("note"):
        print(f"note        {summary['note']}")
    print(f"strategy    {summary['strategy']}  ({summary['rounds']} rounds, {summary['clients']} clients)")
    if summary["mean_accuracy"] is None:
        print("no client reported an evaluation (see failures in the run dir's summary.json)")
        print(f"run dir     {summary['run_dir']}")
        return 1
    for cid, acc in summary["per_client"].items():  # type: ignore[union-attr]
        f1 = summary["per_client_macro_f1"].get(cid, float("nan"))  # type: ignore[union-attr]
        print(f"  {cid:<16} accuracy {acc:.4f}  macro-F1 {f1:.4f}")
    print(f"mean        accuracy {summary['mean_accuracy']:.4f}  macro-F1 {summary['mean_macro_f1']:.4f}")
    print(f"worst       {summary['worst_accuracy']:.4f} ({summary['worst_client']})")
    if summary.get("global_mean_accuracy") is not None:
        print(f"global      mean accuracy before personalisation {summary['global_mean_accuracy']:.4f}")
    print(f"run dir     {summary['run_dir']}")
    print(f"report      {Path(str(summary['run_dir'])) / REPORT_HTML}")
    return 0
