"""Cache parsed datasets as folders of ``.npy`` files.

Parsing raw text (DSADS is 420 MB of CSV inside an LZMA zip) dominates load
time, so a reader stores the parsed :class:`HARDataset` once and reloads it in
well under a second afterwards (the arrays are memory-mapped).

The cache key covers the source's absolute path, size and modification time
(for a folder: every data file under it), the reader's options and
:data:`FORMAT_VERSION`.  A change to any of them means a new key, so a stale
entry is never read.  Entries are written to a temporary file and renamed
into place, so an interrupted run never leaves a half-written cache behind:
a leftover ``*.tmp`` folder is never read.

The directory is ``$FEDOTL_CACHE_DIR`` when set, else ``~/.cache/fedotl``.
Setting ``FEDOTL_CACHE_DIR=off`` disables caching.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from fedotl.simulations.dataset import Channel, HARDataset, Recording

FORMAT_VERSION = 1


def cache_dir() -> Path | None:
    env = os.environ.get("FEDOTL_CACHE_DIR")
    if env == "off":
        return None
    return Path(env) if env else Path.home() / ".cache" / "fedotl"


def source_fingerprint(files: Iterable[Path]) -> list[tuple[str, int, int]]:
    """(absolute path, size, mtime in ns) of each source file, sorted."""
    out = []
    for f in files:
        st = os.stat(f)
        out.append((str(Path(f).resolve()), st.st_size, st.st_mtime_ns))
    return sorted(out)


def cache_key(reader: str, files: Iterable[Path], options: dict) -> str:
    payload = json.dumps(
        {
            "v": FORMAT_VERSION,
            "reader": reader,
            "files": source_fingerprint(files),
            "options": options,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def load_or_build(
    reader: str, files: Iterable[Path], options: dict, build: Callable[[], HARDataset]
) -> HARDataset:
    """Return the cached dataset for this source, building and storing it if absent."""
    root = cache_dir()
    if root is None:
        return build()
    path = root / f"{reader}-{cache_key(reader, files, options)}"
    if (path / "meta.json").exists():
        try:
            return load_entry(path)
        except Exception:  # a corrupt entry is rebuilt, not trusted
            shutil.rmtree(path, ignore_errors=True)
    ds = build()
    try:
        save_entry(ds, path)
    except OSError:
        pass  # a read-only or full cache directory must not break loading
    return ds


@contextlib.contextmanager
def staged_dir(path: Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` to fill; renamed to ``path`` when the block succeeds, removed if it
    fails, so ``path`` appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp"))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_entry(ds: HARDataset, path: Path) -> None:
    """Write ``ds`` as .npy files in a temporary folder, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    recs = ds.recordings
    c = ds.n_channels
    has_seg = bool(recs) and all(r.segment is not None for r in recs)
    arrays = {
        "data": np.concatenate([r.data for r in recs]) if recs else np.zeros((0, c), np.float32),
        "labels": np.concatenate([r.labels for r in recs]) if recs else np.zeros(0, np.int64),
        "lengths": np.array([len(r) for r in recs], dtype=np.int64),
        "segment": np.concatenate([r.segment for r in recs]) if has_seg else np.zeros(0, np.int32),
    }
    meta = {
        "name": ds.name,
        "rate_hz": ds.rate_hz,
        "source": ds.source,
        "notes": ds.notes,
        "channels": [c.__dict__ for c in ds.channels],
        "activities": [[k, v] for k, v in ds.activities.items()],
        "recordings": [[r.subject, r.session, r.position, r.t0] for r in recs],
        "has_segment": has_seg,
    }
    with staged_dir(path) as tmp:
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", arr)
        # meta.json last: its presence marks a complete entry.
        (tmp / "meta.json").write_text(json.dumps(meta))


def load_entry(path: Path) -> HARDataset:
    """Load an entry; arrays are memory-mapped read-only, so this is near-instant."""
    meta = json.loads((path / "meta.json").read_text())
    data = np.load(path / "data.npy", mmap_mode="r")
    labels = np.load(path / "labels.npy", mmap_mode="r")
    lengths = np.load(path / "lengths.npy")
    segment = np.load(path / "segment.npy", mmap_mode="r")
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    if bounds[-1] != len(data) or len(meta["recordings"]) != len(lengths):
        raise ValueError(f"inconsistent cache entry {path}")
    recs = []
    for i, (subject, session, position, t0) in enumerate(meta["recordings"]):
        a, b = bounds[i], bounds[i + 1]
        recs.append(
            Recording(
                subject=subject,
                data=data[a:b],
                labels=labels[a:b],
                session=session,
                position=position,
                t0=t0,
                segment=segment[a:b] if meta["has_segment"] else None,
            )
        )
    return HARDataset(
        name=meta["name"],
        rate_hz=meta["rate_hz"],
        channels=[Channel(**c) for c in meta["channels"]],
        activities={int(k): v for k, v in meta["activities"]},
        recordings=recs,
        source=meta["source"],
        notes=meta["notes"],
    )
