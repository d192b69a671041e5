"""``fedotl device``: one streaming device on a CSV file, standard input, MQTT or a replayed subject.

It prints one JSON line per closed window (its prediction) and one when that window's label
becomes known, and writes its metrics to ``--out`` at the end of the stream, or on Ctrl-C or
SIGTERM (then exit 130).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np


def add_window_args(p: argparse.ArgumentParser) -> None:
    from fedotl.simulations.arguments import bounded, non_negative_float, positive_float

    g = p.add_argument_group("windows")
    g.add_argument("--window", type=positive_float, default=5.0, help="window length in seconds (default 5)")
    g.add_argument("--stride", type=positive_float, default=1.0, help="stride in seconds (default 1)")
    g.add_argument("--max-missing", type=bounded(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)"), default=0.2,
                   help="skip a window when a channel misses more than this fraction of its samples (default 0.2)")
    g.add_argument("--max-gap", type=non_negative_float, default=0.5,
                   help="skip a window with a run of missing samples longer than this, in seconds (default 0.5)")


def add_federation_args(p: argparse.ArgumentParser) -> None:
    from fedotl.client.newuser import DEFAULT_CALIBRATION, DEFAULT_TARGET_INPUTS, DEFAULT_TOP_K, ONLINE_KEYS, TARGET_INPUTS
    from fedotl.simulations.arguments import bounded

    g = p.add_argument_group("new user of a federation")
    g.add_argument("--federation", metavar="RUN_DIR", default=None,
                   help="start from this federation (--out of fedotl simulate): its models become the sources")
    g.add_argument("--transfer", choices=ONLINE_KEYS, default="otl_global", help="--federation: the learner (default %(default)s)")
    g.add_argument("--calibration", type=bounded(int, lambda v: v >= 2, "an integer >= 2"), default=DEFAULT_CALIBRATION,
                   help="--federation: windows predicted by the global model before the sources are chosen (default %(default)s)")
    g.add_argument("--top-k", type=bounded(int, lambda v: v >= 0, "an integer >= 0"), default=DEFAULT_TOP_K,
                   help="--federation: sources kept by MMD, 0 for all (default %(default)s)")
    g.add_argument("--target-inputs", choices=TARGET_INPUTS, default=DEFAULT_TARGET_INPUTS,
                   help="--federation: what the ensemble's own learner reads (default %(default)s)")


def add_label_args(p: argparse.ArgumentParser) -> None:
    from fedotl.client.labels import QUERIES
    from fedotl.simulations.arguments import bounded, non_negative_float, positive_float
    from fedotl.simulations.device_setup import LABEL_MODES

    g = p.add_argument_group("labels")
    g.add_argument("--labels", choices=LABEL_MODES, default="all",
                   help="all: each window's label as soon as it is known; delayed: --delay seconds later; "
                        "budget: only a --budget fraction of windows (default all)")
    g.add_argument("--delay", type=non_negative_float, default=None, help="label delay in seconds (--labels delayed)")
    g.add_argument("--budget", type=bounded(float, lambda v: 0 < v <= 1, "a fraction in (0, 1]"), default=None,
                   help="fraction of windows labelled (--labels budget)")
    g.add_argument("--query", choices=QUERIES, default="random",
                   help="which windows the budget labels: random, or where the learner is least sure (default random)")
    g.add_argument("--label-timeout", type=positive_float, default=600.0,
                   help="give up on a window's label after this many seconds of stream (default 600)")


def add_fault_args(p: argparse.ArgumentParser) -> None:
    from fedotl.simulations.arguments import bounded, non_negative_float, positive_float

    g = p.add_argument_group("replay faults (seeded by --seed)")
    g.add_argument("--jitter", type=non_negative_float, default=0.0, help="timestamp jitter, std in seconds")
    g.add_argument("--drop", type=bounded(float, lambda v: 0 <= v <= 1, "a probability in [0, 1]"), default=0.0,
                   help="probability that a sample is lost")
    g.add_argument("--nan-bursts", type=non_negative_float, default=0.0, help="NaN bursts per minute")
    g.add_argument("--nan-burst-s", type=positive_float, default=0.5, help="length of a NaN burst in seconds (default 0.5)")


def faults_from_args(args: argparse.Namespace):
    """The replay faults of :func:`add_fault_args`' options, seeded by ``--seed``."""
    from fedotl.simulations.replay import Faults

    return Faults(args.jitter, args.drop, args.nan_bursts, args.nan_burst_s, seed=max(args.seed, 0))


