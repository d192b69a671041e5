"""Sliding windows over one sensor stream, as a device computes them.

Everything here is vectorised over windows: a stream of T rows becomes an
(N, L, C) strided view, and window labels come from cumulative label counts,
so there is no Python loop per window.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def window_bounds(n_rows: int, length: int, stride: int) -> np.ndarray:
    """Start row of every full window of ``length`` rows taken every ``stride`` rows."""
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1 row, got {length}, {stride}")
    if n_rows < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_rows - length + 1, stride, dtype=np.int64)


def seconds_to_rows(seconds: float, rate_hz: float, what: str = "window") -> int:
    rows = int(round(seconds * rate_hz))
    if rows < 1:
        raise ValueError(f"{what} of {seconds} s is shorter than one sample at {rate_hz} Hz")
    return rows


def sliding_windows(
    data: np.ndarray,
    labels: np.ndarray,
    length: int,
    stride: int,
    min_purity: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut a (T, C) stream into windows.

    Returns ``(windows, window_labels, starts, purity)``: windows is an
    (N, length, C) read-only view (no copy), each label is the majority label
    of the window's rows (ties go to the smaller code), and purity is the
    majority's share of rows.  With ``min_purity`` set, windows whose purity
    is below it are dropped.

    >>> x = np.arange(10, dtype=float)[:, None]
    >>> y = np.array([1, 1, 1, 1, 1, 2, 2, 2, 2, 2])
    >>> w, lab, start, pur = sliding_windows(x, y, length=4, stride=2)
    >>> lab.tolist(), start.tolist(), pur.tolist()
    ([1, 1, 2, 2], [0, 2, 4, 6], [1.0, 0.75, 0.75, 1.0])
    >>> sliding_windows(x, y, 4, 2, min_purity=1.0)[1].tolist()
    [1, 2]
    """
    if data.ndim != 2 or labels.shape != (data.shape[0],):
        raise ValueError(f"expected data (T, C) and labels (T,), got {data.shape} and {labels.shape}")
    starts = window_bounds(len(data), length, stride)
    if starts.size == 0:
        return (
            np.zeros((0, length, data.shape[1]), dtype=data.dtype),
            np.zeros(0, dtype=np.int64),
            starts,
            np.zeros(0),
        )
    codes, inverse = np.unique(labels, return_inverse=True)
    onehot = np.zeros((len(labels) + 1, len(codes)), dtype=np.int32)
    onehot[np.arange(1, len(labels) + 1), inverse] = 1
    cum = np.cumsum(onehot, axis=0)
    counts = cum[starts + length] - cum[starts]  # (N, K) label counts per window
    best = counts.argmax(axis=1)
    purity = counts[np.arange(len(starts)), best] / length
    win = sliding_window_view(data, length, axis=0)[starts].transpose(0, 2, 1)
    lab = codes[best].astype(np.int64)
    if min_purity is not None:
        keep = purity >= min_purity
        win, lab, starts, purity = win[keep], lab[keep], starts[keep], purity[keep]
    return win, lab, starts, purity
