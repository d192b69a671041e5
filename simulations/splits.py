"""Train/test splits and client partitions over a :class:`WindowSet`.

Leakage rule: two windows that share sensor rows (same recording, starts
closer than one window length) never sit on both sides of a split.  Subject
splits satisfy it by construction; :func:`time_split` purges the windows that
straddle its boundary.  ``WindowSet.overlaps`` checks it and the tests use it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import numpy as np

from fedotl.client.data import time_split as device_time_split
from fedotl.simulations.dataset import HARDataset, natural_key
from fedotl.simulations.windows import WindowSet


# ------------------------------------------------------------ domain splits
def leave_one_subject_out(ws: WindowSet) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield ``(held_out_subject, train_idx, test_idx)`` for every subject."""
    subjects = sorted(set(ws.subject.tolist()), key=natural_key)
    if len(subjects) < 2:
        raise ValueError(f"leave-one-subject-out needs at least 2 subjects, got {subjects}")
    for s in subjects:
        test = np.flatnonzero(ws.subject == s)
        train = np.flatnonzero(ws.subject != s)
        yield s, train, test


def subject_split(ws: WindowSet, test_subjects: list[str]) -> tuple[np.ndarray, np.ndarray]:
    unknown = set(test_subjects) - set(ws.subject.tolist())
    if unknown:
        raise ValueError(f"unknown subject(s) {sorted(unknown)}; have {sorted(set(ws.subject.tolist()), key=natural_key)}")
    mask = np.isin(ws.subject, list(test_subjects))
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def position_domains(ds: HARDataset) -> dict[str, HARDataset]:
    """One dataset per body position (DSADS T/RA/LA/RL/LL, PAMAP2 hand/chest/ankle)."""
    if not ds.positions:
        raise ValueError(f"{ds.name} has no body positions to split by")
    return {p: ds.select_position(p) for p in ds.positions}


# Canonical names of activities that several datasets share, for the
# cross-dataset split.  Keys are canonical; values are each dataset's names.
SHARED_ACTIVITIES: dict[str, dict[str, tuple[str, ...]]] = {
    "lying": {"dsads": ("lying on back", "lying on right side"), "pamap2": ("lying",), "opportunity": ("Lie",)},
    "sitting": {"dsads": ("sitting",), "pamap2": ("sitting",), "opportunity": ("Sit",)},
    "standing": {"dsads": ("standing",), "pamap2": ("standing",), "opportunity": ("Stand",)},
    "walking": {"dsads": ("walking in a parking lot",), "pamap2": ("walking",), "opportunity": ("Walk",)},
    "running": {"dsads": ("running on a treadmill 8 km/h",), "pamap2": ("running",)},
    "cycling": {"dsads": ("cycling on an exercise bike horizontal",), "pamap2": ("cycling",)},
    "ascending stairs": {"dsads": ("ascending stairs",), "pamap2": ("ascending stairs",)},
    "descending stairs": {"dsads": ("descending stairs",), "pamap2": ("descending stairs",)},
    "jumping": {"dsads": ("jumping",), "pamap2": ("rope jumping",)},
}


def align_datasets(datasets: list[HARDataset]) -> list[HARDataset]:
    """Restrict datasets to the activities they all share, under common codes.

    Codes become indices into the sorted canonical names, so a model trained
    on one dataset predicts the same codes on the other.
    """
    shared = [
        canon
        for canon, per in SHARED_ACTIVITIES.items()
        if all(any(n in ds.activities.values() for n in per.get(_family(ds), ())) for ds in datasets)
    ]
    if not shared:
        names = [ds.name for ds in datasets]
        raise ValueError(f"datasets {names} share no activities")
    shared.sort()
    out = []
    for ds in datasets:
        remap: dict[int, int] = {}
        for new, canon in enumerate(shared):
            for code, name in ds.activities.items():
                if name in SHARED_ACTIVITIES[canon][_family(ds)]:
                    remap[code] = new
        sub = ds.select_activities(remap)
        recs = [replace(r, labels=_remap(r.labels, remap)) for r in sub.recordings]
        out.append(replace(sub, recordings=recs, activities=dict(enumerate(shared))))
    return out


def _family(ds: HARDataset) -> str:
    return ds.name.split(":")[0]


def _remap(labels: np.ndarray, remap: dict[int, int]) -> np.ndarray:
    keys = np.array(sorted(remap))
    vals = np.array([remap[k] for k in keys])
    return vals[np.searchsorted(keys, labels)]


# ------------------------------------------------------------ client partitions
def client_partition(ws: WindowSet, by: str = "subject") -> dict[str, np.ndarray]:
    """Window indices per device: one per subject, or per subject × position."""
    if by == "subject":
        keys = ws.subject.astype(str)
    elif by == "subject-position":
        if not (ws.position != "").all():
            raise ValueError("windows carry no position: build them per position (see position_domains)")
        keys = np.char.add(np.char.add(ws.subject.astype(str), "/"), ws.position.astype(str))
    else:
        raise ValueError(f"unknown partition {by!r}; use 'subject' or 'subject-position'")
    return {k: np.flatnonzero(keys == k) for k in sorted(set(keys.tolist()), key=natural_key)}


def dirichlet_partition(y: np.ndarray, n_clients: int, alpha: float, seed: int = 0, min_size: int = 1) -> list[np.ndarray]:
    """Label-skewed partition: each class's windows split by Dirichlet(alpha) shares.

    Small ``alpha`` gives each client few classes; large ``alpha`` approaches
    an even split.  Redraws (up to 100 times) until every client has at least
    ``min_size`` windows.
    """
    if n_clients < 1 or alpha <= 0:
        raise ValueError(f"need n_clients >= 1 and alpha > 0, got {n_clients}, {alpha}")
    if len(y) < n_clients * min_size:
        raise ValueError(f"{len(y)} windows cannot give {n_clients} clients {min_size} each")
    rng = np.random.default_rng(seed)
    for _ in range(100):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            cuts = (np.cumsum(rng.dirichlet(np.full(n_clients, alpha))) * len(idx)).astype(int)[:-1]
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].append(chunk)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return out
    raise ValueError(f"could not give every client {min_size} windows with alpha={alpha}; raise alpha")


# ------------------------------------------------------------ time split
def time_split(ws: WindowSet, idx: np.ndarray, train_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Per activity, the earliest ``train_fraction`` of a device's windows train, the rest test.

    The device's own rule (:func:`fedotl.client.data.time_split`) applied to
    the windows ``idx`` of ``ws``, with recordings as sessions: windows that
    straddle the boundary are purged, never leaked.
    """
    idx = np.asarray(idx)
    tr, te = device_time_split(ws.y[idx], ws.recording[idx], ws.start[idx], ws.length, train_fraction)
    return np.sort(idx[tr]), np.sort(idx[te])
