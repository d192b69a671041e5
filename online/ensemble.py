"""Shared machinery of the multi-class source ensembles (HomOTL-I/II, HomOTLMS, baselines).

An ensemble has N experts over one class list: the fixed sources (aligned by label value)
and, optionally, a target multi-class PA-I learner.  The target learner may read only the
columns from ``target_start`` on, so that sources and target can use different inputs of one
sample (a source's transform reads its own columns).  All linear experts live in one stacked
array ``M`` of shape (N, K, d) so that one matrix-vector product gives every score; the target
block ``M[-1]`` is updated in place through a view.  Sources that carry a feature transform
(torch extractors) are scored separately and written into their rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import MulticlassOnlineClassifier
from .kernels import margin_pi, multiclass_pa_step
from .sources import SourceClassifier

__all__ = ["SourceEnsemble", "homogeneous_features", "vote"]

_NEG_INF = -np.inf


def homogeneous_features(sources: Sequence[SourceClassifier]) -> tuple | None:
    """Common feature names of homogeneous sources (``None`` without sources)."""
    if not sources:
        return None
    for s in sources:
        if not isinstance(s, SourceClassifier):
            raise TypeError(f"sources must be SourceClassifier objects, got {type(s).__name__}")
    names = sources[0].feature_names
    for s in sources[1:]:
        if s.feature_names != names:
            raise ValueError(
                "homogeneous sources must share their input features "
                f"({len(names)} vs {s.n_features} features, or different names)"
            )
    return names


def vote(F: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted majority vote: each expert gives its weight to its top class.

    An expert whose top score is tied splits its weight among the tied classes (in the binary
    case this is sign(0) = 0: it abstains).

    >>> vote(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([0.25, 0.75]))
    array([0.625, 0.375])
    """
    mask = F == F.max(axis=1, keepdims=True)
    return (weights / mask.sum(axis=1)) @ mask


def strict_top(F: np.ndarray, yi: int) -> np.ndarray:
    """Per expert: is ``yi`` its unique top class?  (``not`` this is Hedge's mistake z_i.)"""
    mask = F == F.max(axis=1, keepdims=True)
    return mask[:, yi] & (mask.sum(axis=1) == 1)


class SourceEnsemble(MulticlassOnlineClassifier):
    """Base for ensembles of fixed sources and an optional target PA-I learner."""

    _VIEWS = ("_M2", "_B1", "_F2", "_Wt")

    def _init_ensemble(
        self,
        sources: Sequence[SourceClassifier],
        classes: Sequence | None,
        with_target: bool,
        C: float = 1.0,
        target_start: int = 0,
    ) -> None:
        sources = tuple(sources)
        if not isinstance(target_start, (int, np.integer)) or target_start < 0:
            raise ValueError(f"target_start must be a non-negative integer, got {target_start!r}")
        names = homogeneous_features(sources)
        self._init_features(names)
        labels = list(classes or ())
        for s in sources:
            labels.extend(s.classes)
        self._init_classes(labels)
        self._with_target = with_target
        self._C = C
        self._target_start = int(target_start)
        n, K, d = len(sources), len(self._classes), self._d
        N = n + int(with_target)
        self._M = np.zeros((N, K, d))
        self._B = np.zeros((N, K))
        # transform (non-linear) sources: (expert index, source, source row of each class)
        self._callable: list[tuple[int, SourceClassifier, np.ndarray]] = []
        for i, s in enumerate(sources):
            if s.is_linear:
                self._M[i], self._B[i] = s.aligned(self._classes, _NEG_INF)
            else:
                self._callable.append((i, s, s.row_map(self._classes)))
        self._F = np.zeros(N * K)
        self._rebuild_views()

    def _rebuild_views(self) -> None:
        N, K, d = self._M.shape
        self._M2 = self._M.reshape(N * K, d)
        self._B1 = self._B.reshape(N * K)
        if self._F.shape[0] != N * K:
            self._F = np.zeros(N * K)
        self._F2 = self._F.reshape(N, K)
        self._Wt = self._M[N - 1] if self._with_target else None

    @property
    def n_experts(self) -> int:
        return self._M.shape[0]

    # ------------------------------------------------------------------ shape changes
    def _resize(self, d: int) -> None:
        self._M = np.pad(self._M, ((0, 0), (0, 0), (0, d - self._M.shape[2])))
        self._rebuild_views()

    def _add_class(self) -> None:
        N = self._M.shape[0]
        self._M = np.pad(self._M, ((0, 0), (0, 1), (0, 0)))
        col = np.full((N, 1), _NEG_INF)  # sources do not know the new label
        if self._with_target:
            col[N - 1] = 0.0
        self._B = np.concatenate([self._B, col], axis=1)
        self._callable = [(i, s, np.append(rows, -1)) for i, s, rows in self._callable]
        self._F = np.zeros(self._B.size)
        self._rebuild_views()

    # ------------------------------------------------------------------ scores
    def _all_scores(self, x: np.ndarray) -> np.ndarray:
        """(N, K) scores of every expert; a view into a scratch buffer."""
        F = np.dot(self._M2, x, out=self._F)
        np.add(F, self._B1, out=F)
        for i, s, rows in self._callable:
            raw = s.scores(x[: s.n_features])
            self._F2[i] = np.where(rows >= 0, raw[rows], _NEG_INF)
        return self._F2

    def expert_scores(self, x: np.ndarray) -> np.ndarray:
        """Copy of the (N, K) expert scores for one sample (sources first, target last)."""
        x, _ = self._check_x(x)
        return self._all_scores(x).copy()

    def _target_update(self, x: np.ndarray, sq: float, F: np.ndarray, yi: int) -> None:
        if self._with_target:
            if self._target_start:
                # the target learner reads only x[target_start:]: its other weights stay 0
                x = x.copy()
                x[: self._target_start] = 0.0
                sq = float(x.dot(x))
            # F[-1] is scratch from here on (multiclass_pa_step overwrites entry yi)
            multiclass_pa_step(self._Wt, None, x, sq, F[-1], yi, 1, self._C)

    # ------------------------------------------------------------------ combination hooks
    def _combine(self, F: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _update_weights(self, F: np.ndarray, yi: int) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ primitives
    def _predict_enc(self, x: np.ndarray) -> int:
        if not self._classes:
            return -1
        return int(self._combine(self._all_scores(x)).argmax())

    def _proba_enc(self, x: np.ndarray) -> np.ndarray:
        K = len(self._classes)
        if K == 0:
            return np.zeros(0)
        p = self._combine(self._all_scores(x))
        total = p.sum()
        return p / total if total > 0 else np.full(K, 1.0 / K)

    def _learn_enc(self, x: np.ndarray, sq: float, yi: int) -> None:
        F = self._all_scores(x)
        self._update_weights(F, yi)
        self._target_update(x, sq, F, yi)

    def _predict_learn_enc(self, x: np.ndarray, sq: float, yi: int) -> int:
        F = self._all_scores(x)
        pred = int(self._combine(F).argmax())
        self._update_weights(F, yi)
        self._target_update(x, sq, F, yi)
        return pred

    # ------------------------------------------------------------------ inspection
    @property
    def target_weights_(self) -> np.ndarray | None:
        """Weights (K, d) of the target learner, a copy (``None`` without target)."""
        return None if self._Wt is None else self._Wt.copy()


class PiCombination:
    """Mixin: ensemble output sum_i a_i margin_pi(F_i) (Zhao & Hoi's sum_i a_i Pi(f_i))."""

    _a: np.ndarray

    def _combine(self, F: np.ndarray) -> np.ndarray:
        return self._a @ margin_pi(F)
