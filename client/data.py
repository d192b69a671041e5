"""How a device turns its own store into training and test data.

A device reads nothing but its store (:mod:`fedotl.client.store`): the
labelled windows it has recorded so far.  Which store is set per node:

* a SuperNode's node config ``data-dir`` names its own store
  (``flower-supernode --node-config "data-dir=/var/lib/fedotl/store"``);
* otherwise the run config ``data-dir`` holds one store per partition,
  ``<data-dir>/devices/<partition-id>`` (what the simulation harness writes).

From its store a device builds, in this order:

* the time split: per activity, the earliest ``train-fraction`` of its
  windows (in recorded order) train and the rest test; test windows that
  share samples with a training window are purged (:func:`time_split`);
* the inputs: raw windows (N, C, L) for the CNN, or per-window features
  (:mod:`fedotl.client.features`) for the MLP;
* standardisation per channel (or per feature) with the mean and standard
  deviation of its own *training* windows, as a wearable calibrates itself.

The server's own data (FedHealth's cloud) is ``<data-dir>/cloud/<i>``: stores
in the same format (:func:`load_cloud`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np

from fedotl.client.features import sensor_triples, window_features
from fedotl.client.store import DeviceStore, Snapshot, StoreError

DEVICES = "devices"
CLOUD = "cloud"


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


def partition_dir(data_dir: str | Path, partition_id: int) -> Path:
    """``<data-dir>/devices/<partition-id>``: where the harness puts device ``partition_id``'s store."""
    return Path(data_dir) / DEVICES / f"{int(partition_id):05d}"


def store_dir(node_config: Mapping[str, object], run_data_dir: str, partition_id: int) -> Path:
    """This node's store: its node config ``data-dir``, else its partition under the run's ``data-dir``."""
    own = str(node_config.get("data-dir", "") or "")
    if own:
        return Path(own)
    if not run_data_dir:
        raise StoreError("no device store: set node config data-dir (a SuperNode's own store) or run config data-dir")
    return partition_dir(run_data_dir, partition_id)


def time_split(y: np.ndarray, session: np.ndarray, start: np.ndarray, length: int, train_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Per activity, the earliest ``train_fraction`` of the windows train, the rest test.

    Windows are ordered by (session, start).  For each activity the boundary
    falls after the k-th window, k = max(1, round(F · n)); test windows are
    those that share no samples with any training window, so windows that
    straddle the boundary are dropped (purged), never leaked.

    >>> y = np.array([0, 0, 0, 0]); start = np.array([0, 2, 4, 6])  # windows of 4 samples, stride 2
    >>> time_split(y, np.zeros(4, int), start, 4, 0.5)
    (array([0, 1]), array([3]))
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train fraction must be in (0, 1), got {train_fraction}")
    train, test = [], []
    for c in np.unique(y):
        own = np.flatnonzero(y == c)
        own = own[np.lexsort((start[own], session[own]))]
        k = min(max(1, int(round(train_fraction * len(own)))), len(own) - 1) if len(own) > 1 else len(own)
        tr, rest = own[:k], own[k:]
        if len(rest):
            # A later window overlaps the training set only if it is in the
            # same session as the last training window and starts within L samples.
            last = tr[-1]
            near = (session[rest] == session[last]) & (start[rest] - start[last] < length)
            rest = rest[~near]
        train.append(tr)
        test.append(rest)
    if not train:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def window_inputs(X: np.ndarray, channels: list[dict], representation: str) -> np.ndarray:
    """The model's inputs from raw (N, L, C) windows: (N, C, L) windows, or (N, F) features."""
    if representation == "features":
        triples = sensor_triples(
            [c.get("name", "") for c in channels],
            [f"{c.get('position', '')}_{c['sensor']}" if c.get("sensor") else "" for c in channels],
            [c.get("axis", "") for c in channels],
        )
        return window_features(X, triples).astype(np.float32, copy=False)
    return np.ascontiguousarray(X.transpose(0, 2, 1)).astype(np.float32, copy=False)


def model_inputs(snap: Snapshot, representation: str) -> np.ndarray:
    """:func:`window_inputs` of a store snapshot."""
    return window_inputs(snap.X, snap.meta["channels"], representation)


def input_stats(ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of ``ref`` per channel ((N, C, L) windows) or per feature ((N, F)); a flat std counts as 1."""
    axes = (0, 2) if ref.ndim == 3 else (0,)
    mean = ref.mean(axis=axes, keepdims=True)
    std = ref.std(axis=axes, keepdims=True)
    return mean, np.where(std > 1e-6, std, 1.0)


def standardise(X: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``X`` standardised per channel (windows) or per feature with the statistics of ``ref``."""
    mean, std = input_stats(ref)
    return ((X - mean) / std).astype(np.float32)


def class_indices(snap: Snapshot) -> np.ndarray:
    index = {c: i for i, c in enumerate(snap.classes)}
    unknown = sorted(set(snap.y.tolist()) - set(index))
    if unknown:
        raise StoreError(f"{snap.device}: labels {unknown} are not in the store's classes {list(snap.classes)}")
    return np.array([index[c] for c in snap.y.tolist()], dtype=np.int64)


def representation_of(model: str) -> str:
    return "features" if model == "mlp" else "windows"


def load_device(path: str | Path, train_fraction: float, representation: str = "windows") -> ClientData:
    """The device's data from the store at ``path``, split by time and standardised.

    Cached per store content, so the handlers of one node share one load
    until the device records more.
    """
    store = DeviceStore(path)
    return _load_device(str(Path(path).resolve()), store.fingerprint(), float(train_fraction), representation)


@lru_cache(maxsize=4)
def _load_device(path: str, _fingerprint: tuple, train_fraction: float, representation: str) -> ClientData:
    snap = DeviceStore(path).snapshot()
    if len(snap.y) == 0:
        raise StoreError(f"{path}: the store holds no labelled window yet")
    y = class_indices(snap)
    X = model_inputs(snap, representation)
    tr, te = time_split(y, snap.session, snap.start, snap.window_rows, train_fraction)
    return ClientData(
        client_id=snap.device,
        X_train=standardise(X[tr], X[tr]),
        y_train=y[tr],
        X_test=standardise(X[te], X[tr]),
        y_test=y[te],
        classes=snap.classes,
    )


def cloud_dirs(data_dir: str | Path) -> list[Path]:
    root = Path(data_dir) / CLOUD
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def load_cloud(data_dir: str | Path, representation: str = "windows") -> tuple[np.ndarray, np.ndarray]:
    """All windows the server holds (``<data-dir>/cloud/*``), each store standardised on its own.

    Empty arrays when the server holds none.
    """
    Xs, ys = [], []
    for path in cloud_dirs(data_dir):
        snap = DeviceStore(path).snapshot()
        X = model_inputs(snap, representation)
        Xs.append(standardise(X, X))
        ys.append(class_indices(snap))
    if not Xs:
        return np.zeros((0,), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(Xs), np.concatenate(ys)
