"""Ring buffers that turn timestamped samples into sliding windows, for D devices at once.

This is the first half of a device's window loop (the second half, predicting and learning,
is :mod:`fedotl.client.device`).  One :class:`WindowBuffers` holds D devices; a single device
is D = 1, so one device and a thousand in lockstep run the same code.

The sample clock
    A device's samples are placed on its nominal grid: the first sample's timestamp is slot 0
    and a sample at time t goes to slot ``round((t - t_first) * rate_hz)``, so jitter smaller
    than half a period lands on the right slot.  Window k covers slots ``[k·S, k·S + L)``
    (L = window length, S = stride, in samples) and *closes* as soon as a sample reaches its
    last slot: windows close on the sample clock, never on the wall clock, and the sample that
    closes a window is normally its own last sample.

Missing data policy (counted in :attr:`WindowBuffers.counts`)
    * a slot that never received a sample (a dropped packet, a gap) and a non-finite value
      (NaN burst, inf) are both *missing*;
    * a window is **skipped** when, on some channel, more than ``max_missing`` of its slots are
      missing or the longest run of missing slots is longer than ``max_gap_s``;
    * otherwise its missing values are **interpolated** linearly along time from the
      channel's neighbouring values (the nearest value at the window's edges);
    * windows that lie entirely inside a gap (not one sample) are skipped in bulk;
    * a sample for a window that has already closed (out of order by more than the
      stride) is **late** and dropped; a second sample on the same slot replaces the first
      (**duplicate**).
    So nothing non-finite leaves this module: a window is either complete and finite, or
    marked skipped.

Per-sample labels (a CSV ``label`` column, a replayed annotation) ride along in a second ring;
a window's label is the majority of its labelled slots when at least half of its slots are
labelled, else it has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Hashable, Sequence

import numpy as np

from fedotl.client.windowing import seconds_to_rows

#: counters of :attr:`WindowBuffers.counts`, each an (D,) int64 array
# A sample's slot (its offset from the device's first sample, in samples) is an int64; beyond
# 2**53 a float offset no longer holds every integer, so a jump that far is refused.
_MAX_SLOT = 2.0**53

COUNTS = (
    "samples", "samples_late", "samples_duplicate", "values_missing",
    "windows_closed", "windows_skipped", "windows_interpolated", "windows_empty",
)


@dataclass(frozen=True)
class WindowSpec:
    """Window geometry and the missing-data policy (see the module docstring)."""

    rate_hz: float
    window_s: float = 5.0
    stride_s: float = 1.0
    max_missing: float = 0.2
    max_gap_s: float = 0.5

    def __post_init__(self) -> None:
        if not (np.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"rate_hz must be a positive number, got {self.rate_hz}")
        if not 0.0 <= self.max_missing < 1.0:
            raise ValueError(f"max_missing must be in [0, 1), got {self.max_missing}")
        if not self.max_gap_s >= 0:
            raise ValueError(f"max_gap_s must be >= 0, got {self.max_gap_s}")
        self.length, self.stride  # noqa: B018 - validate now, not at the first sample

    @property
    def length(self) -> int:
        return seconds_to_rows(self.window_s, self.rate_hz, "window")

    @property
    def stride(self) -> int:
        return seconds_to_rows(self.stride_s, self.rate_hz, "stride")

    @property
    def max_gap(self) -> int:
        return int(round(self.max_gap_s * self.rate_hz))


@dataclass
class ClosedWindows:
    """The windows that closed during one push, in (device, window) order."""

    device: np.ndarray  # (n,) device index
    index: np.ndarray  # (n,) window number k of that device
    t_start: np.ndarray  # (n,) time of the window's first slot
    t_end: np.ndarray  # (n,) time of its last slot
    X: np.ndarray  # (n, L, C) float32, finite where ok
    ok: np.ndarray  # (n,) False: skipped by the missing-data policy
    interpolated: np.ndarray  # (n,) some values were filled in
    label: np.ndarray  # (n,) label code from the per-sample labels, -1 for none

    def __len__(self) -> int:
        return int(self.device.shape[0])

    def take(self, rows: np.ndarray) -> "ClosedWindows":
        return ClosedWindows(**{f: getattr(self, f)[rows] for f in self.__dataclass_fields__})


def _longest_run(missing: np.ndarray) -> np.ndarray:
    """Longest run of True along the last axis.

    >>> _longest_run(np.array([[0, 1, 1, 0, 1], [0, 0, 0, 0, 0]], dtype=bool)).tolist()
    [2, 0]
    """
    L = missing.shape[-1]
    pos = np.arange(L)
    last_present = np.maximum.accumulate(np.where(missing, -1, pos), axis=-1)
    return (pos - last_present).max(axis=-1)


def _interpolate(x: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Fill the missing values of one (L, C) window channel by channel, in place."""
    pos = np.arange(x.shape[0])
    for c in np.flatnonzero(~present.all(axis=0)):
        p = present[:, c]
        x[~p, c] = np.interp(pos[~p], pos[p], x[p, c])
    return x


