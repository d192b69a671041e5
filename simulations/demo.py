"""The main job on the embedded default: synthetic DSADS, no download.

What it runs today, in order:

1. writes synthetic DSADS (8 subjects × 19 activities × 5 body units, 12
   five-second segments each) in the official layout, and reads it back
   through the same reader as the real data;
2. summarises it;
3. a cross-subject baseline: leave-one-subject-out logistic regression on
   the window features.  This is the bar transfer methods have to clear;
4. online transfer: subject p1's windows streamed (test-then-train) through
   PA, the pooled source classifier, HomOTL-I and HomOTLMS built from the
   other seven subjects; final cumulative mistake rates over 5 permutations;
5. streaming devices: the 40 recordings (subject × body unit) replayed as
   live devices, two minutes each as fast as possible, PA-I from scratch
   learning as each window's label comes; prequential accuracy beside the
   persistence baseline, and the latency from a window's last sample to its
   prediction;
6. federated: FedAvg and FedHealth on Flower's Simulation Engine, one
   SuperNode per subject (8 devices), a quarter of each device's windows
   labelled, a few rounds; per-device accuracy of the global model (FedAvg)
   and of the personalised ones (FedHealth).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from fedotl.online.evaluation import evaluate, results_to_dict
from fedotl.simulations.baseline import loso_baseline
from fedotl.simulations.stream import build_task, learner_factories
from fedotl.simulations.readers import dsads
from fedotl.simulations.windows import make_windows


def run_demo(seed: int = 0, echo: Callable[[str], None] | None = print) -> dict:
    say = echo or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="fedotl-demo-") as tmp:
        say("fedotl demo: synthetic DSADS (embedded generator, no download)")
        dsads.write_synthetic(Path(tmp) / "dsads", n_subjects=8, seed=seed, n_segments=12)
        ds = dsads.read(Path(tmp) / "dsads", cache=False)
        out = _centralised_and_online(ds, seed, say)
        out["devices"] = _streaming_devices(ds, say)
        out["federated"] = _federated(Path(tmp), seed, say)
    return out


def _centralised_and_online(ds, seed: int, say: Callable[[str], None]) -> dict:
    info = ds.summary()
    say(
        f"  {len(info['subjects'])} subjects, {len(info['activities'])} activities, "
        f"{info['channels']} channels at {info['rate_hz']:g} Hz, {info['n_segments']} segments"
    )
    ws = make_windows(ds, length_s=5.0)
    X = ws.features()
    say(f"  {len(ws)} windows of 5 s; {X.shape[1]} features each")
    say("\ncross-subject baseline (leave-one-subject-out, logistic regression on features)")
    per = loso_baseline(ws, X)
    say(f"  {'held out':<10}{'accuracy':>10}{'macro-F1':>10}")
    for s, r in per.items():
        say(f"  {s:<10}{r['accuracy']:>10.3f}{r['macro_f1']:>10.3f}")
    acc = [r["accuracy"] for r in per.values()]
    say(f"  {'mean':<10}{np.mean(acc):>10.3f}")
    say("\nonline transfer to p1 (sources p2-p8; mistake rate, mean ± std over 5 permutations)")
    task = build_task(ds, "p1")
    names = ["pa", "source", "homotl1", "homotlms"]
    res = evaluate(learner_factories(task, names, seed=seed), task.target.X, task.target.y, n_permutations=5, seed=seed)
    online = results_to_dict(res, curve_points=20)
    for name, r in online.items():
        say(f"  {name:<10}{r['mistake_rate_mean']:>8.3f} ± {r['mistake_rate_std']:.3f}")
    return {
        "data": "synthetic-dsads",
        "online_target": "p1",
        "online": online,
        "seed": seed,
        "subjects": info["subjects"],
        "windows": len(ws),
        "loso_baseline": per,
        "loso_mean_accuracy": float(np.mean(acc)),
    }


def _streaming_devices(ds, say: Callable[[str], None]) -> dict:
    from fedotl.client.stream_windows import WindowSpec
    from fedotl.simulations.fleet import run_fleet
    from fedotl.simulations.replay import fleet_sources

    sources = fleet_sources(ds, len(ds.subjects) * len(ds.positions), seconds=120.0)
    say(f"\nstreaming devices ({len(sources)} recordings replayed live, 2 min each, 5 s windows every 1 s, PA-I from scratch)")
    r = run_fleet(sources, WindowSpec(ds.rate_hz, 5.0, 1.0))
    lat = r["latency_ms"]
    say(f"  {r['windows_predicted']} windows: accuracy {r['accuracy']:.3f}, persistence baseline {r['persistence_accuracy']:.3f} "
        f"(recorded order); latency p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms; real-time factor {r['realtime_factor']:.0f}")
    return {k: r[k] for k in ("devices", "windows_predicted", "accuracy", "persistence_accuracy", "latency_ms", "realtime_factor")}


def _federated(tmp: Path, seed: int, say: Callable[[str], None]) -> dict:
    from fedotl.simulations.federated import make_config, simulate

    say("\nfederated on Flower's Simulation Engine (8 devices = subjects, 25% of windows labelled, 8 rounds)")
    out = {}
    for strategy in ("fedavg", "fedhealth"):
        cfg = make_config(
            dataset="dsads", data_path=str(tmp / "dsads"), clients_by="subject", train_fraction=0.25,
            strategy=strategy, num_server_rounds=8, local_epochs=1, personalize_epochs=10,
            seed=seed, out_dir=str(tmp / f"run-{strategy}"), progress=False,
        )
        r = simulate(cfg)
        out[strategy] = {k: r[k] for k in ("mean_accuracy", "worst_accuracy", "mean_macro_f1", "per_client")}
        say(f"  {strategy:<10} mean accuracy {r['mean_accuracy']:.3f}   worst device {r['worst_accuracy']:.3f}")
    return out
