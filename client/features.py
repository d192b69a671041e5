"""Per-window time-domain features, computed on the device.

For each channel of an (N, L, C) window batch, and for one extra
**magnitude** channel ``sqrt(x² + y² + z²)`` per sensor triple (orientation
invariant, which helps across subjects and mountings), the default feature
set is, in this order:

======== =====================================================
mean     arithmetic mean
std      standard deviation (population, ddof=0)
min      minimum
max      maximum
p10      10th percentile (linear interpolation)
p25      25th percentile
p50      median
p75      75th percentile
p90      90th percentile
energy   mean of squares, ``mean(x²)``
======== =====================================================

Features are laid out stat-major within channel: ``[ch0_mean, ch0_std, ...,
ch0_energy, ch1_mean, ...]``, with magnitude channels after the raw ones;
:func:`feature_names` gives the names.  Everything is vectorised over windows.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

STATS = ("mean", "std", "min", "max", "p10", "p25", "p50", "p75", "p90", "energy")
#: the online learners' features (``fedotl stream`` and a streaming device), no magnitudes
ONLINE_STATS = ("mean", "std", "min", "max", "p25", "p75")
_PERCENTILES = {"p10": 10, "p25": 25, "p50": 50, "p75": 75, "p90": 90}


def sensor_triples(channel_names: Sequence[str], sensors: Sequence[str], axes: Sequence[str]) -> list[tuple[int, int, int]]:
    """Column indices of each (x, y, z) triple sharing a sensor tag.

    ``sensors[i]``/``axes[i]`` describe channel i (e.g. "RA_acc", "x"); a
    triple counts only when all three axes are present.
    """
    found: dict[str, dict[str, int]] = {}
    for i, (s, a) in enumerate(zip(sensors, axes)):
        if s and a in ("x", "y", "z"):
            found.setdefault(s, {})[a] = i
    return [(d["x"], d["y"], d["z"]) for d in found.values() if len(d) == 3]


def add_magnitudes(windows: np.ndarray, triples: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """Append one magnitude channel per triple to (N, L, C) windows."""
    if not triples:
        return windows
    idx = np.asarray(triples)
    mags = np.sqrt(np.square(windows[..., idx]).sum(axis=-1))  # (N, L, n_triples)
    return np.concatenate([windows, mags.astype(windows.dtype)], axis=-1)


def window_features(
    windows: np.ndarray,
    triples: Sequence[tuple[int, int, int]] = (),
    stats: Sequence[str] = STATS,
) -> np.ndarray:
    """(N, L, C) windows → (N, (C + len(triples)) · len(stats)) float32 features.

    >>> w = np.array([[[1.0], [2.0], [3.0], [4.0]]])  # one window, one channel
    >>> window_features(w, stats=("mean", "min", "max", "energy")).tolist()
    [[2.5, 1.0, 4.0, 7.5]]
    """
    unknown = [s for s in stats if s not in STATS]
    if unknown:
        raise ValueError(f"unknown feature statistic(s) {unknown}; known: {STATS}")
    if windows.ndim != 3:
        raise ValueError(f"windows must be (N, L, C), got shape {windows.shape}")
    x = add_magnitudes(np.asarray(windows, dtype=np.float32), triples)
    # (N, C', L) contiguous: every reduction runs along the last, fastest axis.
    x = np.ascontiguousarray(x.transpose(0, 2, 1))
    cols: dict[str, np.ndarray] = {}
    if "mean" in stats or "std" in stats:
        cols["mean"] = x.mean(axis=-1)
    if "std" in stats:
        cols["std"] = x.std(axis=-1)
    if "energy" in stats:
        cols["energy"] = np.square(x).mean(axis=-1)
    if any(s in _PERCENTILES or s in ("min", "max") for s in stats):
        # One SIMD sort gives min, max and every percentile, far faster than
        # np.percentile's partition per quantile.
        srt = np.sort(x, axis=-1)
        cols["min"], cols["max"] = srt[..., 0], srt[..., -1]
        last = srt.shape[-1] - 1
        for name in (s for s in stats if s in _PERCENTILES):
            pos = _PERCENTILES[name] / 100.0 * last  # numpy's default "linear" method
            lo = int(np.floor(pos))
            hi = min(lo + 1, last)
            frac = np.float32(pos - lo)
            cols[name] = srt[..., lo] + (srt[..., hi] - srt[..., lo]) * frac
    # (N, C', S) then flatten: stat-major within channel.
    return np.stack([cols[s] for s in stats], axis=-1).reshape(len(x), -1).astype(np.float32)


def feature_names(
    channel_names: Sequence[str], triples: Sequence[tuple[int, int, int]] = (), stats: Sequence[str] = STATS
) -> list[str]:
    names = list(channel_names)
    for i, _, _ in triples:
        base = names[i]
        names.append((base[:-2] if base[-2:] in ("_x", "_X") else base) + "_mag")
    return [f"{c}_{s}" for c in names for s in stats]