class WindowBuffers:
    """Ring buffers and window clocks of ``n_devices`` devices with ``n_channels`` channels.

    >>> wb = WindowBuffers(1, 1, WindowSpec(rate_hz=1.0, window_s=3, stride_s=2))
    >>> t = np.arange(7.0)
    >>> w = wb.push(np.zeros(7, dtype=int), t, t[:, None])
    >>> w.index.tolist(), w.t_end.tolist(), w.X[:, :, 0].tolist()
    ([0, 1, 2], [2.0, 4.0, 6.0], [[0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [4.0, 5.0, 6.0]])
    """

    def __init__(self, n_devices: int, n_channels: int, spec: WindowSpec):
        if n_devices < 1 or n_channels < 1:
            raise ValueError("n_devices and n_channels must be positive")
        self.spec = spec
        self.n_devices, self.n_channels = n_devices, n_channels
        L, S = spec.length, spec.stride
        self.L, self.S = L, S
        # a chunk of writes advances a device by at most `span` slots, and the ring keeps every
        # slot an open window still needs: R > span + L + S
        self._span = L
        self.R = 1 << int(np.ceil(np.log2(2 * L + 2 * S + 1)))
        self._buf = np.full((n_devices, self.R, n_channels), np.nan, dtype=np.float32)
        self._stamp = np.full((n_devices, self.R), -1, dtype=np.int64)  # slot held by each cell
        self._lab = np.full((n_devices, self.R), -1, dtype=np.int32)
        self.origin = np.full(n_devices, np.nan)  # t of slot 0
        self.max_slot = np.full(n_devices, -1, dtype=np.int64)
        self.next_window = np.zeros(n_devices, dtype=np.int64)
        self.label_codes: dict[Hashable, int] = {}
        self.labels: list[Hashable] = []
        self.counts = {k: np.zeros(n_devices, dtype=np.int64) for k in COUNTS}

    # ------------------------------------------------------------------ labels
    def encode_labels(self, labels: Sequence[Hashable | None]) -> np.ndarray:
        """Codes of per-sample labels (None -> -1), growing the vocabulary in first-seen order."""
        out = np.empty(len(labels), dtype=np.int32)
        codes = self.label_codes
        for i, y in enumerate(labels):
            if y is None or (isinstance(y, float) and y != y):
                out[i] = -1
                continue
            c = codes.get(y)
            if c is None:
                c = codes[y] = len(self.labels)
                self.labels.append(y)
            out[i] = c
        return out

    # ------------------------------------------------------------------ the clock
    def time_of(self, device: np.ndarray, slot: np.ndarray) -> np.ndarray:
        return self.origin[device] + slot / self.spec.rate_hz

    def clock(self) -> np.ndarray:
        """Each device's sample clock: the time of its latest slot (NaN before any sample)."""
        return self.time_of(np.arange(self.n_devices), self.max_slot)

    # ------------------------------------------------------------------ writing
    def push(
        self,
        device: np.ndarray,
        t: np.ndarray,
        X: np.ndarray,
        label: np.ndarray | None = None,
    ) -> ClosedWindows:
        """Write samples (device index, time, values (n, C), label codes) and close windows.

        Samples of one device must come in time order within a push (the CLI's inputs check
        that); samples of different devices may interleave.
        """
        device = np.asarray(device, dtype=np.int64)
        t = np.asarray(t, dtype=np.float64)
        X = np.asarray(X, dtype=np.float32)
        n = device.shape[0]
        if t.shape != (n,) or X.shape != (n, self.n_channels):
            raise ValueError(f"expected t ({n},) and X ({n}, {self.n_channels}), got {t.shape} and {X.shape}")
        if n and (device.min() < 0 or device.max() >= self.n_devices):
            raise ValueError(f"device index out of range [0, {self.n_devices})")
        if not np.isfinite(t).all():
            raise ValueError("timestamps must be finite")
        label = np.full(n, -1, dtype=np.int32) if label is None else np.asarray(label, dtype=np.int32)
        if n == 1:  # a live sensor's one sample: the same steps in scalar arithmetic, ~20x faster
            fast = self._push_one(int(device[0]), float(t[0]), X[0], int(label[0]))
            if fast is not None:
                return fast
        new = np.isnan(self.origin[device])
        if new.any():  # a device's first sample fixes its slot 0
            first = np.unique(device[new], return_index=True)
            self.origin[first[0]] = t[new][first[1]]
        offset = np.rint((t - self.origin[device]) * self.spec.rate_hz)
        if n and not np.abs(offset).max() < _MAX_SLOT:  # beyond it the int64 cast is garbage
            i = int(np.argmax(np.abs(offset)))
            raise ValueError(
                f"device {int(device[i])}: timestamp {t[i]:g} s is {t[i] - self.origin[device[i]]:g} s "
                f"from its first sample, beyond the sample clock's range (2**53 samples at {self.spec.rate_hz:g} Hz)"
            )
        slot = offset.astype(np.int64)
        np.add.at(self.counts["samples"], device, 1)
        late = slot < self.next_window[device] * self.S
        if late.any():
            np.add.at(self.counts["samples_late"], device[late], 1)
            keep = ~late
            device, slot, X, label = device[keep], slot[keep], X[keep], label[keep]
        out: list[ClosedWindows] = []
        # chunks keep every device's advance within the ring (see __init__)
        chunk = np.maximum(slot - self.max_slot[device] - 1, 0) // self._span
        for c in np.unique(chunk):
            m = chunk == c
            devs, first = np.unique(device[m], return_index=True)
            if c > 0:  # after a gap: close what ends before the gap's first sample first
                out.append(self._close(devs, slot[m][first] - 1))
            self._write(device[m], slot[m], X[m], label[m])
            out.append(self._close(devs, self.max_slot[devs]))
        return _concat([w for w in out if len(w)], self.L, self.n_channels)

    def _push_one(self, d: int, t: float, x: np.ndarray, code: int) -> ClosedWindows | None:
        """:meth:`push` of one sample, or None when it needs the general path (first sample, a gap)."""
        origin = self.origin[d]
        if origin != origin:  # NaN: the device's first sample
            return None
        offset = round((t - origin) * self.spec.rate_hz)
        if not abs(offset) < _MAX_SLOT:
            return None  # the general path refuses it, naming the device
        slot = int(offset)
        prev = int(self.max_slot[d])
        if slot - prev - 1 >= self._span:
            return None
        counts = self.counts
        counts["samples"][d] += 1
        if slot < int(self.next_window[d]) * self.S:
            counts["samples_late"][d] += 1
            return _concat([], self.L, self.n_channels)
        cell = slot % self.R
        if self._stamp[d, cell] == slot:
            counts["samples_duplicate"][d] += 1
        self._buf[d, cell] = x
        self._stamp[d, cell] = slot
        self._lab[d, cell] = code
        if slot > prev:
            self.max_slot[d] = slot
        if slot < int(self.next_window[d]) * self.S + self.L - 1:
            return _concat([], self.L, self.n_channels)
        dev = np.array([d])
        return self._close(dev, self.max_slot[dev])

    def _write(self, device: np.ndarray, slot: np.ndarray, X: np.ndarray, label: np.ndarray) -> None:
        cell = slot % self.R
        dup = self._stamp[device, cell] == slot
        if len(slot) > 1:  # two samples of this push on one slot
            order = np.lexsort((slot, device))
            again = (np.diff(device[order]) == 0) & (np.diff(slot[order]) == 0)
            dup[order[1:][again]] = True
        if dup.any():
            np.add.at(self.counts["samples_duplicate"], device[dup], 1)
        self._buf[device, cell] = X
        self._stamp[device, cell] = slot
        self._lab[device, cell] = label
        np.maximum.at(self.max_slot, device, slot)

    def _close(self, devices: np.ndarray, upto: np.ndarray) -> ClosedWindows:
        """Close every open window of ``devices`` whose last slot is at most ``upto``."""
        L, S = self.L, self.S
        first = self.next_window[devices]
        n_close = np.maximum((upto - (L - 1)) // S - first + 1, 0)
        # windows that start after a device's latest sample lie inside a gap: count them only
        n_data = np.clip(self.max_slot[devices] // S - first + 1, 0, n_close)
        self.next_window[devices] = first + n_close
        gap = n_close - n_data
        if gap.any():
            self.counts["windows_empty"][devices] += gap
            self.counts["windows_skipped"][devices] += gap
        keep = n_data > 0
        if not keep.any():
            return _concat([], L, self.n_channels)
        devices, first, n_close = devices[keep], first[keep], n_data[keep]
        dev = np.repeat(devices, n_close)
        k = np.repeat(first - np.cumsum(n_close) + n_close, n_close) + np.arange(n_close.sum())
        slots = (k * S)[:, None] + np.arange(L)
        cells = slots % self.R
        present_slot = self._stamp[dev[:, None], cells] == slots
        X = self._buf[dev[:, None], cells]  # (n, L, C) copy
        present = present_slot[:, :, None] & np.isfinite(X)
        ok = np.ones(len(dev), dtype=bool)
        interp = np.zeros(len(dev), dtype=bool)
        incomplete = np.flatnonzero(~present.all(axis=(1, 2)))
        if incomplete.size:
            miss = ~present[incomplete]  # (m, L, C)
            np.add.at(self.counts["values_missing"], dev[incomplete], miss.sum(axis=(1, 2)))
            frac = miss.mean(axis=1).max(axis=1)
            run = _longest_run(miss.transpose(0, 2, 1)).max(axis=1)
            bad = (frac > self.spec.max_missing) | (run > self.spec.max_gap) | (~present[incomplete]).all(axis=1).any(axis=1)
            ok[incomplete[bad]] = False
            for i in incomplete[~bad]:
                _interpolate(X[i], present[i])
            interp[incomplete[~bad]] = True
            X[incomplete[bad]] = 0.0  # never hand NaN onwards, even in a skipped window
        np.add.at(self.counts["windows_closed"], dev, 1)
        np.add.at(self.counts["windows_skipped"], dev[~ok], 1)
        np.add.at(self.counts["windows_interpolated"], dev[interp], 1)
        return ClosedWindows(
            device=dev,
            index=k,
            t_start=self.time_of(dev, k * S),
            t_end=self.time_of(dev, k * S + L - 1),
            X=X,
            ok=ok,
            interpolated=interp,
            label=self._window_labels(dev, cells, present_slot),
        )

    def _window_labels(self, dev: np.ndarray, cells: np.ndarray, present: np.ndarray) -> np.ndarray:
        codes = np.where(present, self._lab[dev[:, None], cells], -1)
        K = len(self.labels)
        n = len(dev)
        if K == 0 or n == 0:
            return np.full(n, -1, dtype=np.int32)
        rows = np.broadcast_to(np.arange(n)[:, None], codes.shape)
        lab = codes >= 0
        counts = np.bincount(rows[lab] * K + codes[lab], minlength=n * K).reshape(n, K)
        best = counts.argmax(axis=1)
        enough = 2 * lab.sum(axis=1) >= self.L
        return np.where(enough, best, -1).astype(np.int32)


def _concat(parts: list[ClosedWindows], L: int, C: int) -> ClosedWindows:
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return _empty(L, C)
    fields = ClosedWindows.__dataclass_fields__
    merged = {f: np.concatenate([getattr(p, f) for p in parts]) for f in fields}
    order = np.lexsort((merged["index"], merged["device"]))
    return ClosedWindows(**{f: v[order] for f, v in merged.items()})


@lru_cache(maxsize=8)
def _empty(L: int, C: int) -> ClosedWindows:
    """No windows (shared: nobody writes into an empty result)."""
    z = np.zeros(0, dtype=np.int64)
    return ClosedWindows(z, z, np.zeros(0), np.zeros(0), np.zeros((0, L, C), np.float32),
                         np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, np.int32))
