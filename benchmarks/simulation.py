"""Benchmark: Flower simulation at 10, 100 and 1,000 clients; FedHealth's overhead over FedAvg.

    python -m fedotl.benchmarks.simulation [--clients 10 100 1000] [--rounds R] [--secagg] [--json]

For each client count, in one process and one after the other, it runs plain
Flower FedAvg and then FedHealth (same tiny CNN: width 8, bottleneck 16; same in-memory synthetic
devices: ``dataset = "synthetic"``, 40 windows of 6 channels × 50 samples,
5 classes, see :func:`fedotl.client.data.parse_synthetic`) through
:func:`fedotl.simulations.federated.simulate`, i.e. ``run_simulation`` on the Ray
backend with 1 CPU per client.

Reported per run:

* ``seconds_per_round``: median wall time of rounds 2..R (round 1 includes
  Ray's worker start-up, reported as ``first_round_s``).  R is 6 up to 100
  clients, where a round takes well under a second and the engine's 0.1 s
  polling makes single rounds noisy, and 3 at 1,000 clients;
* ``peak_mb``: peak resident memory of the whole process tree (this
  process, Ray's GCS, raylet and workers; RSS summed from /proc, so shared
  pages count more than once: an upper bound), sampled every 0.1 s;
  ``peak_round_mb`` is the peak during rounds 2..R;
* ``mb_per_client``: ``peak_mb`` / clients (all fixed costs included), and
  ``marginal_mb_per_client``: the growth of ``peak_mb`` from the smallest
  client count, per added client;
* FedHealth: ``personalize_s``, its one-time last stage (stats query plus
  personalisation, about one extra round of messages).

``overhead_vs_fedavg`` is FedHealth's ``seconds_per_round`` over FedAvg's,
measured in the same run (cloud pretraining and the one-time
personalisation excluded; ``overhead_amortised_30_rounds`` adds the
personalisation spread over 30 rounds).  Identical runs vary by about ±25 %
on a shared machine; compare ratios, not absolute times.

``--secagg`` adds a third run per client count, FedAvg with SecAgg+ on every
train round (automatic neighbour count), and prints
``secagg_overhead_vs_fedavg``: its seconds per round over plain FedAvg's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path


def tree_rss_mb(root: int | None = None) -> float:
    """Summed VmRSS of ``root`` (default: this process) and all its descendants, in MB."""
    from fedotl.deploy.proctree import tree_rss_mb as rss

    return rss(os.getpid() if root is None else root)


class MemorySampler:
    """Samples the process tree's RSS in a thread; keeps (time, MB) pairs."""

    def __init__(self, period_s: float = 0.1):
        self.period = period_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), tree_rss_mb()))
            self._stop.wait(self.period)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, t0: float | None = None, t1: float | None = None) -> float:
        vals = [m for t, m in self.samples if (t0 is None or t >= t0) and (t1 is None or t <= t1)]
        return max(vals) if vals else float("nan")


def seconds_per_round(history: list[dict]) -> float:
    """Median wall time of rounds 2..R (round 1 carries the engine's warm-up); round 1's alone if R = 1."""
    later = history[1:] if len(history) > 1 else history
    return float(statistics.median(h["seconds"] for h in later))


