"""Benchmark: loading the full DSADS zip, ours vs. a naive loop, in one run.

    python -m fedotl.benchmarks.data [--data PATH] [--json]

Times three things on the same file, in this order:

* ``first_load_s``: :func:`fedotl.simulations.readers.dsads.read` with an empty cache
  (a fresh temporary cache directory), which parses and writes the cache;
* ``cached_load_s``: the same call again, served from the cache;
* ``naive_s``: ``zipfile`` + ``np.loadtxt`` on each of the 9,120 members.

``ratio`` is ``naive_s / first_load_s``.  Absolute times on a shared machine
vary by ±25 %; the ratio, measured in one run, is the figure to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "dsads" / "daily_and_sports_activities.zip"


def naive_load(path: Path) -> np.ndarray:
    """The baseline a newcomer would write: one np.loadtxt per zip member."""
    with zipfile.ZipFile(path) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".txt"))
        return np.stack([np.loadtxt(zf.open(n), delimiter=",") for n in names])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT.resolve(), help="DSADS zip or folder (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"error: {args.data}: no such file (pass --data PATH)", file=sys.stderr)
        return 2

    from fedotl.simulations.readers import dsads

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FEDOTL_CACHE_DIR"] = tmp
        t = time.perf_counter()
        ds = dsads.read(args.data)
        first = time.perf_counter() - t
        t = time.perf_counter()
        again = dsads.read(args.data)
        cached = time.perf_counter() - t
        assert again.n_samples == ds.n_samples
    naive = None
    if args.data.is_file():
        t = time.perf_counter()
        ref = naive_load(args.data)
        naive = time.perf_counter() - t
        # Same numbers: recordings are (subject, activity); the naive stack is
        # in member-name order (activity, subject, segment).
        by_name = {(r.session, r.subject): r.data for r in ds.recordings}
        ours = np.concatenate([by_name[k] for k in sorted(by_name)])
        assert np.allclose(ref.reshape(-1, ref.shape[-1]), ours, rtol=1e-6), "readers disagree"
    out = {
        "data": str(args.data),
        "n_segments": ds.notes.get("n_segments"),
        "n_samples": ds.n_samples,
        "first_load_s": round(first, 3),
        "cached_load_s": round(cached, 3),
        "naive_s": None if naive is None else round(naive, 3),
        "ratio": None if naive is None else round(naive / first, 2),
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>15}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
