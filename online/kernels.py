"""The math shared by the online learners, each rule written once.

Squashing (Zhao & Hoi, "OTL: A Framework of Online Transfer Learning", ICML 2010, and Zhao, Hoi,
Wang & Li, "Online Transfer Learning", Artificial Intelligence 216, 2014):

* :func:`pi`         -- Pi(z) = max(0, min(1, (z + 1) / 2)), the clip of HomOTL-I;
* :func:`margin_pi`  -- its multi-class reading P_k = Pi(f_k - max_{j != k} f_j) (our extension).

Hedge (Freund & Schapire, "A decision-theoretic generalization of on-line learning and an
application to boosting", JCSS 55, 1997), as used by HomOTL-II and HomOTLMS:

* :func:`hedge_beta`     -- beta = sqrt(T) / (sqrt(T) + sqrt(ln N));
* :func:`hedge_weights`  -- normalised beta^L from cumulative mistakes L.

Passive-Aggressive (Crammer, Dekel, Keshet, Shalev-Shwartz & Singer, "Online
Passive-Aggressive Algorithms", JMLR 7, 2006; its section, figure and equation numbers
are not cited here, since they could not be checked against the paper):

* :func:`pa_tau`              -- step sizes tau of PA, PA-I and PA-II;
* :func:`pa_step`             -- binary update w += tau y x on the hinge loss;
* :func:`multiclass_pa_step`  -- multi-class max-loss update of the true and the
  highest-scoring wrong row (the paper's multi-vector multi-class construction);
* :func:`batched_pa_step`     -- the multi-class update for D independent learners at once.

PA variants are given by their code: 0 (PA), 1 (PA-I), 2 (PA-II); see
:func:`fedotl.online.validation.variant_code`.  Every update works in place and allocates only
the step vector; scalar arguments are Python floats (cheaper than numpy scalars).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "batched_pa_step",
    "hedge_beta",
    "hedge_weights",
    "margin_pi",
    "multiclass_pa_step",
    "pa_step",
    "pa_tau",
    "pi",
]

_NEG_INF = -math.inf


# ---------------------------------------------------------------------- squashing
def pi(z: float) -> float:
    """Zhao & Hoi's squashing function Pi(z) = max(0, min(1, (z + 1) / 2)).

    >>> pi(0.0), pi(0.5), pi(3.0), pi(-3.0)
    (0.5, 0.75, 1.0, 0.0)
    """
    return min(1.0, max(0.0, 0.5 * z + 0.5))


def margin_pi(F: np.ndarray) -> np.ndarray:
    """Per-class scores in [0, 1] from raw scores, ``P_k = Pi(f_k - max_{j != k} f_j)``.

    This is the multi-class reading of Zhao & Hoi's Pi(w.x): the argument is the multi-class
    margin of class k (the quantity whose hinge the multi-class PA minimises).  With two classes
    and scores (-f/2, f/2) it gives (1 - Pi(f), Pi(f)), i.e. the binary case exactly.  Works on
    a vector (K,) or a stack (N, K); ``-inf`` scores (a source that does not know a class) give 0.

    >>> margin_pi(np.array([2.0, 0.5, -1.0]))
    array([1., 0., 0.])
    >>> margin_pi(np.array([0.0, 0.0]))
    array([0.5, 0.5])
    """
    F = np.asarray(F, dtype=float)
    K = F.shape[-1]
    if K == 0:
        return F.copy()
    if K == 1:
        return np.ones_like(F)
    part = np.partition(F, K - 2, axis=-1)
    top = part[..., K - 1 : K]
    gap = top - part[..., K - 2 : K - 1]
    M = F - top
    # the top class gets (top - second); on ties both are 0, which is correct
    M = np.where(M >= 0.0, gap, M)
    np.clip(M, -1.0, 1.0, out=M)
    M += 1.0
    M *= 0.5
    return M


# ---------------------------------------------------------------------- Hedge
def hedge_beta(horizon: int | None, n_experts: int, t: int) -> float:
    """Hedge discount beta = sqrt(T) / (sqrt(T) + sqrt(ln N)) (Freund & Schapire 1997).

    ``horizon=None`` is the anytime variant: T is replaced by the current round ``t``.

    >>> round(hedge_beta(100, 2, 1), 4)
    0.9231
    """
    T = horizon if horizon is not None else max(t, 1)
    if n_experts <= 1:
        return 1.0
    r = math.sqrt(T)
    return r / (r + math.sqrt(math.log(n_experts)))


def hedge_weights(L: np.ndarray | tuple[float, float], beta: float | np.ndarray) -> np.ndarray | tuple[float, float]:
    """Normalised Hedge weights beta^L / sum beta^L from cumulative mistakes ``L`` (last axis).

    Computed as beta^(L - min L), which is scale-free: the same weights as the multiplicative
    rule u_i <- u_i beta^{z_i} (Freund & Schapire 1997), without underflow.  For a stack of
    rows (N, n), ``beta`` may be one discount per row (shape (N, 1)).  A pair ``(L1, L2)`` of
    Python floats (binary HomOTL-II's two experts) gives the pair of weights as Python floats,
    without numpy arrays in the per-sample loop.

    >>> hedge_weights(np.array([0.0, 1.0]), 0.5).tolist()
    [0.6666666666666666, 0.3333333333333333]
    >>> hedge_weights((0.0, 1.0), 0.5)
    (0.6666666666666666, 0.3333333333333333)
    """
    if type(L) is tuple:
        a, b = L
        m = a if a <= b else b
        ua, ub = beta ** (a - m), beta ** (b - m)
        total = ua + ub
        return ua / total, ub / total
    u = np.power(beta, L - L.min(axis=-1, keepdims=True))
    return u / u.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------- Passive-Aggressive
def pa_tau(code: int, loss: float | np.ndarray, n2: float | np.ndarray, C: float) -> float | np.ndarray:
    """PA step size for loss ``l > 0`` and squared norm ``n2 > 0`` (Crammer et al. 2006).

    PA (code 0): tau = l / n2;  PA-I (1): tau = min(C, l / n2);  PA-II (2): tau = l / (n2 + 1/(2C)).
    ``n2`` is the effective squared norm: ||x||^2 (+ 1 with a learned bias) for the binary
    update, twice that for the multi-class one.  Works on Python floats and elementwise on
    arrays (the batched engine).

    >>> pa_tau(0, 1.0, 4.0, 0.1), pa_tau(1, 1.0, 4.0, 0.1), pa_tau(2, 1.0, 4.0, 0.1)
    (0.25, 0.1, 0.1111111111111111)
    """
    if code == 1:
        r = loss / n2
        return np.minimum(C, r) if isinstance(r, np.ndarray) else min(C, r)
    if code == 0:
        return loss / n2
    return loss / (n2 + 0.5 / C)


def pa_step(w: np.ndarray, x: np.ndarray, n2: float, y: int, f: float, code: int, C: float) -> float:
    """One binary PA update in place (Crammer et al. 2006); returns tau * y.

    ``f`` is the current margin w.x (+ b), ``y`` is +1 or -1 and ``n2`` the effective squared
    norm (||x||^2, + 1 when the bias is learned as the weight of a constant feature 1).  With
    hinge loss l = 1 - y f > 0 and n2 > 0: w += tau y x; otherwise nothing changes and 0.0 is
    returned.  A learned bias moves by the returned tau * y.

    >>> w = np.zeros(2)
    >>> pa_step(w, np.array([1.0, 2.0]), 5.0, 1, 0.0, 1, 1.0), w.tolist()
    (0.2, [0.2, 0.4])
    """
    loss = 1.0 - y * f
    if loss <= 0.0 or n2 <= 0.0:
        return 0.0
    ty = y * pa_tau(code, loss, n2, C)
    w += ty * x
    return ty


def multiclass_pa_step(
    W: np.ndarray,
    b: np.ndarray | None,
    x: np.ndarray,
    sq: float,
    f: np.ndarray,
    yi: int,
    code: int,
    C: float,
) -> tuple[float, int]:
    """One multi-class PA update in place (Crammer et al. 2006, multi-class); returns (tau, s).

    With one weight row per class (the multi-vector construction, for which
    ||Phi(x, y) - Phi(x, s)||^2 = 2 ||x||^2): s is the highest-scoring wrong class,
    l = 1 - (f_y - f_s), and when l > 0, W_y += tau x, W_s -= tau x with
    tau = :func:`pa_tau` (code, l, 2 ||x||^2, C).  tau = 0 when passive.

    ``f`` holds the current scores W x (+ b) and is used as scratch (entry ``yi`` is
    overwritten).  ``b`` is the bias vector when the bias is learned (then ||x||^2 + 1), else
    ``None``.

    >>> W = np.zeros((2, 2))
    >>> multiclass_pa_step(W, None, np.array([1.0, 0.0]), 1.0, np.zeros(2), 0, 1, 1.0)
    (0.5, 1)
    >>> W.tolist()
    [[0.5, 0.0], [-0.5, 0.0]]
    """
    if f.shape[0] < 2:
        return 0.0, -1
    fy = f.item(yi)  # Python floats: cheaper scalar arithmetic than numpy scalars
    f[yi] = _NEG_INF
    s = int(f.argmax())
    loss = 1.0 - fy + f.item(s)
    if loss <= 0.0:
        return 0.0, s
    n2 = 2.0 * (sq + 1.0) if b is not None else 2.0 * sq
    if n2 <= 0.0:
        return 0.0, s
    tau = pa_tau(code, loss, n2, C)
    step = x * tau
    W[yi] += step
    W[s] -= step
    if b is not None:
        b[yi] += tau
        b[s] -= tau
    return tau, s


def batched_pa_step(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    F: np.ndarray,
    sq: np.ndarray,
    code: int,
    C: float,
    b: np.ndarray | None = None,
    active: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`multiclass_pa_step` for D learners at once, in place; returns tau (D,).

    ``W`` (D, K, d), ``X`` (D, d), ``y`` (D,) class indices, ``F`` (D, K) current scores (used
    as scratch), ``sq`` (D,) squared norms, ``b`` (D, K) learned biases or ``None``, ``active``
    (D,) bool: learners without a sample this step (False) are not updated.  Row i does what
    :func:`multiclass_pa_step` does on W[i]; tau is 0 where it is passive.

    >>> W = np.zeros((1, 2, 2))
    >>> batched_pa_step(W, np.array([[1.0, 0.0]]), np.array([0]), np.zeros((1, 2)), np.array([1.0]), 1, 1.0)
    array([0.5])
    """
    D = W.shape[0]
    r = np.arange(D)
    fy = F[r, y]
    F[r, y] = -np.inf
    s = F.argmax(axis=1)
    loss = 1.0 - fy + F[r, s]
    n2 = 2.0 * (sq + 1.0) if b is not None else 2.0 * sq
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = pa_tau(code, loss, n2, C)
    ok = (loss > 0.0) & (n2 > 0.0)
    if active is not None:
        ok &= active
    tau = np.where(ok, tau, 0.0).astype(W.dtype, copy=False)
    U = tau[:, None] * X
    # y != s for every device, so the two scatters never hit the same row; flat row
    # indices into the (D * K, d) view are a little cheaper than (device, class) pairs
    if W.flags.c_contiguous:
        K = W.shape[1]
        Wf = W.reshape(D * K, W.shape[2])  # a view, since W is contiguous
        Wf[r * K + y] += U
        Wf[r * K + s] -= U
    else:
        W[r, y] += U
        W[r, s] -= U
    if b is not None:
        b[r, y] += tau
        b[r, s] -= tau
    return tau
