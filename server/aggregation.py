"""Aggregation rules as plain functions over ``{name: ndarray}`` dicts.

The strategies in :mod:`fedotl.server.strategies` call these; the tests check them
against hand-computed weights.

* :func:`weighted_average`: FedAvg (McMahan et al., "Communication-Efficient
  Learning of Deep Networks from Decentralized Data", AISTATS 2017,
  Algorithm 1): ``w = Σ_k (n_k / n) w_k``.
* :func:`bn_distance`, :func:`fedap_weight_matrix`,
  :func:`personalised_average`: FedAP (Lu, Wang, Chen, Qin, "Personalized
  Federated Learning with Adaptive Batchnorm for Healthcare", IEEE Trans.
  Big Data 2022, a.k.a. "FedHealth 2", arXiv:2112.00734).  The similarity of
  clients ``i`` and ``j`` is the inverse of the summed per-layer
  2-Wasserstein distance between diagonal Gaussians fitted to the inputs of
  each BatchNorm layer,

  .. math:: d_{ij} = \\sum_l \\sqrt{\\lVert\\mu^l_i-\\mu^l_j\\rVert^2 +
            \\lVert\\sigma^l_i-\\sigma^l_j\\rVert^2},

  and client ``i``'s personalised model is ``θ_i = Σ_j w_ij θ_j`` with
  ``w_ii = λ`` (the "model momentum") and ``w_ij = (1 − λ) d_ij⁻¹ /
  Σ_{k≠i} d_ik⁻¹`` for ``j ≠ i`` (as in the authors' PersonalizedFL code,
  ``get_weight_matrix1``).  BatchNorm layers are not averaged: they stay on
  each client.
* :func:`pooled_moments`: the source covariance FedHealth's CORAL loss
  aligns to, pooled from per-client (count, Σf, Σffᵀ) summaries;
  :func:`leave_one_out_covariances` pools, for each client, the summaries of
  every *other* client, so that no client aligns to its own features.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Sequence

import numpy as np

Arrays = Mapping[str, np.ndarray]


def weighted_average(arrays: Sequence[Arrays], weights: Sequence[float]) -> "OrderedDict[str, np.ndarray]":
    """Σ_k (w_k / Σw) · arrays_k, key by key.

    >>> a = [{"x": np.array([0.0, 2.0])}, {"x": np.array([4.0, 2.0])}]
    >>> weighted_average(a, [3, 1])["x"].tolist()
    [1.0, 2.0]
    """
    if len(arrays) != len(weights) or not arrays:
        raise ValueError(f"need as many weights as array sets (got {len(arrays)} and {len(weights)}), at least one")
    w = np.asarray(weights, dtype=np.float64)
    if (w < 0).any() or not w.sum() > 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {w.tolist()}")
    w = w / w.sum()
    keys = list(arrays[0])
    for a in arrays[1:]:
        if list(a) != keys:
            raise ValueError("array sets have different keys")
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for k in keys:
        acc = np.zeros(np.shape(arrays[0][k]), dtype=np.float64)
        for wk, a in zip(w, arrays):
            acc += wk * np.asarray(a[k], dtype=np.float64)
        out[k] = acc.astype(np.asarray(arrays[0][k]).dtype, copy=False)
    return out


def bn_distance(means_a: Sequence[np.ndarray], vars_a: Sequence[np.ndarray], means_b: Sequence[np.ndarray], vars_b: Sequence[np.ndarray]) -> float:
    """Σ_l W2(N(μ_a, σ_a²), N(μ_b, σ_b²)) over BatchNorm layers (diagonal Gaussians).

    >>> round(bn_distance([np.zeros(2)], [np.ones(2)], [np.array([3.0, 0.0])], [np.array([1.0, 16.0])]), 6)
    4.242641
    """
    if not (len(means_a) == len(vars_a) == len(means_b) == len(vars_b)):
        raise ValueError("both clients must describe the same BatchNorm layers")
    total = 0.0
    for ma, va, mb, vb in zip(means_a, vars_a, means_b, vars_b):
        dm = np.sum((np.asarray(ma) - np.asarray(mb)) ** 2)
        ds = np.sum((np.sqrt(np.maximum(va, 0)) - np.sqrt(np.maximum(vb, 0))) ** 2)
        total += float(np.sqrt(dm + ds))
    return total


def fedap_weight_matrix(means: Sequence[Sequence[np.ndarray]], variances: Sequence[Sequence[np.ndarray]], momentum: float = 0.5) -> np.ndarray:
    """FedAP's row-stochastic weight matrix from per-client BatchNorm input statistics.

    ``means[i][l]`` and ``variances[i][l]`` describe client ``i``'s inputs
    to BatchNorm layer ``l``.  Row ``i`` gives client ``i``'s aggregation
    weights.  Clients at distance 0 from ``i`` share the off-diagonal mass
    equally (the limit of 1/d).

    >>> W = fedap_weight_matrix([[np.zeros(1)], [np.ones(1)], [np.full(1, 3.0)]], [[np.ones(1)]] * 3, momentum=0.5)
    >>> W.round(4).tolist()
    [[0.5, 0.375, 0.125], [0.3333, 0.5, 0.1667], [0.2, 0.3, 0.5]]
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"FedAP momentum must be in [0, 1], got {momentum}")
    n = len(means)
    if n != len(variances) or n == 0:
        raise ValueError("need statistics of at least one client, as many means as variances")
    if n == 1:
        return np.ones((1, 1))
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            dist[i, j] = dist[j, i] = bn_distance(means[i], variances[i], means[j], variances[j])
    W = np.zeros((n, n))
    for i in range(n):
        others = [j for j in range(n) if j != i]
        d = dist[i, others]
        if (d <= 0).any():
            inv = (d <= 0).astype(np.float64)
        else:
            inv = 1.0 / d
        W[i, others] = (1.0 - momentum) * inv / inv.sum()
        W[i, i] = momentum
    return W


