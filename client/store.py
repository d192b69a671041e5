"""A device's local store of its labelled windows: the data it federates on.

A store is a folder on the device's own disk::

    store.json            who the device is, its channels, rate, window length, label vocabulary
    windows/000000.npz    a chunk of windows: X (n, L, C) float32 raw samples,
    windows/000001.npz    y (n,) activity codes, session (n,) and start (n,) sample index
    ...

The device appends chunks as it records (:meth:`DeviceStore.append`); the
simulation harness writes a replayed device's whole recording as one chunk.
Every file is written to a temporary name, flushed to disk, and renamed (a
chunk: hard-linked, so that it never replaces another) into place, so a
reader never sees half a chunk, and :meth:`DeviceStore.snapshot` reads the
chunks that were complete when it listed them: a training round that runs
while the device records gets a consistent snapshot.

>>> import tempfile, numpy as np
>>> root = tempfile.mkdtemp()
>>> store = DeviceStore.create(root, device="p1/RA", channels=[{"name": "ax"}], rate_hz=25.0, window_rows=4, classes=[1, 2])
>>> _ = store.append(np.zeros((3, 4, 1), np.float32), np.array([1, 1, 2]), session=np.zeros(3, int), start=np.array([0, 4, 8]))
>>> snap = DeviceStore(root).snapshot()
>>> snap.X.shape, snap.y.tolist(), snap.start.tolist()
((3, 4, 1), [1, 1, 2], [0, 4, 8])
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from fedotl.client.storage import write_temporary_npz

FORMAT = 1
META = "store.json"
CHUNKS = "windows"


class StoreError(ValueError):
    """A store folder that is missing, malformed or inconsistent (names the file)."""


@dataclass(frozen=True)
class Snapshot:
    """Every complete chunk of a store at one moment, concatenated in chunk order."""

    meta: dict
    X: np.ndarray  # (N, L, C) float32
    y: np.ndarray  # (N,) activity codes
    session: np.ndarray  # (N,) recording session
    start: np.ndarray  # (N,) first sample of the window within its session

    @property
    def device(self) -> str:
        return str(self.meta["device"])

    @property
    def classes(self) -> tuple[int, ...]:
        return tuple(int(c) for c in self.meta["classes"])

    @property
    def window_rows(self) -> int:
        return int(self.meta["window_rows"])


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


class DeviceStore:
    """Open the store in ``root`` (see the module docstring for its layout)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @classmethod
    def create(
        cls, root: str | os.PathLike, *, device: str, channels: Sequence[dict], rate_hz: float, window_rows: int,
        classes: Sequence[int], subject: str = "", position: str = "", labels: Sequence[str] | None = None,
    ) -> "DeviceStore":
        """A new, empty store; refuses a folder that already holds one.

        ``labels``, if given, names each class (same order): a streaming device reopening its
        store reads its label vocabulary from there.
        """
        if labels is not None and len(labels) != len(classes):
            raise StoreError(f"{root}: {len(labels)} label names for {len(classes)} classes")
        store = cls(root)
        if (store.root / META).exists():
            raise StoreError(f"{store.root / META}: a store is already there")
        (store.root / CHUNKS).mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT, "device": device, "subject": subject, "position": position,
            "channels": list(channels), "rate_hz": float(rate_hz), "window_rows": int(window_rows),
            "classes": [int(c) for c in classes],
        }
        if labels is not None:
            meta["labels"] = [str(n) for n in labels]
        _write_json(store.root / META, meta)
        return store

    def meta(self) -> dict:
        path = self.root / META
        try:
            meta = json.loads(path.read_text())
        except FileNotFoundError:
            raise StoreError(f"{path}: no device store here (write one with `fedotl data devices`)") from None
        except (OSError, json.JSONDecodeError) as e:
            raise StoreError(f"{path}: unreadable store metadata ({e})") from None
        if meta.get("format") != FORMAT:
            raise StoreError(f"{path}: store format {meta.get('format')!r}, expected {FORMAT}")
        return meta

    def chunks(self) -> list[Path]:
        return sorted(p for p in (self.root / CHUNKS).glob("*.npz") if not p.name.startswith("."))

    def append(self, X: np.ndarray, y: np.ndarray, *, session: np.ndarray, start: np.ndarray) -> Path:
        """Add one chunk of labelled windows, atomically."""
        meta = self.meta()
        X = np.asarray(X, np.float32)
        if X.ndim != 3 or X.shape[1] != meta["window_rows"] or X.shape[2] != len(meta["channels"]):
            raise StoreError(f"{self.root}: windows of shape {X.shape}, expected (n, {meta['window_rows']}, {len(meta['channels'])})")
        if not np.isfinite(X).all():
            raise StoreError(f"{self.root}: refusing windows with NaN or infinite values")
        n = len(X)
        if not (len(y) == len(session) == len(start) == n):
            raise StoreError(f"{self.root}: {n} windows but {len(y)} labels, {len(session)} sessions, {len(start)} starts")
        done = self.chunks()
        number = int(done[-1].stem) + 1 if done else 0
        arrays = {"X": X, "y": np.asarray(y, np.int64), "session": np.asarray(session, np.int64), "start": np.asarray(start, np.int64)}
        tmp = write_temporary_npz(self.root / CHUNKS / f"{number:06d}.npz", arrays)
        try:
            while True:
                # link, not rename: it never replaces a chunk that a second writer (a device
                # runtime started twice on one store) put under the same number
                path = self.root / CHUNKS / f"{number:06d}.npz"
                try:
                    os.link(tmp, path)
                    return path
                except FileExistsError:
                    number += 1
                except OSError as e:  # e.g. FAT, which has no hard links
                    raise StoreError(f"{self.root}: cannot add {path.name} ({e.strerror}); keep the store on a POSIX filesystem such as ext4") from None
        finally:
            tmp.unlink(missing_ok=True)

    def snapshot(self) -> Snapshot:
        meta = self.meta()
        parts = []
        for path in self.chunks():
            try:
                with np.load(path) as z:
                    parts.append({k: z[k] for k in ("X", "y", "session", "start")})
            except (OSError, KeyError, ValueError) as e:
                raise StoreError(f"{path}: unreadable chunk ({e})") from None
        if not parts:
            C, L = len(meta["channels"]), int(meta["window_rows"])
            empty = np.zeros(0, np.int64)
            return Snapshot(meta, np.zeros((0, L, C), np.float32), empty, empty, empty)
        cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return Snapshot(meta, cat["X"], cat["y"], cat["session"], cat["start"])

    def fingerprint(self) -> tuple:
        """Changes whenever a chunk is added: what a cache of this store keys on."""
        return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in self.chunks()) + ((self.root / META).stat().st_mtime_ns,)
