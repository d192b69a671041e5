"""The ``fedotl`` command line.

Every subcommand prints a readable table by default and exactly one JSON
object on stdout with ``--json``.  A user's mistake (a bad path, a malformed
file, an invalid option) ends with ``error: ...`` on stderr and exit status
2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from simulations import cmd_simulate, cmd_stream
from simulations.argtypes import positive_float, positive_int
from simulations.dataset import DataFormatError
from simulations.readers import DATASETS


def add_dataset_args(p: argparse.ArgumentParser) -> None:
    """The dataset arguments shared by every subcommand that reads data."""
    p.add_argument("--dataset", required=True, choices=DATASETS, help="layout of PATH")
    p.add_argument("path", metavar="PATH", help="dataset zip, top folder or data folder; for generic, a CSV file or folder")
    p.add_argument("--rate", type=positive_float, default=None, help="generic CSV: sampling rate in Hz when there are no timestamps")
    p.add_argument("--label-track", choices=("locomotion", "gesture"), default=None, help="OPPORTUNITY: which label track (default locomotion)")


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


def load_from_args(args: argparse.Namespace):
    """Read the dataset the shared arguments name."""
    from simulations.readers import load_dataset

    return load_dataset(args.dataset, args.path, **reader_options(args))


# ------------------------------------------------------------ data info
def cmd_data_info(args: argparse.Namespace) -> int:
    ds = load_from_args(args)
    info = ds.summary()
    if args.json:
        print(json.dumps(info))
        return 0
    counts = ds.activity_counts()
    print(f"dataset     {info['dataset']}  ({info['source']})")
    print(f"subjects    {len(info['subjects'])}: {', '.join(info['subjects'])}")
    print(f"positions   {', '.join(info['positions']) or '-'}")
    print(f"channels    {info['channels']} at {info['rate_hz']:g} Hz; units {', '.join(info['units']) or '-'}")
    print(f"samples     {info['n_samples']:,} rows in {info['n_recordings']} recordings, {info['duration_s'] / 3600:.2f} h")
    if "n_segments" in info:
        print(f"segments    {info['n_segments']:,}")
    print(f"activities  {len(counts)}")
    for code, n in counts.items():
        print(f"  {code:>6}  {ds.activities.get(code, str(code)):<42} {n / ds.rate_hz / 60:8.1f} min")
    return 0


# ------------------------------------------------------------ data synth
def cmd_data_synth(args: argparse.Namespace) -> int:
    from simulations.readers import writer

    files = writer(args.dataset)(Path(args.out), n_subjects=args.subjects, seed=args.seed)
    if args.json:
        print(json.dumps({"dataset": args.dataset, "out": str(args.out), "files": len(files)}))
    else:
        print(f"wrote {len(files)} {args.dataset} file(s) under {args.out}")
        print(f"read back with: fedotl data info --dataset {args.dataset} {args.out}")
    return 0


# ------------------------------------------------------------ demo
def cmd_demo(args: argparse.Namespace) -> int:
    from simulations.demo import run_demo

    result = run_demo(seed=args.seed, echo=None if args.json else print)
    if args.json:
        print(json.dumps(result))
    return 0


# ------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="fedotl",
        description="Federated and online transfer learning on wearable sensor streams.",
    )
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser("demo", help="the main job on embedded synthetic data (no download)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(func=cmd_demo)

    data = sub.add_parser("data", help="inspect and synthesise datasets")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    info = dsub.add_parser("info", help="validate and summarise a dataset")
    add_dataset_args(info)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_data_info)
    synth = dsub.add_parser("synth", help="write synthetic data in a dataset's official layout")
    synth.add_argument("--dataset", required=True, choices=DATASETS)
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--subjects", type=positive_int, default=4, help="number of subjects (default 4)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--json", action="store_true", help="print one JSON object")
    synth.set_defaults(func=cmd_data_synth)

    for extra in _EXTRA_COMMANDS:
        extra(sub)
    return ap


# Subcommands with their own modules register here, so this file stays small.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [cmd_stream.register, cmd_simulate.register]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DataFormatError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a traceback.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
