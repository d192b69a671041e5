"""Replay a recorded dataset as a live, timestamped sensor stream.

A *replay* plays a subject's recordings back as a wearable would stream them:
blocks of consecutive samples, each released no earlier than the moment it
was recorded, at the dataset's real rate, ``speed`` times faster, or as fast
as possible (``speed=math.inf``), on a clock tests can drive.

Policies
--------

**One subject, one stream.**  :func:`subject_stream` lays a subject's
recordings (at one body position's channels, if given) end to end in the
dataset's recorded order, so the activity bouts keep their order and sample
``i`` of the stream is at time ``i / rate_hz``: the gaps between recording
sessions are not kept.  Labels are activity *names*; a code the dataset does
not name is unlabelled (``None``).

**Release times.**  The clock time of the first ``next()`` is ``start``; a
sample with stream time ``t`` is released when ``clock.now() >= start +
(t - t_first) / speed``.  Stream time is cut into blocks of ``block_s``
seconds (default one sample period) from ``t_first``; a block is released
when its last sample is due, like a sensor sending a full buffer.  A late
consumer is never fed stale blocks one at a time: the next block holds every
block due by then.  At ``speed=math.inf`` nothing sleeps and every block is
yielded in turn.  Iterating again starts a new pass; breaking out of the loop
stops it, and nothing is read ahead.

**Faults** (:class:`Faults`, all off by default), applied by
:func:`apply_faults` from one seed, each fault drawing from its own random
stream, so turning one on does not move the others:

* ``jitter_s``: Gaussian timestamp noise, clipped to ±0.45 of a sample
  period so the samples keep their order;
* ``drop``: each sample is lost independently with this probability
  (packet loss); its label goes with it;
* ``nan_bursts_per_min`` / ``nan_burst_s``: a Poisson number of bursts
  (this rate times the stream's length in minutes), each starting uniformly
  in the stream and lasting ``nan_burst_s`` seconds of recorded time, during
  which every channel reads NaN (labels are kept: the activity went on).

**Fleets.**  :func:`fleet_sources` makes one device per subject × body
position, cycling through them when more devices are asked for; copy ``k``
(``"p1@RA#2"`` is ``k = 1``) is rotated by ``k × 7`` minutes modulo its
length and re-timestamped from zero, so copies are not in lockstep.
:class:`FleetReplay` merges the devices on one timeline (a device's stream
time is its own ``t`` plus its start offset) and releases, once per tick of
one sample period, every sample due by that tick.  It keeps one copy of all
the sources' samples, in tick order.

Example, on a clock the example drives:

>>> import numpy as np
>>> src = ReplaySource("demo", t=np.arange(4) / 2.0, X=np.zeros((4, 1), np.float32),
...                    labels=np.array(["sit", "sit", "walk", None], dtype=object),
...                    channels=["acc_x"], rate_hz=2.0)
>>> clock = DrivenClock()
>>> [(t.tolist(), y.tolist()) for t, X, y in Replay(src, speed=2.0, clock=clock)]
[([0.0], ['sit']), ([0.5], ['sit']), ([1.0], ['walk']), ([1.5], [None])]
>>> clock.sleeps  # the recorded times, halved
[0.25, 0.5, 0.75]
>>> faulty, counts = apply_faults(src, Faults(drop=0.5, seed=3))
>>> counts["samples_in"] - counts["samples_out"] == counts["dropped"] == 4 - len(faulty)
True
"""

from __future__ import annotations

import asyncio
import math
import numbers
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from fedotl.simulations.dataset import HARDataset

__all__ = [
    "FAST_BLOCK_S",
    "Clock",
    "DrivenClock",
    "Faults",
    "FleetReplay",
    "Replay",
    "ReplaySource",
    "WallClock",
    "apply_faults",
    "fleet_sources",
    "subject_stream",
]

JITTER_CLIP = 0.45  # of a sample period: neighbours can never swap
CYCLE_SHIFT_S = 7 * 60.0  # how far each cycled fleet copy is rotated


