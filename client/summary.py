"""A device's summary of its bottleneck features, and distances from it without moving data.

A federated device that shares its head (run config ``share-heads``) also sends
a summary of the embeddings the *global* model gives its own training
windows.  A new user's device compares its first unlabelled windows with each
summary to choose its transfer sources (the seed book's appendix on
distribution distances, applied to summaries instead of samples).

The summary (:func:`summarise`) holds, for the n windows and d embedding
dimensions:

``n``, ``mean`` (d,), ``cov`` (d, d)
    count, mean and unbiased covariance;
``class_mean`` (K, d), ``class_count`` (K,)
    per class of the model's class list (a class the device never saw has count 0);
``within_cov`` (d, d)
    the pooled within-class covariance;
``rff`` (B·D,)
    the mean of a random Fourier feature map (Rahimi & Recht, NIPS 2007) for
    B Gaussian bandwidths, so that the maximum mean discrepancy (Gretton et
    al., JMLR 2012) with the sum of B Gaussian kernels (a multi-kernel MMD, as
    in Long et al.'s DAN, ICML 2015) is the distance of two such means.

The feature map is drawn from a fixed seed and the embedding width, and the
bandwidths are fixed multiples of sqrt(d) (the scale of a BatchNorm-ReLU
embedding), so that every device computes the same map with nothing shared.

Distances to a summary:

* :func:`mmd` -- squared multi-kernel MMD estimate, ‖φ̄(target) − φ̄(client)‖²;
* :func:`a_distance` -- the proxy A-distance 2(1 − 2ε) of Ben-David et al.
  (NIPS 2006), ε the cross-validated error of a logistic regression telling
  the target's embeddings from samples of N(mean, cov) of the summary.  The
  Gaussian stands in for the client's windows, which never leave it: a
  deviation from the sample-based definition.

>>> rng = np.random.default_rng(0)
>>> E = rng.normal(size=(200, 4)); y = np.arange(200) % 2
>>> s = summarise(E, y, 2)
>>> int(s["n"]), s["rff"].shape, s["class_count"].tolist()
(200, (768,), [100, 100])
>>> near, far = mmd(rng.normal(size=(100, 4)), s), mmd(rng.normal(2.0, 1.0, size=(100, 4)), s)
>>> bool(near < far)
True
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

RFF_FEATURES = 256  # per bandwidth
RFF_BANDWIDTHS = (0.5, 1.0, 2.0)  # × sqrt(d)
RFF_SEED = 20240601
DISTANCES = ("mmd", "a-distance")

Summary = Mapping[str, np.ndarray]


def rff_map(E: np.ndarray) -> np.ndarray:
    """Random Fourier features of the rows of ``E`` (n, d), one block per bandwidth.

    With ω ~ N(0, σ⁻² I) and b ~ U(0, 2π), √(2/D)·cos(Eω + b) has
    E[φ(x)·φ(y)] = exp(−‖x − y‖² / 2σ²); the blocks are scaled so that the
    inner product sums the B kernels.
    """
    E = np.asarray(E, dtype=np.float64)
    d = E.shape[1]
    rng = np.random.default_rng([RFF_SEED, d])
    blocks = []
    for factor in RFF_BANDWIDTHS:
        sigma = factor * np.sqrt(d)
        omega = rng.normal(0.0, 1.0 / sigma, size=(d, RFF_FEATURES))
        phase = rng.uniform(0.0, 2 * np.pi, size=RFF_FEATURES)
        blocks.append(np.sqrt(2.0 / RFF_FEATURES) * np.cos(E @ omega + phase))
    return np.concatenate(blocks, axis=1)


def summarise(E: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """The summary of embeddings ``E`` (n, d) with class indices ``y`` (see the module docstring)."""
    E = np.asarray(E, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if E.ndim != 2 or len(E) != len(y) or len(E) < 2:
        raise ValueError(f"need at least 2 embeddings with one label each, got {E.shape} and {y.shape}")
    n, d = E.shape
    counts = np.bincount(y, minlength=n_classes)[:n_classes].astype(np.float64)
    sums = np.zeros((n_classes, d))
    np.add.at(sums, y, E)
    class_mean = sums / np.maximum(counts, 1)[:, None]
    centred = E - class_mean[y]
    within = centred.T @ centred / max(n - int((counts > 0).sum()), 1)
    return {
        "n": np.array(n, dtype=np.int64),
        "mean": E.mean(0),
        "cov": np.cov(E, rowvar=False).reshape(d, d),
        "class_mean": class_mean,
        "class_count": counts.astype(np.int64),
        "within_cov": within,
        "rff": rff_map(E).mean(0),
    }


def check_summary(summary: Summary, d: int, where: str) -> None:
    """A clear error when a summary does not fit embeddings of width ``d``."""
    for key in ("n", "mean", "cov", "class_mean", "class_count", "rff"):
        if key not in summary:
            raise ValueError(f"{where}: the feature summary has no {key!r}")
    if np.shape(summary["mean"]) != (d,) or np.shape(summary["rff"]) != (len(RFF_BANDWIDTHS) * RFF_FEATURES,):
        raise ValueError(f"{where}: the feature summary is for {np.shape(summary['mean'])} embeddings, not ({d},)")


def mmd(E: np.ndarray, summary: Summary) -> float:
    """Squared multi-kernel MMD between the rows of ``E`` and the summarised embeddings (≥ 0)."""
    diff = rff_map(E).mean(0) - np.asarray(summary["rff"], dtype=np.float64)
    return float(diff @ diff)


def gaussian_samples(summary: Summary, n: int, seed: int = 0) -> np.ndarray:
    """n draws from N(mean, cov) of a summary (a stand-in for windows that never leave a device)."""
    mean = np.asarray(summary["mean"], dtype=np.float64)
    cov = np.asarray(summary["cov"], dtype=np.float64)
    return np.random.default_rng(seed).multivariate_normal(mean, cov, size=n, method="eigh")


def a_distance(E: np.ndarray, summary: Summary, seed: int = 0) -> float:
    """Proxy A-distance 2(1 − 2ε) between ``E`` and the summary's Gaussian, in [0, 2]."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    E = np.asarray(E, dtype=np.float64)
    other = gaussian_samples(summary, len(E), seed)
    X = np.vstack([E, other])
    y = np.r_[np.zeros(len(E)), np.ones(len(other))]
    folds = int(min(5, len(E)))
    if folds < 2:
        raise ValueError("the A-distance needs at least 2 target windows")
    accuracy = cross_val_score(LogisticRegression(max_iter=500), X, y, cv=folds).mean()
    error = 1.0 - float(accuracy)
    return float(np.clip(2.0 * (1.0 - 2.0 * min(error, 0.5)), 0.0, 2.0))


def distance(kind: str, E: np.ndarray, summary: Summary, seed: int = 0) -> float:
    """The distance ``kind`` (one of :data:`DISTANCES`) from ``E`` to a summary."""
    if kind == "mmd":
        return mmd(E, summary)
    if kind == "a-distance":
        return a_distance(E, summary, seed)
    raise ValueError(f"unknown distance {kind!r}; choose one of {', '.join(DISTANCES)}")


def rank_sources(
    E: np.ndarray, summaries: Mapping[str, Summary], kind: str = "mmd", top_k: int = 0, seed: int = 0
) -> tuple[dict[str, float], list[str]]:
    """Distances of ``E`` to each summary, and the names of the ``top_k`` nearest (0: all), nearest first."""
    if top_k < 0:
        raise ValueError(f"top-k must be >= 0, got {top_k}")
    dist = {name: distance(kind, E, s, seed) for name, s in summaries.items()}
    order = sorted(dist, key=lambda k: (dist[k], k))
    return dist, order[:top_k] if top_k else order