def run_one(strategy: str, clients: int, rounds: int, out: Path) -> dict[str, object]:
    from fedotl.simulations.federated import make_config, simulate

    cfg = make_config(
        dataset="synthetic", data_path=f"devices={clients}", strategy=strategy.removesuffix("+secagg"), num_server_rounds=rounds,
        local_epochs=1, model_width=8, bottleneck=16, personalize_epochs=5, out_dir=str(out), progress=False,
        min_available_nodes=clients, min_train_nodes=2, min_evaluate_nodes=2, secagg=strategy.endswith("+secagg"),
    )
    base = tree_rss_mb()
    t0 = time.time()
    with MemorySampler() as mem:
        summary = simulate(cfg)
    wall = time.time() - t0
    hist = summary["history"]
    per_round = seconds_per_round(hist)
    t_round_start = hist[0]["t_end"]  # end of round 1 = start of round 2
    t_round_end = hist[-1]["t_end"]
    peak = mem.peak()
    out_rec: dict[str, object] = {
        "clients": clients,
        "rounds": len(hist),
        "seconds_per_round": round(per_round, 3),
        "first_round_s": round(hist[0]["seconds"], 3),
        "round_seconds": [h["seconds"] for h in hist],
        "wall_s": round(wall, 2),
        "peak_mb": round(peak, 1),
        "peak_round_mb": round(mem.peak(t_round_start, t_round_end), 1),
        "baseline_mb": round(base, 1),
        "mb_per_client": round(peak / clients, 3),
        "mean_accuracy": summary["mean_accuracy"],
    }
    if strategy == "fedhealth":
        out_rec["personalize_s"] = summary.get("personalize_seconds")
    return out_rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--rounds", type=int, default=None, help="rounds per run (>= 2; default 6 up to 100 clients, 3 above)")
    ap.add_argument("--secagg", action="store_true", help="also run FedAvg with SecAgg+ and report its overhead")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if (args.rounds is not None and args.rounds < 2) or any(c < 2 for c in args.clients):
        ap.error("need --rounds >= 2 and at least 2 clients")
    # Import everything the runs use first, so every run starts from the same baseline.
    import flwr.simulation  # noqa: F401
    import torch  # noqa: F401

    import fedotl.client.client_app  # noqa: F401
    import fedotl.server.server_app  # noqa: F401
    import fedotl.simulations.federated  # noqa: F401

    results: dict[str, object] = {"cores": os.cpu_count(), "runs": {}}
    overhead: dict[str, float] = {}
    amortised: dict[str, float] = {}
    secagg_overhead: dict[str, float] = {}
    strategies = ("fedavg", "fedhealth") + (("fedavg+secagg",) if args.secagg else ())
    with tempfile.TemporaryDirectory(prefix="fedotl-bench-") as tmp:
        for n in args.clients:
            row = {}
            for strategy in strategies:
                print(f"[bench] {strategy} with {n} clients ...", file=sys.stderr, flush=True)
                rounds = args.rounds if args.rounds is not None else (6 if n <= 100 else 3)
                row[strategy] = run_one(strategy, n, rounds, Path(tmp) / f"{strategy}-{n}")
                r = row[strategy]
                print(
                    f"[bench]   {r['seconds_per_round']:.2f} s/round (first {r['first_round_s']:.1f} s), "
                    f"peak {r['peak_mb']:.0f} MB, {r['mb_per_client']:.2f} MB/client",
                    file=sys.stderr, flush=True,
                )
            fa, fh = row["fedavg"], row["fedhealth"]
            overhead[str(n)] = round(fh["seconds_per_round"] / fa["seconds_per_round"], 3)
            pers = float(fh.get("personalize_s") or 0.0)
            amortised[str(n)] = round((fh["seconds_per_round"] + pers / 30) / fa["seconds_per_round"], 3)
            if args.secagg:
                secagg_overhead[str(n)] = round(row["fedavg+secagg"]["seconds_per_round"] / fa["seconds_per_round"], 3)
            results["runs"][str(n)] = row  # type: ignore[index]
    sizes = sorted(int(n) for n in results["runs"])  # type: ignore[union-attr]
    first = results["runs"][str(sizes[0])]  # type: ignore[index]
    for n in sizes[1:]:
        for s_name, r in results["runs"][str(n)].items():  # type: ignore[index]
            r["marginal_mb_per_client"] = round((r["peak_mb"] - first[s_name]["peak_mb"]) / (n - sizes[0]), 4)
    results["overhead_vs_fedavg"] = overhead
    results["overhead_amortised_30_rounds"] = amortised
    if args.secagg:
        results["secagg_overhead_vs_fedavg"] = secagg_overhead
    results["peak_mb_max"] = max(r[s]["peak_mb"] for r in results["runs"].values() for s in r)  # type: ignore[union-attr]
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"{'clients':>8} {'strategy':>10} {'s/round':>8} {'round 1':>8} {'peak MB':>8} {'MB/client':>10}")
    for n, row in results["runs"].items():  # type: ignore[union-attr]
        for s, r in row.items():
            print(f"{n:>8} {s:>10} {r['seconds_per_round']:>8.2f} {r['first_round_s']:>8.1f} {r['peak_mb']:>8.0f} {r['mb_per_client']:>10.3f}")
        print(f"{n:>8} overhead_vs_fedavg {overhead[n]:.2f} (with personalisation over 30 rounds {amortised[n]:.2f})")
        if args.secagg:
            print(f"{n:>8} secagg_overhead_vs_fedavg {secagg_overhead[n]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