# ---------------------------------------------------------------- the stream
@dataclass
class ReplaySource:
    """A stream to replay: timestamps (n,), samples (n, C), activity names (n,)."""

    name: str
    t: np.ndarray
    X: np.ndarray
    labels: np.ndarray
    channels: list[str]
    rate_hz: float

    def __post_init__(self) -> None:
        self.t = np.asarray(self.t, dtype=np.float64)
        self.X = np.asarray(self.X, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=object)
        self.channels = [str(c) for c in self.channels]
        if self.t.ndim != 1:
            raise ValueError(f"{self.name}: t must be 1-D (n,), got shape {self.t.shape}")
        n = self.t.shape[0]
        if self.X.ndim != 2 or self.X.shape[0] != n:
            raise ValueError(f"{self.name}: X must have shape ({n}, C), got {self.X.shape}")
        if self.labels.shape != (n,):
            raise ValueError(f"{self.name}: labels must have shape ({n},), got {self.labels.shape}")
        if len(self.channels) != self.X.shape[1]:
            raise ValueError(
                f"{self.name}: {len(self.channels)} channel names for {self.X.shape[1]} columns of X"
            )
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"{self.name}: rate_hz must be a positive number, got {self.rate_hz}")
        if n and not np.isfinite(self.t).all():
            raise ValueError(f"{self.name}: t must be finite")
        if n > 1 and (np.diff(self.t) < 0).any():
            raise ValueError(f"{self.name}: t must be non-decreasing")

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @property
    def period_s(self) -> float:
        return 1.0 / self.rate_hz


def subject_stream(ds: HARDataset, subject: str, position: str | None = None) -> ReplaySource:
    """One subject's recordings laid end to end, sample ``i`` at ``i / rate_hz``.

    With ``position`` only that body unit's channels (or recordings, for a
    dataset whose positions are per recording) are kept.
    """
    subject = str(subject)
    if subject not in ds.subjects:
        raise ValueError(f"unknown subject {subject!r} in {ds.name}; subjects are {ds.subjects}")
    view = ds
    if position is not None:
        if position not in ds.positions:
            raise ValueError(f"unknown position {position!r} in {ds.name}; positions are {ds.positions}")
        view = ds.select_position(position)
    recs = [r for r in view.recordings if r.subject == subject]
    if not recs:
        raise ValueError(f"{ds.name} has no recording of subject {subject!r} at position {position!r}")
    X = np.concatenate([r.data for r in recs], axis=0).astype(np.float32, copy=False)
    codes = np.concatenate([r.labels for r in recs])
    uniq, inverse = np.unique(codes, return_inverse=True)
    names = np.empty(len(uniq), dtype=object)
    names[:] = [ds.activities.get(int(c)) for c in uniq]
    labels = names[inverse.reshape(-1)]
    t = np.arange(X.shape[0], dtype=np.float64) / ds.rate_hz
    name = subject if position is None else f"{subject}@{position}"
    return ReplaySource(name, t, X, labels, view.channel_names, float(ds.rate_hz))


