"""The streaming device (client/device.py, client/stream_windows.py, client/labels.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fedotl.client.config import RunConfig
from fedotl.client.data import load_device
from fedotl.client.device import BatchedLearners, Device, Devices, FeatureScaler, PerDeviceLearners, feed_all
from fedotl.client.labels import LabelBudget, LabelPolicy
from fedotl.client.node import node_evaluate, node_train
from fedotl.client.store import DeviceStore
from fedotl.client.stream_windows import WindowBuffers, WindowSpec
from fedotl.online import BatchedPA, MulticlassPA


class Spy:
    """A learner that records what it is given (and insists that it is finite)."""

    def __init__(self, answer="a"):
        self.answer, self.predicted, self.learned = answer, [], []

    def predict_array(self, x):
        assert np.isfinite(x).all()
        self.predicted.append(x.copy())
        return self.answer

    def predict_proba_array(self, x):
        return np.array([1.0])

    def learn_array(self, x, y):
        assert np.isfinite(x).all()
        self.learned.append(y)


def ramp(n, rate=10.0, channels=1):
    t = np.arange(n) / rate
    return t, np.repeat(np.arange(n, dtype=np.float32)[:, None], channels, axis=1)


# ---------------------------------------------------------------------- windows on the sample clock
def test_windows_close_on_the_sample_clock_with_known_boundaries():
    wb = WindowBuffers(1, 1, WindowSpec(rate_hz=10.0, window_s=1.0, stride_s=0.5))
    t, X = ramp(30)
    closed_at = {}
    for i in range(30):
        w = wb.push(np.array([0]), t[i:i + 1], X[i:i + 1])
        for k in w.index.tolist():
            closed_at[k] = i
        if len(w):
            assert w.X[0, :, 0].tolist() == list(range(5 * w.index[0], 5 * w.index[0] + 10))
    # window k covers samples 5k..5k+9 and closes on its own last sample, 5k+9
    assert closed_at == {k: 5 * k + 9 for k in range(5)}
    one_push = wb.__class__(1, 1, wb.spec).push(np.zeros(30, int), t, X)
    assert one_push.index.tolist() == [0, 1, 2, 3, 4]
    assert np.allclose(one_push.t_start, [0.0, 0.5, 1.0, 1.5, 2.0]) and np.allclose(one_push.t_end, one_push.t_start + 0.9)


def test_jitter_below_half_a_period_lands_on_the_grid():
    spec = WindowSpec(rate_hz=10.0, window_s=1.0, stride_s=1.0)
    t, X = ramp(50)
    jitter = np.random.default_rng(0).uniform(-0.045, 0.045, 50)
    jitter[0] = 0.0  # the first sample fixes the grid
    a = WindowBuffers(1, 1, spec).push(np.zeros(50, int), t, X)
    b = WindowBuffers(1, 1, spec).push(np.zeros(50, int), t + jitter, X)
    assert np.array_equal(a.X, b.X) and a.ok.all() and b.ok.all()


def test_missing_samples_are_interpolated_or_the_window_is_skipped_and_counted():
    spec = WindowSpec(rate_hz=10.0, window_s=1.0, stride_s=1.0, max_missing=0.2, max_gap_s=0.2)
    t, X = ramp(40)
    X = X.copy()
    keep = np.ones(40, bool)
    keep[3] = False          # window 0: one sample lost -> interpolated
    keep[[12, 15, 17]] = False  # window 1: 3 of 10 lost (30% > 20%) -> skipped
    X[24:27] = np.nan        # window 2: a NaN burst of 3 samples (0.3 s > 0.2 s) -> skipped
    X[35, 0] = np.inf        # window 3: one bad value -> interpolated
    wb = WindowBuffers(1, 1, spec)
    w = wb.push(np.zeros(keep.sum(), int), t[keep], X[keep])
    assert w.ok.tolist() == [True, False, False, True]
    assert w.interpolated.tolist() == [True, False, False, True]
    assert w.X[0, 3, 0] == pytest.approx(3.0) and w.X[3, 5, 0] == pytest.approx(35.0)
    assert np.isfinite(w.X).all()
    c = {k: int(v[0]) for k, v in wb.counts.items()}
    assert c["windows_skipped"] == 2 and c["windows_interpolated"] == 2 and c["values_missing"] == 1 + 3 + 3 + 1


def test_a_long_gap_skips_its_empty_windows_in_bulk_and_late_or_repeated_samples_are_counted():
    spec = WindowSpec(rate_hz=10.0, window_s=1.0, stride_s=1.0)
    wb = WindowBuffers(1, 1, spec)
    t, X = ramp(20)
    wb.push(np.zeros(20, int), t, X)  # windows 0, 1
    t2 = 3600.0 + np.arange(20) / 10  # an hour later
    w = wb.push(np.zeros(20, int), t2, X)
    assert w.index.tolist() == [3600, 3601] and w.ok.all()
    assert wb.counts["windows_empty"][0] == 3600 - 2 and wb.counts["windows_skipped"][0] == 3600 - 2
    wb.push(np.array([0]), np.array([0.5]), X[:1])  # belongs to a closed window: late
    wb.push(np.array([0, 0]), np.array([3602.0, 3602.01]), X[:2])  # the same slot twice
    assert wb.counts["samples_late"][0] == 1 and wb.counts["samples_duplicate"][0] == 1


@pytest.mark.parametrize("one_by_one", [True, False])
def test_a_jump_beyond_the_sample_clock_is_refused_naming_the_device(one_by_one):
    wb = WindowBuffers(2, 1, WindowSpec(rate_hz=10.0, window_s=0.2, stride_s=0.2))
    wb.push(np.array([0, 1]), np.array([0.0, 0.0]), np.zeros((2, 1)))
    state = wb.max_slot.copy()
    t = np.array([1e300]) if one_by_one else np.array([0.1, 1e300])
    with pytest.raises(ValueError, match=r"device 1: timestamp 1e\+300 s .* beyond the sample clock"):
        wb.push(np.ones(len(t), int), t, np.zeros((len(t), 1)))  # the int64 cast once gave a garbage slot
    assert (wb.max_slot == state).all()  # refused before anything was written


def test_nothing_non_finite_reaches_the_learner():
    spy = Spy()
    dev = Device(["x", "y"], rate_hz=10.0, learner=spy, window_s=1.0, stride_s=0.5)
    t, X = ramp(200, channels=2)
    X[np.random.default_rng(1).random(X.shape) < 0.05] = np.nan
    X[100:130] = np.nan
    events = dev.push_many(t, X, ["a"] * 200) + dev.finish()
    skipped = [e for e in events if e.kind == "window" and e.skipped]
    m = dev.metrics()
    assert skipped and m["windows_skipped"] == len(skipped) and m["windows_interpolated"] > 0
    assert len(spy.predicted) == m["windows_predicted"] == sum(e.kind == "window" and not e.skipped for e in events)


# ---------------------------------------------------------------------- labels
def level_stream(n, rate=10.0, period=40):
    """A 1-channel signal whose level gives the activity, which changes every ``period`` samples."""
    y = np.array(["lo", "hi"])[(np.arange(n) // period) % 2]
    X = np.where(y == "hi", 1.0, -1.0).astype(np.float32)[:, None] + np.float32(0.01) * np.arange(n)[:, None] % 1
    return np.arange(n) / rate, X, list(y)


def test_delayed_labels_arrive_when_the_sample_clock_passes_end_plus_delay():
    spy = Spy()
    dev = Device(["x"], rate_hz=10.0, learner=spy, window_s=1.0, stride_s=1.0, policy=LabelPolicy(delay_s=2.0))
    t, X, y = level_stream(100)
    arrivals = {}
    for i in range(100):
        for e in dev.push(t[i], X[i], y[i]):
            if e.kind == "label":
                arrivals[e.window] = t[i]
    # window k ends at k + 0.9 s; its label is delivered at the first sample at or after k + 2.9 s
    assert arrivals == {k: pytest.approx(k + 2.9) for k in range(8)}
    assert len(spy.learned) == 8
    dev.finish()
    assert dev.metrics()["labels_used"] == 8 and dev.metrics()["labels_never"] == 2  # 8.9+2, 9.9+2 > end


def test_a_label_that_never_comes_is_predicted_and_never_learnt_from():
    spy = Spy()
    dev = Device(["x"], rate_hz=10.0, learner=spy, window_s=1.0, stride_s=1.0, policy=LabelPolicy(timeout_s=3.0))
    t, X, _ = level_stream(100)
    events = dev.push_many(t, X) + dev.finish()
    m = dev.metrics()
    assert m["windows_predicted"] == 10 and not spy.learned and m["labels_used"] == 0
    assert m["labels_never"] == 10 and m["accuracy"] is None
    assert not [e for e in events if e.kind == "label"]


def test_label_intervals_before_and_after_the_window_closes():
    spy = Spy("lo")
    dev = Device(["x"], rate_hz=10.0, learner=spy, window_s=1.0, stride_s=1.0)
    t, X, _ = level_stream(40)
    dev.push_label(0.0, 1.5, "lo")  # known before windows 0 and 1 close
    dev.push_many(t, X)
    assert spy.learned == ["lo", "lo"]  # window 1 = [1.0, 2.0): half covered by the interval
    events = dev.push_label(1.5, 4.0, "hi")
    assert [(e.window, e.label, e.correct) for e in events] == [(2, "hi", False), (3, "hi", False)]
    assert dev.metrics()["labels_used"] == 4
    with pytest.raises(ValueError, match="t0 < t1"):
        dev.push_label(3.0, 2.0, "x")


def test_random_budget_spends_about_its_fraction():
    b = LabelBudget(LabelPolicy(budget=0.3, seed=4), n_devices=2)
    asked = np.concatenate([b.ask(np.array([0, 1]), np.array([0.5, 0.5])) for _ in range(2000)])
    assert abs(asked.mean() - 0.3) < 0.02 and (b.asked / b.seen).round(1).tolist() == [0.3, 0.3]


def test_uncertainty_budget_keeps_within_budget_and_asks_where_the_learner_is_unsure():
    rng = np.random.default_rng(0)
    m = rng.uniform(0, 1, 3000)
    b = LabelBudget(LabelPolicy(budget=0.1, query="uncertainty"), n_devices=1)
    asked = np.array([b.ask(np.array([0]), np.array([v]))[0] for v in m])
    assert (np.cumsum(asked) <= 0.1 * np.arange(1, 3001) + 1).all()
    assert asked.mean() > 0.08  # the budget is spent, not hoarded
    # on the uncertain windows: θ settles near the median margin (asking half the time when
    # the budget allows), so the asked margins average about 0.25 where random asking gives 0.5
    assert m[asked].mean() < 0.32 and m[~asked].mean() > 0.5


def test_budget_limits_what_the_learner_is_given_but_every_known_label_is_scored():
    spy = Spy()
    dev = Device(["x"], rate_hz=10.0, learner=spy, window_s=1.0, stride_s=1.0, policy=LabelPolicy(budget=0.25, seed=1))
    t, X, y = level_stream(4000)
    feed_all(dev, zip(t, X, y))
    m = dev.metrics()
    assert m["labels_known"] == 400 and m["labels_used"] == len(spy.learned)
    assert 60 < m["labels_used"] < 140


def test_prequential_accuracy_and_the_persistence_baseline():
    dev = Device(["x"], rate_hz=10.0, learner=MulticlassPA(variant="PA-I"), window_s=1.0, stride_s=1.0)
    t, X, y = level_stream(800, period=40)  # 4-window bouts
    events = feed_all(dev, zip(t, X, y))
    labels = [e for e in events if e.kind == "label"]
    m = dev.metrics()
    # persistence misses the first window of every bout and the very first window: 20 bouts
    assert m["persistence_accuracy"] == pytest.approx(1 - 20 / 80)
    assert m["accuracy"] == pytest.approx(np.mean([e.correct for e in labels])) and m["accuracy"] > 0.9
    assert m["mistake_curve"]["mistakes"][-1] == sum(not e.correct for e in labels)


# ---------------------------------------------------------------------- one device == its row of the batch
def test_batched_devices_give_the_predictions_of_single_devices():
    D, rate, n = 6, 25.0, 25 * 120
    rng = np.random.default_rng(3)
    classes = ("walk", "sit", "run")
    policy = LabelPolicy(delay_s=1.5, budget=0.5, query="uncertainty")
    streams = []
    for d in range(D):
        y = np.array(classes)[(np.arange(n) // (25 * 7) + d) % 3]
        X = rng.normal(size=(n, 3)).astype(np.float32) + (np.searchsorted(classes, y) == 0)[:, None] * 0.5
        X[:, 1] += (y == "run") * 1.5
        t = d * 0.37 + np.arange(n) / rate + rng.uniform(-0.01, 0.01, n)  # own phase, jitter
        keep = rng.random(n) > 0.02  # packet loss
        X[rng.random(n) < 0.01] = np.nan
        streams.append((t[keep], X[keep], list(y[keep])))
    spec = WindowSpec(rate, 5.0, 1.0)
    ch = ["a", "b", "c"]
    batched = Devices(D, ch, spec, BatchedLearners(BatchedPA(D, 18, classes)), FeatureScaler.identity(D, 18), policy)
    singles = [Devices(1, ch, spec, PerDeviceLearners([MulticlassPA(variant="PA-I", classes=classes)]),
                       FeatureScaler.identity(1, 18), policy) for _ in range(D)]
    # the same arrivals for both: lockstep ticks of 1/25 s
    ticks = []
    pos = [0] * D
    for tick in np.arange(0, 125, 1 / rate):
        for d, (t, X, y) in enumerate(streams):
            j = np.searchsorted(t, tick, side="right")
            if j > pos[d]:
                ticks.append((d, t[pos[d]:j], X[pos[d]:j], y[pos[d]:j]))
            pos[d] = j
        ticks.append(None)  # end of tick
    got_b, got_s, block = [], [], []
    for item in ticks:
        if item is not None:
            d, t, X, y = item
            got_s += [(d, e) for e in singles[d].push(np.zeros(len(t), int), t, X, y)]
            block.append(item)
        elif block:
            got_b += batched.push(np.concatenate([np.full(len(b[1]), b[0]) for b in block]),
                                  np.concatenate([b[1] for b in block]), np.concatenate([b[2] for b in block]),
                                  sum((list(b[3]) for b in block), []))
            block = []
    got_b += batched.finish()
    for d in range(D):
        got_s += [(d, e) for e in singles[d].finish()]

    def key(events):
        return sorted((e.device, e.kind, e.window, e.prediction, e.label, e.learned) for e in events)

    assert key(got_b) == key([e.__class__(**{**e.__dict__, "device": d}) for d, e in got_s])
    assert sum(e.kind == "window" for e in got_b) > D * 100
    for d in range(D):
        mb, ms = batched.metrics(d), singles[d].metrics(0)
        for k in ("accuracy", "labels_used", "windows_skipped", "windows_interpolated", "persistence_accuracy"):
            assert mb[k] == ms[k], (d, k)
    assert 0.2 < batched.summary()["labels_used"] / batched.summary()["labels_known"] <= 0.51


# ---------------------------------------------------------------------- the local store feeds a train round
def test_the_devices_store_is_what_its_federated_train_round_trains_on(tmp_path):
    rate, L = 25.0, 125
    classes = {"walk": 1, "sit": 2, "run": 3}
    store = DeviceStore.create(tmp_path / "store", device="me", channels=[{"name": c} for c in "xyz"],
                               rate_hz=rate, window_rows=L, classes=sorted(classes.values()))
    dev = Device(list("xyz"), rate, MulticlassPA(), 5.0, 1.0, store=store, store_codes=classes,
                 policy=LabelPolicy(budget=0.5, seed=0))
    rng = np.random.default_rng(0)
    n = int(rate * 600)
    y = np.array(list(classes))[(np.arange(n) // int(rate * 60)) % 3]
    X = rng.normal(size=(n, 3)).astype(np.float32) + (y == "run")[:, None] * 2.0 - (y == "sit")[:, None]
    feed_all(dev, zip(np.arange(n) / rate, X, y))
    snap = store.snapshot()
    m = dev.metrics()
    assert len(snap.y) == m["labels_used"] and 0 < m["labels_used"] < m["labels_known"]
    assert set(snap.y.tolist()) == {1, 2, 3} and snap.X.shape[1:] == (L, 3)
    assert np.array_equal(snap.start, np.sort(snap.start))
    data = load_device(store.root, 0.5)
    cfg = RunConfig({"strategy": "fedavg", "local-epochs": 2, "model": "cnn"})
    from fedotl.client.model import build_model, get_arrays

    init = get_arrays(build_model("cnn", data.n_inputs, data.n_classes, seed=0))
    sent, metrics, _ = node_train(data, cfg, init, {}, partition_id=0, config={"server-round": 1})
    assert metrics["num-examples"] == len(data.y_train) > 0
    assert any(not np.array_equal(sent[k], init[k]) for k in init)
    assert node_evaluate(data, cfg, sent, {})["num-examples"] == len(data.y_test) > 0


def test_a_block_of_samples_gives_what_the_samples_one_by_one_give():
    t, X, y = level_stream(3000, period=70)
    X = X + np.random.default_rng(0).normal(0, 0.3, X.shape).astype(np.float32)
    policy = LabelPolicy(delay_s=2.5, budget=0.5, query="uncertainty")

    def run(block):
        dev = Device(["x"], rate_hz=10.0, learner=MulticlassPA(variant="PA-I"), window_s=2.0, stride_s=0.5, policy=policy)
        ev = []
        for a in range(0, len(t), block):
            ev += dev.push_many(t[a:a + block], X[a:a + block], y[a:a + block])
        return [(e.kind, e.window, e.prediction, e.learned) for e in ev + dev.finish()], dev.metrics()

    one, m1 = run(1)
    for block in (10, 37, 250):
        many, m = run(block)
        assert sorted(many) == sorted(one)
        assert m["accuracy"] == m1["accuracy"] and m["labels_used"] == m1["labels_used"]


def test_old_annotations_are_forgotten_once_no_window_can_use_them():
    dev = Device(["x"], rate_hz=10.0, learner=Spy(), window_s=1.0, stride_s=1.0, policy=LabelPolicy(timeout_s=5.0))
    t, X, _ = level_stream(400)
    dev.push_many(t, X)
    for k in range(35, 40):
        events = dev.push_label(k, k + 1.0, "lo")
        assert [e.window for e in events] == [k]  # window k still waits for its label
    assert len(dev.core.intervals[0]) == 5  # all within reach (clock 39.9 s, timeout 5 s)
    dev.push_many(t + 40, X)
    dev.push_label(70.0, 71.0, "hi")
    assert [iv[0] for iv in dev.core.intervals[0]] == [70.0]  # clock 79.9 s: the rest are too old
