"""How a node loads its own partition: its device's windows, split by time.

A node knows three things: the dataset and path (run config ``dataset``,
``data-path``), how devices are cut (``clients-by``: one device per subject,
or per subject × body position), and which device it is (node config
``partition-id``, set by the Simulation Engine or by ``flwr-supernode
--node-config``).  It reads the data from its own disk and keeps it: only
model weights and summary statistics ever leave the node.

Per device:

* windows of ``window-seconds`` (default 5 s, DSADS's segments), no overlap;
* the earliest ``train-fraction`` of the device's windows of each activity,
  in time order, train and the rest test (:func:`simulations.splits.time_split`,
  which purges windows that straddle the boundary);
* inputs standardised per channel (or per feature, for the MLP) with the
  mean and standard deviation of the device's own *training* windows, as a
  wearable would calibrate itself.

Devices are numbered in a fixed order (subjects in natural order, then body
positions in the dataset's order), excluding the subjects the server holds
(``server-subjects``): partition ``i`` is the ``i``-th device of
:func:`device_ids`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np

from simulations.dataset import natural_key

CLIENTS_BY = ("subject", "subject-position")


@dataclass(frozen=True)
class DataSpec:
    dataset: str
    path: str
    clients_by: str = "subject-position"
    train_fraction: float = 0.7
    window_s: float = 5.0
    representation: str = "windows"  # "windows" for the CNN, "features" for the MLP
    server_subjects: tuple[str, ...] = ()
    rate_hz: float = 0.0  # generic CSV without timestamps; 0 = not given
    label_track: str = ""  # OPPORTUNITY; "" = the reader's default

    def options(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.rate_hz > 0:
            out["rate_hz"] = self.rate_hz
        if self.label_track:
            out["label_track"] = self.label_track
        return out

    def __post_init__(self) -> None:
        if self.clients_by not in CLIENTS_BY:
            raise ValueError(f"clients-by must be one of {', '.join(CLIENTS_BY)}, got {self.clients_by!r}")
        if not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"train fraction must be in (0, 1), got {self.train_fraction}")
        if not self.window_s > 0:
            raise ValueError(f"window length must be positive, got {self.window_s}")
        if self.representation not in ("windows", "features"):
            raise ValueError(f"unknown representation {self.representation!r}")
        if not self.path and self.dataset != "synthetic":
            raise ValueError("no data path: set run config data-path to the dataset's absolute path")


def parse_subjects(text: str | None) -> tuple[str, ...]:
    """``"p1, p2"`` → ``("p1", "p2")``; empty → ()."""
    if not text:
        return ()
    return tuple(s.strip() for s in str(text).split(",") if s.strip())


def spec_from_config(run_config: Mapping[str, object]) -> DataSpec:
    return DataSpec(
        dataset=str(run_config.get("dataset", "dsads")),
        path=str(run_config.get("data-path", "")),
        clients_by=str(run_config.get("clients-by", "subject-position")),
        train_fraction=float(run_config.get("train-fraction", 0.7)),  # type: ignore[arg-type]
        window_s=float(run_config.get("window-seconds", 5.0)),  # type: ignore[arg-type]
        representation="features" if str(run_config.get("model", "cnn")) == "mlp" else "windows",
        server_subjects=parse_subjects(str(run_config.get("server-subjects", ""))),
        rate_hz=float(run_config.get("rate-hz", 0.0)),  # type: ignore[arg-type]
        label_track=str(run_config.get("label-track", "")),
    )


@dataclass
class ClientData:
    """One device's standardised training and test data (class indices 0..K-1)."""

    client_id: str
    X_train: np.ndarray  # (N, C, L) windows or (N, F) features, float32
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[int, ...] = field(default_factory=tuple)  # activity code of each class index

    @property
    def n_inputs(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)


@dataclass
class _Device:
    client_id: str
    subject: str
    X: np.ndarray  # (N, C, L) or (N, F), raw
    y: np.ndarray  # class indices
    train: np.ndarray
    test: np.ndarray


@dataclass
class _Built:
    devices: list[_Device]  # federation devices, partition order
    server: list[_Device]  # devices of server-held subjects
    classes: tuple[int, ...]


SYNTHETIC_DEFAULTS = {"devices": 10, "classes": 5, "channels": 6, "length": 50, "windows": 40}


def parse_synthetic(path: str) -> dict[str, int]:
    """``"devices=1000,classes=5"`` → the synthetic generator's parameters.

    >>> parse_synthetic("devices=3")["devices"], parse_synthetic("")["classes"]
    (3, 5)
    """
    out = dict(SYNTHETIC_DEFAULTS)
    for item in filter(None, (p.strip() for p in path.split(","))):
        key, _, value = item.partition("=")
        if key not in out or not value.isdigit() or int(value) < 1:
            raise ValueError(f"synthetic data: expected KEY=N with KEY in {sorted(out)}, got {item!r}")
        out[key] = int(value)
    if out["classes"] < 2 or out["windows"] < 2 * out["classes"]:
        raise ValueError("synthetic data needs >= 2 classes and >= 2 windows per class")
    return out


