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
   other seven subjects; final cumulative mistake rates over 5 permutations.
"""

from __future__ import annotations

import tempfile
from typing import Callable

import numpy as np

from online.evaluation import evaluate, results_to_dict
from simulations.baseline import loso_baseline
from simulations.stream import build_task, learner_factories
from simulations.readers import dsads
from simulations.windows import make_windows


def run_demo(seed: int = 0, echo: Callable[[str], None] | None = print) -> dict:
    say = echo or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="fedotl-demo-") as tmp:
        say("fedotl demo: synthetic DSADS (embedded generator, no download)")
        dsads.write_synthetic(tmp, n_subjects=8, seed=seed, n_segments=12)
        ds = dsads.read(tmp, cache=False)
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
