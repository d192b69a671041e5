"""The batched engine equals running each device's learner alone."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from fedotl.online.batched import BatchedHomOTLMS, BatchedPA
from fedotl.online.homotlms import HomOTLMS
from fedotl.online.pa import MulticlassPA
from fedotl.online.sources import SourceClassifier

D, d, K, T = 12, 7, 4, 60


def _streams(seed: int = 0, noise: float = 1.5):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(K, d))
    y = rng.integers(0, K, (T, D))
    X = means[y] + noise * rng.normal(size=(T, D, d))
    return X, y


@pytest.mark.parametrize(
    "variant, fit_intercept, n_threads",
    [("PA-I", False, 1), ("PA", True, 1), ("PA-II", False, 3), ("PA-I", True, 2)],
)
def test_batched_pa_equals_individual(variant, fit_intercept, n_threads):
    X, y = _streams()
    classes = tuple(range(K))
    engine = BatchedPA(D, d, classes, variant=variant, C=0.7, fit_intercept=fit_intercept, n_threads=n_threads)
    singles = [MulticlassPA(variant=variant, C=0.7, fit_intercept=fit_intercept, classes=classes) for _ in range(D)]
    for t in range(T):
        pred = engine.step(X[t], y[t])
        expected = [m.predict_learn_array(X[t, i], y[t, i]) for i, m in enumerate(singles)]
        np.testing.assert_array_equal(pred, expected)
    for i, m in enumerate(singles):
        np.testing.assert_allclose(engine.W[i], m.weights_, rtol=1e-10, atol=1e-12)
        if fit_intercept:
            np.testing.assert_allclose(engine.b[i], m.intercept_, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(engine.predict(X[0]), [m.predict_array(X[0, i]) for i, m in enumerate(singles)])


@pytest.mark.parametrize("horizon, n_threads", [(T, 1), (None, 2)])
def test_batched_homotlms_equals_individual(horizon, n_threads):
    X, y = _streams(1)
    rng = np.random.default_rng(5)
    # sources over a subset of the classes, so the -inf alignment is exercised
    sources = (
        SourceClassifier(rng.normal(size=(K, d)), rng.normal(size=K), classes=tuple(range(K))),
        SourceClassifier(rng.normal(size=(2, d)), classes=(2, 0)),
        SourceClassifier(rng.normal(size=(K, d)), classes=tuple(range(K))),
    )
    classes = tuple(range(K))
    engine = BatchedHomOTLMS(D, d, sources, classes, C=0.5, horizon=horizon, n_threads=n_threads)
    singles = [HomOTLMS(sources, C=0.5, horizon=horizon, classes=classes) for _ in range(D)]
    for t in range(T):
        pred = engine.step(X[t], y[t])
        expected = [m.predict_learn_array(X[t, i], y[t, i]) for i, m in enumerate(singles)]
        np.testing.assert_array_equal(pred, expected)
    for i, m in enumerate(singles):
        np.testing.assert_allclose(engine.u[i], m.weights_, rtol=1e-10)
        np.testing.assert_allclose(engine.W[i], m.target_weights_, rtol=1e-10, atol=1e-12)


def test_active_mask_freezes_inactive_devices():
    X, y = _streams(2)
    engine = BatchedPA(D, d, tuple(range(K)))
    single = MulticlassPA(classes=tuple(range(K)))
    active = np.zeros(D, dtype=bool)
    active[3] = True
    for t in range(10):
        engine.step(X[t], y[t], active=active)
        single.learn_array(X[t, 3], y[t, 3])
    assert np.all(engine.W[np.arange(D) != 3] == 0)
    np.testing.assert_allclose(engine.W[3], single.weights_)


def test_float32_engine_tracks_float64():
    X, y = _streams(3)
    e64 = BatchedPA(D, d, tuple(range(K)))
    e32 = BatchedPA(D, d, tuple(range(K)), dtype=np.float32)
    agree = []
    for t in range(T):
        agree.append(np.mean(e64.step(X[t], y[t]) == e32.step(X[t], y[t])))
    assert e32.W.dtype == np.float32
    assert np.mean(agree) > 0.95


def test_batched_input_validation():
    engine = BatchedPA(2, 3, ("a", "b"))
    with pytest.raises(ValueError, match="shape"):
        engine.step(np.zeros((2, 4)), np.array([0, 1]))
    bad = np.zeros((2, 3))
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="device 1"):
        engine.step(bad, np.array([0, 1]))
    with pytest.raises(ValueError, match="class indices"):
        engine.step(np.zeros((2, 3)), np.array([0, 2]))
    with pytest.raises(ValueError, match="unknown label"):
        engine.encode(["a", "c"])
    assert engine.decode(engine.encode(["b", "a"])) == ["b", "a"]
    with pytest.raises(ValueError, match="not in classes"):
        BatchedHomOTLMS(2, 3, (SourceClassifier(np.eye(3), classes=("a", "b", "z")),), ("a", "b"))


def test_threaded_engine_pickles():
    X, y = _streams(4)
    engine = BatchedPA(D, d, tuple(range(K)), n_threads=2)
    engine.step(X[0], y[0])
    clone = pickle.loads(pickle.dumps(engine))
    np.testing.assert_array_equal(clone.step(X[1], y[1]), engine.step(X[1], y[1]))
