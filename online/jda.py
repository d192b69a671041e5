"""Joint Distribution Adaptation (Long, Wang, Ding, Sun & Yu, ICCV 2013), linear (primal) form.

JDA looks for a projection A (d x p) under which both the marginal and the class-conditional
distributions of source and target are close in the MMD sense:

    min_A  tr(A^T X (sum_{c=0}^{C} M_c) X^T A) + lambda ||A||_F^2   s.t.  A^T X H X^T A = I

with X = [X_s, X_t] (d x n), H = I - 1/n 1 1^T the centring matrix, M_0 the marginal MMD matrix
and M_c (c >= 1) the conditional ones built from target pseudo-labels.  The solution is given
by the p smallest eigenvalues of the generalised eigenproblem

    (X M X^T + lambda I) A = X H X^T A Phi,

and the pseudo-labels are refreshed by a 1-nearest-neighbour classifier trained on the projected
source, for ``n_iter`` rounds.

Implementation notes (no n x n matrix is ever formed):

* X M_c X^T = delta_c delta_c^T with delta_c = mean_s^c - mean_t^c, so X M X^T is a sum of
  outer products of class-mean differences;
* as in the authors' code, M_0 is multiplied by the number of classes and M is divided by its
  Frobenius norm, which is computed exactly from the inner products of the e_c vectors;
* classes are used in M_c only when present in both the source and the target pseudo-labels;
* A is rescaled so that A^T (X H X^T / n) A = I (projected data have unit variance per
  component), which leaves JDA's subspace unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

__all__ = ["JDAResult", "jda", "mmd_linear", "mmd_scatter", "nearest_neighbour"]


@dataclass
class JDAResult:
    """Projection ``A`` (d, p), final target pseudo-labels, generalised eigenvalues (largest first)."""

    A: np.ndarray
    pseudo_labels: np.ndarray
    eigenvalues: np.ndarray
    mmd_history: list


def mmd_linear(Xs: np.ndarray, Xt: np.ndarray) -> float:
    """Linear-kernel MMD^2: squared distance between the two sample means."""
    diff = np.asarray(Xs, dtype=float).mean(axis=0) - np.asarray(Xt, dtype=float).mean(axis=0)
    return float(diff @ diff)


def mmd_scatter(Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray, yt: np.ndarray | None = None) -> np.ndarray:
    """X M X^T / ||M||_F for JDA's M = C M_0 + sum_c M_c (only M_0 when ``yt`` is None).

    Uses X M_c X^T = delta_c delta_c^T (class-mean differences) and the closed-form inner
    products e_0.e_0 = e_0.e_c = 1/ns + 1/nt, e_c.e_c = 1/ns_c + 1/nt_c, e_c.e_c' = 0.
    """
    ns, nt = Xs.shape[0], Xt.shape[0]
    classes = np.unique(ys)
    C = len(classes)
    inv0 = 1.0 / ns + 1.0 / nt
    d0 = Xs.mean(axis=0) - Xt.mean(axis=0)
    XMX = C * np.outer(d0, d0)
    fro2 = (C * inv0) ** 2
    if yt is not None:
        for c in classes:
            s_mask, t_mask = ys == c, yt == c
            nsc, ntc = int(s_mask.sum()), int(t_mask.sum())
            if nsc == 0 or ntc == 0:
                continue
            dc = Xs[s_mask].mean(axis=0) - Xt[t_mask].mean(axis=0)
            XMX += np.outer(dc, dc)
            # ||sum_a w_a e_a e_a^T||_F^2 = sum_ab w_a w_b (e_a.e_b)^2 with w_0 = C, w_c = 1:
            # cross terms (0, c) and (c, 0) give C (e_0.e_c)^2 each, the diagonal (e_c.e_c)^2
            fro2 += 2 * C * inv0**2 + (1.0 / nsc + 1.0 / ntc) ** 2
    return XMX / np.sqrt(fro2)


def _rownorm(Z: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.where(n > 0, n, 1.0)


def nearest_neighbour(Zs: np.ndarray, ys: np.ndarray, Zt: np.ndarray, chunk: int = 512) -> np.ndarray:
    """1-NN labels of the rows of ``Zt`` among the rows of ``Zs`` (Euclidean)."""
    s2 = np.einsum("ij,ij->i", Zs, Zs)
    out = np.empty(Zt.shape[0], dtype=np.intp)
    for i in range(0, Zt.shape[0], chunk):
        block = Zt[i : i + chunk]
        dist = s2[None, :] - 2.0 * block @ Zs.T  # ||zt||^2 is constant per row
        out[i : i + chunk] = dist.argmin(axis=1)
    return ys[out]


def jda(
    Xs: np.ndarray,
    ys: np.ndarray,
    Xt: np.ndarray,
    n_components: int = 20,
    lambda_: float = 1.0,
    n_iter: int = 10,
    normalize: bool = True,
) -> JDAResult:
    """Fit a JDA projection from labelled source data and unlabelled target data.

    Parameters
    ----------
    Xs, ys
        Source samples (ns, d) and labels.
    Xt
        Unlabelled target samples (nt, d).
    n_components
        Dimension p of the projected space (at most d).
    lambda_
        Regularisation of ||A||_F^2.
    n_iter
        Pseudo-label refinement rounds (0: marginal adaptation only, i.e. TCA-like).
    normalize
        Scale projected samples to unit norm before the 1-NN (as in the authors' code).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Xs = rng.normal(size=(60, 5)); ys = (Xs[:, 0] > 0).astype(int)
    >>> Xt = rng.normal(size=(40, 5)) + [0, 0, 0, 0, 3.0]
    >>> res = jda(Xs, ys, Xt, n_components=2, n_iter=2)
    >>> res.A.shape, res.pseudo_labels.shape
    ((5, 2), (40,))
    """
    Xs = np.asarray(Xs, dtype=float)
    Xt = np.asarray(Xt, dtype=float)
    ys = np.asarray(ys)
    if Xs.ndim != 2 or Xt.ndim != 2 or Xs.shape[1] != Xt.shape[1]:
        raise ValueError(f"Xs and Xt must be 2-D with the same width, got {Xs.shape} and {Xt.shape}")
    if ys.shape != (Xs.shape[0],):
        raise ValueError(f"ys must have {Xs.shape[0]} labels, got shape {ys.shape}")
    if not (np.isfinite(Xs).all() and np.isfinite(Xt).all()):
        raise ValueError("Xs or Xt contains NaN or infinite values")
    ns, d = Xs.shape
    nt = Xt.shape[0]
    if ns == 0 or nt == 0:
        raise ValueError("JDA needs at least one source and one target sample")
    if not 1 <= n_components <= d:
        raise ValueError(f"n_components must be in [1, {d}], got {n_components}")
    if lambda_ <= 0:
        raise ValueError(f"lambda_ must be positive, got {lambda_}")
    if n_iter < 0:
        raise ValueError(f"n_iter must be >= 0, got {n_iter}")
    n = ns + nt
    X = np.vstack([Xs, Xt])
    Xc = X - X.mean(axis=0)
    S = Xc.T @ Xc / n  # X H X^T / n
    yt: np.ndarray | None = None  # no pseudo-labels yet: first round is marginal only
    history: list = []
    A = np.zeros((d, n_components))
    nu = np.zeros(n_components)
    for _ in range(n_iter + 1):
        XMX = mmd_scatter(Xs, ys, Xt, yt)
        nu, vecs = linalg.eigh(S, XMX + lambda_ * np.eye(d), subset_by_index=[d - n_components, d - 1])
        order = np.argsort(nu)[::-1]  # largest nu <=> smallest Phi = 1/nu
        nu, vecs = nu[order], vecs[:, order]
        A = vecs / np.sqrt(np.where(nu > 1e-12, nu, 1.0))
        Zs, Zt = Xs @ A, Xt @ A
        history.append(mmd_linear(Zs, Zt))
        if normalize:
            Zs, Zt = _rownorm(Zs), _rownorm(Zt)
        yt = nearest_neighbour(Zs, ys, Zt)
    return JDAResult(A=A, pseudo_labels=np.asarray(yt), eigenvalues=nu, mmd_history=history)
