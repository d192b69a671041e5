"""The harness behind ``fedotl simulate``: Flower's Simulation Engine, one SuperNode per device.

:func:`simulate` validates the options, writes every device's store once
(:mod:`fedotl.simulations.devices`; each ClientApp then reads only its own
store, ``<data-dir>/devices/<partition-id>``), and runs the
ServerApp (:mod:`fedotl.server.server_app`) and ClientApp (:mod:`fedotl.client.client_app`)
with :func:`flwr.simulation.run_simulation` on the Ray backend: the
ServerApp in a thread of this process, each ClientApp call in a Ray actor
(1 CPU each, so two at a time on two cores).  ``run_simulation`` passes no
run config, so the apps are built with the run config baked in
(:func:`~fedotl.server.server_app.make_server_app`,
:func:`~fedotl.client.client_app.make_client_app`); ``flwr run .`` reads the same
keys from pyproject's ``[tool.flwr.app.config]``.

``central`` is the one strategy that is not federated: it pools every
device's training windows in this process and trains one model (the
upper-bound reference), then evaluates it on each device's test split with
the same functions.

Outputs go to the run directory (see :mod:`fedotl.server.report`); the summary
dict is returned.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

from fedotl.client.attacks import pick_attackers
from fedotl.client.config import DEFAULTS, RunConfig
from fedotl.simulations.cache import cache_dir
from fedotl.simulations.devices import DeviceSet, prepare_devices
from fedotl.simulations.rundir import default_run_dir, run_dir

def make_config(**overrides: object) -> dict[str, object]:
    """The defaults with ``snake_case`` or ``kebab-case`` overrides, validated; unknown keys are an error."""
    return dict(RunConfig(**overrides))


def check_config(cfg: dict[str, object], stores: Path | None = None) -> DeviceSet:
    """Validate everything that can be checked before Ray starts; write the device stores.

    Sets ``data-dir`` to the stores' folder, and clamps Flower's default
    minimum node counts to a federation smaller than them.
    """
    c = RunConfig(cfg)
    path = str(c.data_path)
    if c.dataset != "synthetic":
        if not path:
            raise ValueError("no data path given")
        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
    devices = prepare_devices(c, stores)
    cfg["data-dir"] = str(devices.root)
    n = len(devices.ids)
    if c.attack != "none" and not c.attack_partition_list:
        cfg["attack-partitions"] = ",".join(map(str, pick_attackers(n, float(c.attackers), int(c.seed))))  # type: ignore[arg-type]
        if not cfg["attack-partitions"]:
            raise ValueError(f"attackers = {c.attackers} of {n} devices rounds to none")
    for key in ("min-available-nodes", "min-train-nodes", "min-evaluate-nodes"):
        # Flower's default minimum (2) cannot exceed a one-device federation.
        if cfg.get(key) == DEFAULTS[key] and n < int(DEFAULTS[key]):  # type: ignore[arg-type]
            cfg[key] = n  # type: ignore[index]
    for key in ("min-available-nodes", "min-train-nodes", "min-evaluate-nodes", "min-replies"):
        v = int(cfg.get(key, 1))  # type: ignore[arg-type]
        if v > n:
            raise ValueError(f"{key} = {v} but there are {n} devices")
    return devices


@contextlib.contextmanager
def stdout_to_stderr():
    """Send anything written to fd 1 (Ray, Flower) to stderr, so --json stays clean."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def quiet_flower(verbose: bool):
    """Flower's log only with ``--verbose``.  Without it a node's failure is the recorder's one line
    naming the device (its traceback, which Flower logs as an error, is behind ``--verbose``)."""
    logger = logging.getLogger("flwr")
    level = logger.level
    if not verbose:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def flower_env(ray_tmp: str) -> dict[str, str]:
    return {
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "RAY_TMPDIR": ray_tmp,
        "RAY_DEDUP_LOGS": "0",
        "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
        "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
    }


RAY_TMP_PREFIX = "fedotl-ray-"
GROUP_FILE = "process-group"  # in the run's Ray folder: the process group to reap if its owner died
STOP_WAIT_S = 5.0


class Terminated(KeyboardInterrupt):
    """SIGTERM reached the harness while a simulation ran (exit 143)."""


