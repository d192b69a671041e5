"""Aggregation rules against hand-computed weights."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedotl.server.aggregation import bn_distance, fedap_weight_matrix, personalised_average, pooled_moments, weighted_average


def test_fedavg_weights_by_examples():
    a = {"w": np.array([1.0, 1.0], np.float32), "b": np.array([0.0], np.float32)}
    b = {"w": np.array([3.0, 5.0], np.float32), "b": np.array([4.0], np.float32)}
    out = weighted_average([a, b], [30, 10])  # weights 0.75, 0.25
    np.testing.assert_allclose(out["w"], [1.5, 2.0])
    np.testing.assert_allclose(out["b"], [1.0])
    assert out["w"].dtype == np.float32 and list(out) == ["w", "b"]


def test_fedavg_rejects_bad_weights_and_keys():
    a = {"w": np.zeros(2)}
    with pytest.raises(ValueError, match="positive sum"):
        weighted_average([a, a], [0, 0])  # the all-zero case that divides by zero in FedAvg
    with pytest.raises(ValueError):
        weighted_average([a], [1, 2])
    with pytest.raises(ValueError, match="different keys"):
        weighted_average([a, {"v": np.zeros(2)}], [1, 1])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-100, 100), st.integers(1, 1000)), min_size=1, max_size=8))
def test_fedavg_is_a_convex_combination(pairs):
    arrays = [{"x": np.array([v])} for v, _ in pairs]
    out = weighted_average(arrays, [n for _, n in pairs])["x"][0]
    vals = [v for v, _ in pairs]
    assert min(vals) - 1e-9 <= out <= max(vals) + 1e-9


def test_bn_distance_by_hand():
    # layer 1: means differ by (3, 4) → 25; stds equal.  layer 2: std 1 vs 3 → 4.
    d = bn_distance(
        [np.zeros(2), np.zeros(1)], [np.ones(2), np.ones(1)],
        [np.array([3.0, 4.0]), np.zeros(1)], [np.ones(2), np.array([9.0])],
    )
    assert d == pytest.approx(5.0 + 2.0)
    with pytest.raises(ValueError):
        bn_distance([np.zeros(1)], [np.ones(1)], [], [])


def test_fedap_weights_by_hand():
    # three clients on a line at 0, 1, 3 (one layer, unit variance): d01=1, d02=3, d12=2
    means = [[np.array([0.0])], [np.array([1.0])], [np.array([3.0])]]
    variances = [[np.array([1.0])]] * 3
    W = fedap_weight_matrix(means, variances, momentum=0.5)
    expected = np.array([
        [0.5, 0.5 * (1 / 1) / (1 / 1 + 1 / 3), 0.5 * (1 / 3) / (1 / 1 + 1 / 3)],
        [0.5 * 1 / 1.5, 0.5, 0.5 * 0.5 / 1.5],
        [0.5 * (1 / 3) / (1 / 3 + 1 / 2), 0.5 * (1 / 2) / (1 / 3 + 1 / 2), 0.5],
    ])
    np.testing.assert_allclose(W, expected)
    np.testing.assert_allclose(W.sum(1), 1.0)
    W0 = fedap_weight_matrix(means, variances, momentum=0.0)
    assert np.all(np.diag(W0) == 0)
    W1 = fedap_weight_matrix(means, variances, momentum=1.0)
    np.testing.assert_allclose(W1, np.eye(3))
    # identical clients share the off-diagonal mass
    Wd = fedap_weight_matrix([[np.zeros(1)]] * 3, [[np.ones(1)]] * 3, momentum=0.4)
    np.testing.assert_allclose(Wd, [[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.3, 0.3, 0.4]])
    assert fedap_weight_matrix([[np.zeros(1)]], [[np.ones(1)]]).tolist() == [[1.0]]
    with pytest.raises(ValueError):
        fedap_weight_matrix(means, variances, momentum=1.5)


def test_personalised_average_by_hand_and_with_a_missing_client():
    W = np.array([[0.5, 0.25, 0.25], [0.2, 0.6, 0.2], [0.0, 0.5, 0.5]])
    thetas = [{"w": np.array([0.0])}, {"w": np.array([4.0])}, {"w": np.array([8.0])}]
    out = personalised_average(W, thetas)
    assert [float(o["w"][0]) for o in out] == pytest.approx([3.0, 4.0, 6.0])
    # client 2 failed: rows renormalised over clients 0 and 1
    out = personalised_average(W, [thetas[0], thetas[1], None], present=[True, True, False])  # type: ignore[list-item]
    assert [float(o["w"][0]) for o in out] == pytest.approx([4 * 0.25 / 0.75, 4 * 0.6 / 0.8, 4.0])
    with pytest.raises(ValueError):
        personalised_average(W, thetas, present=[False] * 3)


def test_pooled_moments_equal_the_covariance_of_the_union():
    rng = np.random.default_rng(1)
    parts = [rng.normal(size=(n, 3)) for n in (5, 9, 2)]
    n, mean, cov = pooled_moments([len(p) for p in parts], [p.sum(0) for p in parts], [p.T @ p for p in parts])
    allx = np.concatenate(parts)
    assert n == 16
    np.testing.assert_allclose(mean, allx.mean(0))
    np.testing.assert_allclose(cov, np.cov(allx.T))
    with pytest.raises(ValueError):
        pooled_moments([1], [np.zeros(3)], [np.zeros((3, 3))])
