"""``fedotl replay``: N replayed devices at once in one process (subjects × positions, cycled)."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace


def register(sub: argparse._SubParsersAction) -> None:
    from fedotl.simulations.arguments import add_dataset_args, add_force, positive_float, positive_int
    from fedotl.simulations.cli.device import add_fault_args, add_label_args, add_window_args, parse_speed

    p = sub.add_parser(
        "replay",
        help="replay N devices at once: per-device and overall prequential accuracy, persistence, latency",
        description=(
            "Replay a dataset's recordings as N live devices in one process (subjects × positions, cycled "
            "when N exceeds them), each learning online (PA-I from scratch) as its labels come. Recorded "
            "order keeps activity bouts, so the persistence baseline (the previous labelled window's class) "
            "is reported beside every accuracy."
        ),
    )
    add_dataset_args(p)
    p.add_argument("--devices", type=positive_int, required=True, help="number of devices")
    p.add_argument("--positions", nargs="+", default=None, help="body positions to use (default: all)")
    p.add_argument("--speed", type=parse_speed, default=math.inf, help="1 is the real rate, N is N× faster, max (default) is no waiting")
    p.add_argument("--duration", type=positive_float, default=None, help="replay only the first SECONDS of each recording")
    p.add_argument("--per-device-learners", action="store_true",
                   help="one MulticlassPA per device in a Python loop instead of the batched engine (same predictions)")
    add_window_args(p)
    add_label_args(p)
    add_fault_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, metavar="RUN_DIR",
                   help="run directory: replay.json (the whole report, every device), metrics.json, plots and the report")
    add_force(p, "RUN_DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_replay)


def run_replay(args: argparse.Namespace) -> dict:
    from fedotl.client.stream_windows import WindowSpec
    from fedotl.simulations.arguments import load_from_args
    from fedotl.simulations.device_setup import label_policy
    from fedotl.simulations.fleet import run_fleet
    from fedotl.simulations.progress import progress_bar
    from fedotl.simulations.cli.device import faults_from_args
    from fedotl.simulations.replay import apply_faults, fleet_sources

    policy = label_policy(args.labels, args.delay, args.budget, args.query, args.label_timeout, args.seed)
    ds = load_from_args(args)
    sources = fleet_sources(ds, args.devices, args.positions, seconds=args.duration)
    faults = faults_from_args(args)
    fault_counts = {}
    if faults.active:
        faulted = []
        for i, s in enumerate(sources):  # each device its own seed
            s, counts = apply_faults(s, replace(faults, seed=faults.seed + i))
            faulted.append(s)
            for k, v in counts.items():
                fault_counts[k] = fault_counts.get(k, 0) + v
        sources = faulted
        fault_counts.pop("jitter_std_s", None)
    spec = WindowSpec(ds.rate_hz, args.window, args.stride, args.max_missing, args.max_gap)
    n_ticks = int(max(len(s) for s in sources))
    bar = progress_bar(n_ticks, desc="replay", unit="tick")
    try:
        report = run_fleet(sources, spec, policy, batched=not args.per_device_learners, speed=args.speed,
                           on_tick=lambda i: bar.update(1))
    finally:
        bar.close()
    report = {"dataset": ds.name, "rate_hz": ds.rate_hz, "window_s": args.window, "stride_s": args.stride,
              "labels": args.labels, **report}
    if fault_counts:
        report["faults"] = fault_counts
    return report


def cmd_replay(args: argparse.Namespace) -> int:
    if args.out is None:
        report = run_replay(args)
    else:
        from fedotl.simulations.rundir import run_dir

        with run_dir(args.out, fresh=True, force=args.force) as args.out:  # a bad --out fails before the work; a failed run leaves no empty folder
            report = run_replay(args)
            write_outputs(args, report)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "per_device"} | {"per_device": report["per_device"]}))
        return 0
    r = report
    print(f"{r['devices']} devices of {r['dataset']}, {r['stream_s']:.0f} s of stream each in {r['wall_s']:.1f} s "
          f"(real-time factor {r['realtime_factor']:.1f}, {'batched engine' if r['batched'] else 'one learner per device'})")
    print(f"{'device':<14}{'windows':>8}{'skipped':>8}{'labels':>8}{'accuracy':>10}{'persist.':>10}{'p99 ms':>9}")
    rows = r["per_device"]
    shown = rows if len(rows) <= 20 else rows[:10] + [None] + rows[-5:]
    for row in shown:
        if row is None:
            print(f"  ... {len(rows) - 15} more (all in --out / --json)")
            continue
        print(f"{row['device']:<14}{row['windows_predicted']:>8}{row['windows_skipped']:>8}{row['labels_used']:>8}"
              f"{_fmt(row['accuracy']):>10}{_fmt(row['persistence_accuracy']):>10}{_fmt(row['latency_p99_ms'], 2):>9}")
    lat = r["latency_ms"]
    print(f"{'overall':<14}{r['windows_predicted']:>8}{r['windows_skipped']:>8}{r['labels_used']:>8}"
          f"{_fmt(r['accuracy']):>10}{_fmt(r['persistence_accuracy']):>10}{_fmt(lat['p99'], 2):>9}")
    print(f"latency p50 {lat['p50']} ms, p99 {lat['p99']} ms (last sample of a window to its prediction)")
    if "faults" in r:
        print("faults: " + ", ".join(f"{k} {v}" for k, v in r["faults"].items()))
    if args.out is not None:
        from fedotl.simulations.report import REPORT_HTML

        print(f"report: {args.out / REPORT_HTML}")
    return 0


def write_outputs(args: argparse.Namespace, report: dict) -> None:
    """replay.json, and metrics.json (``devices`` and ``online``) with its plots and report."""
    from fedotl.simulations.cli.device import write_json
    from fedotl.simulations.report import metrics as M
    from fedotl.simulations.report import write_run_report

    write_json(str(args.out / "replay.json"), report)
    plain = (int, str, bool, type(None), list)
    config = {k: v if isinstance(v, plain) or (isinstance(v, float) and math.isfinite(v)) else str(v)  # --speed max is inf: not JSON
              for k, v in vars(args).items() if k != "func"}
    metrics = M.new_metrics("replay", config=config, seed=args.seed)
    metrics["dataset"] = {"name": report["dataset"], "devices": report["devices"], "rate_hz": report["rate_hz"]}
    metrics["online"] = report["online"]
    metrics["online_protocol"] = ("Replayed devices in recorded order, PA-I from scratch, test-then-train: final cumulative "
                                  "mistake rate, mean over devices, beside persistence.")
    metrics["devices"] = {"devices": report["per_device"], "latency_ms": report["latency_ms"], "latency_hist": report["latency_hist"],
                          "realtime_factor": report["realtime_factor"], "wall_s": report["wall_s"]}
    write_run_report(args.out, M.finish(metrics))


def _fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"