def run_flower_here(cfg: Mapping[str, object], num_supernodes: int, ray_tmp: str, *, cpus_per_client: int = 1, verbose: bool = False) -> None:
    """One Flower simulation (Ray backend) of the configured run, in this process
    (the child that :func:`run_flower` starts; see :mod:`fedotl.simulations.flower_child`)."""
    # Flower's Ray backend also prepends the working directory to PYTHONPATH: restore it
    # after the run, so the repository's folders never shadow anything in later children.
    saved = {k: os.environ.get(k) for k in (*flower_env(ray_tmp), "PYTHONPATH")}
    os.environ.update(flower_env(ray_tmp))
    cpus = os.cpu_count() or 1
    backend_config = {
        "client_resources": {"num_cpus": cpus_per_client, "num_gpus": 0.0},
        "init_args": {"num_cpus": cpus, "logging_level": "ERROR" if not verbose else "INFO", "log_to_driver": verbose, "include_dashboard": False},
    }
    import flwr.common.logger  # noqa: F401  Flower sets its logger's level on import: quieten it after that

    try:
        with stdout_to_stderr(), quiet_flower(verbose), warnings.catch_warnings():
            if not verbose:
                # Ray, typer and click emit Deprecation/Future/Resource warnings on every start.
                for category in (DeprecationWarning, FutureWarning, ResourceWarning):
                    warnings.simplefilter("ignore", category)
            from flwr.simulation import run_simulation

            from fedotl.client.client_app import make_client_app
            from fedotl.server.server_app import make_server_app

            run_simulation(
                server_app=make_server_app(cfg),
                client_app=make_client_app(cfg),
                num_supernodes=num_supernodes,
                backend_name="ray",
                backend_config=backend_config,  # type: ignore[arg-type]
                verbose_logging=verbose,
            )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in the group (Linux: /proc; else the kernel's answer)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:  # state, ppid, pgrp
            return True
    return False


def stop_group(pgid: int, wait_s: float = STOP_WAIT_S) -> None:
    """SIGKILL to the whole process group (the simulation and every Ray process), and wait until it is gone.

    SIGKILL, not SIGTERM: the group goes as a whole, so nobody is left to clean up after, and
    SIGTERM makes Ray's workers print stack dumps."""
    import signal
    import time

    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    t0 = time.monotonic()
    while time.monotonic() - t0 < wait_s and _group_alive(pgid):
        time.sleep(0.05)


def sweep_leftovers(tmp: str = "/tmp") -> int:
    """Reap what an earlier run left when its harness was killed with SIGKILL: the process
    group named in each ``fedotl-ray-*`` folder whose owner is gone, and the folder.  Returns the folders removed."""
    removed = 0
    for folder in Path(tmp).glob(f"{RAY_TMP_PREFIX}*"):
        try:
            owner, pgid = (int(v) for v in (folder / GROUP_FILE).read_text().split())
        except (OSError, ValueError):
            continue  # not ours, or still starting: its owner writes the file first
        try:
            os.kill(owner, 0)
            continue  # its harness still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        stop_group(pgid)
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def _stderr_fd() -> int | None:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stream (pytest): inherit fd 2
        return None


def run_flower(cfg: Mapping[str, object], num_supernodes: int, *, cpus_per_client: int = 1, verbose: bool = False) -> None:
    """One Flower simulation (Ray backend) of the configured run, in a child process of its own session.

    The child, Ray's driver, leads a process group that holds every Ray process, so stopping
    is one ``killpg``: a first Ctrl-C (``KeyboardInterrupt``) or SIGTERM (:class:`Terminated`)
    stops the whole group at once (:func:`stop_group`) and removes Ray's temporary
    folder.  If this process dies by SIGKILL, the child sees it go and kills its
    group, and the next run sweeps any rest (:func:`sweep_leftovers`).  The child's
    output goes to stderr, so ``--json`` stays clean.
    """
    import signal
    import subprocess

    sweep_leftovers()
    ray_tmp = tempfile.mkdtemp(prefix=RAY_TMP_PREFIX, dir="/tmp")
    spec = Path(ray_tmp) / "run.json"
    spec.write_text(json.dumps({"cfg": dict(cfg), "num_supernodes": num_supernodes, "cpus_per_client": cpus_per_client, "verbose": verbose}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedotl.simulations.flower_child", str(spec), str(os.getpid())],
        start_new_session=True, stdin=subprocess.DEVNULL, stdout=_stderr_fd() or 2,
    )
    (Path(ray_tmp) / GROUP_FILE).write_text(f"{os.getpid()} {proc.pid}")

    def on_term(signum, frame):
        raise Terminated()

    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live only there
    previous = signal.signal(signal.SIGTERM, on_term) if main_thread else None
    try:
        rc = proc.wait()
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        stop_group(proc.pid)  # interrupted: the whole run; ended: any Ray process that outlived its driver
        proc.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    if rc != 0:
        raise RuntimeError(f"the Flower simulation exited with status {rc}; rerun with --verbose to see Flower's and Ray's log")


def run_central(cfg: Mapping[str, object], devices: DeviceSet) -> dict[str, object]:
    """Pooled training on every device's training windows; per-device evaluation."""
    from fedotl.client.data import load_device, representation_of
    from fedotl.client.model import build_model, count_params, get_arrays
    from fedotl.client.node import flat_confusion, train_settings
    from fedotl.client.store import DeviceStore
    from fedotl.client.train import derive_seed, evaluate, train_local, use_one_thread
    from fedotl.server.report import RunRecorder

    use_one_thread()
    s = RunConfig(cfg)
    rounds = int(s.num_server_rounds)
    every = int(s.eval_every)
    recorder = RunRecorder(str(s.out_dir) or None, "central", rounds, progress=bool(s.progress))
    rep = representation_of(str(s.model))
    parts = [load_device(devices.store(i), float(s.train_fraction), rep) for i in range(len(devices.ids))]
    X, y = np.concatenate([p.X_train for p in parts]), np.concatenate([p.y_train for p in parts])
    model = build_model(str(s.model), parts[0].n_inputs, parts[0].n_classes, seed=int(s.seed), width=int(s.model_width), bottleneck=int(s.bottleneck))
    recorder.event("start", config=dict(cfg), nodes=len(parts), params=count_params(model))
    recorder.labels = [str(v) for v in DeviceStore(devices.store(0)).meta().get("labels", [])] or None
    for r in range(1, rounds + 1):
        recorder.round_started(r)
        fit = train_local(model, X, y, train_settings(s), seed=derive_seed(s.seed, "central", r))
        recorder.trained(r, {"train-loss": fit["loss"], "train-accuracy": fit["accuracy"], "replies": 1})
        per_client = None
        if r % every == 0 or r == rounds:
            per_client = {}
            for p in parts:
                e = evaluate(model, p.X_test, p.y_test)
                per_client[p.client_id] = {"accuracy": e["accuracy"], "macro_f1": e["macro_f1"], "n": e["n"], "confusion": flat_confusion(e)}
        recorder.round_finished(r, per_client)
    recorder.save_arrays("global_model", get_arrays(model))
    return recorder.finish(params=count_params(model), pooled_windows=int(len(y)))


def simulate(cfg: Mapping[str, object], *, verbose: bool = False, force: bool = False) -> dict[str, object]:
    """Run one experiment (federated through Flower, or central); return its summary.

    The run directory must be new or empty; ``force`` replaces an earlier run in it.  With
    run config ``resume`` it must hold the run, which continues from its checkpoint."""
    cfg = dict(cfg)
    resume = bool(cfg.get("resume"))
    if cfg.get("data-path") and cfg.get("dataset") != "synthetic":
        cfg["data-path"] = str(Path(str(cfg["data-path"])).resolve())
    with run_dir(str(cfg.get("out-dir") or default_run_dir(str(cfg.get("strategy", DEFAULTS["strategy"])))), fresh=not resume, force=force) as out:
        devices = check_config(cfg, None if cache_dir() is not None else out / "stores")  # a bad option leaves no folder
    # Every device is a SuperNode that registers when the engine starts: wait
    # for all of them before round 1, so that round 1 never samples a subset.
    cfg["min-available-nodes"] = max(int(cfg.get("min-available-nodes", 2)), len(devices.ids))  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    cfg["out-dir"] = str(out)
    (out / "run_config.json").write_text(json.dumps(cfg, indent=1))
    (out / "summary.json").unlink(missing_ok=True)
    if cfg["strategy"] == "central":
        summary = run_central(cfg, devices)
    else:
        try:
            run_flower(cfg, num_supernodes=len(devices.ids), verbose=verbose)
        except KeyboardInterrupt as exc:  # the partial run says so (fedotl report reads it as partial)
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"event": "interrupted", "signal": "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"}) + "\n")
            raise
        path = out / "summary.json"
        if not path.exists():
            raise RuntimeError(f"the ServerApp wrote no summary to {path}; rerun with --verbose to see Flower's log")
        summary = json.loads(path.read_text())
    summary["run_dir"] = str(out)
    if devices.note:
        summary["note"] = devices.note
    return summary