# -------------------------------------------------------------------- faults
@dataclass
class Faults:
    """Seeded sensor faults; every one is off by default (see the module docstring)."""

    jitter_s: float = 0.0
    drop: float = 0.0
    nan_bursts_per_min: float = 0.0
    nan_burst_s: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "jitter_s": (self.jitter_s, lambda v: v >= 0, "a number >= 0"),
            "drop": (self.drop, lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
            "nan_bursts_per_min": (self.nan_bursts_per_min, lambda v: v >= 0, "a rate >= 0"),
            "nan_burst_s": (self.nan_burst_s, lambda v: v > 0, "a duration > 0"),
        }
        for name, (value, ok, what) in checks.items():
            if not _is_real(value) or not math.isfinite(value) or not ok(value):
                raise ValueError(f"Faults.{name} must be {what}, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"Faults.seed must be an integer >= 0, got {self.seed!r}")

    @property
    def active(self) -> bool:
        return bool(self.jitter_s or self.drop or self.nan_bursts_per_min)


def apply_faults(src: ReplaySource, faults: Faults) -> tuple[ReplaySource, dict]:
    """The faulted copy of ``src`` and counts of what was done to it.

    Counts: ``samples_in``, ``samples_out``, ``dropped``, ``nan_bursts``
    (bursts that hit at least one recorded sample; overlapping ones merge
    into one NaN run), ``nan_samples`` (all-NaN rows in the output) and
    ``jitter_std_s`` (standard deviation of the timestamp noise applied to
    the output samples).
    """
    n = len(src)
    rng_jitter, rng_drop, rng_nan = (
        np.random.default_rng(s) for s in np.random.SeedSequence(int(faults.seed)).spawn(3)
    )
    t = src.t.copy()
    X = src.X.copy()

    # NaN bursts, on the recorded timeline.
    nan = np.zeros(n, dtype=bool)
    n_bursts = 0
    if faults.nan_bursts_per_min > 0 and n:
        span = n / src.rate_hz
        k = int(rng_nan.poisson(faults.nan_bursts_per_min * span / 60.0))
        starts = src.t[0] + rng_nan.uniform(0.0, span, size=k)
        lo = np.searchsorted(src.t, starts, side="left")
        hi = np.searchsorted(src.t, starts + faults.nan_burst_s, side="left")
        hit = hi > lo
        n_bursts = int(hit.sum())
        depth = np.zeros(n + 1, dtype=np.int64)
        np.add.at(depth, lo[hit], 1)
        np.add.at(depth, hi[hit], -1)
        nan = np.cumsum(depth[:-1]) > 0
        X[nan] = np.nan

    # Timestamp jitter, never more than JITTER_CLIP of the closest spacing.
    noise = np.zeros(n)
    if faults.jitter_s > 0 and n:
        spacing = src.period_s
        if n > 1:
            spacing = min(spacing, float(np.diff(src.t).min()))
        bound = JITTER_CLIP * spacing
        noise = np.clip(rng_jitter.normal(0.0, faults.jitter_s, size=n), -bound, bound)
        t += noise

    # Packet loss.
    keep = np.ones(n, dtype=bool)
    if faults.drop > 0 and n:
        keep = rng_drop.random(n) >= faults.drop

    out = ReplaySource(src.name, t[keep], X[keep], src.labels[keep], list(src.channels), src.rate_hz)
    counts = {
        "samples_in": n,
        "samples_out": len(out),
        "dropped": int(n - keep.sum()),
        "nan_bursts": n_bursts,
        "nan_samples": int((nan & keep).sum()),
        "jitter_std_s": float(noise[keep].std()) if keep.any() else 0.0,
    }
    return out, counts


# -------------------------------------------------------------------- clocks
@runtime_checkable
class Clock(Protocol):
    """What a replay needs of a clock: its time, and waiting until a time."""

    def now(self) -> float: ...

    def sleep_until(self, t: float) -> None: ...

    async def asleep_until(self, t: float) -> None: ...


class WallClock:
    """Real time, from :func:`time.monotonic`."""

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, t: float) -> None:
        while (d := t - time.monotonic()) > 0:
            time.sleep(d)

    async def asleep_until(self, t: float) -> None:
        while (d := t - time.monotonic()) > 0:
            await asyncio.sleep(d)


@dataclass
class DrivenClock:
    """A clock for tests: sleeping jumps to the wake-up time at once and is recorded.

    ``sleeps`` lists the wake-up times of the sleeps that moved the clock.

    >>> c = DrivenClock()
    >>> c.sleep_until(2.0); c.advance(0.5); c.sleep_until(1.0)
    >>> c.now(), c.sleeps
    (2.5, [2.0])
    """

    time: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.time

    def advance(self, dt: float) -> None:
        if not dt >= 0:
            raise ValueError(f"a clock only moves forward; got dt={dt}")
        self.time += dt

    def sleep_until(self, t: float) -> None:
        if t > self.time:
            self.sleeps.append(t)
            self.time = t

    async def asleep_until(self, t: float) -> None:
        self.sleep_until(t)
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would


# ------------------------------------------------------------------- pacing
FAST_BLOCK_S = 5.0  # as fast as possible, a replay gives blocks of this many seconds of stream (the same windows)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_speed(speed: float) -> float:
    if not _is_real(speed) or math.isnan(speed) or not speed > 0:
        raise ValueError(f"speed must be a positive number or math.inf, got {speed!r}")
    return float(speed)


