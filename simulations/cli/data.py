"""``fedotl data info|synth|devices|csv``: summarise a dataset, write synthetic files, device stores,
or one subject's recording as the timestamped CSV a device reads."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fedotl.simulations.arguments import add_dataset_args, add_force, add_key_flags, add_server_subjects, dataset_config, given_keys, load_from_args, positive_float, positive_int, server_subjects

# flag -> run-config key, as in `fedotl simulate`
DEVICE_FLAGS = {
    "--clients-by": "clients-by",
    "--window": "window-seconds",
    "--dirichlet-clients": "dirichlet-clients",
    "--dirichlet-alpha": "dirichlet-alpha",
    "--seed": "seed",
}


def register(sub: argparse._SubParsersAction) -> None:
    from fedotl.simulations.readers import DATASETS

    data = sub.add_parser("data", help="inspect and synthesise datasets, write device stores")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    info = dsub.add_parser("info", help="validate and summarise a dataset")
    add_dataset_args(info)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)

    synth = dsub.add_parser("synth", help="write synthetic data in a dataset's official layout")
    synth.add_argument("--dataset", required=True, choices=DATASETS)
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--subjects", type=positive_int, default=4, help="number of subjects (default 4)")
    synth.add_argument("--seed", type=int, default=0)
    add_force(synth, "OUT")
    synth.add_argument("--json", action="store_true", help="print one JSON object")
    synth.set_defaults(func=cmd_synth)

    dev = dsub.add_parser(
        "devices", help="cut a dataset into devices and write each device's store (for flwr run or SuperNodes)",
        description="Write one store per device under OUT/devices/<partition-id> (and the server-held subjects under OUT/cloud). "
        "Give OUT as run config data-dir, or each store to its SuperNode as node config data-dir.",
    )
    add_dataset_args(dev)
    dev.add_argument("--out", required=True, help="a new or empty folder")
    add_key_flags(dev, DEVICE_FLAGS)
    add_server_subjects(dev)
    dev.add_argument("--json", action="store_true", help="print one JSON object")
    dev.set_defaults(func=cmd_devices)

    csv = dsub.add_parser(
        "csv", help="write one subject's recording as a device's sensor CSV (timestamp, channels, label)",
        description="The stream `fedotl device --input` reads: one row per sample, in recorded order.",
    )
    add_dataset_args(csv)
    csv.add_argument("--subject", required=True)
    csv.add_argument("--position", default=None, help="one body position's channels (e.g. RA)")
    csv.add_argument("--seconds", type=positive_float, default=None, help="only the first SECONDS")
    csv.add_argument("--out", required=True, help="the CSV file to write")
    csv.set_defaults(func=cmd_csv)


def cmd_info(args: argparse.Namespace) -> int:
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


def cmd_synth(args: argparse.Namespace) -> int:
    from fedotl.simulations.readers import writer
    from fedotl.simulations.rundir import prepare_run_dir

    out = prepare_run_dir(args.out, fresh=True, force=args.force)  # never mixed into, or over, other files
    files = writer(args.dataset)(out, n_subjects=args.subjects, seed=args.seed)
    if args.json:
        print(json.dumps({"dataset": args.dataset, "out": str(args.out), "files": len(files)}))
    else:
        print(f"wrote {len(files)} {args.dataset} file(s) under {args.out}")
        print(f"read back with: fedotl data info --dataset {args.dataset} {args.out}")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from fedotl.client.config import RunConfig
    from fedotl.simulations.devices import prepare_devices

    cfg = {**dataset_config(args), **given_keys(args, DEVICE_FLAGS.values())}
    cfg["server-subjects"] = server_subjects(args)
    cfg["holdout-subjects"] = server_subjects(args, "holdout")
    out = Path(args.out).resolve()
    devices = prepare_devices(RunConfig(cfg), out)
    if args.json:
        print(json.dumps({"data_dir": str(devices.root), "devices": devices.ids, "cloud": devices.cloud_ids, "note": devices.note}))
        return 0
    if devices.note:
        print(f"note: {devices.note}")
    print(f"wrote {len(devices.ids)} device store(s) under {devices.root / 'devices'}" + (f" and {len(devices.cloud_ids)} under {devices.root / 'cloud'}" if devices.cloud_ids else ""))
    print(f"run with: flwr run . --run-config 'data-dir=\"{devices.root}\"' --federation-config 'num-supernodes={len(devices.ids)}'")
    return 0


def cmd_csv(args: argparse.Namespace) -> int:
    from fedotl.client.inputs import LABEL, TIMESTAMP
    from fedotl.simulations.replay import head, subject_stream

    src = head(subject_stream(load_from_args(args), args.subject, args.position), args.seconds)
    out = Path(args.out)
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:  # renamed when complete: never half a file
        f.write(",".join([TIMESTAMP, *src.channels, LABEL]) + "\n")
        for t, x, y in zip(src.t.tolist(), src.X.tolist(), src.labels.tolist()):
            f.write(f"{t:.4f}," + ",".join(f"{v:.6g}" for v in x) + f",{'' if y is None else y}\n")
    tmp.replace(out)
    print(f"wrote {len(src)} samples of {src.name} ({len(src.channels)} channels at {src.rate_hz:g} Hz) to {out}")
    return 0

