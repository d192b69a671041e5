"""HomOTL-I / HomOTL-II (Zhao & Hoi 2010/2014) and HomOTLMS (Wu et al. 2017) by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedotl.online.homotl1 import HomOTL1, MulticlassHomOTL1
from fedotl.online.homotl2 import HomOTL2, MulticlassHomOTL2
from fedotl.online.homotlms import HomOTLMS
from fedotl.online.sources import SourceClassifier


def Pi(z: float) -> float:
    return max(0.0, min(1.0, (z + 1) / 2))


def binary_source(v, c=0.0) -> SourceClassifier:
    """2-class source whose binary score is v.x + c (rows -f/2, f/2)."""
    v = np.asarray(v, dtype=float)
    return SourceClassifier(np.vstack([-v / 2, v / 2]), [-c / 2, c / 2], classes=(False, True))


# ---------------------------------------------------------------------- HomOTL-I
def test_homotl1_two_steps_by_hand():
    eta, C = 0.5, 1.0
    m = HomOTL1(binary_source([1.0, 0.0], c=0.5), C=C, eta=eta)
    # step 1: x = (1, 0), y = -1.  v.x + c = 1.5 -> Pi = 1; w.x = 0 -> Pi = 1/2
    # prediction sign(1/2 * 1 + 1/2 * 1/2 - 1/2) = +1 (a mistake)
    assert m.predict_learn_array(np.array([1.0, 0.0]), -1) == 1
    s1, s2 = math.exp(-eta * (1 - 0) ** 2), math.exp(-eta * (0.5 - 0) ** 2)
    a1, a2 = 0.5 * s1 / (0.5 * s1 + 0.5 * s2), 0.5 * s2 / (0.5 * s1 + 0.5 * s2)
    np.testing.assert_allclose(m.alpha_, [a1, a2])
    # PA-I: loss = 1 - (-1)(0) = 1, tau = min(1, 1/1) = 1, w = -x
    np.testing.assert_allclose(m.target_weights_, [-1.0, 0.0])
    # step 2: x = (0.5, 1), y = +1.  v.x + c = 1 -> Pi = 1; w.x = -0.5 -> Pi = 0.25
    q = a1 * 1.0 + a2 * 0.25
    assert m.predict_learn_array(np.array([0.5, 1.0]), 1) == (1 if q - 0.5 > 0 else -1)
    s1, s2 = math.exp(-eta * (1 - 1) ** 2), math.exp(-eta * (0.25 - 1) ** 2)
    a1, a2 = a1 * s1 / (a1 * s1 + a2 * s2), a2 * s2 / (a1 * s1 + a2 * s2)
    np.testing.assert_allclose(m.alpha_, [a1, a2])
    # loss = 1 - 1 * (-0.5) = 1.5, ||x||^2 = 1.25, tau = min(1, 1.2) = 1, w += x
    np.testing.assert_allclose(m.target_weights_, [-0.5, 1.0])


def test_homotl1_minus_half_matters():
    # both experts say "negative" with Pi = 0.2: the sum 0.2 is positive, minus 1/2 is not
    m = HomOTL1(binary_source([-0.6, 0.0]))
    m._w = np.array([-0.6, 0.0])
    assert m.predict_array(np.array([1.0, 0.0])) == -1
    assert m.predict_proba_one({0: 1.0, 1: 0.0})[True] == pytest.approx(0.2)


def test_multiclass_homotl1_reduces_to_binary():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X @ [1.0, -1.0, 0.5] + 0.8 * rng.normal(size=300) > 0
    v = np.array([0.8, -0.2, 1.0])
    b = HomOTL1(binary_source(v, 0.1), C=1.0, eta=0.5)
    mc = MulticlassHomOTL1(binary_source(v, 0.1), C=0.5, eta=0.5)  # C' = C / 2 (two rows move)
    for xi, yi in zip(X, y):
        assert (b.predict_learn_array(xi, yi) == 1) == mc.predict_learn_array(xi, bool(yi))
        np.testing.assert_allclose(mc.alpha_, b.alpha_, atol=1e-12)


def test_multiclass_homotl1_by_hand_and_unknown_label():
    src = SourceClassifier(np.eye(2), classes=("sit", "walk"))
    m = MulticlassHomOTL1(src, eta=0.5)
    # the target label "run" is unknown to the source: P_source(run) = 0, loss 1
    x = np.array([0.0, 3.0])
    m.predict_learn_array(x, "run")
    assert m.classes_ == ["sit", "walk", "run"]
    # target had rows (sit, walk) = 0 -> P = (1/2, 1/2); the new row is added before scoring,
    # so the target's P_run = Pi(0 - 0) = 1/2 and its loss is 1/4
    a = np.array([0.5 * math.exp(-0.5), 0.5 * math.exp(-0.125)])
    np.testing.assert_allclose(m.alpha_, a / a.sum())
    assert m.expert_scores(x)[0, 2] == -np.inf


def test_fixed_alpha_when_eta_zero():
    m = MulticlassHomOTL1(SourceClassifier(np.eye(2), classes=(0, 1)), eta=0.0)
    m.partial_fit(np.eye(2), [1, 0])
    np.testing.assert_allclose(m.alpha_, [0.5, 0.5])


# ---------------------------------------------------------------------- HomOTL-II
def test_homotl2_hedge_by_hand():
    T = 4
    beta = math.sqrt(T) / (math.sqrt(T) + math.sqrt(math.log(2)))
    m = HomOTL2(binary_source([1.0, 0.0]), C=1.0, horizon=T)
    # step 1: source right (f = 1); the untrained target scores f = 0, which is not a mistake
    # (the reference code's y f < 0), so theta stays (1/2, 1/2)
    assert m.predict_learn_array(np.array([1.0, 0.0]), 1) == 1  # vote 1/2 * 1 + 1/2 * 0 > 0
    np.testing.assert_allclose(m.theta_, [0.5, 0.5])
    # target after PA-I: w = x (loss 1, tau = 1)
    # step 2: x = (-1, 1), y = +1: source f = -1 (wrong), target f = -1 (wrong): L = (1, 1)
    m.predict_learn_array(np.array([-1.0, 1.0]), 1)
    np.testing.assert_allclose(m.theta_, [0.5, 0.5])
    # step 3: x = (2, 0), y = -1: source f = 2 (wrong); target w = (0, 1) after step 2 -> f = 0,
    # not wrong: L = (2, 1)
    np.testing.assert_allclose(m.target_weights_, [0.0, 1.0])
    m.predict_learn_array(np.array([2.0, 0.0]), -1)
    np.testing.assert_allclose(m.theta_, np.array([beta, 1.0]) / (beta + 1.0))


def test_homotl2_zero_score_is_not_a_mistake():
    # the old rule (y f <= 0) penalised the untrained target on step 1: theta = (1, beta) / (1 + beta)
    m = HomOTL2(binary_source([1.0]), horizon=4)
    m.learn_array(np.array([1.0]), 1)
    assert m.theta_.tolist() == [0.5, 0.5]
    # ties in the vote still go to -1 (documented): source and target both score 0
    assert HomOTL2(binary_source([0.0]), horizon=4).predict_array(np.array([1.0])) == -1


def test_homotl2_anytime_beta():
    m = HomOTL2(binary_source([1.0]))
    m.learn_array(np.array([-1.0]), 1)  # t = 1: beta_1 = 1 / (1 + sqrt(ln 2)); source wrong
    b1 = 1 / (1 + math.sqrt(math.log(2)))
    np.testing.assert_allclose(m.theta_, np.array([b1, 1.0]) / (b1 + 1.0))  # target f = 0: not wrong
    m.learn_array(np.array([1.0]), 1)  # source right; target w = -1 after PA-I: f = -1, wrong
    np.testing.assert_allclose(m.theta_, [0.5, 0.5])  # L = (1, 1), whatever beta_2


def test_multiclass_homotl2_reduces_to_binary():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    y = X @ [1.0, 0.5, -1.0] > 0.2 * rng.normal(size=300)
    v = np.array([1.0, 0.0, -0.3])
    b = HomOTL2(binary_source(v), C=1.0, horizon=300)
    mc = MulticlassHomOTL2(binary_source(v), C=0.5, horizon=300)
    for xi, yi in zip(X, y):
        assert (b.predict_learn_array(xi, yi) == 1) == mc.predict_learn_array(xi, bool(yi))
        np.testing.assert_allclose(mc.weights_, b.theta_, atol=1e-12)


# ---------------------------------------------------------------------- HomOTLMS
def test_homotlms_hedge_by_hand():
    T = 9
    beta = 3 / (3 + math.sqrt(math.log(3)))
    s1 = SourceClassifier(np.eye(3), classes=("a", "b", "c"))
    s2 = SourceClassifier(np.eye(3)[[1, 0, 2]], classes=("a", "b", "c"))  # swaps a and b
    m = HomOTLMS((s1, s2), C=1.0, horizon=T)
    np.testing.assert_allclose(m.weights_, [1 / 3, 1 / 3, 1 / 3])
    # x = e_a, y = a: s1 says a (right), s2 says b (wrong), the untrained target ties (scores
    # all 0: y is among its top classes, the multi-class y f = 0, not a mistake)
    # vote: a gets 1/3 + 1/9, b gets 1/3, c 1/9 -> "a"
    assert m.predict_learn_array(np.array([1.0, 0.0, 0.0]), "a") == "a"
    np.testing.assert_allclose(m.weights_, np.array([1, beta, 1]) / (2 + beta))
    # target after PA-I: W_a = x/2, W_b = -x/2 (s = b, the first wrong class)
    np.testing.assert_allclose(m.target_weights_[:, 0], [0.5, -0.5, 0.0])
    # x = e_b, y = b: s1 says b (right), s2 says a (wrong), target scores 0 for all (a tie: not wrong)
    m.predict_learn_array(np.array([0.0, 1.0, 0.0]), "b")
    np.testing.assert_allclose(m.weights_, np.array([1, beta**2, 1]) / (2 + beta**2))
    # x = e_a, y = b: s1 says a (wrong), s2 says b (right), target says a (wrong): L = (1, 2, 1)
    m.predict_learn_array(np.array([1.0, 0.0, 0.0]), "b")
    np.testing.assert_allclose(m.weights_, np.array([1, beta, 1]) / (2 + beta))


def test_homotlms_untrained_target_is_not_penalised_on_step_one():
    # the old rule (y not the *unique* top class) gave weights (1, beta) / (1 + beta) here
    beta = 2 / (2 + math.sqrt(math.log(2)))  # T = 4, n + 1 = 2 experts
    m = HomOTLMS((SourceClassifier(np.eye(2), classes=(0, 1)),), horizon=4)
    m.predict_learn_array(np.array([1.0, 0.0]), 0)  # source right, target all zeros
    np.testing.assert_allclose(m.weights_, [0.5, 0.5])
    m.predict_learn_array(np.array([0.0, 1.0]), 0)  # source wrong; target (W_0 = e_0/2) ties at 0
    np.testing.assert_allclose(m.weights_, np.array([beta, 1.0]) / (beta + 1.0))
    # the fused prequential step and learn_array give the same weights
    m2 = HomOTLMS((SourceClassifier(np.eye(2), classes=(0, 1)),), horizon=4)
    m2.learn_array(np.array([1.0, 0.0]), 0)
    m2.learn_array(np.array([0.0, 1.0]), 0)
    np.testing.assert_allclose(m2.weights_, m.weights_)


def test_homotlms_beta_uses_n_plus_one_experts():
    srcs = tuple(SourceClassifier(np.eye(2), classes=(0, 1)) for _ in range(6))
    m = HomOTLMS(srcs, horizon=100)
    assert m.beta_ == pytest.approx(10 / (10 + math.sqrt(math.log(7))))
    assert m.n_experts == 7


def test_homotlms_without_sources_is_multiclass_pa1():
    from fedotl.online.pa import MulticlassPA

    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(100, 3)), rng.integers(0, 3, 100)
    a = HomOTLMS(classes=(0, 1, 2)).prequential(X, y)
    b = MulticlassPA(classes=(0, 1, 2)).prequential(X, y)
    np.testing.assert_array_equal(a, b)


def test_reset_weights():
    m = HomOTLMS((SourceClassifier(np.eye(2), classes=(0, 1)),), horizon=10)
    m.partial_fit(np.eye(2), [1, 0])  # the source is wrong twice, the target ties twice (not wrong)
    assert not np.allclose(m.weights_, 0.5)
    m.reset_weights()
    np.testing.assert_allclose(m.weights_, [0.5, 0.5])


# ---------------------------------------------------------------------- weights stay a distribution
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    eta=st.floats(0.0, 20.0),
    scale=st.floats(0.01, 100.0),
    n=st.integers(1, 40),
)
def test_weights_are_probability_distributions(seed, eta, scale, n):
    rng = np.random.default_rng(seed)
    d, K = 3, 3
    X = scale * rng.normal(size=(n, d))
    y = rng.integers(0, K + 1, n)  # label K is unknown to the sources
    srcs = tuple(SourceClassifier(scale * rng.normal(size=(K, d)), classes=tuple(range(K))) for _ in range(2))
    learners = [
        (MulticlassHomOTL1(srcs[0], eta=eta), "alpha_"),
        (HomOTLMS(srcs, horizon=n), "weights_"),
        (HomOTLMS(srcs), "weights_"),
        (HomOTL1(binary_source(srcs[0].W[0, :]), eta=eta), "alpha_"),
        (HomOTL2(binary_source(srcs[0].W[0, :])), "theta_"),
    ]
    for m, attr in learners:
        binary = isinstance(m, (HomOTL1, HomOTL2))
        for xi, yi in zip(X, y):
            m.predict_learn_array(xi, (yi % 2 == 0) if binary else yi)
            w = getattr(m, attr)
            assert np.all(w >= 0) and np.all(np.isfinite(w))
            assert w.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("make", [
    lambda src, k: HomOTLMS((src,), horizon=50, target_start=k, classes=("a", "b", "c")),
    lambda src, k: MulticlassHomOTL1(src, target_start=k, classes=("a", "b", "c")),
])
def test_target_start_keeps_the_target_learner_on_its_own_columns(make):
    # The source reads columns 0..2 through a transform; the target PA-I only columns 3.. on.
    rng = np.random.default_rng(0)
    k, n = 3, 60
    X = rng.normal(size=(n, k + 4))
    y = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    src = SourceClassifier(rng.normal(size=(3, 2)), classes=("a", "b", "c"), transform=lambda Z: Z[..., :2] * 2.0, n_features=k + 4)
    model = make(src, k)
    alone = HomOTLMS(None, classes=("a", "b", "c"))  # the same PA-I target, on the target columns only
    for i in range(n):
        model.predict_learn_array(X[i], y[i])
        alone.predict_learn_array(X[i, k:], y[i])
    W = model.target_weights_
    assert np.all(W[:, :k] == 0.0)
    assert np.allclose(W[:, k:], alone.target_weights_)
    assert np.abs(W[:, k:]).sum() > 0
    with pytest.raises(ValueError, match="target_start"):
        HomOTLMS((src,), target_start=-1)
