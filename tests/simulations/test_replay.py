"""Replays: pacing on driven and wall clocks, seeded faults, subject streams, fleets."""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np
import pytest

from fedotl.simulations.readers import load_dataset
from fedotl.simulations.readers.dsads import ACTIVITIES
from fedotl.simulations.replay import (
    Clock,
    DrivenClock,
    Faults,
    FleetReplay,
    Replay,
    ReplaySource,
    WallClock,
    apply_faults,
    fleet_sources,
    subject_stream,
)


def make_source(n: int = 10, rate: float = 25.0, t0: float = 0.0, name: str = "s", channels: int = 2) -> ReplaySource:
    t = t0 + np.arange(n) / rate
    X = (np.arange(n * channels, dtype=np.float32).reshape(n, channels) + 1000 * len(name))
    labels = np.array(["sit" if i < n // 2 else "walk" for i in range(n)], dtype=object)
    return ReplaySource(name, t, X, labels, [f"c{j}" for j in range(channels)], rate)


@pytest.fixture(scope="module")
def ds(synth_dsads):
    return load_dataset("dsads", synth_dsads)


# ------------------------------------------------------------------ sources
def test_source_validates_shapes():
    good = make_source(4)
    with pytest.raises(ValueError, match="X must have shape"):
        ReplaySource("x", good.t, good.X[:3], good.labels, good.channels, 25.0)
    with pytest.raises(ValueError, match="labels must have shape"):
        ReplaySource("x", good.t, good.X, good.labels[:2], good.channels, 25.0)
    with pytest.raises(ValueError, match="channel names"):
        ReplaySource("x", good.t, good.X, good.labels, ["only one"], 25.0)
    with pytest.raises(ValueError, match="non-decreasing"):
        ReplaySource("x", good.t[::-1], good.X, good.labels, good.channels, 25.0)
    with pytest.raises(ValueError, match="rate_hz"):
        ReplaySource("x", good.t, good.X, good.labels, good.channels, 0.0)
    assert good.t.dtype == np.float64 and good.X.dtype == np.float32 and good.labels.dtype == object


# ------------------------------------------------------------------- timing
def test_real_rate_sleeps_until_each_sample_time():
    src = make_source(10)
    clock = DrivenClock(time=100.0)
    replay = Replay(src, clock=clock)
    blocks = list(replay)
    assert [len(t) for t, _, _ in blocks] == [1] * 10
    np.testing.assert_array_equal(np.concatenate([t for t, _, _ in blocks]), src.t)
    np.testing.assert_array_equal(np.concatenate([X for _, X, _ in blocks]), src.X)
    assert [y[0] for _, _, y in blocks] == src.labels.tolist()
    # the first sample is due at the start, each later one at its own time
    assert clock.sleeps == pytest.approx((100.0 + src.t[1:]).tolist())
    assert replay.released == 10


def test_ten_times_speed_divides_the_waits():
    src = make_source(10, t0=5.0)  # release times are relative to the first sample
    clock = DrivenClock()
    assert sum(len(t) for t, _, _ in Replay(src, speed=10, clock=clock)) == 10
    assert clock.sleeps == pytest.approx(((src.t[1:] - 5.0) / 10).tolist())


def test_infinite_speed_never_sleeps():
    src = make_source(50)
    clock = DrivenClock(time=3.0)
    replay = Replay(src, speed=math.inf, clock=clock)
    sizes = [len(t) for t, _, _ in replay]
    assert sizes == [1] * 50 and replay.released == 50
    assert clock.sleeps == [] and clock.now() == 3.0


def test_block_s_groups_a_second_released_when_its_last_sample_is_due():
    src = make_source(60)  # 2.4 s at 25 Hz
    clock = DrivenClock()
    blocks = list(Replay(src, clock=clock, block_s=1.0))
    assert [len(t) for t, _, _ in blocks] == [25, 25, 10]
    assert clock.sleeps == pytest.approx([src.t[24], src.t[49], src.t[59]])


def test_a_late_consumer_gets_everything_due_in_one_block():
    src = make_source(60)
    clock = DrivenClock()
    sizes = []
    for t, _, _ in Replay(src, clock=clock):
        sizes.append(len(t))
        if len(sizes) == 1:
            clock.advance(1.0)  # the consumer stalls for a second
    # after the stall, samples 1..25 (t <= 1.0 s) are due at once
    assert sizes[:2] == [1, 25] and sizes[2:] == [1] * 34


def test_breaking_out_stops_without_reading_ahead_and_a_new_pass_restarts():
    src = make_source(20)
    clock = DrivenClock()
    replay = Replay(src, clock=clock)
    for i, (t, _, _) in enumerate(replay):
        if i == 2:
            break
    assert replay.released == 3
    assert len(clock.sleeps) == 2 and clock.now() == pytest.approx(src.t[2])
    first = next(iter(replay))  # a new pass starts at the first sample, from now
    assert first[0].tolist() == [0.0] and replay.released == 1
    gen = iter(replay)
    next(gen), next(gen)
    gen.close()
    assert replay.released == 2


def test_both_clocks_are_clocks_and_the_driven_one_only_moves_forward():
    assert isinstance(WallClock(), Clock) and isinstance(DrivenClock(), Clock)
    c = DrivenClock(time=1.0)
    c.sleep_until(0.5)  # already past: no sleep
    c.advance(0.25)
    assert c.now() == 1.25 and c.sleeps == []
    with pytest.raises(ValueError):
        c.advance(-1)


@pytest.mark.parametrize("speed", [0, -1.0, math.nan, "fast", True])
def test_bad_speed(speed):
    with pytest.raises(ValueError, match="speed"):
        Replay(make_source(3), speed=speed)


def test_wall_clock_paces_at_high_speed():
    src = make_source(26)  # 1.0 s of stream
    speed = 10.0  # about 0.1 s of wall time
    clock = WallClock()
    t_start = time.monotonic()
    arrivals = []
    for t, _, _ in Replay(src, speed=speed, clock=clock):
        arrivals.append((time.monotonic() - t_start, float(t[-1])))
    elapsed = time.monotonic() - t_start
    assert 0.095 <= elapsed <= 0.35
    # never early: every block arrives after its last sample is due
    assert all(wall >= (ts - src.t[0]) / speed - 1e-3 for wall, ts in arrivals)


# ------------------------------------------------------------------- faults
def long_source(n: int = 10_000) -> ReplaySource:
    rng = np.random.default_rng(0)
    return ReplaySource(
        "long", np.arange(n) / 25.0, rng.normal(size=(n, 3)).astype(np.float32),
        np.array(["a", "b"] * (n // 2), dtype=object), ["x", "y", "z"], 25.0,
    )


def test_no_faults_is_the_identity():
    src = long_source(100)
    out, counts = apply_faults(src, Faults())
    np.testing.assert_array_equal(out.t, src.t)
    np.testing.assert_array_equal(out.X, src.X)
    assert counts == {"samples_in": 100, "samples_out": 100, "dropped": 0, "nan_bursts": 0,
                      "nan_samples": 0, "jitter_std_s": 0.0}
    assert out.X is not src.X  # a copy: the source is never changed


def test_jitter_keeps_order_and_bounds():
    src = long_source()
    out, counts = apply_faults(src, Faults(jitter_s=0.05, seed=1))  # std above the clip
    noise = out.t - src.t
    assert np.all(np.diff(out.t) > 0)
    assert np.abs(noise).max() <= 0.45 / 25.0 + 1e-12
    assert np.abs(noise).max() > 0.4 / 25.0  # the clip was actually reached
    assert counts["jitter_std_s"] == pytest.approx(noise.std())
    small, c = apply_faults(src, Faults(jitter_s=0.002, seed=1))
    assert c["jitter_std_s"] == pytest.approx(0.002, rel=0.05)
    np.testing.assert_array_equal(small.X, src.X)


def test_drops_are_counted_and_remove_samples():
    src = long_source()
    out, counts = apply_faults(src, Faults(drop=0.2, seed=7))
    n = len(src)
    assert counts["dropped"] == n - len(out) == counts["samples_in"] - counts["samples_out"]
    sigma = math.sqrt(n * 0.2 * 0.8)
    assert abs(counts["dropped"] - 0.2 * n) < 5 * sigma
    # what is left is a subsequence of the source, rows and labels aligned
    idx = np.round(out.t * 25.0).astype(int)
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(out.X, src.X[idx])
    assert out.labels.tolist() == src.labels[idx].tolist()
    again, counts2 = apply_faults(src, Faults(drop=0.2, seed=7))
    assert counts2["dropped"] == counts["dropped"]
    np.testing.assert_array_equal(again.t, out.t)


def test_nan_bursts_blank_whole_rows_and_are_counted():
    src = long_source()  # 400 s, 6.7 minutes
    out, counts = apply_faults(src, Faults(nan_bursts_per_min=6, nan_burst_s=0.5, seed=3))
    rows = np.isnan(out.X)
    any_nan, all_nan = rows.any(axis=1), rows.all(axis=1)
    assert np.array_equal(any_nan, all_nan)  # every channel at once
    assert all_nan.sum() == counts["nan_samples"] > 0
    assert 15 <= counts["nan_bursts"] <= 70  # Poisson(40)
    assert counts["nan_samples"] <= counts["nan_bursts"] * math.ceil(0.5 * 25)
    # each NaN run lasts at most a burst, unless bursts overlapped
    edges = np.flatnonzero(np.diff(np.concatenate([[0], all_nan.astype(int), [0]])))
    runs = edges[1::2] - edges[::2]
    assert len(runs) <= counts["nan_bursts"] and runs.min() >= 1
    np.testing.assert_array_equal(out.X[~all_nan], src.X[~all_nan])
    assert out.labels.tolist() == src.labels.tolist()  # the activity went on


def test_same_seed_same_output_other_seed_other_output():
    src = long_source()
    f = dict(jitter_s=0.005, drop=0.1, nan_bursts_per_min=4)
    a, ca = apply_faults(src, Faults(**f, seed=11))
    b, cb = apply_faults(src, Faults(**f, seed=11))
    c, cc = apply_faults(src, Faults(**f, seed=12))
    assert ca == cb
    # with drops too, the counts describe the output
    assert np.isnan(a.X).all(axis=1).sum() == ca["nan_samples"] > 0
    assert len(a) == ca["samples_out"] == ca["samples_in"] - ca["dropped"] < len(src)
    np.testing.assert_array_equal(a.t, b.t)
    np.testing.assert_array_equal(a.X, b.X)  # NaNs compare equal here
    assert ca != cc
    assert len(a) != len(c) or not np.array_equal(a.t, c.t)


def test_each_fault_has_its_own_random_stream():
    src = long_source()
    only_nan, _ = apply_faults(src, Faults(nan_bursts_per_min=6, seed=5))
    with_drop, _ = apply_faults(src, Faults(nan_bursts_per_min=6, drop=0.3, seed=5))
    nan_times = set(only_nan.t[np.isnan(only_nan.X[:, 0])].tolist())
    kept_nan_times = set(with_drop.t[np.isnan(with_drop.X[:, 0])].tolist())
    assert kept_nan_times and kept_nan_times <= nan_times


@pytest.mark.parametrize(
    "kw, field",
    [({"jitter_s": -0.1}, "jitter_s"), ({"drop": 1.5}, "drop"), ({"drop": math.nan}, "drop"),
     ({"nan_bursts_per_min": -1}, "nan_bursts_per_min"), ({"nan_burst_s": 0}, "nan_burst_s"),
     ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed")],
)
def test_fault_ranges(kw, field):
    with pytest.raises(ValueError, match=f"Faults.{field}"):
        Faults(**kw)


# --------------------------------------------------------- subject streams
def test_subject_stream_one_subject_at_one_position(ds):
    src = subject_stream(ds, "p2", "LA")
    n = 19 * 6 * 125  # 19 activities × 30 s at 25 Hz
    assert src.name == "p2@LA" and len(src) == n and src.rate_hz == 25.0
    assert src.channels == [f"LA_{s}_{a}" for s in ("acc", "gyro", "mag") for a in "xyz"]
    np.testing.assert_allclose(src.t, np.arange(n) / 25.0)
    # bouts in recorded order, 750 samples each, named
    assert src.labels[::750].tolist() == [ACTIVITIES[a] for a in range(1, 20)]
    assert (src.labels.reshape(19, 750) == src.labels[::750, None]).all()
    la = ds.position_channels("LA")
    recs = [r for r in ds.recordings if r.subject == "p2"]
    np.testing.assert_array_equal(src.X, np.concatenate([r.data[:, la] for r in recs]))
    whole = subject_stream(ds, "p2")
    assert whole.name == "p2" and whole.X.shape == (n, 45)


def test_subject_stream_unlabelled_codes_become_none(ds):
    from dataclasses import replace

    fewer = replace(ds, activities={c: n for c, n in ds.activities.items() if c != 3})
    src = subject_stream(fewer, "p1", "T")
    assert src.labels[2 * 750 : 3 * 750].tolist() == [None] * 750
    assert src.labels[0] == "sitting"


def test_subject_stream_names_the_valid_choices(ds):
    with pytest.raises(ValueError, match=r"unknown subject 'p9'.*'p1', 'p2', 'p3', 'p4'"):
        subject_stream(ds, "p9")
    with pytest.raises(ValueError, match=r"unknown position 'XX'.*'T', 'RA', 'LA', 'RL', 'LL'"):
        subject_stream(ds, "p1", "XX")


# ------------------------------------------------------------------- fleets
def test_fleet_sources_cycle_and_rotate(ds):
    srcs = fleet_sources(ds, 45)
    names = [s.name for s in srcs]
    assert names[:6] == ["p1@T", "p1@RA", "p1@LA", "p1@RL", "p1@LL", "p2@T"]
    assert names[20:22] == ["p1@T#2", "p1@RA#2"] and names[40:] == ["p1@T#3", "p1@RA#3", "p1@LA#3", "p1@RL#3", "p1@LL#3"]
    assert len(set(names)) == 45 and {s.X.shape[1] for s in srcs} == {9}
    orig, copy2, copy3 = srcs[1], srcs[21], srcs[41]
    n = len(orig)
    for k, copy in ((1, copy2), (2, copy3)):
        shift = (k * 7 * 60 * 25) % n
        np.testing.assert_array_equal(copy.X, np.roll(orig.X, -shift, axis=0))
        assert copy.labels.tolist() == np.roll(orig.labels, -shift).tolist()
        np.testing.assert_allclose(copy.t, np.arange(n) / 25.0)  # re-timestamped continuously
        assert not np.array_equal(copy.X, orig.X)
    only_ra = fleet_sources(ds, 3, positions=["RA"])
    assert [s.name for s in only_ra] == ["p1@RA", "p2@RA", "p3@RA"]
    with pytest.raises(ValueError, match="positions are"):
        fleet_sources(ds, 2, positions=["XX"])
    with pytest.raises(ValueError, match="n_devices"):
        fleet_sources(ds, 0)


def check_fleet_delivery(sources, offsets, blocks):
    """Every sample of every device exactly once, in time order per device."""
    dev = np.concatenate([b[0] for b in blocks])
    t = np.concatenate([b[1] for b in blocks])
    X = np.concatenate([b[2] for b in blocks])
    y = np.concatenate([b[3] for b in blocks])
    for i, s in enumerate(sources):
        mine = dev == i
        np.testing.assert_allclose(t[mine] - offsets[i], s.t)
        np.testing.assert_array_equal(X[mine], s.X)
        assert y[mine].tolist() == s.labels.tolist()
    assert len(dev) == sum(len(s) for s in sources)


def test_fleet_lockstep_with_offsets_and_different_lengths():
    rate = 10.0
    sources = [make_source(5, rate, name="a"), make_source(8, rate, name="bb"), make_source(3, rate, name="ccc")]
    offsets = [0.0, 0.25, 1.0]
    clock = DrivenClock()
    fleet = FleetReplay(sources, clock=clock, start_offsets=offsets)
    blocks, nows = [], []
    for dev, t, X, y in fleet:
        blocks.append((dev.copy(), t.copy(), X.copy(), y.copy()))
        nows.append(clock.now())
    check_fleet_delivery(sources, offsets, blocks)
    assert fleet.released == 16
    prev = -math.inf
    for (dev, t, _, _), now in zip(blocks, nows):
        assert np.all(t <= now + 1e-9)  # due by this tick ...
        assert np.all(t > prev + 1e-9)  # ... and not by the tick before
        assert np.all(np.diff(dev) >= 0)
        prev = now
    # ticks are whole sample periods; device b's first sample (t = 0.25 s) waits for 0.3 s
    assert np.allclose(np.array(clock.sleeps) * rate, np.round(np.array(clock.sleeps) * rate))
    assert [d.tolist() for d, *_ in blocks[:4]] == [[0], [0], [0], [0, 1]]
    assert blocks[3][1].tolist() == pytest.approx([0.3, 0.25])
    # a ends at 0.4 s; b's last sample (0.95 s) shares the 1.0 s tick with c's first; then only c
    assert [d.tolist() for d, *_ in blocks[-3:]] == [[1, 2], [2], [2]]
    assert nows[-1] == pytest.approx(1.2)


def test_fleet_at_real_rate_sleeps_once_per_sample_period():
    sources = [make_source(6, name="a"), make_source(6, name="bb")]
    clock = DrivenClock()
    blocks = [tuple(a.copy() for a in b) for b in FleetReplay(sources, clock=clock)]
    assert [d.tolist() for d, *_ in blocks] == [[0, 1]] * 6
    assert clock.sleeps == pytest.approx((np.arange(1, 6) / 25.0).tolist())
    fast = DrivenClock()
    list(FleetReplay(sources, speed=5.0, clock=fast))
    assert fast.sleeps == pytest.approx((np.arange(1, 6) / 25.0 / 5.0).tolist())


def test_fleet_of_dataset_devices_as_fast_as_possible(ds):
    sources = fleet_sources(ds, 23)
    offsets = np.arange(23) * 0.5
    clock = DrivenClock()
    fleet = FleetReplay(sources, speed=math.inf, clock=clock, start_offsets=offsets)
    blocks = list(fleet)
    assert clock.sleeps == []
    check_fleet_delivery(sources, offsets, blocks)
    assert len(blocks) == fleet.n_ticks
    with pytest.raises(ValueError, match="start_offsets"):
        FleetReplay(sources, start_offsets=[0.0])
    with pytest.raises(ValueError, match="channels"):
        FleetReplay([make_source(3, channels=2), make_source(3, channels=3)])


# -------------------------------------------------------------------- async
def test_async_iteration_matches_sync():
    src = make_source(12)

    async def consume(replay):
        return [(t.tolist(), y.tolist()) async for t, _, y in replay]

    sync_clock, async_clock = DrivenClock(), DrivenClock()
    expected = [(t.tolist(), y.tolist()) for t, _, y in Replay(src, speed=2, clock=sync_clock)]
    replay = Replay(src, speed=2, clock=async_clock)
    got = asyncio.run(consume(replay))
    assert got == expected and replay.released == 12
    assert async_clock.sleeps == sync_clock.sleeps and len(async_clock.sleeps) == 11


def test_async_fleet_and_wall_clock_replays_run_concurrently():
    async def main():
        a = Replay(make_source(11, name="a"), speed=10.0, clock=WallClock())  # 0.04 s each
        b = Replay(make_source(11, name="b"), speed=10.0, clock=WallClock())
        order: list[str] = []

        async def run(name, replay):
            async for t, _X, _y in replay:
                order.extend([name] * len(t))  # a late task may get two samples in one block

        t0 = time.monotonic()
        await asyncio.gather(run("a", a), run("b", b))
        elapsed = time.monotonic() - t0
        fleet = FleetReplay([make_source(4, name="a"), make_source(2, name="bb")], clock=DrivenClock())
        sizes = [len(d) async for d, *_ in fleet]
        return order, elapsed, sizes

    order, elapsed, sizes = asyncio.run(main())
    assert sorted(order) == ["a"] * 11 + ["b"] * 11
    assert order.index("b") < len(order) - 1 - order[::-1].index("a")  # interleaved, not one after the other
    assert 0.035 <= elapsed <= 0.25
    assert sizes == [2, 2, 1, 1]
