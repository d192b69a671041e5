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
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

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
    logger = logging.getLogger("flwr")
    level = logger.level
    if not verbose:
        logger.setLevel(logging.ERROR)
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


def run_flower(cfg: Mapping[str, object], num_supernodes: int, *, cpus_per_client: int = 1, verbose: bool = False) -> None:
    """One Flower simulation (Ray backend) of the configured run."""
    ray_tmp = tempfile.mkdtemp(prefix="fedotl-ray-", dir="/tmp")
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
        shutil.rmtree(ray_tmp, ignore_errors=True)


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


def simulate(cfg: Mapping[str, object], *, verbose: bool = False) -> dict[str, object]:
    """Run one experiment (federated through Flower, or central); return its summary."""
    cfg = dict(cfg)
    if cfg.get("data-path") and cfg.get("dataset") != "synthetic":
        cfg["data-path"] = str(Path(str(cfg["data-path"])).resolve())
    with run_dir(str(cfg.get("out-dir") or default_run_dir(str(cfg.get("strategy", DEFAULTS["strategy"]))))) as out:
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
        run_flower(cfg, num_supernodes=len(devices.ids), verbose=verbose)
        path = out / "summary.json"
        if not path.exists():
            raise RuntimeError(f"the ServerApp wrote no summary to {path}; rerun with --verbose to see Flower's log")
        summary = json.loads(path.read_text())
    summary["run_dir"] = str(out)
    if devices.note:
        summary["note"] = devices.note
    return summary
