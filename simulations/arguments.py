"""Command-line arguments every fedotl command line shares (``fedotl`` and the deployment launcher).

Value types make a bad value a one-line usage error, never a traceback; the
dataset arguments name a dataset the same way everywhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from fedotl.client.config import parse_value


def bounded(cast: Callable[[str], float], ok: Callable[[float], bool], what: str) -> Callable[[str], float]:
    """A type that parses with ``cast`` and accepts values where ``ok`` holds.

    >>> fraction = bounded(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")
    >>> fraction("0.25")
    0.25
    >>> fraction("2")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a fraction in (0, 1), got '2'
    """
    kind = "an integer" if cast is int else "a number"

    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    return parse


positive_float = bounded(float, lambda v: v > 0, "a positive number")
positive_int = bounded(int, lambda v: v >= 1, "a positive integer")
non_negative_float = bounded(float, lambda v: v >= 0, "a non-negative number")
non_negative_int = bounded(int, lambda v: v >= 0, "a non-negative integer")
fraction = bounded(float, lambda v: 0.0 < v < 1.0, "a fraction in (0, 1)")


def config_value(name: str) -> Callable[[str], object]:
    """An argparse type that reads run-config key ``name`` as the schema declares it."""

    def parse(text: str) -> object:
        try:
            return parse_value(name, text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = name  # argparse names the type in its error
    return parse


def add_force(p: argparse.ArgumentParser, folder: str = "the --out folder") -> None:
    """``--force``: a run directory that is not empty is refused without it (an earlier run is never overwritten)."""
    p.add_argument("--force", action="store_true", help=f"replace what {folder} holds (without it, a folder that is not empty is refused)")


def add_key_flags(p: argparse.ArgumentParser, flags: dict[str, str]) -> None:
    """One flag per run-config key (``{"--rounds": "num-server-rounds"}``): type, choices and help
    from the schema; the value lands in ``args.<key>``, ``None`` when not given."""
    from fedotl.client.config import key

    for flag, name in flags.items():
        k = key(name)
        p.add_argument(flag, dest=name, type=config_value(name), choices=k.choices or None, default=None,
                       metavar=None if k.choices else name.split("-")[-1].upper(), help=f"{k.help} (default {k.default})")


def given_keys(args: argparse.Namespace, names) -> dict[str, object]:
    """The run-config keys among ``names`` that the command line set."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def add_server_subjects(p: argparse.ArgumentParser) -> None:
    """``--server-subjects`` and ``--holdout-subjects`` (run-config keys of the same names)."""
    from fedotl.client.config import key

    p.add_argument("--server-subjects", nargs="+", default=[], metavar="SUBJECT", help=key("server-subjects").help)
    p.add_argument("--holdout-subjects", nargs="+", default=[], metavar="SUBJECT", help=key("holdout-subjects").help)


def server_subjects(args: argparse.Namespace, which: str = "server") -> str:
    """``--server-subjects p1 p2`` (or ``p1,p2``; ``which="holdout"``: ``--holdout-subjects``) as the run-config value ``"p1,p2"``."""
    from fedotl.client.config import parse_subjects

    return ",".join(s for item in getattr(args, f"{which}_subjects", []) for s in parse_subjects(item))


def key_value(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (``--set``)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v.strip()


# ------------------------------------------------------------ datasets
def add_dataset_args(p: argparse.ArgumentParser) -> None:
    """The dataset arguments shared by every command that reads data."""
    from fedotl.simulations.readers import DATASETS

    p.add_argument("--dataset", required=True, choices=DATASETS, help="layout of PATH")
    p.add_argument("path", metavar="PATH", help="dataset zip, top folder or data folder; for generic, a CSV file or folder")
    p.add_argument("--rate", type=positive_float, default=None, help="generic CSV: sampling rate in Hz when there are no timestamps")
    p.add_argument("--label-track", choices=("locomotion", "gesture"), default=None, help="OPPORTUNITY: which label track (default locomotion)")


def add_resume(p: argparse.ArgumentParser) -> None:
    """``--resume RUN_DIR``, with which the dataset arguments become optional (the run's own config names them)."""
    for action in p._actions:
        if action.dest == "dataset":
            action.required = False
        elif action.dest == "path":
            action.nargs = "?"
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run from its last checkpoint, with its own run config (fedavg, fedprox, fedhealth)")


def resume_config(run: str | Path) -> dict[str, object]:
    """The run config of an interrupted run (its ``run_config.json``), set to resume from its checkpoint.

    A ValueError, naming the folder, when it holds no run config or no checkpoint.
    """
    import json

    from fedotl.server.checkpoint import CHECKPOINT

    path = Path(run) / "run_config.json"
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"--resume {run}: no run_config.json there, so not a run directory of a federated run") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not (Path(run) / CHECKPOINT).is_file():
        raise ValueError(f"--resume {run}: no {CHECKPOINT} there (a run writes one after its first round)")
    cfg["resume"] = True
    cfg["out-dir"] = str(Path(run).resolve())
    return cfg


def reader_options(args: argparse.Namespace) -> dict[str, object]:
    """Reader options from ``--rate`` and ``--label-track``, checked against ``--dataset``."""
    options: dict[str, object] = {}
    if args.rate is not None:
        if args.dataset != "generic":
            raise ValueError(f"--rate applies to the generic format only, not {args.dataset}")
        options["rate_hz"] = args.rate
    if args.label_track is not None:
        if args.dataset != "opportunity":
            raise ValueError(f"--label-track applies to opportunity only, not {args.dataset}")
        options["label_track"] = args.label_track
    return options


def dataset_config(args: argparse.Namespace) -> dict[str, object]:
    """The run-config harness keys that the dataset arguments set."""
    cfg: dict[str, object] = {"dataset": args.dataset, "data-path": str(Path(args.path).resolve())}
    for key, value in reader_options(args).items():
        cfg[key.replace("_", "-")] = value  # rate_hz -> rate-hz
    return cfg


def load_from_args(args: argparse.Namespace):
    """Read the dataset the shared arguments name."""
    from fedotl.simulations.readers import load_dataset

    return load_dataset(args.dataset, args.path, **reader_options(args))
