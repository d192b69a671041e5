"""The harness behind ``fedotl newuser``: held-out subjects stream their windows into a federation's new-user learners.

For each held-out subject and body position (one device each), in recorded order:

1. the first ``calibration`` windows (``order="time"``), or that many drawn at
   random (``order="permuted"``), are the device's unlabelled calibration
   windows (:class:`fedotl.client.newuser.NewUserKit`): standardisation,
   embeddings, distances, source choice;
2. the other windows are the evaluated stream, test-then-train, in the
   recorded order or over seeded permutations (every learner sees the same
   orders);
3. beside the online learners: ``global`` (the federated model as it is),
   ``personalized_offline`` (FedHealth's personalisation given the user's
   labels in advance: two folds split by time per activity, each predicted by
   the model fine-tuned on the other; a reference, not an online method) and,
   in time order, ``persistence`` (the previous window's class).

``label_budget`` F < 1 reveals each window's label with probability F (the same
windows for every learner); every window is scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedotl.client.model_card import Federation, FederationError, load_federation
from fedotl.client.newuser import (
    CLIENT_KEYS, DEFAULT_CALIBRATION, DEFAULT_ODDM_MU, DEFAULT_TARGET_INPUTS, DEFAULT_TOP_K, ONLINE_KEYS, NewUserKit,
)
from fedotl.online.evaluation import CURVE_AT, cumulative_mistake_rate, mistake_trace, persistence_mistakes, prequential, prequential_budget, stream_orders
from fedotl.simulations.dataset import HARDataset
from fedotl.simulations.progress import progress
from fedotl.simulations.windows import make_windows

ORDERS = ("permuted", "time")
ALL_KEYS = ("global", "personalized_offline", *ONLINE_KEYS, "persistence")


@dataclass
class NewUserOptions:
    order: str = "permuted"
    permutations: int = 20
    top_k: int = DEFAULT_TOP_K
    distance: str = "mmd"
    target_inputs: str = DEFAULT_TARGET_INPUTS
    include_global: bool = True
    horizon: int | None = None  # Hedge's T; None: the stream's length
    calibration: int = DEFAULT_CALIBRATION
    label_budget: float = 1.0
    offline: bool = True  # personalized_offline (trains torch models: the slow reference)
    oddm_mu: float = DEFAULT_ODDM_MU
    learners: tuple[str, ...] = ALL_KEYS  # the keys to run (persistence needs the time order)
    seed: int = 0

    def check(self) -> None:
        unknown = sorted(set(self.learners) - set(ALL_KEYS))
        if unknown or not self.learners:
            raise ValueError(f"unknown or no learner(s) {unknown}; choose from {', '.join(ALL_KEYS)}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if self.permutations < 1 or self.calibration < 2 or self.top_k < 0:
            raise ValueError("need permutations >= 1, calibration >= 2 and top-k >= 0")
        if not 0.0 < self.label_budget <= 1.0:
            raise ValueError(f"label budget must be in (0, 1], got {self.label_budget}")
        if not self.oddm_mu > 0:
            raise ValueError(f"ODDM's mu must be > 0, got {self.oddm_mu}")
        if self.horizon is not None and self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")


def curve_summary(curves: np.ndarray) -> dict:
    """Mean ± std of the final mistake rate, the mean cumulative rate after each of :data:`CURVE_AT` windows,
    and the trace of mean cumulative mistakes (:func:`~fedotl.online.evaluation.mistake_trace`)."""
    n = curves.shape[1]
    mean = curves.mean(0)
    return {
        "mistake_rate_mean": float(curves[:, -1].mean()),
        "mistake_rate_std": float(curves[:, -1].std()),
        "curve": {str(t): float(mean[t - 1]) for t in CURVE_AT if t <= n},
        "trace": mistake_trace(mean * np.arange(1, n + 1)),
    }


def check_channels(fed: Federation, view: HARDataset, where: str) -> None:
    """The device's channels must be the model's, in order (sensor and axis; positions may differ)."""
    want = [(c.get("sensor", ""), c.get("axis", "")) for c in fed.model.channels]
    have = [(c.sensor, c.axis) for c in view.channels]
    if len(want) != len(have):
        raise FederationError(f"{where}: {len(have)} channels, but the global model reads {len(want)}")
    if any(w != h for w, h in zip(want, have) if w[0] and h[0]):
        raise FederationError(f"{where}: channels {have} do not match the global model's {want}")


def offline_reference(fed: Federation, kit: NewUserKit, windows: np.ndarray, y: np.ndarray, start: np.ndarray, seed: int) -> np.ndarray:
    """``personalized_offline``'s predictions (class codes): two time folds per activity, each predicted by the other's fine-tuned model."""
    import copy

    from fedotl.client.config import BY_NAME, RunConfig
    from fedotl.client.node import train_settings
    from fedotl.client.personalize import personalize
    from fedotl.client.train import predict

    cfg = RunConfig({k: v for k, v in fed.manifest.get("config", {}).items() if k in BY_NAME})
    X = ((fed.model.inputs(windows) - kit.input_mean) / kit.input_std).astype(np.float32)
    index = {c: i for i, c in enumerate(fed.model.classes)}
    yi = np.array([index[c] for c in y.tolist()])
    first = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        own = np.flatnonzero(y == c)
        own = own[np.argsort(start[own], kind="stable")]
        first[own[: len(own) // 2]] = True
    cov_path = fed.run_dir / "source_covariance.npz"
    cov = np.load(cov_path)["cov"] if cov_path.exists() else None
    pred = np.empty(len(y), dtype=np.int64)
    for fold in (True, False):
        train, test = first == fold, first != fold
        if not train.any() or not test.any():
            continue
        model = copy.deepcopy(fed.model.module)
        personalize(model, X[train], yi[train], cov, train_settings(cfg, "personalize"), seed=seed, coral_weight=float(cfg.coral_weight))
        logits, _ = predict(model, X[test])
        pred[test] = np.asarray(fed.model.classes)[logits.argmax(1)]
    return pred


def run_device(fed: Federation, view: HARDataset, name: str, opts: NewUserOptions) -> dict:
    """One held-out device: calibrate, stream, and score every learner (see the module docstring)."""
    check_channels(fed, view, name)
    ws = make_windows(view, float(fed.model.card["window_seconds"]))
    unknown = sorted(set(ws.y.tolist()) - set(fed.model.classes))
    if unknown:
        raise FederationError(f"{name}: activities {unknown} are not among the global model's classes")
    timeline = np.lexsort((ws.start, ws.recording))
    if len(timeline) <= opts.calibration + 1:
        raise ValueError(f"{name}: {len(timeline)} windows, not more than the {opts.calibration} calibration windows")
    rng = np.random.default_rng([opts.seed, 7])
    if opts.order == "time":
        cal, stream = timeline[: opts.calibration], timeline[opts.calibration :]
    else:
        pick = np.zeros(len(timeline), dtype=bool)
        pick[rng.choice(len(timeline), opts.calibration, replace=False)] = True
        cal, stream = timeline[pick], timeline[~pick]
    kit = NewUserKit(fed, ws.X[cal], top_k=opts.top_k, distance=opts.distance, target_inputs=opts.target_inputs,
                     include_global=opts.include_global, seed=opts.seed, oddm_mu=opts.oddm_mu)
    Xs, y = ws.X[stream], ws.y[stream]
    enc = kit.encode(Xs)
    n = len(y)
    time_order = opts.order == "time"
    orders = stream_orders(n, opts.permutations, opts.seed, time_order)
    labelled = np.random.default_rng([opts.seed, 11]).random(n) < opts.label_budget
    curves: dict[str, np.ndarray] = {}

    def fixed(pred: np.ndarray) -> np.ndarray:
        wrong = pred != y
        return np.array([cumulative_mistake_rate(wrong[o]) for o in orders])

    if "global" in opts.learners:
        curves["global"] = fixed(kit.global_predictions(enc))
    if opts.offline and "personalized_offline" in opts.learners:
        curves["personalized_offline"] = fixed(offline_reference(fed, kit, Xs, y, ws.start[stream] + ws.recording[stream] * 10**9, opts.seed))
    names = [k for k in ONLINE_KEYS if k in opts.learners and (fed.clients or k not in CLIENT_KEYS)]
    factories = kit.learner_factories(opts.horizon or n, names)
    for key, (kind, factory) in factories.items():
        rows = enc.rows(kind)
        runs = []
        for o in orders:
            learner = factory()
            if opts.label_budget < 1.0:
                wrong = prequential_budget(learner, rows[o], y[o], labelled[o])
            else:
                wrong, _ = prequential(learner, rows[o], y[o])
            runs.append(cumulative_mistake_rate(wrong))
        curves[key] = np.array(runs)
    if time_order and "persistence" in opts.learners:
        curves["persistence"] = cumulative_mistake_rate(persistence_mistakes(y))[None, :]
    return {
        "windows": int(n),
        "calibration_windows": int(len(cal)),
        "labels_used": int(labelled.sum()),
        "sources": kit.report(),
        "learners": {k: curve_summary(v) for k, v in curves.items()},
    }


def device_views(ds: HARDataset, subject: str, position: str | None) -> list[tuple[str, HARDataset]]:
    """The subject's devices: one per body position (or the one asked for, or the whole subject)."""
    subj = ds.select_subjects([subject])
    if position:
        if position not in ds.positions:
            raise ValueError(f"unknown position {position!r}; positions are {list(ds.positions)}")
        return [(position, subj.select_position(position))]
    if not ds.positions:
        return [("all", subj)]
    return [(p, subj.select_position(p)) for p in ds.positions]


