"""Many replayed devices in one process: ``fedotl replay`` and ``benchmarks/devices.py``.

Each device is a replayed recording (:func:`fedotl.simulations.replay.fleet_sources`) with its
own PA-I learner from scratch, stepped in lockstep ticks of one sample period through one
:class:`fedotl.client.device.Devices` loop: batched ring buffers, batched features and, by
default, online/'s batched engine (``batched=False`` gives every device its own
:class:`fedotl.online.MulticlassPA`, with the same predictions).  Devices start staggered over
one stride so that their windows do not all close on the same tick, as real devices would not.

A replay is in recorded order, so activity bouts make tracking the current class look good;
the report always carries the persistence baseline beside the learner.
"""

from __future__ import annotations

import math
import resource
import time
from typing import Callable, Sequence

import numpy as np

from fedotl.client.device import BatchedLearners, Devices, FeatureScaler, PerDeviceLearners
from fedotl.client.features import ONLINE_STATS
from fedotl.client.labels import LabelPolicy
from fedotl.client.stream_windows import WindowSpec
from fedotl.online import BatchedPA, MulticlassPA
from fedotl.simulations.replay import Clock, FleetReplay, ReplaySource
from fedotl.simulations.report.metrics import SCRATCH, device_outcomes, device_row, latency_histogram, online_piece


def fleet_devices(
    sources: Sequence[ReplaySource],
    spec: WindowSpec,
    policy: LabelPolicy | None = None,
    batched: bool = True,
    dtype: type = np.float64,
) -> Devices:
    """The window loop of one device per source, PA-I from scratch on running-standardised features."""
    classes = sorted({y for s in sources for y in s.labels.tolist() if y is not None})
    if not classes:
        raise ValueError("the replayed recordings carry no labels")
    D = len(sources)
    d = sources[0].X.shape[1] * len(ONLINE_STATS)
    if batched:
        learners = BatchedLearners(BatchedPA(D, d, classes, variant="PA-I", dtype=dtype))
    else:
        learners = PerDeviceLearners([MulticlassPA(variant="PA-I", classes=classes) for _ in range(D)])
    return Devices(D, sources[0].channels, spec, learners, FeatureScaler.identity(D, d), policy)


def run_fleet(
    sources: Sequence[ReplaySource],
    spec: WindowSpec,
    policy: LabelPolicy | None = None,
    *,
    batched: bool = True,
    speed: float = math.inf,
    clock: Clock | None = None,
    on_tick: Callable[[int], None] | None = None,
) -> dict:
    """Replay every source as a device; returns the overall and per-device report."""
    devices = fleet_devices(sources, spec, policy, batched)
    offsets = (np.arange(len(sources)) % 97) / 97 * spec.stride_s  # staggered over one stride
    replay = FleetReplay(sources, speed=speed, clock=clock, start_offsets=offsets)
    t0 = time.perf_counter()
    for i, (dev, t, X, labels) in enumerate(replay):
        devices.push(dev, t, X, list(labels))
        if on_tick is not None:
            on_tick(i)
    devices.finish()
    wall = time.perf_counter() - t0
    stream_s = max((float(s.t[-1] - s.t[0]) + 1.0 / s.rate_hz) for s in sources if len(s))
    report = devices.summary()
    metrics = [devices.metrics(i) for i in range(len(sources))]
    report.update(
        wall_s=round(wall, 3),
        stream_s=round(stream_s, 3),
        realtime_factor=round(stream_s / wall, 3) if wall > 0 else None,
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        batched=batched,
        per_device=[device_row(s.name, SCRATCH, m) for s, m in zip(sources, metrics)],
    )
    # the report's pieces: PA-I from scratch and persistence on every device, and the latency histogram
    report["latency_hist"] = latency_histogram({SCRATCH: devices.latencies_ms()})
    report["online"] = online_piece((s.name, SCRATCH, device_outcomes(m, devices.traces(i))) for i, (s, m) in enumerate(zip(sources, metrics)))
    return report