class _Paced:
    """Blocks ``[ends[b-1], ends[b])`` released ``due[b] / speed`` after the start."""

    def __init__(self, speed: float, clock: Clock | None) -> None:
        self.speed = _check_speed(speed)
        self.clock: Clock = WallClock() if clock is None else clock
        self.released = 0
        self._ends = np.zeros(0, dtype=np.int64)
        self._due = np.zeros(0, dtype=np.float64)  # stream seconds after the first sample

    def _wake_time(self, start: float, b: int) -> float | None:
        if math.isinf(self.speed):
            return None
        return start + float(self._due[b]) / self.speed

    def _last_due(self, start: float, b: int) -> int:
        """The last block due now, at least ``b`` (a late consumer gets them all)."""
        if math.isinf(self.speed):
            return b
        horizon = (self.clock.now() - start) * self.speed
        return max(b, int(np.searchsorted(self._due, horizon, side="right")) - 1)

    def _release(self, start: float, b: int) -> tuple[int, int, int]:
        """Rows (lo, hi) of every block due now from block ``b`` on, and the next block."""
        last = self._last_due(start, b)
        lo = int(self._ends[b - 1]) if b else 0
        hi = int(self._ends[last])
        self.released += hi - lo
        return lo, hi, last + 1

    def _spans(self) -> Iterator[tuple[int, int]]:
        self.released = 0
        n_blocks = len(self._ends)
        if not n_blocks:
            return
        start = self.clock.now()
        b = 0
        while b < n_blocks:
            wake = self._wake_time(start, b)
            if wake is not None and self.clock.now() < wake:
                self.clock.sleep_until(wake)
            lo, hi, b = self._release(start, b)
            yield lo, hi

    async def _aspans(self) -> AsyncIterator[tuple[int, int]]:
        self.released = 0
        n_blocks = len(self._ends)
        if not n_blocks:
            return
        start = self.clock.now()
        b = 0
        while b < n_blocks:
            wake = self._wake_time(start, b)
            if wake is not None and self.clock.now() < wake:
                await self.clock.asleep_until(wake)
            else:
                await asyncio.sleep(0)  # as fast as possible, but never starving the loop
            lo, hi, b = self._release(start, b)
            yield lo, hi


class Replay(_Paced):
    """One stream, paced: ``for t, X, labels in Replay(src, speed):``.

    Blocks are ``block_s`` seconds of stream time (default one sample
    period), yielded as views of ``src``'s arrays.  ``released`` counts the
    samples yielded so far in the current pass.
    """

    def __init__(
        self,
        src: ReplaySource,
        speed: float = 1.0,
        clock: Clock | None = None,
        block_s: float | None = None,
    ) -> None:
        super().__init__(speed, clock)
        if block_s is None:
            block_s = src.period_s
        if not _is_real(block_s) or not (math.isfinite(block_s) and block_s > 0):
            raise ValueError(f"block_s must be a positive number of seconds, got {block_s!r}")
        self.src = src
        self.block_s = float(block_s)
        if len(src):
            rel = src.t - src.t[0]
            block = np.floor(rel / self.block_s + 1e-9).astype(np.int64)
            self._ends = np.append(np.flatnonzero(np.diff(block)) + 1, len(src)).astype(np.int64)
            self._due = rel[self._ends - 1]

    @property
    def n_blocks(self) -> int:
        """Blocks in a pass where the consumer is never late (always, at ``speed=math.inf``)."""
        return len(self._ends)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        s = self.src
        for lo, hi in self._spans():
            yield s.t[lo:hi], s.X[lo:hi], s.labels[lo:hi]

    async def __aiter__(self) -> AsyncIterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        s = self.src
        async for lo, hi in self._aspans():
            yield s.t[lo:hi], s.X[lo:hi], s.labels[lo:hi]


# --------------------------------------------------------------------- fleet
def fleet_sources(
    ds: HARDataset, n_devices: int, positions: Sequence[str] | None = None, seconds: float | None = None
) -> list[ReplaySource]:
    """``n_devices`` streams: subjects × positions, cycled (and rotated) as needed.

    ``positions`` defaults to all of the dataset's; a dataset without body
    positions gives one stream per subject.  Every stream must have the same
    number of channels.  With ``seconds``, each stream is its first
    ``seconds`` only (cut before copying: thousands of full copies would not fit).
    """
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    if isinstance(n_devices, bool) or not isinstance(n_devices, (int, np.integer)) or n_devices < 1:
        raise ValueError(f"n_devices must be a positive integer, got {n_devices!r}")
    pos: list[str | None] = list(ds.positions if positions is None else positions) or [None]
    for p in pos:
        if p is not None and p not in ds.positions:
            raise ValueError(f"unknown position {p!r} in {ds.name}; positions are {ds.positions}")
    views = {p: (ds if p is None else ds.select_position(p)) for p in pos}
    base: list[ReplaySource] = []
    for s in ds.subjects:
        for p in pos:
            if any(r.subject == s for r in views[p].recordings):
                src = subject_stream(views[p], s)  # one channel selection per position, not per subject
                if p is not None:
                    src.name = f"{s}@{p}"
                base.append(src)
    if not base:
        raise ValueError(f"{ds.name} has no recordings to replay")
    widths = {len(b.channels) for b in base}
    if len(widths) > 1:
        raise ValueError(f"fleet streams must have one channel count; {ds.name} positions give {sorted(widths)}")
    out = []
    for k in range(int(n_devices)):
        src, copy = base[k % len(base)], k // len(base)
        out.append(_rotated(src, copy, seconds))
    return out


