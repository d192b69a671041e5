"""A streaming device: samples in, a prediction the moment a window closes, learning as labels come.

The window loop, for D devices at once (one device is D = 1)::

    push(samples) ─► WindowBuffers (ring buffers, sample clock, missing-data policy)
                 ─► features (client/features.py, ONLINE_STATS) ─► FeatureScaler
                 ─► learner predicts now ─► LabelBudget decides whether this window will get a label
                 ─► pending until its label is known and the sample clock passes end + delay
                 ─► the learner learns it; the window goes to the device's local store

:class:`Devices` is that loop.  Its learner back end is either one online learner per device
(:class:`PerDeviceLearners`, any learner of :mod:`fedotl.online`) or online/'s batched engine
(:class:`BatchedLearners`, thousands of devices in lockstep); both see the same calls, so a
single device gives the predictions of its row in the batch.  :class:`Device` is the small API
a user's own code drives, from a plain loop or an asyncio task.

Evaluation is prequential: a window's prediction is made before its label is known and scored
when the label arrives.  A window's true label comes from the per-sample labels of its slots
(a CSV ``label`` column, a replayed annotation) or from an annotated interval
(:meth:`Device.push_label`); the label policy only decides which of those labels the learner may
*use*, so accuracy is measured on every window whose label is known, learning on the budgeted
ones.  The persistence baseline predicts the last label the learner was given.

Latency is wall-clock time from the push that delivered a window's closing sample to its
prediction.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, AsyncIterable, AsyncIterator, Callable, Hashable, Iterable, Sequence

import numpy as np

from fedotl.client.features import ONLINE_STATS, window_features
from fedotl.client.labels import LabelBudget, LabelPolicy, margin
from fedotl.client.store import DeviceStore
from fedotl.client.stream_windows import COUNTS, ClosedWindows, WindowBuffers, WindowSpec
from fedotl.online.evaluation import mistake_trace
from fedotl.online.kernels import margin_pi
from fedotl.online.standardized import running_standardize


# ---------------------------------------------------------------------- features
class FeatureScaler:
    """Feature standardisation of D devices: fixed ``(x - mean) / std``, then optionally running.

    ``mean``/``std`` are the sources' statistics (zeros/ones for a learner from scratch).  With
    ``online=True`` every window is then re-standardised with the device's own earlier windows,
    labelled or not, with a prior of ``prior_weight`` pseudo-windows of mean 0 and variance 1:
    the estimator of :class:`fedotl.online.TargetStandardized` (same function), updated at each
    closed window instead of at each label, because unlabelled windows are free.
    """

    def __init__(self, n_devices: int, mean: np.ndarray, std: np.ndarray, online: bool, prior_weight: float = 20.0):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        if self.mean.shape != self.std.shape or self.mean.ndim != 1 or not (self.std > 0).all():
            raise ValueError("mean and std must be matching 1-D arrays with std > 0")
        if not prior_weight > 0:
            raise ValueError(f"prior_weight must be positive, got {prior_weight}")
        self.online, self.prior_weight = online, float(prior_weight)
        d = self.mean.shape[0]
        self.S = np.zeros((n_devices, d))
        self.Q = np.zeros((n_devices, d))
        self.c = np.zeros(n_devices)

    @classmethod
    def identity(cls, n_devices: int, n_features: int, online: bool = True, prior_weight: float = 1.0) -> "FeatureScaler":
        return cls(n_devices, np.zeros(n_features), np.ones(n_features), online, prior_weight)

    def transform(self, device: np.ndarray, F: np.ndarray) -> np.ndarray:
        """Standardise windows (device[i], F[i]) in order and learn their statistics."""
        Z = (np.asarray(F, dtype=np.float64) - self.mean) / self.std
        if not self.online:
            return Z
        out = np.empty_like(Z)
        for rows in _by_rank(device):  # a device's second window sees its first
            d = device[rows]
            out[rows] = running_standardize(Z[rows], self.S[d], self.Q[d], self.c[d][:, None], self.prior_weight)
            self.S[d] += Z[rows]
            self.Q[d] += Z[rows] * Z[rows]
            self.c[d] += 1
        return out


def _by_rank(device: np.ndarray) -> list[np.ndarray]:
    """Indices grouped so that each group holds each device at most once, in order.

    >>> [g.tolist() for g in _by_rank(np.array([3, 1, 3, 3]))]
    [[0, 1], [2], [3]]
    """
    if len(device) == 0:
        return []
    order = np.argsort(device, kind="stable")
    d = device[order]
    starts = np.r_[0, np.flatnonzero(np.diff(d)) + 1]
    rank = np.empty(len(device), dtype=np.int64)
    rank[order] = np.arange(len(device)) - np.repeat(starts, np.diff(np.r_[starts, len(d)]))
    return [np.flatnonzero(rank == r) for r in range(int(rank.max()) + 1)]


# ---------------------------------------------------------------------- learner back ends
class PerDeviceLearners:
    """One online learner of :mod:`fedotl.online` per device, stepped in a Python loop."""

    def __init__(self, learners: Sequence[Any]):
        self.learners = list(learners)

    def predict(self, device: np.ndarray, Z: np.ndarray) -> tuple[list, np.ndarray]:
        preds, margins = [], np.ones(len(device))
        for i, d in enumerate(device.tolist()):
            lrn = self.learners[d]
            preds.append(lrn.predict_array(Z[i]))
            p = lrn.predict_proba_array(Z[i])
            if p.size:
                margins[i] = margin(p)
        return preds, margins

    def learn(self, device: np.ndarray, Z: np.ndarray, y: list) -> np.ndarray:
        for i, d in enumerate(device.tolist()):
            self.learners[d].learn_array(Z[i], y[i])
        return np.ones(len(device), dtype=bool)


class BatchedLearners:
    """online/'s batched engine (:class:`fedotl.online.BatchedPA`): one weight row per device.

    Its classes are fixed; a label outside them is not learnt (counted as ``labels_unknown``).
    """

    def __init__(self, engine: Any):
        self.engine = engine
        self._index = {c: i for i, c in enumerate(engine.classes)}

    def predict(self, device: np.ndarray, Z: np.ndarray) -> tuple[list, np.ndarray]:
        F = self.engine.scores_rows(device, Z)
        p = margin_pi(F)  # the probabilities MulticlassPA.predict_proba_array gives
        p /= p.sum(axis=1, keepdims=True)
        return [self.engine.classes[k] for k in F.argmax(axis=1).tolist()], margin(p)

    def learn(self, device: np.ndarray, Z: np.ndarray, y: list) -> np.ndarray:
        code = np.array([self._index.get(v, -1) for v in y], dtype=np.int64)
        known = code >= 0
        for rows in _by_rank(device[known]):
            idx = np.flatnonzero(known)[rows]
            self.engine.learn_rows(device[idx], Z[idx], code[idx])
        return known


# ---------------------------------------------------------------------- events
@dataclass(frozen=True)
class WindowEvent:
    """A closed window (``kind="window"``) or the arrival of its label (``kind="label"``)."""

    kind: str
    device: int
    window: int
    t_start: float
    t_end: float
    prediction: Hashable | None = None  # None before the learner knows any class
    skipped: bool = False  # the missing-data policy skipped the window: no prediction
    label: Hashable | None = None
    correct: bool | None = None
    learned: bool | None = None
    latency_s: float | None = None
    margin: float | None = None

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "device": self.device, "window": self.window,
               "t_start": round(self.t_start, 6), "t": round(self.t_end, 6)}
        if self.kind == "window":
            out["prediction"] = _plain(self.prediction)
            out["skipped"] = self.skipped
            if self.latency_s is not None:
                out["latency_ms"] = round(1e3 * self.latency_s, 3)
        else:
            out.update(prediction=_plain(self.prediction), label=_plain(self.label),
                       correct=self.correct, learned=self.learned)
        return out


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


@dataclass
class _Pending:
    window: int
    t_start: float
    t_end: float
    z: np.ndarray
    raw: np.ndarray
    start_slot: int
    prediction: Hashable
    guess: Hashable | None  # the persistence baseline's prediction
    asked: bool
    label: Hashable | None = None


@dataclass
class _Record:
    """What a device's metrics are made of (one per device)."""

    latency: list[float] = field(default_factory=list)
    mistakes: list[bool] = field(default_factory=list)
    persistence_mistakes: list[bool] = field(default_factory=list)
    labels_used: int = 0
    labels_unknown: int = 0
    labels_timed_out: int = 0
    last_label: Hashable | None = None


