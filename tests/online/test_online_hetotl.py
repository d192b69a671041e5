"""HetOTL (Zhao & Hoi 2010/2014, problem (6)): hand-computed updates."""

from __future__ import annotations

import numpy as np
import pytest

from fedotl.online.hetotl import HetOTL, MulticlassHetOTL
from fedotl.online.sources import SourceClassifier


def binary_source(v, c=0.0) -> SourceClassifier:
    v = np.asarray(v, dtype=float)
    return SourceClassifier(np.vstack([-v / 2, v / 2]), [-c / 2, c / 2], classes=(False, True))


def test_hetotl_update_by_hand():
    g1, g2, C = 0.25, 1.0, 10.0
    m = HetOTL(binary_source([1.0, 2.0]), C=C, gamma1=g1, gamma2=g2, n_features=3)
    np.testing.assert_allclose(m.weights_, [1.0, 2.0, 0.0])  # w1 = v, w2 = 0
    x, y = np.array([1.0, -1.0, 2.0]), 1
    # f = 1/2 (1 - 2 + 0) = -0.5 -> predict -1; loss = 1 - (+1)(-0.5) = 1.5
    # ||x1||^2 = 2, ||x2||^2 = 4; tau = min(10, 4 g1 g2 l / (2 g2 + 4 g1)) = 1.5 / 3 = 0.5
    assert m.predict_learn_array(x, y) == -1
    tau = min(C, 4 * g1 * g2 * 1.5 / (2 * g2 + 4 * g1))
    assert tau == pytest.approx(0.5)
    w1 = np.array([1.0, 2.0]) + tau / (2 * g1) * y * x[:2]
    w2 = np.array([0.0]) + tau / (2 * g2) * y * x[2:]
    np.testing.assert_allclose(m.weights_, np.concatenate([w1, w2]))
    # the new margin is exactly 1 (tau < C)
    assert 0.5 * (m.weights_ @ x) * y == pytest.approx(1.0)


def test_hetotl_tau_clipped_at_c_and_source_bias_is_fixed():
    m = HetOTL(binary_source([1.0], c=0.4), C=0.1, n_features=2)
    m.learn_array(np.array([1.0, 1.0]), -1)
    # f = 1/2 (1 + 0.4) = 0.7, loss = 1.7; unclipped tau = 4 * 1/4 * 1.7 / (1/2 + 1/2) = 1.7 -> C
    np.testing.assert_allclose(m.weights_, [1.0 - 0.1, -0.1])
    assert m._c == pytest.approx(0.4)


def test_hetotl_dict_path_puts_new_features_in_the_target_view():
    src = SourceClassifier([[0.0, 0.0], [1.0, -1.0]], classes=(False, True), features=("acc", "gyr"))
    m = HetOTL(src)
    m.learn_one({"mag": 2.0, "acc": 1.0, "gyr": 0.0}, False)
    assert m.feature_names_in_ == ["acc", "gyr", "mag"]
    # v = (1, -1); f = 1/2 * 1 = 0.5, loss 1.5; ||x1||^2 = 1, ||x2||^2 = 4, tau = 1.5 / 2.5 = 0.6 (< C)
    np.testing.assert_allclose(m.weights_, [1 - 0.6, -1.0, -0.6 * 2])


def test_multiclass_hetotl_by_hand():
    src = SourceClassifier(np.eye(2), [0.0, 0.2], classes=("a", "b"))
    g1, g2 = 0.5, 2.0
    m = MulticlassHetOTL(src, C=5.0, gamma1=g1, gamma2=g2, n_features=3)
    x = np.array([1.0, 0.0, 1.0])
    # f = 1/2 (W x + c) = (0.5, 0.1); y = b, s = a, loss = 1 - (0.1 - 0.5) = 1.4
    assert m.predict_learn_array(x, "b") == "a"
    tau = min(5.0, 2 * g1 * g2 * 1.4 / (1 * g2 + 1 * g1))
    W = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    W[1, :2] += tau / (2 * g1) * x[:2]
    W[0, :2] -= tau / (2 * g1) * x[:2]
    W[1, 2:] += tau / (2 * g2) * x[2:]
    W[0, 2:] -= tau / (2 * g2) * x[2:]
    np.testing.assert_allclose(m.weights_, W)
    f = 0.5 * (W @ x + [0.0, 0.2])
    assert f[1] - f[0] == pytest.approx(1.0)  # margin restored exactly


def test_multiclass_hetotl_reduces_to_binary():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = X @ [1.0, -1.0, 0.5, 2.0] > 0
    v = np.array([0.5, -1.5])
    b = HetOTL(binary_source(v, 0.2), C=1.0, gamma1=0.3, gamma2=0.7, n_features=4)
    mc = MulticlassHetOTL(binary_source(v, 0.2), C=0.5, gamma1=0.3, gamma2=0.7, n_features=4)
    for xi, yi in zip(X, y):
        assert (b.predict_learn_array(xi, yi) == 1) == mc.predict_learn_array(xi, bool(yi))
    W = mc.weights_
    np.testing.assert_allclose(W[1] - W[0], b.weights_, atol=1e-12)


def test_hetotl_rejects_nonlinear_source_and_bad_width():
    from fedotl.online.sources import SourceClassifier as SC

    with pytest.raises(ValueError, match="linear"):
        HetOTL(SC(np.eye(2), classes=(False, True), transform=lambda x: x, n_features=2))
    with pytest.raises(ValueError, match="n_features"):
        HetOTL(binary_source([1.0, 2.0]), n_features=1)
