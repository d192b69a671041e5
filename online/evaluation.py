"""Prequential (test-then-train) evaluation on arrays, as in the OTL papers.

Each sample is first predicted, then learned; a learner's curve is its cumulative mistake
rate after t samples.  Two protocols:

* **permutations** (primary): the target stream is shuffled ``n_permutations`` times (20, as in
  Zhao & Hoi and Wu et al.) with a seeded generator; every learner sees the same permutations;
  results are mean +- std over permutations.
* **time order**: the stream as recorded.  Activity bouts make consecutive labels equal, so a
  learner that only tracks the current class looks good; :func:`persistence_mistakes` (predict
  the previous label) is reported alongside as the reference.

Learners are built by factories (``lambda: HomOTLMS(sources, horizon=len(y))``): one fresh
learner per run.  Any river classifier works too (through its dict API, slowly).

Optional drift hook: with ``drift_detector`` (a factory such as ``river.drift.ADWIN``), the
detector watches the ensemble's 0/1 error and a detected drift calls the learner's
``reset_weights()`` (ensemble weights back to their initial values).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import OnlineClassifier

__all__ = [
    "CURVE_AT",
    "CurveStats",
    "cumulative_mistake_rate",
    "evaluate",
    "evaluate_learner",
    "mean_trace",
    "mistake_trace",
    "persistence_mistakes",
    "prequential",
    "prequential_budget",
    "results_to_dict",
    "stream_orders",
]


def cumulative_mistake_rate(mistakes: np.ndarray) -> np.ndarray:
    """Mistakes (bool, n) -> cumulative mistake rate after each sample (float, n)."""
    m = np.asarray(mistakes, dtype=float)
    return np.cumsum(m) / np.arange(1, m.shape[0] + 1)


#: The stream lengths at which results quote a learner's cumulative mistakes (or rate).
CURVE_AT = (10, 50, 100, 500)
#: Where a mistake trace is sampled: about 20 points a decade (log-spaced, as curves are read on a log axis),
#: and every point of :data:`CURVE_AT`.
TRACE_POINTS: tuple[int, ...] = tuple(sorted({int(round(v)) for v in np.geomspace(1, 10**7, 141)} | set(CURVE_AT)))


def mistake_trace(cumulative: np.ndarray) -> dict:
    """Cumulative mistakes after ``t`` windows, for each ``t`` of :data:`TRACE_POINTS` within the stream.

    ``cumulative[i]`` is the mistake count after window ``i + 1`` (``np.cumsum`` of the 0/1
    mistakes, or its mean over runs).  ``windows`` says how long the stream was.

    >>> tr = mistake_trace(np.cumsum([1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1]))
    >>> tr["at"][:4], tr["mistakes"][:4], tr["at"][-1], tr["mistakes"][-1], tr["windows"]
    ([1, 2, 3, 4], [1.0, 1.0, 2.0, 3.0], 11, 4.0, 11)
    """
    c = np.asarray(cumulative, dtype=float)
    at = [t for t in TRACE_POINTS if t <= c.size]
    return {"at": at, "mistakes": [float(c[t - 1]) for t in at], "windows": int(c.size)}


def mean_trace(traces: Sequence[Mapping]) -> dict:
    """The mean of several :func:`mistake_trace` results, over the points every one of them reaches.

    >>> a, b = mistake_trace(np.cumsum([1, 1, 0])), mistake_trace(np.cumsum([0, 1]))
    >>> mean_trace([a, b])
    {'at': [1, 2], 'mistakes': [0.5, 1.5], 'windows': 2}
    """
    if not traces:
        return {"at": [], "mistakes": [], "windows": 0}
    n = min(len(t["at"]) for t in traces)
    return {
        "at": list(traces[0]["at"][:n]),
        "mistakes": [float(np.mean([t["mistakes"][i] for t in traces])) for i in range(n)],
        "windows": int(min(t["windows"] for t in traces)),
    }


def persistence_mistakes(y: Sequence) -> np.ndarray:
    """Mistakes of "predict the previous label"; the first sample counts as a mistake.

    >>> persistence_mistakes(["a", "a", "b", "b", "b"]).tolist()
    [True, False, True, False, False]
    """
    y = np.asarray(y)
    m = np.ones(y.shape[0], dtype=bool)
    m[1:] = y[1:] != y[:-1]
    return m


def prequential(
    learner: Any,
    X: np.ndarray,
    y: Sequence,
    drift_detector: Callable[[], Any] | None = None,
) -> tuple[np.ndarray, list[int]]:
    """Test-then-train ``learner`` over the rows of ``X``; returns (mistakes, drift indices).

    Uses the learner's fast ``prequential`` / ``predict_learn_array`` when it has them, else
    river's ``predict_one`` / ``learn_one`` on dicts with integer keys.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must be (n, d) with one label per row, got {X.shape} and {y.shape}")
    n = X.shape[0]
    drifts: list[int] = []
    if drift_detector is None and hasattr(learner, "prequential"):
        return np.asarray(learner.prequential(X, y), dtype=bool), drifts
    detector = drift_detector() if drift_detector is not None else None
    mistakes = np.empty(n, dtype=bool)
    ours = isinstance(learner, OnlineClassifier)
    ys = y.tolist()
    for i in range(n):
        if ours:
            # compare encoded labels (binary learners answer +1/-1 on the array path)
            p, e = learner.predict_learn_encoded(X[i], ys[i])
            wrong = p != e
        else:
            x = dict(enumerate(X[i].tolist()))
            pred = learner.predict_one(x)
            learner.learn_one(x, ys[i])
            wrong = pred != ys[i]
        mistakes[i] = wrong
        if detector is not None:
            detector.update(float(wrong))
            if detector.drift_detected:
                drifts.append(i)
                if hasattr(learner, "reset_weights"):
                    learner.reset_weights()
    return mistakes, drifts


