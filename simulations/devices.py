"""How the harness turns a dataset into devices: one store per device, written once.

A federated device trains on its own store (:mod:`fedotl.client.store`).
Here the harness plays the part of every device's recorder: it reads the
dataset, cuts its windows, partitions them into devices and writes each
device's windows to its store, in recorded order:

* ``clients-by subject``: one device per subject;
* ``clients-by subject-position`` (the default): one per subject × body
  position (DSADS T/RA/LA/RL/LL, PAMAP2 hand/chest/ankle).  A dataset
  without body positions (a generic CSV) falls back to one device per
  subject, and :attr:`DeviceSet.note` says so;
* ``clients-by dirichlet``: ``dirichlet-clients`` devices with label-skewed
  shares of every subject's windows (:func:`fedotl.simulations.splits.dirichlet_partition`);
* ``dataset synthetic``: the in-memory benchmark generator (``data-path
  "devices=N,classes=K,channels=C,length=L,windows=W"``).

Devices are numbered in a fixed order (subjects in natural order, then body
positions in the dataset's order); the subjects in ``server-subjects`` go to
the server's own stores (``<root>/cloud``) instead, and the subjects in
``holdout-subjects`` get no store at all: they are the new users that
``fedotl newuser`` streams.  The folder is named by
a hash of everything written, under ``$FEDOTL_CACHE_DIR/stores/``: the same
data gives the same folder, written once and reused by every later run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from fedotl.client.config import RunConfig
from fedotl.client.data import CLOUD, partition_dir
from fedotl.client.store import DeviceStore
from fedotl.simulations.cache import cache_dir
from fedotl.simulations.dataset import natural_key

STORES_VERSION = 2  # 2: stores name their classes


@dataclass
class Device:
    """One device's recorded windows, as its recorder would append them."""

    client_id: str
    subject: str
    position: str
    X: np.ndarray  # (N, L, C) float32 raw windows
    y: np.ndarray  # (N,) activity codes
    session: np.ndarray  # (N,) recording of each window
    start: np.ndarray  # (N,) first sample of each window in its recording


@dataclass
class Devices:
    devices: list[Device]  # the federation, in partition order
    cloud: list[Device]  # the server-held subjects' devices
    classes: tuple[int, ...]
    channels: list[dict]
    rate_hz: float
    window_rows: int
    note: str = ""
    labels: tuple[str, ...] | None = None  # a name per class, when the dataset has them

    def class_name(self, code: int) -> str:
        """The dataset's name of class ``code`` (``labels`` follow ``classes``), else the code itself."""
        if self.labels and code in self.classes:
            return str(self.labels[self.classes.index(code)])
        return str(code)


@dataclass
class DeviceSet:
    """Device stores on disk: ``root/devices/<partition-id>`` and ``root/cloud/<i>``."""

    root: Path
    ids: list[str]
    cloud_ids: list[str] = field(default_factory=list)
    note: str = ""

    def store(self, partition_id: int) -> Path:
        return partition_dir(self.root, partition_id)


# ------------------------------------------------------------ synthetic benchmark data
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


def synthetic_devices(cfg: RunConfig) -> Devices:
    """Device ``d`` has ``windows`` windows (``length`` × ``channels``) cycling through the classes
    in time order; class ``k`` is a sine of frequency ``k + 1`` with a device-specific gain and
    offset, plus noise."""
    path = str(cfg.data_path)
    p = parse_synthetic(path if path != "synthetic" else "")
    t = np.linspace(0, 2 * np.pi, p["length"], dtype=np.float32)
    out = []
    for d in range(p["devices"]):
        rng = np.random.default_rng([d, 12345])
        y = np.arange(p["windows"]) % p["classes"]
        gain = rng.uniform(0.5, 2.0, (1, p["channels"], 1)).astype(np.float32)
        offset = rng.normal(0, 1, (1, p["channels"], 1)).astype(np.float32)
        X = np.sin(np.outer(y + 1, t))[:, None, :].astype(np.float32) * gain + offset
        X += rng.normal(0, 0.3, X.shape).astype(np.float32)
        n = p["windows"]
        name = f"d{d:04d}"
        out.append(Device(name, name, "", np.ascontiguousarray(X.transpose(0, 2, 1)), y.astype(np.int64), np.zeros(n, np.int64), np.arange(n) * p["length"]))
    channels = [{"name": f"ch{c}"} for c in range(p["channels"])]
    return _split_cloud(out, cfg, tuple(range(p["classes"])), channels, 1.0, p["length"])


