"""PA / PA-I / PA-II (Crammer et al. 2006): hand-computed updates, averaging, mistake bounds."""

from __future__ import annotations

import numpy as np
import pytest

from fedotl.online.pa import PA, MulticlassPA


# ---------------------------------------------------------------------- binary, by hand
# x = (1, 2), y = +1, w = 0: loss 1, ||x||^2 = 5
@pytest.mark.parametrize(
    "variant, C, fit_intercept, tau",
    [
        ("PA", 1.0, False, 1 / 5),
        ("PA-I", 0.1, False, 0.1),  # min(C, 1/5) hits C
        ("PA-I", 1.0, False, 1 / 5),
        ("PA-II", 1.0, False, 1 / (5 + 0.5)),
        ("PA", 1.0, True, 1 / 6),  # bias: ||x||^2 + 1
        ("PA-I", 0.1, True, 0.1),
        ("PA-II", 2.0, True, 1 / (6 + 0.25)),
    ],
)
def test_binary_first_step(variant, C, fit_intercept, tau):
    m = PA(variant=variant, C=C, fit_intercept=fit_intercept)
    m.learn_array(np.array([1.0, 2.0]), 1)
    np.testing.assert_allclose(m.weights_, [tau, 2 * tau])
    assert m.intercept_ == pytest.approx(tau if fit_intercept else 0.0)


def test_binary_two_steps_and_passive_step():
    m = PA(variant="PA")
    m.learn_array(np.array([1.0, 2.0]), 1)  # w = (0.2, 0.4)
    # x = (1, -1), y = -1: f = -0.2, loss = 1 - 0.2 = 0.8, tau = 0.8 / 2 = 0.4
    m.learn_array(np.array([1.0, -1.0]), -1)
    np.testing.assert_allclose(m.weights_, [-0.2, 0.8])
    # x = (0, 2), y = +1: f = 1.6 >= 1, loss 0: passive
    m.learn_array(np.array([0.0, 2.0]), True)
    np.testing.assert_allclose(m.weights_, [-0.2, 0.8])


def test_binary_labels_and_predictions():
    m = PA()
    m.learn_one({"a": 1.0, "b": 2.0}, True)
    assert m.predict_one({"a": 1.0}) is True
    assert m.predict_one({"a": -1.0}) is False
    assert m.predict_array(np.array([-1.0, 0.0])) == -1
    p = m.predict_proba_one({"a": 1.0})
    assert set(p) == {False, True} and sum(p.values()) == pytest.approx(1.0)
    # Pi(f) with f = 0.2: (0.2 + 1) / 2
    assert p[True] == pytest.approx(0.6)
    for y in (0, -1, False, np.False_):
        assert m._encode(y) == -1
    for y in (1, True, np.True_, 1.0):
        assert m._encode(y) == 1


def test_zero_input_without_bias_is_passive():
    for variant in ("PA", "PA-I", "PA-II"):
        m = PA(variant=variant)
        m.learn_array(np.zeros(3), 1)  # PA's tau would be 1/0
        assert np.all(m.weights_ == 0)
        mc = MulticlassPA(variant=variant, classes=(0, 1))
        mc.learn_array(np.zeros(3), 1)
        assert np.all(mc.weights_ == 0)


# ---------------------------------------------------------------------- multi-class, by hand
# classes (a, b, c), W = 0, x = (1, 2), y = b: every score is 0, the highest-scoring wrong
# class is the first one, a; loss 1; 2 ||x||^2 = 10
@pytest.mark.parametrize(
    "variant, C, fit_intercept, tau",
    [
        ("PA", 1.0, False, 1 / 10),
        ("PA-I", 0.05, False, 0.05),
        ("PA-I", 1.0, False, 1 / 10),
        ("PA-II", 1.0, False, 1 / (10 + 0.5)),
        ("PA", 1.0, True, 1 / 12),
        ("PA-II", 0.5, True, 1 / (12 + 1.0)),
    ],
)
def test_multiclass_first_step(variant, C, fit_intercept, tau):
    m = MulticlassPA(variant=variant, C=C, fit_intercept=fit_intercept, classes=("a", "b", "c"))
    m.learn_array(np.array([1.0, 2.0]), "b")
    np.testing.assert_allclose(m.weights_, [[-tau, -2 * tau], [tau, 2 * tau], [0, 0]])
    expected_b = [-tau, tau, 0.0] if fit_intercept else [0.0, 0.0, 0.0]
    np.testing.assert_allclose(m.intercept_, expected_b)


def test_multiclass_second_step_picks_highest_wrong_class():
    m = MulticlassPA(variant="PA", classes=("a", "b", "c"))
    m.learn_array(np.array([1.0, 2.0]), "b")  # W_a = (-.1, -.2), W_b = (.1, .2)
    # x = (1, 0), y = c: scores (-0.1, 0.1, 0), s = b, loss = 1 - (0 - 0.1) = 1.1, tau = 1.1 / 2
    assert m.predict_learn_array(np.array([1.0, 0.0]), "c") == "b"
    np.testing.assert_allclose(m.weights_, [[-0.1, -0.2], [-0.45, 0.2], [0.55, 0.0]])