def run_newuser(ds: HARDataset, run_dir: str | Path, subjects: Sequence[str], opts: NewUserOptions, position: str | None = None) -> dict:
    """Every held-out subject's devices through every learner; the JSON of ``fedotl newuser``."""
    opts.check()
    fed = load_federation(run_dir)
    unknown = sorted(set(subjects) - set(ds.subjects))
    if unknown:
        raise ValueError(f"unknown subject(s) {unknown}; subjects are {ds.subjects}")
    federated = set(fed.manifest.get("subjects", []))
    inside = sorted(set(subjects) & federated)
    if inside:
        raise ValueError(f"subject(s) {inside} took part in the federation: they are not new users (hold them out with --holdout-subjects)")
    jobs = [(s, p, view) for s in subjects for p, view in device_views(ds, s, position)]
    out: dict = {}
    for s, p, view in progress(jobs, desc="new-user devices", unit="device"):
        out.setdefault(s, {"devices": {}})["devices"][p] = run_device(fed, view, f"{s}@{p}", opts)
    note = "" if fed.clients else f"no client shared its head (FedHealth with share-heads does): {', '.join(CLIENT_KEYS)} left out"
    return {
        "dataset": ds.name,
        "note": note,
        "federation": str(Path(run_dir)),
        "federated_subjects": sorted(federated),
        "protocol": "time order" if opts.order == "time" else f"{opts.permutations} permutations",
        "options": {k: getattr(opts, k) for k in NewUserOptions.__dataclass_fields__},
        "subjects": out,
    }