def parse_speed(text: str) -> float:
    """``--speed``: a positive factor, or ``max`` for as fast as possible."""
    if text.strip().lower() in ("max", "inf"):
        return math.inf
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'max', got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number or 'max', got {text!r}")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    from fedotl.simulations.arguments import positive_float, positive_int
    from fedotl.simulations.device_setup import DEFAULT_HORIZON, DEVICE_LEARNERS
    from fedotl.simulations.readers import DATASETS

    p = sub.add_parser(
        "device",
        help="one streaming device: predictions as windows close, learning as labels come",
        description=(
            "Run one device on a sensor stream: a CSV file or standard input (header: timestamp, channel "
            "columns, optional label; rows are read as they arrive), an MQTT topic, or a replayed subject of "
            "a dataset. Prints one JSON line per closed window and one when its label is known."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", metavar="PATH|-|mqtt://HOST:PORT/TOPIC", help="CSV file, - for standard input, or an MQTT topic")
    src.add_argument("--replay", nargs=2, metavar=("DATASET", "PATH"), help="replay a subject of a dataset as a live stream")
    p.add_argument("--rate-hz", type=positive_float, default=None, help="sampling rate of --input (required there)")
    p.add_argument("--follow", action="store_true", help="--input FILE is still being written: wait for new rows")
    p.add_argument("--idle-timeout", type=positive_float, default=None,
                   help="end the stream after this many seconds without a sample (--follow, MQTT)")
    p.add_argument("--channels", default=None, help="MQTT: the comma-separated channel names (required there)")
    p.add_argument("--subject", default=None, help="--replay: the subject to replay")
    p.add_argument("--position", default=None, help="--replay: one body position's channels (e.g. RA)")
    p.add_argument("--speed", type=parse_speed, default=1.0, help="--replay: 1 is the real rate, N is N times faster, max is no waiting (default 1)")
    p.add_argument("--duration", type=positive_float, default=None, help="--replay: replay only this many seconds of the recording")
    p.add_argument("--rate", type=positive_float, default=None, help="--replay generic: sampling rate of the CSV recordings")
    add_window_args(p)
    g = p.add_argument_group("learner")
    g.add_argument("--learner", choices=DEVICE_LEARNERS, default="pa", help="online learner (default pa: PA-I from scratch)")
    g.add_argument("--source-dataset", choices=DATASETS, default=None, help="the sources' dataset (default: the replayed one)")
    g.add_argument("--source-path", default=None, help="PATH of --source-dataset")
    g.add_argument("--source-subjects", nargs="+", default=None, help="source subjects (default: every other subject)")
    g.add_argument("--source-position", default=None, help="the sources' body position (default: --position)")
    g.add_argument("--standardize", choices=("source", "online"), default="source",
                   help="with sources: the sources' feature statistics (source) or the device's own, online")
    g.add_argument("--prior-weight", type=positive_float, default=20.0, help="--standardize online: prior pseudo-windows (default 20)")
    g.add_argument("--horizon", type=positive_int, default=DEFAULT_HORIZON, help="windows the Hedge learning rates are tuned for")
    add_federation_args(p)
    add_label_args(p)
    add_fault_args(p)
    p.add_argument("--seed", type=int, default=0)
    o = p.add_argument_group("output")
    o.add_argument("--out", default=None, help="write the device's metrics here as JSON (at the end, or on Ctrl-C)")
    o.add_argument("--store", default=None, help="append the labelled windows to the device store in this folder")
    o.add_argument("--classes", default=None,
                   help="--store from scratch: the comma-separated label vocabulary (store codes 0, 1, ...)")
    o.add_argument("--quiet", action="store_true", help="no JSON line per window")
    p.set_defaults(func=cmd_device)


# ---------------------------------------------------------------------- the stream
def _replay(args: argparse.Namespace):
    """(setup inputs, a block iterator, a note) for --replay."""
    from fedotl.simulations.readers import load_dataset
    from fedotl.simulations.replay import FAST_BLOCK_S, Replay, apply_faults, head, subject_stream

    name, path = args.replay
    options = {"rate": args.rate} if args.rate is not None else {}
    ds = load_dataset(name, path, **options)
    if args.subject is None:
        raise ValueError(f"--replay needs --subject (one of {', '.join(ds.subjects)})")
    src = head(subject_stream(ds, args.subject, args.position), args.duration)
    src, counts = apply_faults(src, faults_from_args(args))
    # as fast as possible: blocks of a few seconds (a block gives what its samples one by one give)
    block_s = FAST_BLOCK_S if math.isinf(args.speed) else None
    return ds, src, Replay(src, speed=args.speed, block_s=block_s), counts


def _csv_or_mqtt(args: argparse.Namespace):
    from fedotl.client.inputs import CsvInput, follow

    if args.rate_hz is None:
        raise ValueError("--input needs --rate-hz (the sensor's sampling rate)")
    if args.input.startswith("mqtt://"):
        from fedotl.client.mqtt_input import MqttInput

        channels = [c.strip() for c in args.channels.split(",")] if args.channels else None
        stream = MqttInput(args.input, channels=channels, idle_timeout=args.idle_timeout)
        print(f"subscribed to {args.input}", file=sys.stderr, flush=True)  # a gateway may start publishing now
        return stream
    if args.input == "-":
        return CsvInput(sys.stdin, "<stdin>")
    path = Path(args.input)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if args.follow:
        return CsvInput(follow(path, idle_timeout=args.idle_timeout), str(path))
    return CsvInput(path.open(encoding="utf-8", newline=""), str(path))


def _setup(args: argparse.Namespace, channels: list[str], replay_ds=None):
    """The DeviceSetup for these arguments, with the column order of the input."""
    from fedotl.simulations.device_setup import match_channels, scratch_setup, sources_setup
    from fedotl.simulations.readers import load_dataset

    if (args.source_dataset is None) != (args.source_path is None):
        raise ValueError("give both --source-dataset and --source-path, or neither")
    if args.federation is not None:
        if args.learner != "pa" or args.source_dataset is not None or args.source_subjects is not None:
            raise ValueError("--federation brings its own sources: drop --learner, --source-dataset and --source-subjects")
        from fedotl.client.model_card import load_federation
        from fedotl.simulations.device_setup import federation_setup

        setup = federation_setup(load_federation(args.federation), args.transfer, args.window, calibration=args.calibration, top_k=args.top_k,
                                 target_inputs=args.target_inputs, horizon=None, seed=args.seed)
        return setup, match_channels(channels, setup.channels, args.input or "the replay")
    if args.learner == "pa" and args.source_dataset is None and args.source_subjects is None:
        setup = scratch_setup(channels)
        if replay_ds is not None:  # the replayed dataset's activities are the store's classes
            setup.store_codes = {name: code for code, name in replay_ds.activities.items()}
        return setup, list(range(len(channels)))
    if args.source_dataset is not None:
        sds = load_dataset(args.source_dataset, args.source_path)
    elif replay_ds is not None:
        sds = replay_ds
    else:
        raise ValueError(f"--learner {args.learner} on --input needs --source-dataset and --source-path")
    position = args.source_position if args.source_position is not None else (args.position if replay_ds is not None else None)
    view = sds if position is None else sds.select_position(position)
    subjects = args.source_subjects
    if subjects is None:
        same_view = sds is replay_ds and position == args.position
        subjects = [s for s in view.subjects if not (same_view and s == args.subject)]
    elif sds is replay_ds and position == args.position and args.subject in subjects:
        raise ValueError(f"subject {args.subject} cannot be its own source in the same view")
    # the sources' windows do not overlap, as in `fedotl stream`: the device's stride is its own
    setup = sources_setup(args.learner, view, subjects, args.window, None, args.standardize,
                          args.prior_weight, args.horizon, args.seed)
    cols = match_channels(channels, setup.channels, args.input or "the replay")
    return setup, cols


def _open_store(args: argparse.Namespace, setup, rate_hz: float, window_rows: int):
    from fedotl.client.store import DeviceStore

    if args.classes is not None:
        if setup.store_codes:
            raise ValueError("--classes is for a device from scratch; with sources the vocabulary is theirs")
        names = [c.strip() for c in args.classes.split(",") if c.strip()]
        if len(set(names)) != len(names) or len(names) < 2:
            raise ValueError(f"--classes needs two or more distinct labels, got {args.classes!r}")
        setup.store_codes = {c: i for i, c in enumerate(names)}
    if args.store is None:
        return None, None
    root = Path(args.store)
    if (root / "store.json").exists():
        store = DeviceStore(root)
        meta = store.meta()
        if meta["window_rows"] != window_rows or len(meta["channels"]) != len(setup.channels):
            raise ValueError(f"{root}: the store holds windows of {meta['window_rows']} × {len(meta['channels'])}, "
                             f"this device makes {window_rows} × {len(setup.channels)}")
        kept = dict(zip(meta.get("labels", []), meta["classes"]))
        if setup.store_codes and kept and setup.store_codes != kept:
            raise ValueError(f"{root}: the store's labels are {', '.join(kept)}, this device's {', '.join(setup.store_codes)}")
        return store, setup.store_codes or kept or None
    if not setup.store_codes:
        raise ValueError("--store needs a label vocabulary: --classes A,B,..., sources, or --replay")
    codes = sorted(setup.store_codes.items(), key=lambda kv: kv[1])
    store = DeviceStore.create(root, device=args.subject or str(args.input), channels=[{"name": c} for c in setup.channels],
                               rate_hz=rate_hz, window_rows=window_rows, classes=[c for _, c in codes],
                               labels=[str(n) for n, _ in codes])
    return store, setup.store_codes


def write_json(path: str, obj: dict) -> None:
    """Written to a temporary name, then renamed: never half a file."""
    from fedotl.client.storage import atomic_write_text

    atomic_write_text(Path(path), json.dumps(obj, indent=1))


def cmd_device(args: argparse.Namespace) -> int:
    from fedotl.client.device import Device
    from fedotl.client.stream_windows import WindowSpec
    from fedotl.simulations.device_setup import label_policy

    policy = label_policy(args.labels, args.delay, args.budget, args.query, args.label_timeout, args.seed)
    replay_ds = faults = None
    if args.replay is not None:
        replay_ds, src, stream, faults = _replay(args)
        channels, rate = src.channels, src.rate_hz
    else:
        if args.subject or args.position or args.duration:
            raise ValueError("--subject, --position and --duration apply to --replay")
        stream = _csv_or_mqtt(args)
        channels, rate = _first_channels(stream), args.rate_hz
    spec = WindowSpec(rate, args.window, args.stride, args.max_missing, args.max_gap)
    setup, cols = _setup(args, channels, replay_ds)
    store, codes = _open_store(args, setup, rate, spec.length)
    device = Device(setup.channels, rate, setup.make_learner(), args.window, args.stride, policy=policy,
                    scaler=setup.scaler(), store=store, store_codes=codes,
                    max_missing=args.max_missing, max_gap_s=args.max_gap, encode=setup.encode)
    emit: Callable = (lambda e: None) if args.quiet else (lambda e: print(json.dumps(e.to_dict()), flush=True))
    interrupted = False
    # a service manager stops a device with SIGTERM: treat it like Ctrl-C (metrics, then exit 130)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        for t, X, labels in _blocks(stream, cols):
            for e in device.push_many(t, X, labels):
                emit(e)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        if hasattr(stream, "close"):
            stream.close()
    # a bad input raised above: no metrics file then, the error line says what happened
    events = device.finish()
    if not interrupted:
        for e in events:
            emit(e)
    if args.out is not None:
        metrics = device.metrics()
        metrics.update(
            learner=setup.learner, sources=setup.sources, channels=setup.channels, rate_hz=rate,
            window_s=args.window, stride_s=args.stride, interrupted=interrupted,
            input=args.input or f"replay {args.replay[0]} {args.subject}" + (f"@{args.position}" if args.position else ""),
        )
        if faults is not None:
            metrics["faults"] = faults
        if hasattr(stream, "stats"):
            metrics["input_stats"] = dict(stream.stats)
        write_json(args.out, metrics)
    if interrupted:
        raise KeyboardInterrupt
    m = device.metrics()
    acc = "n/a" if m["accuracy"] is None else f"{m['accuracy']:.3f}"
    pers = "n/a" if m["persistence_accuracy"] is None else f"{m['persistence_accuracy']:.3f}"
    print(f"device: {m['windows_predicted']} windows predicted, {m['windows_skipped']} skipped, "
          f"{m['labels_used']} labels used; accuracy {acc} (persistence {pers}); "
          f"latency p99 {m['latency_ms']['p99']} ms", file=sys.stderr)
    return 0


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt


def _first_channels(stream) -> list[str]:
    channels = stream.channels
    if channels is None:  # MQTT learns them from its first message: too late to build the learner
        raise ValueError("MQTT input needs --channels (comma-separated channel names)")
    return list(channels)


def _blocks(stream, cols: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray, list]]:
    """(t, X, labels) blocks in the column order the learner expects."""
    idx = np.asarray(cols)
    for item in stream:
        if isinstance(item, tuple):  # a replay block
            t, X, labels = item
            yield t, X[:, idx], list(labels)
        else:  # one Sample
            yield np.array([item.t]), item.values[idx][None, :], [item.label]
