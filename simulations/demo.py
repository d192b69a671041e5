"""The main job on the embedded default: synthetic DSADS, no download.

What it runs today, in order:

1. writes synthetic DSADS (8 subjects × 19 activities × 5 body units, 12
   five-second segments each) in the official layout, and reads it back
   through the same reader as the real data;
2. summarises it;
3. a cross-subject baseline: leave-one-subject-out logistic regression on
   the window features.  This is the bar transfer methods have to clear.
"""

from __future__ import annotations

import tempfile
from typing import Callable

import numpy as np

from simulations.baseline import loso_baseline
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
    return {
        "data": "synthetic-dsads",
        "seed": seed,
        "subjects": info["subjects"],
        "windows": len(ws),
        "loso_baseline": per,
        "loso_mean_accuracy": float(np.mean(acc)),
    }