@dataclass
class CurveStats:
    """Cumulative mistake-rate curves of R runs of one learner."""

    curves: np.ndarray  # (R, n)
    drifts: list = field(default_factory=list)

    @property
    def mean_curve(self) -> np.ndarray:
        return self.curves.mean(axis=0)

    @property
    def std_curve(self) -> np.ndarray:
        return self.curves.std(axis=0)

    @property
    def final_mean(self) -> float:
        return float(self.curves[:, -1].mean()) if self.curves.size else float("nan")

    @property
    def final_std(self) -> float:
        return float(self.curves[:, -1].std()) if self.curves.size else float("nan")

    def to_dict(self, curve_points: int | None = None) -> dict:
        """``{"mistake_rate_mean", "mistake_rate_std", "curve"}``; the mean curve optionally
        subsampled to ``curve_points`` evenly spaced points (the last one always included)."""
        curve = self.mean_curve
        if curve_points is not None and 0 < curve_points < curve.shape[0]:
            idx = np.unique(np.linspace(0, curve.shape[0] - 1, curve_points).round().astype(int))
            curve = curve[idx]
        return {
            "mistake_rate_mean": self.final_mean,
            "mistake_rate_std": self.final_std,
            "curve": [float(v) for v in curve],
        }


def stream_orders(n: int, n_permutations: int = 20, seed: int = 0, time_order: bool = False) -> list[np.ndarray]:
    """The orders every learner sees: ``n_permutations`` seeded shuffles, or the time order.

    >>> [o.tolist() for o in stream_orders(3, time_order=True)]
    [[0, 1, 2]]
    """
    if time_order:
        return [np.arange(n)]
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(n_permutations)]


def prequential_budget(learner: Any, X: np.ndarray, y: Sequence, labelled: np.ndarray) -> np.ndarray:
    """Test-then-train where only the rows with ``labelled`` True are learnt; every row is scored.

    >>> from fedotl.online.pa import MulticlassPA
    >>> X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]); y = np.array([0, 0, 1])
    >>> prequential_budget(MulticlassPA(), X, y, np.array([True, False, True])).tolist()
    [True, False, True]
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    ys = y.tolist()
    mistakes = np.empty(len(ys), dtype=bool)
    for i, yi in enumerate(ys):
        pred = learner.predict_learn_array(X[i], yi) if labelled[i] else learner.predict_array(X[i])
        mistakes[i] = pred != yi
    return mistakes


def evaluate_learner(
    factory: Callable[[], Any],
    X: np.ndarray,
    y: Sequence,
    n_permutations: int = 20,
    seed: int = 0,
    time_order: bool = False,
    drift_detector: Callable[[], Any] | None = None,
) -> CurveStats:
    """Curves of fresh learners over ``n_permutations`` seeded shuffles (or the time order).

    >>> from fedotl.online.pa import MulticlassPA
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4)); y = (X[:, 0] > 0).astype(int)
    >>> stats = evaluate_learner(MulticlassPA, X, y, n_permutations=5)
    >>> stats.curves.shape, stats.final_mean < 0.2
    ((5, 200), True)
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    orders = stream_orders(X.shape[0], n_permutations, seed, time_order)
    curves, drifts = [], []
    for order in orders:
        mistakes, d = prequential(factory(), X[order], y[order], drift_detector)
        curves.append(cumulative_mistake_rate(mistakes))
        drifts.append(d)
    return CurveStats(np.array(curves).reshape(len(orders), X.shape[0]), drifts)


def evaluate(
    learners: Mapping[str, Callable[[], Any]],
    X: np.ndarray,
    y: Sequence,
    n_permutations: int = 20,
    seed: int = 0,
    time_order: bool = False,
    drift_detector: Callable[[], Any] | None = None,
) -> dict[str, CurveStats]:
    """Evaluate several learners on the same permutations (paired comparison).

    With ``time_order=True`` a ``"persistence"`` entry (previous-label baseline) is added.
    """
    out = {
        name: evaluate_learner(f, X, y, n_permutations, seed, time_order, drift_detector)
        for name, f in learners.items()
    }
    if time_order and "persistence" not in out:
        out["persistence"] = CurveStats(cumulative_mistake_rate(persistence_mistakes(y))[None, :])
    return out


def results_to_dict(results: Mapping[str, CurveStats], curve_points: int | None = None) -> dict:
    """``{name: CurveStats.to_dict()}`` for JSON output."""
    return {name: r.to_dict(curve_points) for name, r in results.items()}