def test_multiclass_unseen_label_adds_row():
    m = MulticlassPA()
    assert m.predict_one({"x": 1.0}) is None
    assert m.predict_proba_one({"x": 1.0}) == {}
    m.learn_one({"x": 1.0}, "walk")  # one class: nothing to separate from
    assert m.classes_ == ["walk"] and np.all(m.weights_ == 0)
    assert m.predict_proba_one({"x": 1.0}) == {"walk": 1.0}
    m.learn_one({"x": 1.0}, "run")  # new row, then the update against "walk"
    assert m.classes_ == ["walk", "run"]
    np.testing.assert_allclose(m.weights_, [[-0.5], [0.5]])
    assert m.predict_one({"x": 2.0}) == "run"
    assert m.predict_learn_array(np.array([1.0]), np.int64(7)) == "run"
    assert m.classes_[-1] == 7 and type(m.classes_[-1]) is int


def test_multiclass_with_two_classes_is_binary_pa_with_double_c():
    # rows (W+, W-) move by +-tau x, so W+ - W- follows binary PA-I with C' = 2C
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    y = np.sign(X @ [1.0, -2.0, 0.5, 0.0] + 0.3 * rng.normal(size=200)).astype(int)
    for variant in ("PA", "PA-I", "PA-II"):
        mc = MulticlassPA(variant=variant, C=0.3, classes=(-1, 1))
        b = PA(variant=variant, C=0.6)
        for xi, yi in zip(X, y):
            assert mc.predict_learn_array(xi, yi) == b.predict_learn_array(xi, yi)
        W = mc.weights_
        np.testing.assert_allclose(W[1] - W[0], b.weights_, atol=1e-12)


# ---------------------------------------------------------------------- averaging
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_averaged_weights_match_brute_force(fit_intercept):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, 3, 60)
    m = MulticlassPA(average=True, fit_intercept=fit_intercept, classes=(0, 1, 2))
    plain = MulticlassPA(average=False, fit_intercept=fit_intercept, classes=(0, 1, 2))
    Ws, bs = [], []
    for xi, yi in zip(X, y):
        m.learn_array(xi, yi)
        plain.learn_array(xi, yi)
        Ws.append(plain.weights_)
        bs.append(plain.intercept_)
    Wa, ba = m.averaged_weights()
    np.testing.assert_allclose(Wa, np.mean(Ws, axis=0), atol=1e-12)
    np.testing.assert_allclose(ba, np.mean(bs, axis=0), atol=1e-12)
    np.testing.assert_allclose(m.weights_, plain.weights_)  # learning is unaffected
    x = X[0]
    assert m.predict_array(x) == int(np.argmax(Wa @ x + ba))

    b = PA(average=True, fit_intercept=fit_intercept)
    bp = PA(fit_intercept=fit_intercept)
    ws = []
    for xi, yi in zip(X, y):
        b.learn_array(xi, 1 if yi == 0 else -1)
        bp.learn_array(xi, 1 if yi == 0 else -1)
        ws.append(np.append(bp.weights_, bp.intercept_))
    wa, c = b.averaged_weights()
    np.testing.assert_allclose(np.append(wa, c), np.mean(ws, axis=0), atol=1e-12)


# ---------------------------------------------------------------------- mistake bounds
def _separable_binary(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d)
    X = rng.uniform(-1, 1, size=(4 * n, d))
    margin = X @ u
    keep = np.abs(margin) >= 0.2 * np.linalg.norm(u)
    X, margin = X[keep][:n], margin[keep][:n]
    y = np.where(margin > 0, 1, -1)
    u_star = u / np.min(np.abs(margin))  # y (u* . x) >= 1 on every sample
    R2 = np.max(np.einsum("ij,ij->i", X, X))
    return X, y, u_star, R2


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_mistake_bounds_on_separable_stream(seed):
    X, y, u, R2 = _separable_binary(600, 5, seed)
    U2 = float(u @ u)
    stream_X, stream_y = np.tile(X, (3, 1)), np.tile(y, 3)  # several passes
    C = 0.5
    bounds = {
        "PA": R2 * U2,  # Crammer et al. Theorem 2 (sum of loss^2 <= R^2 ||u||^2)
        "PA-I": max(R2, 1 / C) * U2,  # Theorem 4 with zero loss of u
        "PA-II": (R2 + 1 / (2 * C)) * U2,  # Theorem 5 with zero loss of u
    }
    for variant, bound in bounds.items():
        mistakes = PA(variant=variant, C=C).prequential(stream_X, stream_y).sum()
        assert 0 < mistakes <= bound, (variant, mistakes, bound)


def test_multiclass_mistake_bound_on_separable_stream():
    rng = np.random.default_rng(3)
    K, d = 4, 6
    U = rng.normal(size=(K, d))
    X = rng.uniform(-1, 1, size=(6000, d))
    S = X @ U.T
    top2 = np.sort(S, axis=1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    keep = gap >= 0.3
    X, y, gap = X[keep][:800], S[keep][:800].argmax(axis=1), gap[keep][:800]
    U_star = U / gap.min()  # multi-class margin >= 1 on every sample
    R2 = np.max(np.einsum("ij,ij->i", X, X))
    bound = 2 * R2 * np.sum(U_star**2)  # ||Phi(x,y) - Phi(x,s)||^2 = 2 ||x||^2
    Xs, ys = np.tile(X, (3, 1)), np.tile(y, 3)
    for variant, b in (("PA", bound), ("PA-I", max(2 * R2, 1.0) * np.sum(U_star**2))):
        mistakes = MulticlassPA(variant=variant, C=1.0, classes=tuple(range(K))).prequential(Xs, ys).sum()
        assert 0 < mistakes <= b, (variant, mistakes, b)