def personalised_average(W: np.ndarray, arrays: Sequence[Arrays], present: Sequence[bool] | None = None) -> list["OrderedDict[str, np.ndarray]"]:
    """θ_i = Σ_j W_ij θ_j for every row ``i``.

    ``present[j]`` False marks a client whose update is missing this round
    (it failed): its column is dropped and each row renormalised over the
    rest, so a failure never zeroes a model.  ``arrays[j]`` of a missing
    client is ignored (may be None).
    """
    n = W.shape[0]
    if W.shape != (n, n) or len(arrays) != n:
        raise ValueError(f"W must be {len(arrays)}x{len(arrays)}, got {W.shape}")
    mask = np.ones(n, bool) if present is None else np.asarray(present, bool)
    if not mask.any():
        raise ValueError("no client update to aggregate")
    cols = np.flatnonzero(mask)
    out = []
    for i in range(n):
        w = W[i, cols]
        if not w.sum() > 0:
            w = np.ones(len(cols))
        out.append(weighted_average([arrays[j] for j in cols], w.tolist()))
    return out


def pooled_moments(counts: Sequence[int], sums: Sequence[np.ndarray], outers: Sequence[np.ndarray]) -> tuple[int, np.ndarray, np.ndarray]:
    """Pool per-client (n, Σf, Σffᵀ) into (n, mean, unbiased covariance).

    >>> n, m, c = pooled_moments([2, 1], [np.array([2.0]), np.array([4.0])], [np.array([[2.0]]), np.array([[16.0]])])
    >>> n, m.tolist(), c.tolist()
    (3, [2.0], [[3.0]])
    """
    n = int(sum(counts))
    if n < 2:
        raise ValueError(f"need at least 2 feature vectors in all, got {n}")
    s = np.sum([np.asarray(x, np.float64) for x in sums], axis=0)
    ss = np.sum([np.asarray(x, np.float64) for x in outers], axis=0)
    mean = s / n
    return n, mean, (ss - n * np.outer(mean, mean)) / (n - 1)


def leave_one_out_covariances(counts: Sequence[int], sums: Sequence[np.ndarray], outers: Sequence[np.ndarray]) -> list[np.ndarray | None]:
    """For each client ``i``, the unbiased covariance pooled over every client but ``i``.

    FedHealth's source domain for client ``i`` when the server holds no data:
    the other clients.  ``None`` where the others hold fewer than 2 feature
    vectors (no covariance to align to).

    Client 0 holds the features {1, 1}, client 1 {4}, client 2 {0}:

    >>> c = leave_one_out_covariances([2, 1, 1], [np.array([2.0]), np.array([4.0]), np.array([0.0])],
    ...                               [np.array([[2.0]]), np.array([[16.0]]), np.array([[0.0]])])
    >>> [round(float(x[0, 0]), 4) for x in c]  # var{4, 0}, var{1, 1, 0}, var{1, 1, 4}
    [8.0, 0.3333, 3.0]
    """
    n_all = int(sum(counts))
    s_all = np.sum([np.asarray(x, np.float64) for x in sums], axis=0)
    ss_all = np.sum([np.asarray(x, np.float64) for x in outers], axis=0)
    out: list[np.ndarray | None] = []
    for n, s, ss in zip(counts, sums, outers):
        rest = n_all - int(n)
        if rest < 2:
            out.append(None)
            continue
        out.append(pooled_moments([rest], [s_all - np.asarray(s, np.float64)], [ss_all - np.asarray(ss, np.float64)])[2])
    return out
