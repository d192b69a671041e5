"""Benchmark: seconds per round on Flower's Deployment Engine against its Simulation Engine.

    python -m fedotl.benchmarks.deployment [--nodes 3] [--rounds 4] [--strategy fedavg] [--json]

The same tiny run twice, one after the other: synthetic generic-CSV devices
(one per subject, :func:`fedotl.simulations.readers.generic.write_synthetic`),
``local-epochs = 1``, the default CNN, every device sampled every round.

* **simulation**: :func:`fedotl.simulations.federated.simulate` (Flower's
  Simulation Engine on Ray, 1 CPU per client);
* **deployment**: ``python -m fedotl.deploy.local_deployment`` as a user runs
  it: a SuperLink with TLS and SuperNode authentication, one registered
  SuperNode per device on its own store, and ``flwr run``, all on loopback.

Reported per engine: ``seconds_per_round``, the median wall time of rounds
2..R as the ServerApp measured it (round 1 carries Ray's or the processes'
warm-up, reported as ``first_round_s``).  ``ratio`` is deployment over
simulation, measured in the same run.

Where the deployment's time goes is mostly Flower's design, so the benchmark
also measures the one part of it that is ours: ``clientapp_import_s``, the
time a fresh interpreter takes to import the ClientApp, which every message
pays, since the SuperNode starts one ``flwr-clientapp`` process per message
(2 per device per round: train and evaluate).  On this 2-core machine the N
SuperNodes share the cores, so those processes also queue for the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def per_round(summary: dict) -> dict[str, object]:
    from fedotl.benchmarks.simulation import seconds_per_round

    secs = [float(h["seconds"]) for h in summary["history"]]
    return {"seconds_per_round": round(seconds_per_round(summary["history"]), 2), "first_round_s": round(secs[0], 2),
            "round_seconds": [round(s, 2) for s in secs], "mean_accuracy": summary["mean_accuracy"]}


def run_simulation(data: Path, nodes: int, rounds: int, strategy: str, out: Path) -> dict[str, object]:
    from fedotl.simulations.federated import make_config, simulate

    cfg = make_config(dataset="generic", data_path=str(data), strategy=strategy, num_server_rounds=rounds, local_epochs=1,
                      out_dir=str(out), progress=False, min_available_nodes=nodes)
    t0 = time.monotonic()
    summary = simulate(cfg)
    return {**per_round(summary), "wall_s": round(time.monotonic() - t0, 1)}


def run_deployment(data: Path, nodes: int, rounds: int, strategy: str, tmp: Path) -> dict[str, object]:
    from fedotl.deploy.local_deployment import free_port_block

    base = free_port_block(nodes + 1, 39300, 39700)
    if base is None:
        raise SystemExit(f"no {nodes + 1} free consecutive ports in 39300-39700")
    cmd = [sys.executable, "-m", "fedotl.deploy.local_deployment", "--dataset", "generic", str(data), "--nodes", str(nodes),
           "--rounds", str(rounds), "--strategy", strategy, "--set", "local-epochs=1", "--certs", str(tmp / "certs"),
           "--out", str(tmp / "deploy"), "--port", str(base), "--node-port", str(base + 1), "--json"]  # fmt: skip
    subprocess.run(["bash", str(ROOT / "deploy" / "certs.sh"), str(tmp / "certs")], check=True, capture_output=True)
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"the deployment failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    result = json.loads(done.stdout)
    return {**per_round(result["summary"]), "startup_s": result["seconds"]["startup"], "wall_s": round(time.monotonic() - t0, 1)}


def clientapp_import_s(repeats: int = 3) -> float:
    """Median wall time of a fresh interpreter importing the ClientApp (what each message's process pays)."""
    times = []
    for _ in range(repeats):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "import fedotl.client.client_app"], check=True, cwd=ROOT)
        times.append(time.monotonic() - t0)
    return round(statistics.median(times), 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=3, help="devices, one SuperNode each (default 3)")
    ap.add_argument("--rounds", type=int, default=4, help="rounds per run, >= 2 (default 4)")
    ap.add_argument("--strategy", default="fedavg", choices=["fedavg", "fedprox", "fedbn", "fedhealth"])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if args.rounds < 2 or args.nodes < 2:
        ap.error("need --rounds >= 2 and --nodes >= 2")
    from fedotl.simulations.readers.generic import write_synthetic

    with tempfile.TemporaryDirectory(prefix="fedotl-bench-deploy-") as name:
        tmp = Path(name)
        write_synthetic(tmp / "data", n_subjects=args.nodes, seed=0, positions=("wrist",))
        print(f"[bench] simulation, {args.nodes} clients, {args.rounds} rounds ...", file=sys.stderr, flush=True)
        sim = run_simulation(tmp / "data", args.nodes, args.rounds, args.strategy, tmp / "sim")
        print(f"[bench] deployment, {args.nodes} SuperNodes, {args.rounds} rounds ...", file=sys.stderr, flush=True)
        dep = run_deployment(tmp / "data", args.nodes, args.rounds, args.strategy, tmp)
    result = {"cores": os.cpu_count(), "nodes": args.nodes, "rounds": args.rounds, "strategy": args.strategy,
              "simulation": sim, "deployment": dep, "ratio": round(float(dep["seconds_per_round"]) / float(sim["seconds_per_round"]), 1),
              "clientapp_import_s": clientapp_import_s(), "clientapp_processes_per_round": 2 * args.nodes}  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'engine':<12} {'s/round':>8} {'round 1':>8} {'wall s':>8}")
    for engine in ("simulation", "deployment"):
        r = result[engine]
        print(f"{engine:<12} {r['seconds_per_round']:>8.2f} {r['first_round_s']:>8.2f} {r['wall_s']:>8.1f}")
    print(f"deployment / simulation per round: {result['ratio']}x")
    print(f"a fresh interpreter imports the ClientApp in {result['clientapp_import_s']} s; "
          f"{result['clientapp_processes_per_round']} such processes per round")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
