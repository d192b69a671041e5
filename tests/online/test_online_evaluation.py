"""Prequential evaluation, baselines and the drift hook."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedotl import online
from fedotl.online.evaluation import (
    cumulative_mistake_rate,
    evaluate,
    evaluate_learner,
    persistence_mistakes,
    prequential,
    results_to_dict,
)
from fedotl.online.sources import SourceClassifier


def _data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    means = 2 * rng.normal(size=(3, 4))
    y = np.repeat(rng.integers(0, 3, n // 10), 10)  # bouts of 10 equal labels
    return means[y] + rng.normal(size=(len(y), 4)), y


def test_cumulative_rate_and_persistence():
    np.testing.assert_allclose(cumulative_mistake_rate([1, 0, 1, 1]), [1, 0.5, 2 / 3, 0.75])
    np.testing.assert_array_equal(persistence_mistakes([3, 3, 1, 1]), [True, False, True, False])
    m = online.Persistence()
    assert m.predict_one({}) is None
    np.testing.assert_array_equal(m.prequential(np.zeros((4, 1)), [3, 3, 1, 1]), [True, False, True, False])
    assert m.predict_array(np.zeros(1)) == 1
    assert m.predict_proba_one({}) == {3: 0.0, 1: 1.0}


def test_prequential_is_test_then_train():
    X, y = _data()
    mistakes, drifts = prequential(online.MulticlassPA(), X, y)
    assert mistakes[0]  # nothing known before the first label
    assert drifts == []
    # same as predicting then learning by hand
    m = online.MulticlassPA()
    manual = []
    for xi, yi in zip(X, y):
        manual.append(m.predict_array(xi) != yi)
        m.learn_array(xi, yi)
    np.testing.assert_array_equal(mistakes, manual)


def test_permutations_are_seeded_and_shared():
    X, y = _data()
    a = evaluate_learner(online.MulticlassPA, X, y, n_permutations=4, seed=3)
    b = evaluate_learner(online.MulticlassPA, X, y, n_permutations=4, seed=3)
    c = evaluate_learner(online.MulticlassPA, X, y, n_permutations=4, seed=4)
    np.testing.assert_array_equal(a.curves, b.curves)
    assert not np.array_equal(a.curves, c.curves)
    assert a.curves.shape == (4, len(y))
    assert a.final_mean == pytest.approx(a.curves[:, -1].mean())
    assert a.final_std == pytest.approx(a.curves[:, -1].std())
    # every run is one permutation of the same stream: each curve ends at its run's rate
    rng = np.random.default_rng(3)
    order = rng.permutation(len(y))
    mistakes, _ = prequential(online.MulticlassPA(), X[order], y[order])
    assert a.curves[0, -1] == pytest.approx(mistakes.mean())


def test_evaluate_time_order_adds_persistence_and_serialises():
    X, y = _data()
    src = SourceClassifier(np.eye(3, 4), classes=(0, 1, 2))
    res = evaluate(
        {
            "pa": online.MulticlassPA,
            "source": lambda: online.SourceOnly(src),
            "homotlms": lambda: online.HomOTLMS((src,), horizon=len(y)),
        },
        X,
        y,
        time_order=True,
    )
    assert set(res) == {"pa", "source", "homotlms", "persistence"}
    assert res["persistence"].final_mean == pytest.approx(persistence_mistakes(y).mean())
    assert res["pa"].curves.shape == (1, len(y)) and res["pa"].final_std == 0.0
    out = json.loads(json.dumps(results_to_dict(res, curve_points=10)))
    assert set(out["pa"]) == {"mistake_rate_mean", "mistake_rate_std", "curve"}
    assert len(out["pa"]["curve"]) == 10 and out["pa"]["curve"][-1] == pytest.approx(out["pa"]["mistake_rate_mean"])


def test_binary_labels_in_evaluation():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 3))
    y = X[:, 0] > 0
    stats = evaluate_learner(online.PA, X, y, n_permutations=3)
    assert stats.final_mean < 0.2
    stats_drift = evaluate_learner(online.PA, X, y, n_permutations=3, drift_detector=_AlwaysDrift)
    np.testing.assert_allclose(stats_drift.curves, stats.curves)  # same predictions via the slow path


def test_river_classifier_fallback():
    from river import linear_model, multiclass

    X, y = _data(60)
    stats = evaluate_learner(lambda: multiclass.OneVsRestClassifier(linear_model.PAClassifier()), X, y, n_permutations=2)
    assert stats.curves.shape == (2, 60)


class _AlwaysDrift:
    def __init__(self):
        self.drift_detected = False
        self.n = 0

    def update(self, x):
        self.n += 1
        self.drift_detected = self.n % 25 == 0


def test_drift_hook_resets_weights():
    X, y = _data()
    src = SourceClassifier(np.eye(3, 4), classes=(0, 1, 2))
    calls = []

    class Spy(online.HomOTLMS):
        def reset_weights(self):
            calls.append(1)
            super().reset_weights()

    mistakes, drifts = prequential(Spy((src,), horizon=len(y)), X, y, drift_detector=_AlwaysDrift)
    assert drifts == [24, 49, 74, 99, 124, 149]
    assert len(calls) == 1 + len(drifts)  # once at construction
    plain, _ = prequential(online.HomOTLMS((src,), horizon=len(y)), X, y)
    assert mistakes[:25].tolist() == plain[:25].tolist()


def test_adwin_drift_detector_runs():
    from river.drift import ADWIN

    X, y = _data()
    src = SourceClassifier(np.eye(3, 4), classes=(0, 1, 2))
    stats = evaluate_learner(lambda: online.HomOTLMS((src,)), X, y, n_permutations=2, drift_detector=ADWIN)
    assert stats.curves.shape == (2, len(y))


def test_baselines():
    src = SourceClassifier([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.5], classes=("a", "b"))
    # PAIO starts at the source
    m = online.PAIO(src)
    np.testing.assert_array_equal(m.weights_, src.W)
    np.testing.assert_array_equal(m.intercept_, src.b)
    fixed = online.PAIO(src, fit_intercept=False)
    fixed.learn_array(np.array([1.0, 0.0]), "b")
    np.testing.assert_array_equal(fixed.intercept_, src.b)  # kept, not learned
    # fixed alpha 1/2 is HomOTL-I with eta = 0
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 2)), rng.choice(["a", "b"], 80)
    a = online.FixedAlphaHomOTL(src).prequential(X, y)
    b = online.MulticlassHomOTL1(src, eta=0.0).prequential(X, y)
    np.testing.assert_array_equal(a, b)
    # source only never learns
    s = online.SourceOnly(src)
    mist = s.prequential(X, y)
    np.testing.assert_array_equal(mist, src.predict(X) != y)
    with pytest.raises(ValueError, match="alpha"):
        online.FixedAlphaHomOTL(src, alpha=1.5)
