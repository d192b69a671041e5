"""``fedotl simulate``: federated learning on a dataset with Flower's Simulation Engine.

One SuperNode per device (per subject, or per subject × body position),
each evaluated on its own later windows.  See docs/federated.md.
"""

from __future__ import annotations

import argparse
import json

from client.data import CLIENTS_BY, parse_subjects
from simulations.argtypes import fraction, non_negative_float, positive_float, positive_int
from server.names import DP_MODES, FEDHEALTH_AGGREGATIONS, STRATEGIES


def run_config_item(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v.strip()


def coerce_run_config(key: str, text: str, like: object) -> object:
    """Parse a --set value with the type of the key's default."""
    try:
        if isinstance(like, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(like, int):
            return int(text)
        if isinstance(like, float):
            return float(text)
    except ValueError:
        raise ValueError(f"--set {key}: cannot read {text!r} as {type(like).__name__}") from None
    return text


def register(sub: argparse._SubParsersAction) -> None:
    from simulations.cli import add_dataset_args

    p = sub.add_parser(
        "simulate",
        help="federated learning with Flower's Simulation Engine (one node per device)",
        description="Run local, central, FedAvg, FedProx, FedBN, FedAP or FedHealth on a dataset, "
        "one Flower SuperNode per device, each evaluated on its own later windows.",
    )
    add_dataset_args(p)
    p.add_argument("--strategy", choices=STRATEGIES, default="fedhealth", help="(default fedhealth)")
    p.add_argument("--clients-by", choices=CLIENTS_BY, default="subject-position", help="a device is a subject, or one body unit of a subject (default)")
    p.add_argument("--train-fraction", type=fraction, default=0.7, metavar="F", help="earliest share of each device's windows per activity used for training (default 0.7)")
    p.add_argument("--rounds", type=positive_int, default=30, metavar="R", help="federated rounds (default 30)")
    p.add_argument("--local-epochs", type=positive_int, default=2, metavar="E", help="local epochs per round (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--server-subjects", nargs="+", default=[], metavar="SUBJECT", help="subjects whose data the server holds (FedHealth/FedAP cloud pretraining); their devices leave the federation")
    p.add_argument("--min-nodes", type=positive_int, default=None, metavar="N", help="Flower's minimum nodes sampled for training and evaluation per round (default 2; the simulation always waits for every device before round 1)")
    p.add_argument("--min-replies", type=positive_int, default=1, metavar="N", help="usable train replies needed to update the model in a round (default 1)")
    p.add_argument("--out", default=None, metavar="RUN_DIR", help="run directory (default runs/<strategy>-<time>)")
    p.add_argument("--model", choices=("cnn", "mlp"), default="cnn", help="1-D CNN on windows (default) or MLP on window features")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate (default 0.001)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--mu", type=non_negative_float, default=None, help="FedProx proximal weight (default 0.01 for fedprox, 0 for fedhealth)")
    p.add_argument("--fedhealth-aggregation", choices=FEDHEALTH_AGGREGATIONS, default="fedavg", help="aggregation in FedHealth's federated rounds (default fedavg)")
    p.add_argument("--fedap-momentum", type=non_negative_float, default=0.5, help="FedAP self-weight λ (default 0.5)")
    p.add_argument("--coral-weight", type=non_negative_float, default=1.0, help="λ of the CORAL loss in personalisation (default 1)")
    p.add_argument("--personalize-epochs", type=positive_int, default=30)
    p.add_argument("--pretrain-epochs", type=positive_int, default=20, help="cloud pretraining epochs on server-held data")
    p.add_argument("--no-augment", action="store_true", help="no jitter/scaling/shift augmentation")
    p.add_argument("--window", type=positive_float, default=5.0, metavar="SECONDS", help="window length (default 5 s, DSADS's segments)")
    p.add_argument("--eval-every", type=positive_int, default=1, metavar="K", help="evaluate every K rounds (and the last)")
    p.add_argument("--dp", choices=DP_MODES, default="none", help="Flower's central DP with fixed clipping")
    p.add_argument("--dp-noise", type=non_negative_float, default=0.0, help="DP noise multiplier")
    p.add_argument("--dp-clip", type=positive_float, default=10.0, help="DP clipping norm")
    p.add_argument("--secagg", action="store_true", help="Flower's SecAgg+ on every train round: the server sees only the weighted sum (fedavg, fedprox, fedhealth)")
    p.add_argument("--set", type=run_config_item, action="append", default=[], metavar="KEY=VALUE", help="any other run-config key (see pyproject [tool.flwr.app.config])")
    p.add_argument("--verbose", action="store_true", help="show Flower's and Ray's logs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_simulate)


def config_from_args(args: argparse.Namespace) -> dict[str, object]:
    from simulations.cli import reader_options
    from simulations.federated import DEFAULT_CONFIG, make_config

    subjects = [s for item in args.server_subjects for s in parse_subjects(item)]
    mu = args.mu
    cfg = make_config(
        dataset=args.dataset,
        data_path=args.path,
        clients_by=args.clients_by,
        train_fraction=args.train_fraction,
        window_seconds=args.window,
        server_subjects=",".join(subjects),
        strategy=args.strategy,
        num_server_rounds=args.rounds,
        local_epochs=args.local_epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        proximal_mu=0.01 if mu is None else mu,
        fedhealth_proximal_mu=0.0 if mu is None else mu,
        fedhealth_aggregation=args.fedhealth_aggregation,
        fedap_momentum=args.fedap_momentum,
        model=args.model,
        augment=not args.no_augment,
        seed=args.seed,
        pretrain_epochs=args.pretrain_epochs,
        personalize_epochs=args.personalize_epochs,
        coral_weight=args.coral_weight,
        min_replies=args.min_replies,
        eval_every=args.eval_every,
        out_dir=args.out or "",
        progress=True,
        dp=args.dp,
        dp_noise_multiplier=args.dp_noise,
        dp_clipping_norm=args.dp_clip,
        secagg=args.secagg,
    )
    for key, value in reader_options(args).items():
        cfg[key.replace("_", "-")] = value  # rate_hz -> run-config rate-hz
    if args.min_nodes is not None:
        for key in ("min-available-nodes", "min-train-nodes", "min-evaluate-nodes"):
            cfg[key] = args.min_nodes
    for key, text in args.set:
        if key not in DEFAULT_CONFIG:
            raise ValueError(f"--set {key}: unknown run-config key")
        cfg[key] = coerce_run_config(key, text, DEFAULT_CONFIG[key])
    return cfg


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulations.federated import simulate

    cfg = config_from_args(args)
    summary = simulate(cfg, verbose=args.verbose)
    if args.json:
        print(json.dumps(summary))
        return 0
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
    return 0