def _build_synthetic(spec: DataSpec) -> _Built:
    """Benchmark data generated in memory: ``dataset = "synthetic"``, ``data-path = "devices=N,..."``.

    Device ``d`` has ``windows`` windows (``channels`` × ``length``) cycling
    through the classes in time order; class ``k`` is a sine of frequency
    ``k + 1`` with a device-specific gain and offset, plus noise.
    """
    p = parse_synthetic(spec.path if spec.path != "synthetic" else "")
    t = np.linspace(0, 2 * np.pi, p["length"], dtype=np.float32)
    devices = []
    for d in range(p["devices"]):
        rng = np.random.default_rng([d, 12345])
        y = np.arange(p["windows"]) % p["classes"]
        gain = rng.uniform(0.5, 2.0, (1, p["channels"], 1)).astype(np.float32)
        offset = rng.normal(0, 1, (1, p["channels"], 1)).astype(np.float32)
        X = np.sin(np.outer(y + 1, t))[:, None, :].astype(np.float32) * gain + offset
        X += rng.normal(0, 0.3, X.shape).astype(np.float32)
        k = max(1, int(round(spec.train_fraction * p["windows"])))
        k = min(k, p["windows"] - 1)
        devices.append(_Device(f"d{d:04d}", f"d{d:04d}", X, y.astype(np.int64), np.arange(k), np.arange(k, p["windows"])))
    server = [dev for dev in devices if dev.subject in spec.server_subjects]
    devices = [dev for dev in devices if dev.subject not in spec.server_subjects]
    return _Built(devices, server, tuple(range(p["classes"])))


@lru_cache(maxsize=2)
def _build(spec: DataSpec) -> _Built:
    from simulations.readers import load_dataset

    if spec.dataset == "synthetic":
        return _build_synthetic(spec)
    from simulations.splits import client_partition, position_domains, time_split
    from simulations.windows import make_windows

    path = Path(spec.path)
    ds = load_dataset(spec.dataset, path, **spec.options())
    unknown = set(spec.server_subjects) - set(ds.subjects)
    if unknown:
        raise ValueError(f"unknown server subject(s) {sorted(unknown)}; subjects are {ds.subjects}")
    if spec.clients_by == "subject-position":
        views = list(position_domains(ds).items())
    else:
        views = [("", ds)]
    wsets = [(p, make_windows(view, spec.window_s)) for p, view in views]
    classes = tuple(sorted(set(np.concatenate([ws.y for _, ws in wsets]).tolist())))
    index = {c: i for i, c in enumerate(classes)}
    rows: list[tuple[tuple, _Device]] = []
    for order, (pos, ws) in enumerate(wsets):
        parts = client_partition(ws, spec.clients_by)
        for key, idx in parts.items():
            subject = str(ws.subject[idx[0]])
            tr, te = time_split(ws, idx, spec.train_fraction)
            sub = ws.subset(np.concatenate([tr, te]))
            X = sub.features() if spec.representation == "features" else np.ascontiguousarray(sub.X.transpose(0, 2, 1))
            y = np.array([index[c] for c in sub.y.tolist()], dtype=np.int64)
            dev = _Device(key, subject, X.astype(np.float32, copy=False), y, np.arange(len(tr)), np.arange(len(tr), len(tr) + len(te)))
            rows.append(((natural_key(subject), order), dev))
    rows.sort(key=lambda r: r[0])
    devices = [d for _, d in rows if d.subject not in spec.server_subjects]
    server = [d for _, d in rows if d.subject in spec.server_subjects]
    if not devices:
        raise ValueError("the server holds every subject: no device is left to federate")
    return _Built(devices, server, classes)


def device_ids(spec: DataSpec) -> list[str]:
    """Client ids in partition order (``p1/T``, ``p1/RA``, ... or ``p1``, ``p2``, ...)."""
    return [d.client_id for d in _build(spec).devices]


def _standardise(dev: _Device, idx: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Standardise ``dev.X[idx]`` with the statistics of ``dev.X[ref]`` (its training windows)."""
    axes = (0, 2) if dev.X.ndim == 3 else (0,)
    base = dev.X[ref]
    mean = base.mean(axis=axes, keepdims=True)
    std = base.std(axis=axes, keepdims=True)
    std = np.where(std > 1e-6, std, 1.0)
    return ((dev.X[idx] - mean) / std).astype(np.float32)


def load_partition(spec: DataSpec, partition_id: int) -> ClientData:
    """The data of device ``partition_id``, as that device holds it."""
    built = _build(spec)
    if not 0 <= partition_id < len(built.devices):
        raise ValueError(f"partition-id {partition_id} out of range: there are {len(built.devices)} devices")
    d = built.devices[partition_id]
    return ClientData(
        client_id=d.client_id,
        X_train=_standardise(d, d.train, d.train),
        y_train=d.y[d.train],
        X_test=_standardise(d, d.test, d.train),
        y_test=d.y[d.test],
        classes=built.classes,
    )


def load_server_data(spec: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    """All windows of the server-held subjects' devices, each standardised on its own.

    Empty arrays when the server holds no subject.
    """
    built = _build(spec)
    if not built.server:
        return np.zeros((0,), np.float32), np.zeros((0,), np.int64)
    Xs, ys = [], []
    for d in built.server:
        every = np.arange(len(d.y))
        Xs.append(_standardise(d, every, every))
        ys.append(d.y)
    return np.concatenate(Xs), np.concatenate(ys)


def load_pooled(spec: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    """Every federation device's training windows pooled (the centralised upper bound)."""
    parts = [load_partition(spec, i) for i in range(len(_build(spec).devices))]
    return np.concatenate([p.X_train for p in parts]), np.concatenate([p.y_train for p in parts])
