"""fedotl.online.kernels against values computed by hand on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedotl.online.kernels import (
    batched_pa_step,
    hedge_beta,
    hedge_weights,
    margin_pi,
    multiclass_pa_step,
    pa_step,
    pa_tau,
    pi,
)

PA, PA_I, PA_II = 0, 1, 2


# ---------------------------------------------------------------------- squashing
def test_pi_by_hand():
    assert pi(0.0) == 0.5
    assert pi(0.5) == 0.75
    assert pi(-0.5) == 0.25
    assert pi(1.0) == 1.0 and pi(7.0) == 1.0
    assert pi(-1.0) == 0.0 and pi(-7.0) == 0.0


def test_margin_pi_by_hand():
    # margins: a: 2 - 0.5 = 1.5 -> 1; b: 0.5 - 2 -> 0; c: -1 - 2 -> 0
    assert margin_pi(np.array([2.0, 0.5, -1.0])).tolist() == [1.0, 0.0, 0.0]
    # margins 0.4 and -0.4: Pi = 0.7 and 0.3
    assert margin_pi(np.array([0.2, -0.2])).tolist() == pytest.approx([0.7, 0.3])
    # an unknown class (-inf) gets 0, and the top class's margin is over the finite others
    assert margin_pi(np.array([0.5, -np.inf, 0.0])).tolist() == [0.75, 0.0, 0.25]


def test_margin_pi_two_classes_is_binary_pi():
    for f in (-3.0, -0.6, 0.0, 0.3, 1.7):
        p = margin_pi(np.array([-f / 2, f / 2]))
        assert p.tolist() == pytest.approx([1.0 - pi(f), pi(f)])


def test_margin_pi_stack_is_row_by_row():
    F = np.array([[1.0, 0.0, 0.5], [0.0, 0.0, -1.0]])
    out = margin_pi(F)
    assert out.shape == (2, 3)
    for i in range(2):
        assert out[i].tolist() == margin_pi(F[i]).tolist()


# ---------------------------------------------------------------------- Hedge
def test_hedge_beta_by_hand():
    assert hedge_beta(100, 2, 1) == pytest.approx(10.0 / (10.0 + math.sqrt(math.log(2))))
    assert hedge_beta(100, 3, 57) == pytest.approx(10.0 / (10.0 + math.sqrt(math.log(3))))
    # anytime: T is the current round (at least 1)
    assert hedge_beta(None, 2, 4) == pytest.approx(2.0 / (2.0 + math.sqrt(math.log(2))))
    assert hedge_beta(None, 2, 0) == hedge_beta(None, 2, 1)
    assert hedge_beta(100, 1, 5) == 1.0  # one expert: nothing to discount


def test_hedge_weights_after_a_known_loss_sequence():
    # three experts, beta = 1/2; mistakes per round (z): (1,0,1), (1,0,0), (0,1,1), (1,0,0)
    z = np.array([[1, 0, 1], [1, 0, 0], [0, 1, 1], [1, 0, 0]], dtype=float)
    L = z.sum(axis=0)  # (3, 1, 2)
    # beta^(L - min L) = (1/4, 1, 1/2), sum 7/4
    assert hedge_weights(L, 0.5).tolist() == pytest.approx([1 / 7, 4 / 7, 2 / 7])
    # the multiplicative rule u <- u beta^z (normalised every round) gives the same weights
    u = np.full(3, 1 / 3)
    for zt in z:
        u = u * 0.5**zt
        u /= u.sum()
    assert hedge_weights(L, 0.5).tolist() == pytest.approx(u.tolist())
    # scale-free: only the differences of L matter
    assert hedge_weights(L + 100.0, 0.5).tolist() == pytest.approx([1 / 7, 4 / 7, 2 / 7])


def test_hedge_weights_pair_and_stack():
    # the pair of Python floats (binary HomOTL-II) agrees with the array form
    for L1, L2, beta in ((0.0, 0.0, 0.9), (3.0, 1.0, 0.8), (2.0, 7.0, 0.95)):
        pair = hedge_weights((L1, L2), beta)
        assert isinstance(pair, tuple) and all(type(v) is float for v in pair)
        assert list(pair) == pytest.approx(hedge_weights(np.array([L1, L2]), beta).tolist(), rel=1e-15)
    # a stack of rows with one beta per row is row by row
    L = np.array([[0.0, 2.0], [1.0, 1.0], [4.0, 0.0]])
    beta = np.array([[0.5], [0.7], [0.9]])
    out = hedge_weights(L, beta)
    for i in range(3):
        assert out[i].tolist() == hedge_weights(L[i], float(beta[i, 0])).tolist()
    assert out[0].tolist() == pytest.approx([1 / 1.25, 0.25 / 1.25])


# ---------------------------------------------------------------------- PA step sizes
def test_pa_tau_by_hand():
    loss, n2 = 0.6, 2.0
    assert pa_tau(PA, loss, n2, 0.25) == pytest.approx(0.3)  # l / n2
    assert pa_tau(PA_I, loss, n2, 0.25) == 0.25  # min(C, 0.3), clipped at C
    assert pa_tau(PA_I, loss, n2, 1.0) == pytest.approx(0.3)  # not clipped
    assert pa_tau(PA_II, loss, n2, 0.25) == pytest.approx(0.6 / (2.0 + 2.0))  # l / (n2 + 1/(2C))
    assert pa_tau(PA_II, loss, n2, 0.5) == pytest.approx(0.6 / 3.0)


def test_pa_tau_on_arrays_is_elementwise():
    loss = np.array([0.6, 2.0, 0.1])
    n2 = np.array([2.0, 1.0, 4.0])
    for code in (PA, PA_I, PA_II):
        out = pa_tau(code, loss, n2, 0.5)
        assert isinstance(out, np.ndarray)
        assert out.tolist() == [pa_tau(code, float(a), float(b), 0.5) for a, b in zip(loss, n2)]


# ---------------------------------------------------------------------- binary PA step
def test_pa_step_by_hand():
    # w = 0, x = (1, 2), y = +1: f = 0, l = 1, ||x||^2 = 5
    x = np.array([1.0, 2.0])
    w = np.zeros(2)
    assert pa_step(w, x, 5.0, 1, 0.0, PA_I, 1.0) == pytest.approx(0.2)  # min(1, 1/5)
    assert w.tolist() == pytest.approx([0.2, 0.4])
    # y = -1 at f = 0.5: l = 1.5, PA: tau = 1.5 / 5 = 0.3, w -= 0.3 x
    w = np.zeros(2)
    assert pa_step(w, x, 5.0, -1, 0.5, PA, 1.0) == pytest.approx(-0.3)
    assert w.tolist() == pytest.approx([-0.3, -0.6])
    # PA-II with a learned bias (n2 = ||x||^2 + 1 = 6), C = 0.5: tau = 1 / (6 + 1) = 1/7
    w = np.zeros(2)
    assert pa_step(w, x, 6.0, 1, 0.0, PA_II, 0.5) == pytest.approx(1 / 7)
    assert w.tolist() == pytest.approx([1 / 7, 2 / 7])


def test_pa_step_passive():
    x = np.array([1.0, 2.0])
    w = np.array([0.3, -0.1])
    assert pa_step(w, x, 5.0, 1, 1.0, PA_I, 1.0) == 0.0  # margin 1: no loss
    assert pa_step(w, x, 5.0, -1, -2.0, PA_I, 1.0) == 0.0
    assert pa_step(w, np.zeros(2), 0.0, 1, 0.0, PA, 1.0) == 0.0  # x = 0, no bias: no direction
    assert w.tolist() == [0.3, -0.1]


# ---------------------------------------------------------------------- multi-class PA step
def test_multiclass_pa_step_by_hand():
    # K = 2, d = 2: W = I, x = (1, 2), y = 0.  f = (1, 2), s = 1, l = 1 - 1 + 2 = 2,
    # ||x||^2 = 5 so n2 = 2 * 5 = 10; PA-I, C = 1: tau = min(1, 2 / 10) = 0.2.
    W = np.eye(2)
    x = np.array([1.0, 2.0])
    f = W @ x
    tau, s = multiclass_pa_step(W, None, x, 5.0, f, 0, PA_I, 1.0)
    assert (tau, s) == (pytest.approx(0.2), 1)
    np.testing.assert_allclose(W, [[1.2, 0.4], [-0.2, 0.6]])
    assert f[0] == -np.inf  # f is scratch


def test_multiclass_pa_step_variants_and_bias_by_hand():
    x = np.array([1.0, 2.0])
    # PA: tau = 2 / 10
    W = np.eye(2)
    assert multiclass_pa_step(W, None, x, 5.0, W @ x, 0, PA, 1.0)[0] == pytest.approx(0.2)
    # PA-I clipped: C = 0.1
    W = np.eye(2)
    assert multiclass_pa_step(W, None, x, 5.0, W @ x, 0, PA_I, 0.1)[0] == 0.1
    np.testing.assert_allclose(W, [[1.1, 0.2], [-0.1, 0.8]])
    # PA-II, C = 0.5: tau = 2 / (10 + 1)
    W = np.eye(2)
    assert multiclass_pa_step(W, None, x, 5.0, W @ x, 0, PA_II, 0.5)[0] == pytest.approx(2 / 11)
    # learned bias b = 0: n2 = 2 (5 + 1) = 12, PA: tau = 2 / 12; the bias moves by +-tau
    W, b = np.eye(2), np.zeros(2)
    tau, s = multiclass_pa_step(W, b, x, 5.0, W @ x + b, 0, PA, 1.0)
    assert tau == pytest.approx(1 / 6) and s == 1
    assert b.tolist() == pytest.approx([1 / 6, -1 / 6])
    np.testing.assert_allclose(W, [[1 + 1 / 6, 2 / 6], [-1 / 6, 1 - 2 / 6]])


def test_multiclass_pa_step_passive():
    W = np.array([[3.0, 0.0], [1.0, 0.0]])
    x = np.array([1.0, 0.0])
    assert multiclass_pa_step(W, None, x, 1.0, W @ x, 0, PA_I, 1.0) == (0.0, 1)  # margin 2
    assert multiclass_pa_step(W, None, np.zeros(2), 0.0, np.zeros(2), 0, PA, 1.0) == (0.0, 1)  # x = 0
    assert W.tolist() == [[3.0, 0.0], [1.0, 0.0]]
    one = np.zeros((1, 2))
    assert multiclass_pa_step(one, None, x, 1.0, np.zeros(1), 0, PA_I, 1.0) == (0.0, -1)  # one class


# ---------------------------------------------------------------------- batched PA step
@pytest.mark.parametrize("code", [PA, PA_I, PA_II])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("with_active", [False, True])
def test_batched_step_equals_scalar_step_row_by_row(code, with_bias, with_active):
    rng = np.random.default_rng(7 + code)
    D, K, d, C = 9, 4, 5, 0.3
    W = rng.normal(size=(D, K, d))
    b = rng.normal(size=(D, K)) if with_bias else None
    X = rng.normal(size=(D, d))
    X[2] = 0.0  # no direction (and with a bias only the bias moves)
    X[5] *= 30.0  # a big step: PA-I is clipped at C
    y = rng.integers(0, K, D)
    y[3] = int((W[3] @ X[3]).argmax())
    W[3, y[3]] += 50.0 * X[3] / max(X[3] @ X[3], 1e-12)  # margin > 1 on device 3: passive
    active = rng.random(D) > 0.3 if with_active else None
    sq = np.einsum("ij,ij->i", X, X)
    F = np.einsum("dkf,df->dk", W, X) + (b if b is not None else 0.0)

    W1, b1 = W.copy(), None if b is None else b.copy()
    tau = batched_pa_step(W1, X, y, F.copy(), sq, code, C, b1, active)

    for i in range(D):
        Wi, bi = W[i].copy(), None if b is None else b[i].copy()
        if active is None or active[i]:
            t, _ = multiclass_pa_step(Wi, bi, X[i], float(sq[i]), F[i].copy(), int(y[i]), code, C)
        else:
            t = 0.0
        assert tau[i] == t
        assert np.array_equal(W1[i], Wi)
        if b is not None:
            assert np.array_equal(b1[i], bi)
    assert tau[3] == 0.0


def test_batched_step_on_a_non_contiguous_stack():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(4, 6, 3))
    W = base[:, ::2, :]  # (4, 3, 3), not C-contiguous: the (device, class) scatter path
    assert not W.flags.c_contiguous
    X, y = rng.normal(size=(4, 3)), np.array([0, 1, 2, 1])
    F = np.einsum("dkf,df->dk", W, X)
    ref = W.copy()
    sq = np.einsum("ij,ij->i", X, X)  # one norm for both sides: einsum and @ may differ in the last bit
    tau = batched_pa_step(W, X, y, F.copy(), sq, PA_I, 1.0)
    for i in range(4):
        t, _ = multiclass_pa_step(ref[i], None, X[i], float(sq[i]), F[i].copy(), int(y[i]), PA_I, 1.0)
        assert tau[i] == t
    assert np.array_equal(W, ref)
    assert np.array_equal(base[:, ::2, :], ref)  # updated in place, through the view