# ---------------------------------------------------------------------- the loop
class Devices:
    """The window loop of ``n_devices`` devices with ``channels`` channels (module docstring).

    ``stores``, if given, holds one :class:`DeviceStore` (or None) per device and
    ``store_codes`` maps a label to its store class code; labelled windows are appended in
    chunks of ``flush_every``.  ``encode``, if given, maps the closed raw windows (n, L, C) to
    the learners' inputs in place of the hand features and the scaler (e.g. the flattened
    windows a :class:`fedotl.client.newuser.FederatedDeviceLearner` embeds itself).
    """

    def __init__(
        self,
        n_devices: int,
        channels: Sequence[str],
        spec: WindowSpec,
        learners: PerDeviceLearners | BatchedLearners,
        scaler: FeatureScaler | None = None,
        policy: LabelPolicy | None = None,
        stores: Sequence[DeviceStore | None] | None = None,
        store_codes: dict[Hashable, int] | None = None,
        flush_every: int = 64,
        clock: Callable[[], float] = time.perf_counter,
        encode: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        self.channels = list(channels)
        self.n_devices = n_devices
        self.buffers = WindowBuffers(n_devices, len(self.channels), spec)
        self.learners = learners
        self.policy = policy or LabelPolicy()
        self.budget = LabelBudget(self.policy, n_devices)
        n_features = len(self.channels) * len(ONLINE_STATS)
        self.encode = encode
        self.scaler = scaler or FeatureScaler.identity(n_devices, n_features)
        if encode is None and self.scaler.mean.shape[0] != n_features:
            raise ValueError(f"the scaler has {self.scaler.mean.shape[0]} features, the windows give {n_features}")
        # windows waiting for a label (in time order), and labelled ones waiting for their delay
        # (a heap on the window's end): each delivery pops only what is due
        self.waiting: list[deque[_Pending]] = [deque() for _ in range(n_devices)]
        self.ready: list[list[tuple[float, int, _Pending]]] = [[] for _ in range(n_devices)]
        self.n_pending = np.zeros(n_devices, dtype=np.int64)  # so a delivery skips idle devices fast
        self.records = [_Record() for _ in range(n_devices)]
        self.intervals: list[list[tuple[float, float, Hashable]]] = [[] for _ in range(n_devices)]
        self.stores = list(stores) if stores is not None else [None] * n_devices
        if len(self.stores) != n_devices:
            raise ValueError(f"{len(self.stores)} stores for {n_devices} devices")
        if any(s is not None for s in self.stores) and store_codes is None:
            raise ValueError("a store needs store_codes: the label -> class code of the store")
        self.store_codes = store_codes or {}
        self._store_buf: list[list[tuple]] = [[] for _ in range(n_devices)]
        self._sessions = [len(s.chunks()) if s is not None else 0 for s in self.stores]
        self.flush_every = flush_every
        self._clock = clock

    # ------------------------------------------------------------------ input
    def push(self, device: np.ndarray, t: np.ndarray, X: np.ndarray, labels: Sequence | None = None) -> list[WindowEvent]:
        """Samples of any devices (time order within a device); returns the events they caused."""
        arrived = self._clock()
        codes = None if labels is None else self.buffers.encode_labels(labels)
        closed = self.buffers.push(device, t, X, codes)
        events: list[WindowEvent] = []
        # A block behaves like its samples pushed one by one: before a device's r-th window of
        # the block is predicted, the labels that fell due before that window's end are learnt.
        if len(closed):
            for rows in _by_rank(closed.device):
                w = closed.take(rows)
                events += self._deliver(w.device, before=w.t_end)
                events += self._predict(w, arrived)
        device = np.asarray(device, dtype=np.int64)
        return events + self._deliver(device if len(device) == 1 else np.unique(device))

    def push_label(self, device: int, t0: float, t1: float, label: Hashable) -> list[WindowEvent]:
        """An annotation: ``label`` from ``t0`` to ``t1`` (seconds, the samples' clock)."""
        if not (np.isfinite(t0) and np.isfinite(t1) and t1 > t0):
            raise ValueError(f"a label interval needs finite t0 < t1, got {t0}, {t1}")
        if label is None:
            raise ValueError("a label interval needs a label")
        clock = self.buffers.clock()[device]
        if clock == clock:  # forget annotations that no open or future window can use
            oldest = clock - self.policy.timeout_s - self.buffers.spec.window_s
            self.intervals[device] = [iv for iv in self.intervals[device] if iv[1] >= oldest]
        self.intervals[device].append((float(t0), float(t1), label))
        still: deque[_Pending] = deque()
        for p in self.waiting[device]:
            p.label = self._interval_label(device, p.t_start, p.t_end)
            if p.label is None:
                still.append(p)
            else:
                heapq.heappush(self.ready[device], (p.t_end, p.window, p))
        self.waiting[device] = still
        return self._deliver(np.array([device]))

    def finish(self) -> list[WindowEvent]:
        """End of stream: deliver what is due, give up on the rest, write the stores."""
        events = self._deliver(np.arange(self.n_devices))
        for d in range(self.n_devices):
            self.records[d].labels_timed_out += len(self.waiting[d]) + len(self.ready[d])
            self.waiting[d].clear()
            self.ready[d].clear()
            self._flush(d)
        self.n_pending[:] = 0
        return events

    # ------------------------------------------------------------------ the window loop
    def _predict(self, w: ClosedWindows, arrived: float) -> list[WindowEvent]:
        events: list[WindowEvent] = []
        ok = np.flatnonzero(w.ok)
        for i in np.flatnonzero(~w.ok).tolist():
            events.append(WindowEvent("window", int(w.device[i]), int(w.index[i]), float(w.t_start[i]),
                                      float(w.t_end[i]), skipped=True))
        if ok.size == 0:
            return events
        dev = w.device[ok]
        if self.encode is not None:
            Z = self.encode(w.X[ok])
        else:
            Z = self.scaler.transform(dev, window_features(w.X[ok], (), ONLINE_STATS))
        preds, margins = self.learners.predict(dev, Z)
        latency = self._clock() - arrived
        asked = self.budget.ask(dev, margins)
        vocab = self.buffers.labels
        for j, i in enumerate(ok.tolist()):
            d = int(dev[j])
            rec = self.records[d]
            rec.latency.append(latency)
            code = int(w.label[i])
            label = vocab[code] if code >= 0 else self._interval_label(d, float(w.t_start[i]), float(w.t_end[i]))
            p = _Pending(int(w.index[i]), float(w.t_start[i]), float(w.t_end[i]), Z[j], w.X[i],
                         int(w.index[i]) * self.buffers.S, preds[j], rec.last_label, bool(asked[j]), label)
            self.n_pending[d] += 1
            if label is None:
                self.waiting[d].append(p)
            else:
                heapq.heappush(self.ready[d], (p.t_end, p.window, p))
            events.append(WindowEvent("window", d, int(w.index[i]), float(w.t_start[i]), float(w.t_end[i]),
                                      prediction=preds[j], latency_s=latency, margin=float(margins[j])))
        return events

    def _deliver(self, devices: np.ndarray, before: np.ndarray | None = None) -> list[WindowEvent]:
        """Labels whose time has come: score them, learn the asked ones, store them.

        Due means at or before each device's sample clock, or strictly before ``before[i]``
        (the end of a window about to be predicted) when given.
        """
        busy = self.n_pending[devices] > 0
        devices = devices[busy]
        if before is not None:
            before = before[busy]
        if devices.size == 0:
            return []
        now = self.buffers.clock()
        delay, timeout = self.policy.delay_s, self.policy.timeout_s
        events: list[WindowEvent] = []
        learn: list[tuple[int, _Pending]] = []
        for i, d in enumerate(devices.tolist()):
            ready, waiting = self.ready[d], self.waiting[d]
            if not ready and not waiting:
                continue
            rec = self.records[d]
            # due: at or before the clock, or strictly before the window about to be predicted
            limit, strict = (now[d], False) if before is None else (before[i], True)
            while ready and (ready[0][0] + delay < limit if strict else ready[0][0] + delay <= limit):
                p = heapq.heappop(ready)[2]
                self.n_pending[d] -= 1
                rec.mistakes.append(p.prediction != p.label)
                rec.persistence_mistakes.append(p.guess != p.label)
                if p.asked:
                    learn.append((d, p))
                events.append(WindowEvent("label", d, p.window, p.t_start, p.t_end, p.prediction, label=p.label,
                                          correct=p.prediction == p.label, learned=p.asked))
            while waiting and (waiting[0].t_end + timeout < limit if strict else waiting[0].t_end + timeout <= limit):
                waiting.popleft()
                self.n_pending[d] -= 1
                rec.labels_timed_out += 1
        if learn:
            dev = np.array([d for d, _ in learn])
            used = self.learners.learn(dev, np.stack([p.z for _, p in learn]), [p.label for _, p in learn])
            for (d, p), u in zip(learn, used.tolist()):
                rec = self.records[d]
                if not u:
                    rec.labels_unknown += 1
                    continue
                rec.labels_used += 1
                rec.last_label = p.label
                self._store(d, p)
        return events

    def _interval_label(self, device: int, t0: float, t1: float) -> Hashable | None:
        """The annotated label covering at least half of [t0, t1 + one period)."""
        end = t1 + 1.0 / self.buffers.spec.rate_hz
        cover: dict[Hashable, float] = {}
        for a, b, y in self.intervals[device]:
            o = min(b, end) - max(a, t0)
            if o > 0:
                cover[y] = cover.get(y, 0.0) + o
        if not cover:
            return None
        best = max(cover, key=cover.__getitem__)
        return best if 2 * cover[best] >= end - t0 else None

    # ------------------------------------------------------------------ the local store
    def _store(self, d: int, p: _Pending) -> None:
        if self.stores[d] is None:
            return
        code = self.store_codes.get(p.label)
        if code is None:
            return
        self._store_buf[d].append((p.raw, code, p.start_slot))
        if len(self._store_buf[d]) >= self.flush_every:
            self._flush(d)

    def _flush(self, d: int) -> None:
        buf, store = self._store_buf[d], self.stores[d]
        if not buf or store is None:
            return
        n = len(buf)
        store.append(np.stack([b[0] for b in buf]), np.array([b[1] for b in buf]),
                     session=np.full(n, self._sessions[d]), start=np.array([b[2] for b in buf]))
        buf.clear()

    # ------------------------------------------------------------------ metrics
    def metrics(self, device: int) -> dict:
        """One device's metrics: accuracy, persistence, labels, windows, latency, mistake curve."""
        rec = self.records[device]
        counts = {k: int(self.buffers.counts[k][device]) for k in COUNTS}
        n = len(rec.mistakes)
        lat = np.asarray(rec.latency) * 1e3
        return {
            "windows": counts["windows_closed"] + counts["windows_empty"],
            "windows_predicted": len(rec.latency),
            "windows_skipped": counts["windows_skipped"],
            "windows_interpolated": counts["windows_interpolated"],
            "labels_known": n,
            "labels_used": rec.labels_used,
            "labels_never": rec.labels_timed_out,
            "labels_unknown_class": rec.labels_unknown,
            "accuracy": None if n == 0 else 1.0 - float(np.mean(rec.mistakes)),
            "persistence_accuracy": None if n == 0 else 1.0 - float(np.mean(rec.persistence_mistakes)),
            "latency_ms": latency_percentiles(lat),
            "samples": {"received": counts["samples"], "late": counts["samples_late"],
                        "duplicate": counts["samples_duplicate"], "values_missing": counts["values_missing"]},
        }

    def mistake_curve(self, device: int, points: int = 50) -> dict:
        """Cumulative mistakes after each labelled window, at up to ``points`` evenly spaced windows."""
        m = np.cumsum(self.records[device].mistakes)
        if m.size == 0:
            return {"window": [], "mistakes": []}
        at = np.unique(np.linspace(1, m.size, min(points, m.size)).round().astype(int))
        return {"window": at.tolist(), "mistakes": m[at - 1].tolist()}

    def traces(self, device: int) -> dict:
        """The learner's and the persistence baseline's mistake traces (:func:`fedotl.online.evaluation.mistake_trace`)."""
        rec = self.records[device]
        return {"learner": mistake_trace(np.cumsum(rec.mistakes)), "persistence": mistake_trace(np.cumsum(rec.persistence_mistakes))}

    def latencies_ms(self, device: int | None = None) -> np.ndarray:
        """Every prediction latency (ms) of one device, or of all of them."""
        recs = self.records if device is None else [self.records[device]]
        return np.concatenate([np.asarray(r.latency, dtype=float) for r in recs] or [np.zeros(0)]) * 1e3

    def summary(self) -> dict:
        """Totals over all devices (accuracy pooled over every labelled window)."""
        mistakes = np.concatenate([np.asarray(r.mistakes, dtype=bool) for r in self.records])
        pers = np.concatenate([np.asarray(r.persistence_mistakes, dtype=bool) for r in self.records])
        lat = np.concatenate([np.asarray(r.latency) for r in self.records]) * 1e3
        tot = {k: int(v.sum()) for k, v in self.buffers.counts.items()}
        return {
            "devices": self.n_devices,
            "windows_predicted": int(lat.size),
            "windows_skipped": tot["windows_skipped"],
            "labels_known": int(mistakes.size),
            "labels_used": sum(r.labels_used for r in self.records),
            "labels_never": sum(r.labels_timed_out for r in self.records),
            "accuracy": None if mistakes.size == 0 else 1.0 - float(mistakes.mean()),
            "persistence_accuracy": None if pers.size == 0 else 1.0 - float(pers.mean()),
            "latency_ms": latency_percentiles(lat),
        }


def latency_percentiles(ms: np.ndarray) -> dict:
    """p50, p99 and max of latencies in ms, rounded to µs (None without any)."""
    if ms.size == 0:
        return {"p50": None, "p99": None, "max": None}
    p50, p99 = np.percentile(ms, [50, 99])
    return {"p50": round(float(p50), 3), "p99": round(float(p99), 3), "max": round(float(ms.max()), 3)}


# ---------------------------------------------------------------------- one device
class Device:
    """One streaming device around any online learner of :mod:`fedotl.online`.

    >>> from fedotl.online import MulticlassPA
    >>> dev = Device(["x"], rate_hz=10.0, learner=MulticlassPA(), window_s=1.0, stride_s=1.0)
    >>> events = []
    >>> for i in range(40):  # 4 s of a signal whose level says the activity
    ...     events += dev.push(i / 10, [1.0 if i < 20 else -1.0], label="up" if i < 20 else "down")
    >>> [e.prediction for e in events if e.kind == "window"][:2], len(events)
    ([None, 'up'], 8)
    >>> dev.metrics()["labels_used"]
    4

    From asyncio, feed it from any async iterator of ``(t, values, label)``:

    >>> import asyncio
    >>> async def sensor():
    ...     for i in range(20):
    ...         yield i / 10, [0.5], "still"
    >>> async def main():
    ...     d = Device(["x"], rate_hz=10.0, learner=MulticlassPA(), window_s=1.0, stride_s=1.0)
    ...     return [e.kind async for e in d.feed(sensor())]
    >>> asyncio.run(main())
    ['window', 'label', 'window', 'label']
    """

    def __init__(
        self,
        channels: Sequence[str],
        rate_hz: float,
        learner: Any,
        window_s: float = 5.0,
        stride_s: float = 1.0,
        *,
        policy: LabelPolicy | None = None,
        scaler: FeatureScaler | None = None,
        store: DeviceStore | None = None,
        store_codes: dict[Hashable, int] | None = None,
        max_missing: float = 0.2,
        max_gap_s: float = 0.5,
        encode: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        spec = WindowSpec(rate_hz, window_s, stride_s, max_missing, max_gap_s)
        self.learner = learner
        self.core = Devices(1, channels, spec, PerDeviceLearners([learner]), scaler, policy,
                            None if store is None else [store], store_codes, encode=encode)
        self._zero = np.zeros(1, dtype=np.int64)

    @property
    def channels(self) -> list[str]:
        return self.core.channels

    def push(self, t: float, values: Sequence[float], label: Hashable | None = None) -> list[WindowEvent]:
        """One sample (NaN values are missing); returns the windows and labels it completed."""
        x = np.asarray(values, dtype=np.float32).reshape(1, -1)
        return self.core.push(self._zero, np.array([float(t)]), x, None if label is None else [label])

    def push_many(self, t: np.ndarray, X: np.ndarray, labels: Sequence | None = None) -> list[WindowEvent]:
        """A block of samples in time order."""
        t = np.asarray(t, dtype=np.float64)
        return self.core.push(np.zeros(len(t), dtype=np.int64), t, X, labels)

    def push_label(self, t0: float, t1: float, label: Hashable) -> list[WindowEvent]:
        """An annotation: the activity was ``label`` from ``t0`` to ``t1``."""
        return self.core.push_label(0, t0, t1, label)

    def finish(self) -> list[WindowEvent]:
        """End of the stream: due labels are delivered, the store is written."""
        return self.core.finish()

    def metrics(self) -> dict:
        return self.core.metrics(0) | {"mistake_curve": self.core.mistake_curve(0)}

    def traces(self) -> dict:
        return self.core.traces(0)

    def latencies_ms(self) -> np.ndarray:
        return self.core.latencies_ms(0)

    async def feed(self, samples: AsyncIterable[tuple]) -> AsyncIterator[WindowEvent]:
        """Consume an async stream of ``(t, values, label)``; yields events, finishes at its end."""
        async for t, values, label in samples:
            for e in self.push(t, values, label):
                yield e
        for e in self.finish():
            yield e


def feed_all(device: Device, samples: Iterable[tuple]) -> list[WindowEvent]:
    """Push a finite stream of ``(t, values, label)`` and finish: every event, in order."""
    events: list[WindowEvent] = []
    for t, values, label in samples:
        events += device.push(t, values, label)
    return events + device.finish()
