"""HomOTL-ODDM (Du et al. 2020) and JDA (Long et al. 2013)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedotl.online.jda import jda, mmd_linear, mmd_scatter
from fedotl.online.oddm import HomOTLODDM, ProjectedSource, oddm_projection_update
from fedotl.online.sources import SourceClassifier


def test_projection_update_by_hand():
    A = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]])
    d = np.array([1.0, 0.0, 0.0])
    dk = np.array([0.0, 1.0, 1.0])
    # I + 0.5 d d^T + 0.5 dk dk^T = [[1.5, 0, 0], [0, 1.5, 0.5], [0, 0.5, 1.5]]
    # inverse: 2/3 on the first row; [[0.75, -0.25], [-0.25, 0.75]] on the other block
    expected = np.array([[2 / 3, 4 / 3], [2.25, 2.75], [-0.75, -0.25]])
    np.testing.assert_allclose(oddm_projection_update(A, np.column_stack([d, dk]), 0.5), expected)
    # and agrees with the explicit inverse on random matrices
    rng = np.random.default_rng(0)
    A, D = rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    direct = np.linalg.solve(np.eye(6) + 2.0 * D @ D.T, A)
    np.testing.assert_allclose(oddm_projection_update(A, D, 2.0), direct, atol=1e-12)


def _manual_source() -> ProjectedSource:
    A = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    clf = SourceClassifier(np.array([[1.0, 0.0], [0.0, 1.0]]), classes=("a", "b"))
    means = {"a": np.array([1.0, 0.0, 0.0]), "b": np.array([0.0, 1.0, 0.0])}
    return ProjectedSource(A, clf, np.array([0.5, 0.5, 0.0]), means)


def test_oddm_online_projection_update_uses_running_means():
    src = _manual_source()
    m = HomOTLODDM((src,), mu=0.5, update_every=2, horizon=10, normalize=False)
    x1, x2 = np.array([1.0, 0.0, 2.0]), np.array([0.0, 3.0, 0.0])
    m.predict_learn_array(x1, "a")
    np.testing.assert_allclose(m.projections_[0], src.A)  # not yet
    m.predict_learn_array(x2, "a")
    mu_t = (x1 + x2) / 2  # running target mean
    mu_ta = (x1 + x2) / 2  # only class a revealed
    D = np.column_stack([src.mean - mu_t, src.class_means["a"] - mu_ta])
    expected = np.linalg.solve(np.eye(3) + 0.5 * D @ D.T, src.A)
    np.testing.assert_allclose(m.projections_[0], expected, atol=1e-12)
    assert src.A[0, 0] == 1.0  # the source object is never mutated


def test_oddm_hedge_and_prediction_by_hand():
    src = _manual_source()
    m = HomOTLODDM((src,), horizon=4, update_every=100, normalize=True)
    beta = 2 / (2 + math.sqrt(math.log(2)))  # 2n = 2 experts
    x = np.array([0.0, 2.0, 0.0])  # z = (0, 1): source says b, target ties (not a mistake)
    assert m.predict_learn_array(x, "b") == "b"
    np.testing.assert_allclose(m.weights_, [0.5, 0.5])
    # target after PA-I: W_b = z/2, W_a = -z/2.  x = (2, 0, 0), z = (1, 0), y = b: the source says
    # a (wrong), the target ties at 0 (not wrong)
    m.predict_learn_array(np.array([2.0, 0.0, 0.0]), "b")
    np.testing.assert_allclose(m.weights_, np.array([beta, 1.0]) / (1 + beta))
    assert m.n_experts == 2


def test_mmd_scatter_matches_explicit_matrices():
    rng = np.random.default_rng(0)
    Xs, Xt = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 1
    ys = np.array([0, 0, 1, 1, 1, 2, 2])
    yt = np.array([0, 1, 1, 3, 0])  # class 2 absent, class 3 absent from the source
    ns, nt = 7, 5
    X = np.vstack([Xs, Xt]).T
    C = 3
    e0 = np.concatenate([np.full(ns, 1 / ns), np.full(nt, -1 / nt)])
    M = C * np.outer(e0, e0)
    for c in (0, 1, 2):
        if (ys == c).sum() and (yt == c).sum():
            e = np.concatenate([(ys == c) / (ys == c).sum(), -1.0 * (yt == c) / (yt == c).sum()])
            M += np.outer(e, e)
    M /= np.linalg.norm(M, "fro")
    np.testing.assert_allclose(mmd_scatter(Xs, ys, Xt, yt), X @ M @ X.T, atol=1e-12)
    M0 = np.outer(e0, e0) * C
    np.testing.assert_allclose(mmd_scatter(Xs, ys, Xt), X @ (M0 / np.linalg.norm(M0, "fro")) @ X.T, atol=1e-12)


def _shifted_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    d, n = 6, 300
    ys = rng.integers(0, 2, n)
    Xs = rng.normal(size=(n, d))
    Xs[:, 0] += np.where(ys == 1, 2.0, -2.0)
    yt = rng.integers(0, 2, 120)
    Xt = rng.normal(size=(120, d))
    Xt[:, 0] += np.where(yt == 1, 2.0, -2.0)
    Xt[:, 1:3] += 4.0  # domain shift along features that carry no label information
    return Xs, ys, Xt, yt


def _normalised_mmd(Zs: np.ndarray, Zt: np.ndarray) -> float:
    Z = np.vstack([Zs, Zt])
    return mmd_linear(Zs, Zt) / Z.var(axis=0).sum()


def test_jda_projection_shape_and_mmd_reduction():
    Xs, ys, Xt, yt = _shifted_problem()
    res = jda(Xs, ys, Xt, n_components=2, lambda_=1.0, n_iter=3)
    assert res.A.shape == (6, 2)
    assert res.pseudo_labels.shape == (120,)
    before = _normalised_mmd(Xs, Xt)
    after = _normalised_mmd(Xs @ res.A, Xt @ res.A)
    assert after < 0.05 * before, (before, after)
    assert (res.pseudo_labels == yt).mean() > 0.9  # the label direction survives
    # JDA's constraint, rescaled: unit variance per projected component
    Z = np.vstack([Xs, Xt]) @ res.A
    np.testing.assert_allclose(np.cov(Z.T, bias=True), np.eye(2), atol=1e-8)


def test_jda_input_validation():
    Xs, ys, Xt, _ = _shifted_problem()
    with pytest.raises(ValueError, match="n_components"):
        jda(Xs, ys, Xt, n_components=7)
    with pytest.raises(ValueError, match="width"):
        jda(Xs, ys, Xt[:, :3])
    bad = Xt.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        jda(Xs, ys, bad)


def test_oddm_end_to_end_on_shifted_problem():
    Xs, ys, Xt, yt = _shifted_problem(1)
    srcs = (
        ProjectedSource.fit(Xs, ys, Xt[:30], n_components=3, n_iter=2),
        ProjectedSource.fit(Xs[::-1], ys[::-1], Xt[:30], n_components=3, n_iter=2, seed=1),
    )
    m = HomOTLODDM(srcs, horizon=len(yt), update_every=10)
    assert m.n_experts == 4
    mistakes = m.prequential(Xt, yt)
    assert mistakes.mean() < 0.2
    w = m.weights_
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    assert not np.allclose(m.projections_[0], srcs[0].A)  # moved online


def test_oddm_without_sources_is_pa1_on_normalised_x():
    from fedotl.online.pa import MulticlassPA

    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(80, 3)), rng.integers(0, 3, 80)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    a = HomOTLODDM(classes=(0, 1, 2)).prequential(X, y)
    b = MulticlassPA(classes=(0, 1, 2)).prequential(Xn, y)
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- mu at the feature scale
def _scaled_source(sq_norm: float) -> ProjectedSource:
    A = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    clf = SourceClassifier(np.eye(2), classes=("a", "b"))
    return ProjectedSource(A, clf, np.array([2.0, 0.0, 0.0]), {}, sq_norm=sq_norm,
                           target_mean=np.zeros(3), target_count=1)


def test_oddm_update_is_scaled_to_the_features_by_hand():
    # rows of mean squared norm s = 5, mu_unit = 1 (the authors' mu on unit-norm rows): mu = 1/5
    m = HomOTLODDM((_scaled_source(5.0),), mu_unit=1.0, update_every=1, horizon=10, normalize=False)
    assert m.mu_.tolist() == [0.2]
    m.predict_learn_array(np.array([0.0, 2.0, 0.0]), "a")
    # running target mean: slice mean 0 (1 window) and x -> (0, 1, 0); d = (2, 0, 0) - (0, 1, 0)
    # = (2, -1, 0), ||d||^2 = 5, mu ||d||^2 = 1: (I + mu d d^T)^{-1} = I - 0.1 d d^T
    expected = np.array([[0.6, 0.2], [0.2, 0.9], [0.0, 0.0]])
    np.testing.assert_allclose(m.projections_[0], expected, atol=1e-12)
    # the old default (mu = 0.1 in input units, target mean from 0 without the slice) differs
    d_old = np.array([2.0, -2.0, 0.0])
    old = np.linalg.solve(np.eye(3) + 0.1 * np.outer(d_old, d_old), _scaled_source(5.0).A)
    assert not np.allclose(old, expected, atol=1e-3)


def test_oddm_default_mu_divides_mu_unit_by_the_feature_scale():
    from fedotl.online.oddm import MU_UNIT

    srcs = (_scaled_source(54.0), _scaled_source(270.0))
    np.testing.assert_allclose(HomOTLODDM(srcs).mu_, [MU_UNIT / 54.0, MU_UNIT / 270.0])
    np.testing.assert_allclose(HomOTLODDM(srcs, mu=0.3).mu_, [0.3, 0.3])  # explicit mu: input units
    off = HomOTLODDM(srcs, mu_unit=0.0, update_every=1, normalize=False)
    off.predict_learn_array(np.array([0.0, 2.0, 0.0]), "a")
    np.testing.assert_array_equal(off.projections_[0], srcs[0].A)  # 0 switches the update off
    with pytest.raises(ValueError, match="mu_unit must be a finite number >= 0"):
        HomOTLODDM(srcs, mu_unit=-1.0)
    # fit measures the feature scale and the slice
    Xs, ys, Xt, _ = _shifted_problem(3)
    src = ProjectedSource.fit(Xs, ys, Xt[:40], n_components=2, n_iter=1)
    assert src.sq_norm == pytest.approx(float((Xs**2).sum(axis=1).mean()))
    np.testing.assert_allclose(src.target_mean, Xt[:40].mean(axis=0))
    assert src.target_count == 40
