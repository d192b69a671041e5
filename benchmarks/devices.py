"""How many streaming devices one process keeps in real time: ``python -m fedotl.benchmarks.devices [--json]``.

Each device replays a DSADS recording (subject × body position, 9 channels at 25 Hz, cycled and
rotated past the 40 recordings) through the device window loop: 5 s windows every 1 s, the six
online features per channel, PA-I from scratch, every label at once.  All devices advance in
lockstep ticks of one sample period (batched ring buffers, batched features, online/'s batched
engine), staggered over one stride.

* ``max_realtime_devices``: the largest N that keeps real time: replayed at the sensors' own
  rate on the wall clock for ``--paced-seconds``, the loop never falls more than
  ``MAX_LAG_MS`` behind its sensors and the p99 latency stays under 100 ms.  Candidates come
  from a fast screen (replays as fast as possible, doubling N while the real-time factor,
  stream seconds / wall seconds, is >= 1), then paced bisection to within 10 %;
* at that N: the real-time factor (as fast as possible), the p99 latency from a window's last
  sample to its prediction, the worst lag, and the peak memory of a fresh process that loads
  the data and replays those N devices;
* the peer, measured in the same run: the same N with one ``MulticlassPA`` per device stepped in
  a Python loop (``per_device_realtime_factor`` and the ratio ``batched_vs_per_device``).

Uses the real DSADS zip when it is there (``--dsads PATH``, default ../shared/data), else the
synthetic DSADS the demo uses (said in the output).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fedotl.client.stream_windows import WindowSpec
from fedotl.simulations.fleet import run_fleet
from fedotl.simulations.readers import load_dataset, writer
from fedotl.simulations.replay import WallClock, fleet_sources

DEFAULT_DSADS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "dsads" / "daily_and_sports_activities.zip"
SPEC = WindowSpec(rate_hz=25.0, window_s=5.0, stride_s=1.0)
MAX_LAG_MS = 100.0  # behind the sensors by more than this: not real time
TARGET_DEVICES, TARGET_P99_MS = 1000, 100.0


def dataset(path: Path | None):
    path = path or DEFAULT_DSADS
    if path.exists():
        return load_dataset("dsads", path), f"DSADS ({path.name})"
    tmp = tempfile.mkdtemp(prefix="fedotl-bench-")
    writer("dsads")(Path(tmp), n_subjects=8, seed=0)
    return load_dataset("dsads", tmp), "synthetic DSADS (the real zip is absent)"


def trial(ds, n: int, seconds: float, batched: bool = True, paced: bool = False) -> dict:
    sources = fleet_sources(ds, n, seconds=seconds)
    ticks: list[float] = []
    r = run_fleet(sources, SPEC, batched=batched, speed=1.0 if paced else math.inf,
                  clock=WallClock() if paced else None, on_tick=lambda i: ticks.append(time.perf_counter()))
    out = {"devices": n, "realtime_factor": r["realtime_factor"], "latency_p99_ms": r["latency_ms"]["p99"],
           "latency_p50_ms": r["latency_ms"]["p50"], "windows": r["windows_predicted"], "peak_rss_mb": r["peak_rss_mb"],
           "accuracy": r["accuracy"], "persistence_accuracy": r["persistence_accuracy"]}
    if paced:
        t = np.asarray(ticks)
        lag = (t - t[0]) - np.arange(len(t)) / SPEC.rate_hz  # how late each tick was handled
        out["max_lag_ms"] = round(float(lag.max()) * 1e3, 2)
    return out


def keeps_up(res: dict) -> bool:
    if res["latency_p99_ms"] is None:
        raise SystemExit("the paced check closed no window: give --paced-seconds longer than a window")
    return res["max_lag_ms"] <= MAX_LAG_MS and res["latency_p99_ms"] < TARGET_P99_MS


def search(ds, seconds: float, paced_seconds: float, start: int, cap: int, log) -> tuple[int, dict, dict]:
    """Largest N that keeps up when paced: a fast doubling screen, then paced bisection to 10 %."""
    fast: dict[int, dict] = {}
    n = start
    while n <= cap:
        fast[n] = trial(ds, n, seconds)
        log(f"screen N={n}: real-time factor {fast[n]['realtime_factor']}, p99 {fast[n]['latency_p99_ms']} ms")
        if fast[n]["realtime_factor"] < 1.0:
            break
        n *= 2
    passed = [k for k, r in fast.items() if r["realtime_factor"] >= 1.0]
    failed = [k for k, r in fast.items() if r["realtime_factor"] < 1.0]
    good, good_res, bad = 0, None, (min(failed) if failed else None)
    n = max(passed) if passed else max(start // 2, 1)
    while True:
        res = trial(ds, n, paced_seconds, paced=True)
        log(f"paced  N={n}: max lag {res['max_lag_ms']} ms, p99 {res['latency_p99_ms']} ms")
        if keeps_up(res):
            good, good_res = n, res
        else:
            bad = n
        if bad is None:
            if n >= cap:
                break
            n = min(2 * n, cap)
        elif good_res is None:
            if n == 1:
                raise SystemExit("not even one device keeps real time here")
            n = max(n // 2, 1)
        elif bad - good <= max(good // 10, 1):
            break
        else:
            n = (good + bad) // 2
    return good, fast.get(good) or trial(ds, good, seconds), good_res


def peak_memory_mb(path: Path | None, n: int, seconds: float) -> float:
    """Peak RSS of a fresh process that loads the data and replays N devices (the search's own
    process peaked at its largest N)."""
    cmd = [sys.executable, "-m", "fedotl.benchmarks.devices", "--memory-at", str(n), "--seconds", str(seconds)]
    if path is not None:
        cmd += ["--dsads", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run(path: Path | None, seconds: float, paced_seconds: float, start: int, cap: int, log) -> dict:
    ds, note = dataset(path)
    n, best, paced = search(ds, seconds, paced_seconds, start, cap, log)
    memory = peak_memory_mb(path, n, seconds)
    log(f"peak memory of a process replaying N={n}: {memory} MB")
    peer = trial(ds, n, seconds, batched=False)
    log(f"peer at N={n}: one MulticlassPA per device, real-time factor {peer['realtime_factor']}")
    return {
        "data": note,
        "rate_hz": SPEC.rate_hz, "window_s": SPEC.window_s, "stride_s": SPEC.stride_s,
        "screen_stream_s": seconds, "paced_s": paced_seconds,
        "max_realtime_devices": n,
        "realtime_factor": best["realtime_factor"],
        "latency_p99_ms": paced["latency_p99_ms"],
        "latency_p50_ms": paced["latency_p50_ms"],
        "max_lag_ms": paced["max_lag_ms"],
        "peak_rss_mb": memory,
        "per_device_realtime_factor": peer["realtime_factor"],
        "batched_vs_per_device": round(best["realtime_factor"] / peer["realtime_factor"], 2),
        "meets_target": bool(n >= TARGET_DEVICES and paced["latency_p99_ms"] < TARGET_P99_MS),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fedotl.benchmarks.devices", description=__doc__.splitlines()[0])
    ap.add_argument("--dsads", type=Path, default=None, help="the DSADS zip (default: ../shared/data/dsads/...)")
    ap.add_argument("--seconds", type=float, default=60.0, help="stream seconds per trial (default 60)")
    ap.add_argument("--paced-seconds", type=float, default=30.0, help="wall-clock seconds of the paced check (default 30)")
    ap.add_argument("--start", type=int, default=500, help="first N tried (default 500)")
    ap.add_argument("--cap", type=int, default=64000, help="largest N tried (default 64000)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--memory-at", type=int, default=None, help=argparse.SUPPRESS)  # peak_memory_mb's child
    args = ap.parse_args(argv)
    if args.memory_at is not None:
        ds, _ = dataset(args.dsads)
        print(trial(ds, args.memory_at, args.seconds)["peak_rss_mb"])
        return 0
    log = (lambda s: print(s, file=sys.stderr, flush=True))
    res = run(args.dsads, args.seconds, args.paced_seconds, args.start, args.cap, log)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>28}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