def head(src: ReplaySource, seconds: float | None) -> ReplaySource:
    """The first ``seconds`` of a stream from its first sample (all of it when None)."""
    return _rotated(src, 0, seconds)


def _rotated(src: ReplaySource, copy: int, seconds: float | None = None) -> ReplaySource:
    """Copy ``copy`` of ``src`` (0: itself): rotated by ``copy × 7`` minutes, re-timestamped
    from 0, and cut to its first ``seconds``."""
    n = len(src)
    m = n if seconds is None else min(n, int(math.ceil(seconds * src.rate_hz)))
    if copy == 0:
        if m == n:
            return src
        return ReplaySource(src.name, src.t[:m], src.X[:m], src.labels[:m], list(src.channels), src.rate_hz)
    shift = int(round(copy * CYCLE_SHIFT_S * src.rate_hz)) % n if n else 0
    rows = (shift + np.arange(m)) % n if n else np.zeros(0, dtype=np.int64)
    return ReplaySource(
        f"{src.name}#{copy + 1}",
        np.arange(m, dtype=np.float64) / src.rate_hz,
        src.X[rows],
        src.labels[rows],
        list(src.channels),
        src.rate_hz,
    )


class FleetReplay(_Paced):
    """Many streams in lockstep: ``for dev, t, X, labels in FleetReplay(sources):``.

    One tick per sample period (the shortest, if rates differ); each
    iteration yields every sample due by its tick, ordered by device then
    time: device indices (m,), fleet stream times (m,) (a device's own ``t``
    plus its start offset), samples (m, C) and labels (m,).  Ticks where no
    sample is due are skipped; devices whose stream has ended stop
    contributing.
    """

    def __init__(
        self,
        sources: Sequence[ReplaySource],
        speed: float = 1.0,
        clock: Clock | None = None,
        start_offsets: Sequence[float] | None = None,
    ) -> None:
        super().__init__(speed, clock)
        self.sources = list(sources)
        if not self.sources:
            raise ValueError("FleetReplay needs at least one source")
        widths = {s.X.shape[1] for s in self.sources}
        if len(widths) > 1:
            raise ValueError(f"all sources must have the same number of channels, got {sorted(widths)}")
        offsets = np.zeros(len(self.sources)) if start_offsets is None else np.asarray(start_offsets, dtype=np.float64)
        if offsets.shape != (len(self.sources),) or not np.isfinite(offsets).all():
            raise ValueError(f"start_offsets must be {len(self.sources)} finite numbers of seconds")
        self.start_offsets = offsets
        self.period_s = min(s.period_s for s in self.sources)

        lengths = np.array([len(s) for s in self.sources], dtype=np.int64)
        total = int(lengths.sum())
        width = widths.pop()
        self._dev = np.zeros(0, dtype=np.int32)
        self._t = np.zeros(0, dtype=np.float64)
        self._X = np.zeros((0, width), dtype=np.float32)
        self._labels = np.zeros(0, dtype=object)
        if not total:
            return
        t = np.concatenate([s.t + o for s, o in zip(self.sources, offsets)])
        dev = np.repeat(np.arange(len(self.sources), dtype=np.int32), lengths)
        t_first = float(t.min())
        tick = np.maximum(np.ceil((t - t_first) / self.period_s - 1e-6), 0).astype(np.int64)
        order = np.lexsort((t, dev, tick))
        self._t, self._dev = t[order], dev[order]
        tick = tick[order]
        where = np.empty(total, dtype=np.int64)
        where[order] = np.arange(total)
        self._X = np.empty((total, width), dtype=np.float32)
        self._labels = np.empty(total, dtype=object)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        for i, s in enumerate(self.sources):
            rows = where[bounds[i] : bounds[i + 1]]
            self._X[rows] = s.X
            self._labels[rows] = s.labels
        self._ends = np.append(np.flatnonzero(np.diff(tick)) + 1, total).astype(np.int64)
        self._due = tick[self._ends - 1] * self.period_s

    @property
    def n_ticks(self) -> int:
        """Ticks with something due, in a pass where the consumer is never late."""
        return len(self._ends)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        for lo, hi in self._spans():
            yield self._dev[lo:hi], self._t[lo:hi], self._X[lo:hi], self._labels[lo:hi]

    async def __aiter__(self) -> AsyncIterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        async for lo, hi in self._aspans():
            yield self._dev[lo:hi], self._t[lo:hi], self._X[lo:hi], self._labels[lo:hi]