# ------------------------------------------------------------ real datasets
def dataset_devices(cfg: RunConfig) -> Devices:
    """Read the dataset and cut it into devices (see the module docstring)."""
    from fedotl.simulations.readers import load_dataset
    from fedotl.simulations.splits import client_partition, dirichlet_partition, position_domains
    from fedotl.simulations.windows import make_windows

    options: dict[str, object] = {}
    if cfg.rate_hz:
        options["rate_hz"] = float(cfg.rate_hz)
    if cfg.label_track:
        options["label_track"] = str(cfg.label_track)
    ds = load_dataset(str(cfg.dataset), Path(str(cfg.data_path)), **options)
    for what, chosen in (("server", cfg.server_subject_list), ("held-out", cfg.holdout_subject_list)):
        unknown = set(chosen) - set(ds.subjects)
        if unknown:
            raise ValueError(f"unknown {what} subject(s) {sorted(unknown)}; subjects are {ds.subjects}")
    by, note = str(cfg.clients_by), ""
    if by == "subject-position" and not ds.positions:
        by, note = "subject", f"{ds.name} has no body positions: one device per subject"
    views = list(position_domains(ds).items()) if by == "subject-position" else [("", ds)]
    wsets = [(pos, make_windows(view, float(cfg.window_seconds))) for pos, view in views]
    classes = tuple(sorted(set(np.concatenate([ws.y for _, ws in wsets]).tolist())))
    rows: list[tuple[tuple, Device]] = []
    for order, (pos, ws) in enumerate(wsets):
        if by == "dirichlet":
            parts = dirichlet_partition(ws.y, int(cfg.dirichlet_clients), float(cfg.dirichlet_alpha), seed=int(cfg.seed))
            items = [(f"c{k:03d}", idx) for k, idx in enumerate(parts)]
        else:
            items = list(client_partition(ws, by).items())
        for key, idx in items:
            subject = str(ws.subject[idx[0]]) if by != "dirichlet" else key
            dev = Device(key, subject, pos, ws.X[idx], ws.y[idx], ws.recording[idx], ws.start[idx])
            rows.append(((natural_key(subject), order), dev))
    rows.sort(key=lambda r: r[0])
    channels = [asdict(c) for c in wsets[0][1].channels]
    labels = tuple(ds.activities.get(c, str(c)) for c in classes)
    return _split_cloud([d for _, d in rows], cfg, classes, channels, ds.rate_hz, wsets[0][1].length, note, labels)


def _split_cloud(devices: list[Device], cfg: RunConfig, classes, channels, rate_hz, window_rows, note: str = "", labels=None) -> Devices:
    server, held_out = set(cfg.server_subject_list), set(cfg.holdout_subject_list)
    if held_out and held_out.isdisjoint(d.subject for d in devices):
        raise ValueError(f"held-out subject(s) {sorted(held_out)} have no device")
    devices = [d for d in devices if d.subject not in held_out]
    fed = [d for d in devices if d.subject not in server]
    cloud = [d for d in devices if d.subject in server]
    if not fed:
        raise ValueError("the server holds or holds out every subject: no device is left to federate")
    return Devices(fed, cloud, tuple(classes), list(channels), float(rate_hz), int(window_rows), note, labels)


def build_devices(cfg: RunConfig) -> Devices:
    return synthetic_devices(cfg) if cfg.dataset == "synthetic" else dataset_devices(cfg)


# ------------------------------------------------------------ stores on disk
def content_hash(devs: Devices) -> str:
    """A digest of every array and label written: equal data, equal folder."""
    h = hashlib.blake2b(digest_size=12)
    meta = {"v": STORES_VERSION, "classes": devs.classes, "channels": devs.channels, "rate": devs.rate_hz, "rows": devs.window_rows, "labels": devs.labels}
    h.update(json.dumps(meta, sort_keys=True).encode())
    for tag, group in (("d", devs.devices), ("c", devs.cloud)):
        for d in group:
            h.update(f"{tag}|{d.client_id}|{d.subject}|{d.position}|{d.X.shape}".encode())
            for a in (d.X, d.y, d.session, d.start):
                h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _write(devs: Devices, root: Path) -> None:
    def one(path: Path, d: Device) -> None:
        store = DeviceStore.create(
            path, device=d.client_id, channels=devs.channels, rate_hz=devs.rate_hz, window_rows=devs.window_rows,
            classes=devs.classes, subject=d.subject, position=d.position, labels=devs.labels,
        )
        store.append(d.X, d.y, session=d.session, start=d.start)

    for i, d in enumerate(devs.devices):
        one(partition_dir(root, i), d)
    for i, d in enumerate(devs.cloud):
        one(root / CLOUD / f"{i:05d}", d)
    index = {"devices": [d.client_id for d in devs.devices], "cloud": [d.client_id for d in devs.cloud]}
    (root / "index.json").write_text(json.dumps(index, indent=1))


def write_devices(devs: Devices, root: Path | None = None) -> DeviceSet:
    """Write every device's store under ``root`` (default: the cache, by content), once."""
    if root is None:
        base = cache_dir()
        if base is None:
            raise ValueError("the store cache is off (FEDOTL_CACHE_DIR=off): give the stores a folder")
        root = base / "stores" / content_hash(devs)
    root = Path(root)
    if not (root / "index.json").exists():
        if root.exists() and any(root.iterdir()):
            raise ValueError(f"{root}: exists and is not a device-store folder; choose an empty or new folder")
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
        try:
            _write(devs, tmp)
            if root.exists():
                root.rmdir()  # empty, checked above
            try:
                os.replace(tmp, root)  # whole or not at all
            except OSError:
                if not (root / "index.json").exists():
                    raise  # not a concurrent writer of the same content: a real failure
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return DeviceSet(root, [d.client_id for d in devs.devices], [d.client_id for d in devs.cloud], devs.note)


def prepare_devices(cfg: Mapping[str, object], root: Path | None = None) -> DeviceSet:
    """The device stores of ``cfg``'s harness keys, written once (see :func:`write_devices`).

    A dataset whose devices hold fewer than two classes is refused, naming it, before any store is written:
    nothing could be learnt from it."""
    c = cfg if isinstance(cfg, RunConfig) else RunConfig(cfg)
    devs = build_devices(c)
    present = np.unique(np.concatenate([d.y for d in devs.devices])) if devs.devices else np.array([], dtype=np.int64)
    if len(present) < 2:
        names = [devs.class_name(int(code)) for code in present]
        raise ValueError(f"{c.data_path}: the devices' windows hold {len(present)} class(es) {names}; training needs at least two")
    return write_devices(devs, root)
