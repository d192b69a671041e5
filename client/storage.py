"""What a device writes to its own disk: its personalised head (FedHealth).

The personalised FC layers are the device's model of its own user, so they
never travel: the node writes them to ``<out-dir>/heads/<client>.npz`` on its
own filesystem and replies with metrics only.  In a simulation every node
shares the machine, so the heads land in the run directory next to the
server's files; under the Deployment Engine each device writes under the
same ``out-dir`` path on its own disk.  Files appear whole or not at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np


def safe_name(client_id: str) -> str:
    """A file name for a client id such as ``p1/RA``.

    >>> safe_name("p1/RA")
    'p1_RA'
    """
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in client_id)


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """``np.savez`` through a temporary file and a rename, so a crash leaves no half file."""
    tmp = write_temporary_npz(path, arrays)
    os.replace(tmp, path)
    return path


def write_temporary_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """``arrays`` as a hidden temporary file beside ``path``, on disk (fsync) before it is renamed or linked into place.

    The fsync is for a device that loses power: without it the rename can reach the disk before the data.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
        f.flush()
        os.fsync(f.fileno())
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename: a reader sees the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def save_head(out_dir: str, client_id: str, head: Mapping[str, np.ndarray]) -> Path | None:
    """Write this device's personalised head under ``out_dir`` (nothing without one)."""
    if not out_dir or not head:
        return None
    return save_npz(Path(out_dir) / "heads" / f"{safe_name(client_id)}.npz", head)
