"""Window a whole :class:`HARDataset`, keeping where each window came from.

The device-side work (cutting windows, computing features) lives in
:mod:`fedotl.client.windowing` and :mod:`fedotl.client.features`; this module applies it
to every recording and records, per window, its subject, position,
recording and time span, which the splits need to avoid leakage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fedotl.client.features import STATS, feature_names, sensor_triples, window_features
from fedotl.client.windowing import seconds_to_rows, sliding_windows
from fedotl.simulations.dataset import Channel, HARDataset


@dataclass
class WindowSet:
    """Windows of a dataset plus per-window provenance (all arrays length N)."""

    X: np.ndarray  # (N, L, C) float32 raw windows
    y: np.ndarray  # (N,) activity codes
    subject: np.ndarray  # (N,) str
    position: np.ndarray  # (N,) str, "" when not per position
    recording: np.ndarray  # (N,) index into the dataset's recordings
    start: np.ndarray  # (N,) first row within its recording
    purity: np.ndarray  # (N,) share of the majority label
    length: int  # rows per window
    rate_hz: float
    channels: list[Channel]
    activities: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def start_s(self) -> np.ndarray:
        return self.start / self.rate_hz

    def subset(self, idx: np.ndarray) -> "WindowSet":
        idx = np.asarray(idx)
        return WindowSet(
            X=self.X[idx], y=self.y[idx], subject=self.subject[idx], position=self.position[idx],
            recording=self.recording[idx], start=self.start[idx], purity=self.purity[idx],
            length=self.length, rate_hz=self.rate_hz, channels=self.channels, activities=self.activities,
        )

    def triples(self) -> list[tuple[int, int, int]]:
        return sensor_triples(
            [c.name for c in self.channels],
            [f"{c.position}_{c.sensor}" if c.sensor else "" for c in self.channels],
            [c.axis for c in self.channels],
        )

    def features(self, stats: tuple[str, ...] = STATS, magnitude: bool = True) -> np.ndarray:
        """Per-window feature matrix; see :mod:`fedotl.client.features` for the list."""
        return window_features(self.X, self.triples() if magnitude else (), stats)

    def feature_names(self, stats: tuple[str, ...] = STATS, magnitude: bool = True) -> list[str]:
        return feature_names([c.name for c in self.channels], self.triples() if magnitude else (), stats)

    def overlaps(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether any window in index set ``a`` shares rows with one in ``b``."""
        a, b = np.asarray(a), np.asarray(b)
        for rec in np.intersect1d(self.recording[a], self.recording[b]):
            sa = np.sort(self.start[a][self.recording[a] == rec])
            sb = self.start[b][self.recording[b] == rec]
            # For each b-window, the nearest a-window starting at or before it,
            # and the one after: an overlap means starts closer than L rows.
            pos = np.searchsorted(sa, sb, side="right")
            before = sa[np.clip(pos - 1, 0, len(sa) - 1)]
            after = sa[np.clip(pos, 0, len(sa) - 1)]
            if (np.abs(sb - before) < self.length).any() or (np.abs(after - sb) < self.length).any():
                return True
        return False


def make_windows(
    ds: HARDataset,
    length_s: float,
    stride_s: float | None = None,
    min_purity: float | None = None,
) -> WindowSet:
    """Cut every recording of ``ds`` into windows of ``length_s`` every ``stride_s`` seconds.

    ``stride_s`` defaults to ``length_s`` (no overlap).  For DSADS, 5-second
    windows with a 5-second stride are exactly the original segments.
    """
    length = seconds_to_rows(length_s, ds.rate_hz, "window length")
    stride = seconds_to_rows(stride_s if stride_s is not None else length_s, ds.rate_hz, "stride")
    if min_purity is not None and not 0.0 < min_purity <= 1.0:
        raise ValueError(f"purity must be in (0, 1], got {min_purity}")
    parts = []
    for i, r in enumerate(ds.recordings):
        w, lab, start, pur = sliding_windows(r.data, r.labels, length, stride, min_purity)
        parts.append((i, r, w, lab, start, pur))
    n = [len(p[3]) for p in parts]
    if sum(n) == 0:
        raise ValueError(f"no {length_s:g}-second window fits in any recording of {ds.name}")
    return WindowSet(
        X=np.concatenate([p[2] for p in parts]).astype(np.float32, copy=False),
        y=np.concatenate([p[3] for p in parts]),
        subject=np.repeat([r.subject for _, r, *_ in parts], n),
        position=np.repeat([r.position for _, r, *_ in parts], n),
        recording=np.repeat([i for i, *_ in parts], n),
        start=np.concatenate([p[4] for p in parts]),
        purity=np.concatenate([p[5] for p in parts]),
        length=length,
        rate_hz=ds.rate_hz,
        channels=list(ds.channels),
        activities=dict(ds.activities),
    )
