"""``fedotl demo``: the whole cloud–device system, end to end, and a report to look at.

Five steps, each with a progress bar on a terminal:

1. **load**: the dataset given, or the embedded default: synthetic DSADS (6 subjects × 19
   activities × 5 body units, 40 s of each activity) written by the data layer into the cache
   in the official layout and read back through the same reader as the real data;
2. **partition**: one device per subject × body unit, each with a store of its own labelled
   windows; the last quarter of the subjects, rounded up (p5 and p6 of six, p7 and p8 of the
   eight in DSADS) are held out as new users;
3. **federate** on Flower's Simulation Engine: local only, FedAvg and FedHealth (cloud model,
   federated rounds, per-device personalisation), each device evaluated on its own later
   windows;
4. **new users**: each held-out subject's recordings replayed as streaming devices, in recorded
   order and as fast as possible, each window predicted at once and learned from when its label
   comes.  The devices start from the FedHealth federation (HomOTLMS over the MMD-nearest
   clients' heads, and HomOTL-I over the global head), beside PA-I from scratch and the
   persistence baseline (the previous window's label);
5. **report**: ``metrics.json``, the plots, ``report.md`` and a self-contained ``report.html``
   in the run directory (:mod:`fedotl.simulations.report`).

Ctrl-C during a step stops the run; the report is still written, from the steps that finished,
and says that the run is partial (status ``interrupted``).  So does an error after the input
was checked (status ``failed``, the error in the notes).  An input refused in the first two
steps (a missing path, an unknown subject) leaves neither report nor folder.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from fedotl.simulations.progress import RoundFollower, progress_bar
from fedotl.simulations.report import metrics as M
from fedotl.simulations.report.metrics import SCRATCH

STEPS = ("load", "partition", "federate", "new users", "report")
CHECKS = STEPS[:2]  # the steps that read and check the user's input: failing there is a refusal, not a partial run
STRATEGIES = ("local", "fedavg", "fedhealth")
TRANSFER = ("homotlms_topk", "otl_global")  # a federation's device learners (fedotl.client.newuser)
STRIDE_S = 1.0  # a device predicts every second


@dataclass
class DemoOptions:
    dataset: str | None = None  # None: the embedded synthetic DSADS
    path: str | None = None
    quick: bool = False
    seed: int = 0
    rounds: int | None = None  # default: 10, or 2 with quick
    holdout: Sequence[str] | None = None  # default: the last quarter of the subjects

    @property
    def embedded(self) -> bool:
        return self.dataset is None

    def settings(self) -> dict:
        """What the options mean for each step (quick: a small dataset and short training)."""
        q = self.quick
        return {
            "synthetic_subjects": 3 if q else 6, "synthetic_segments": 4 if q else 8,
            "rounds": self.rounds or (2 if q else 8), "local_epochs": 1 if q else 2, "personalize_epochs": 5 if q else 30,
            "calibration": 30 if q else 100, "window_s": 5.0, "stride_s": STRIDE_S,
        }


# ---------------------------------------------------------------- the run
class Demo:
    """One demo run into ``out``; :meth:`run` returns its ``metrics.json``."""

    def __init__(self, opts: DemoOptions, out: Path, say: Callable[[str], None]):
        self.opts, self.out, self.say = opts, Path(out), say
        self.set = opts.settings()
        self.metrics = M.new_metrics("demo", config={**self.set, "dataset": opts.dataset or "embedded synthetic DSADS",
                                                      "path": opts.path, "quick": opts.quick}, seed=opts.seed)
        self.metrics["online_protocol"] = (
            "Streaming devices in recorded order (5 s windows every second), test-then-train: final cumulative "
            "mistake rate, mean over the held-out devices. The devices that start from the federation predict with its "
            f"global model for their first {self.set['calibration']} windows, unlabelled calibration, then switch to their "
            "learner. Read every rate against persistence, which recorded order favours.")
        self.ds = None
        self.cfg: dict = {}

    def run(self) -> dict:
        step = STEPS[0]
        try:
            for i, step in enumerate(STEPS[:-1], 1):
                t0 = time.perf_counter()
                self.say(f"[{i}/{len(STEPS)}] {step}")
                getattr(self, "step_" + step.replace(" ", "_"))()
                self.metrics["steps"].append({"name": step, "seconds": round(time.perf_counter() - t0, 2)})
            step = STEPS[-1]
            M.finish(self.metrics)
        except BaseException as exc:  # the report says what finished, and that the run did not
            interrupted = isinstance(exc, KeyboardInterrupt)
            M.finish(self.metrics, "interrupted" if interrupted else "failed", step)
            if not interrupted:
                self.metrics["notes"].append(f"{type(exc).__name__}: {exc}")
            if interrupted or step not in CHECKS:  # a refused input leaves no report (and no folder)
                self.write_report()
            raise
        self.say(f"[{len(STEPS)}/{len(STEPS)}] report")
        self.write_report()
        return self.metrics

    def write_report(self) -> dict:
        from fedotl.simulations.report import write_run_report

        return write_run_report(self.out, self.metrics)

    # ------------------------------------------------------------ 1. load
    def step_load(self) -> None:
        from fedotl.simulations.readers import load_dataset

        if self.opts.embedded:
            path, name = embedded_dsads(self.opts.seed, self.set["synthetic_subjects"], self.set["synthetic_segments"]), "dsads"
        else:
            path, name = Path(str(self.opts.path)).resolve(), str(self.opts.dataset)
            if not path.exists():
                raise FileNotFoundError(f"{path}: no such file or folder")
        bar = progress_bar(1, desc="load", unit="dataset")
        try:
            self.ds = load_dataset(name, path)
        finally:
            bar.update(1)
            bar.close()
        info = self.ds.summary()
        self.metrics["dataset"] = {
            "name": "synthetic DSADS (embedded)" if self.opts.embedded else self.ds.name,
            "subjects": len(info["subjects"]), "positions": len(info["positions"] or []), "activities": len(info["activities"]),
            "channels": info["channels"], "rate_hz": info["rate_hz"], "hours": round(info["duration_s"] / 3600, 2),
            "subject_list": info["subjects"], "position_list": info["positions"],
        }
        self.cfg = {"dataset": name, "data-path": str(path)}
        self.say(f"  {self.metrics['dataset']['name']}: {len(info['subjects'])} subjects, {len(info['positions'] or [])} body units, "
                 f"{len(info['activities'])} activities, {info['channels']} channels at {info['rate_hz']:g} Hz, "
                 f"{info['duration_s'] / 3600:.1f} h")

    # ------------------------------------------------------------ 2. partition
    def step_partition(self) -> None:
        from fedotl.client.config import RunConfig
        from fedotl.simulations.devices import build_devices
        from fedotl.simulations.federated import make_config

        subjects = list(self.ds.subjects)
        holdout = list(self.opts.holdout) if self.opts.holdout else subjects[-max(1, (len(subjects) + 2) // 4):]
        unknown = sorted(set(holdout) - set(subjects))
        if unknown:
            raise ValueError(f"--holdout-subjects: unknown subject(s) {unknown}; subjects are {subjects}")
        if len(holdout) >= len(subjects) - 1:
            raise ValueError(f"holding out {len(holdout)} of {len(subjects)} subjects leaves fewer than 2 to federate")
        self.holdout = holdout
        self.cfg.update({"clients-by": "subject-position", "holdout-subjects": ",".join(holdout), "seed": self.opts.seed,
                         "num-server-rounds": self.set["rounds"], "local-epochs": self.set["local_epochs"],
                         "personalize-epochs": self.set["personalize_epochs"], "share-heads": True, "progress": False})
        bar = progress_bar(1, desc="partition", unit="dataset")
        try:  # the partition only: each federated run writes (or finds) the stores it trains on
            devices = build_devices(RunConfig(make_config(**self.cfg, strategy="fedavg"))).devices
        finally:
            bar.update(1)
            bar.close()
        self.metrics["dataset"].update({"devices": len(devices), "held_out": " ".join(holdout)})
        self.say(f"  {len(devices)} devices federate (subject × body unit, each with its own store); "
                 f"new users: {', '.join(holdout)}")

    # ------------------------------------------------------------ 3. federate
    def step_federate(self) -> None:
        from fedotl.simulations.federated import make_config, simulate

        rounds = int(self.set["rounds"])
        bar = progress_bar(rounds * len(STRATEGIES), desc="federate", unit="round")
        self.metrics["strategies"] = {}
        try:
            for strategy in STRATEGIES:
                run_dir = self.out / "federated" / strategy
                bar.set_postfix_str(strategy)
                cfg = make_config(**self.cfg, strategy=strategy, out_dir=str(run_dir))
                with RoundFollower(run_dir / "metrics.jsonl", bar):
                    summary = simulate(cfg)
                piece = M.strategy_piece(summary)
                piece["run_dir"] = str(run_dir.relative_to(self.out))
                self.metrics["strategies"][strategy] = piece
                self.say(f"  {strategy:<10} mean accuracy {_f(piece['mean_accuracy'])}, worst device {_f(piece['worst_accuracy'])} "
                         f"({piece['worst_device']}), macro-F1 {_f(piece['macro_f1'])}")
        finally:
            bar.close()

    # ------------------------------------------------------------ 4. new users
    def step_new_users(self) -> None:
        online, devices = replay_new_users(self.ds, self.out / "federated" / "fedhealth", self.holdout, self.set, self.opts.seed)
        self.metrics["online"] = online
        self.metrics["devices"] = devices
        for name, v in online.items():
            self.say(f"  {name:<14} mistake rate {v['mistake_rate_mean']:.3f} over {v['devices']} devices")
        self.say(f"  latency p50 {_f(devices['latency_ms']['p50'], 2)} ms, p99 {_f(devices['latency_ms']['p99'], 2)} ms; "
                 f"replayed at {devices['realtime_factor']:.0f}× real time")


def _f(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def embedded_dsads(seed: int, subjects: int, segments: int) -> Path:
    """Synthetic DSADS in the official layout, written once into the cache (or a temporary folder)."""
    import tempfile

    from fedotl.simulations.cache import cache_dir, staged_dir
    from fedotl.simulations.readers import dsads

    base = cache_dir()
    base = base if base is not None else Path(tempfile.gettempdir()) / "fedotl-demo-data"
    root = base / "demo" / f"dsads-synthetic-s{subjects}-n{segments}-seed{seed}"
    if not root.is_dir():
        with staged_dir(root) as tmp:
            dsads.write_synthetic(tmp, n_subjects=subjects, seed=seed, n_segments=segments)
    return root


# ---------------------------------------------------------------- step 4 as a function
def replay_new_users(ds, federation: Path, subjects: Sequence[str], settings: dict, seed: int) -> tuple[dict, dict]:
    """Every held-out recording replayed as one device per learner; the ``online`` and ``devices`` pieces.

    The devices of one recording share its replay: each block of samples is pushed into every
    learner's device, so they see the same stream (:class:`fedotl.client.device.Device`).
    """
    from fedotl.client.device import Device
    from fedotl.client.model_card import load_federation
    from fedotl.client.newuser import DEFAULT_TARGET_INPUTS, DEFAULT_TOP_K
    from fedotl.simulations.device_setup import federation_setup, match_channels, scratch_setup
    from fedotl.simulations.newuser import check_channels, device_views
    from fedotl.simulations.replay import FAST_BLOCK_S, Replay, subject_stream

    window_s, stride_s = float(settings["window_s"]), float(settings["stride_s"])
    fed = load_federation(federation)
    setups = {key: federation_setup(fed, key, window_s, calibration=int(settings["calibration"]), top_k=DEFAULT_TOP_K,
                                    target_inputs=DEFAULT_TARGET_INPUTS, horizon=None, seed=seed)
              for key in TRANSFER if fed.clients or key == "otl_global"}
    jobs = [(s, p, view) for s in subjects for p, view in device_views(ds, s, None)]
    sources = []
    for s, p, view in jobs:
        check_channels(fed, view, f"{s}@{p}")
        sources.append(subject_stream(ds, s, None if p == "all" else p))
    outcomes: list[tuple[str, str, dict]] = []
    latencies: dict[str, list[np.ndarray]] = {}
    rows = []
    bar = progress_bar(sum(len(src) for src in sources), desc="new users", unit="sample", unit_scale=True)
    t0 = time.perf_counter()
    try:
        for src in sources:
            bar.set_postfix_str(src.name)
            devices: dict[str, tuple[Device, list[int]]] = {}
            for key, setup in setups.items():
                devices[key] = (Device(setup.channels, src.rate_hz, setup.make_learner(), window_s, stride_s, scaler=setup.scaler(),
                                       encode=setup.encode), match_channels(src.channels, setup.channels, src.name))
            scratch = scratch_setup(src.channels)
            devices[SCRATCH] = (Device(scratch.channels, src.rate_hz, scratch.make_learner(), window_s, stride_s, scaler=scratch.scaler()),
                                list(range(len(src.channels))))
            for t, X, labels in Replay(src, speed=math.inf, block_s=FAST_BLOCK_S):
                for device, cols in devices.values():
                    device.push_many(t, X[:, cols], list(labels))
                bar.update(len(t))
            for key, (device, _) in devices.items():
                device.finish()
                m = device.metrics()
                outcomes.append((src.name, key, M.device_outcomes(m, device.traces())))
                latencies.setdefault(key, []).append(device.latencies_ms())
                rows.append(M.device_row(src.name, key, m))
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    stream_s = sum(len(src) / src.rate_hz for src in sources)
    online = M.online_piece(outcomes)
    pieces = M.devices_piece(rows, {k: np.concatenate(v) for k, v in latencies.items()},
                             realtime_factor=round(stream_s / max(wall, 1e-9), 1),
                             wall_s=round(wall, 2), recordings=len(sources))
    return online, pieces


def run_demo(opts: DemoOptions, out: Path, say: Callable[[str], None] | None = print, *, force: bool = False) -> dict:
    """Run the demo into ``out`` (made if missing, refused if not empty unless ``force``); returns its ``metrics.json``."""
    from fedotl.simulations.rundir import run_dir

    with run_dir(out, fresh=True, force=force) as root:  # a mistake caught before any output leaves no empty folder behind
        return Demo(opts, root, say or (lambda _m: None)).run()
