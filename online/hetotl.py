"""HetOTL: heterogeneous online transfer learning (co-regularised PA).

Zhao & Hoi, ICML 2010, and Zhao, Hoi, Wang & Li, Artificial Intelligence 216, 2014 (HetOTL,
AIJ Algorithm 3: the co-regularised optimisation problem (6), its loss Eq. (7) and the
closed-form solution of Proposition 2; the AIJ numbering was checked against a stored full text
of that paper).

The target features are x = (x1, x2): x1 (the first m dimensions) is the source's feature
space, x2 the target-only features.  w1 starts at the source classifier v, w2 at 0.

* prediction  y_hat = sign(1/2 (w1.x1 + w2.x2))
* loss        l = max(0, 1 - y/2 (w1.x1 + w2.x2))
* update      w_i <- w_i + tau / (2 gamma_i) y x_i,
              tau = min{C, 4 gamma1 gamma2 l / (||x1||^2 gamma2 + ||x2||^2 gamma1)}

which is the solution of  min 1/2 gamma1 ||w1 - w1_t||^2 + 1/2 gamma2 ||w2 - w2_t||^2 + C xi
subject to the margin constraint: it moves the margin y f by exactly l when tau < C.
A source intercept c, if any, is kept as a fixed offset inside the first view: f = 1/2 (w1.x1
+ c + w2.x2) (the paper's classifiers have no bias).

Multi-class extension (:class:`MulticlassHetOTL`, our choice): one row per class in each view,
f = 1/2 (W1 x1 + c + W2 x2); with s the highest-scoring wrong class and
l = max(0, 1 - (f_y - f_s)), rows y and s move by +-tau/(2 gamma_i) x_i with
tau = min{C, 2 gamma1 gamma2 l / (||x1||^2 gamma2 + ||x2||^2 gamma1)}: the factor 2 of the
binary formula is halved because two rows move (the multi-class PA's 2||x||^2).
"""

from __future__ import annotations

import numpy as np

from .base import BinaryOnlineClassifier, MulticlassOnlineClassifier
from .kernels import margin_pi
from .sources import SourceClassifier
from .validation import check_positive

__all__ = ["HetOTL", "MulticlassHetOTL"]


def _check_params(C: float, gamma1: float, gamma2: float, n_features: int | None, m: int) -> None:
    check_positive("C", C)
    check_positive("gamma1", gamma1)
    check_positive("gamma2", gamma2)
    if n_features is not None and (not isinstance(n_features, (int, np.integer)) or n_features < m):
        raise ValueError(f"n_features must be an integer >= the source's {m} features, got {n_features!r}")


def _source_view(source: SourceClassifier | None) -> tuple[tuple, int]:
    if source is None:
        return (), 0
    if not isinstance(source, SourceClassifier):
        raise TypeError(f"source must be a SourceClassifier, got {type(source).__name__}")
    source.require_linear("HetOTL")
    return source.feature_names, source.n_features


class HetOTL(BinaryOnlineClassifier):
    """Binary HetOTL (Zhao & Hoi ICML 2010; Zhao, Hoi, Wang & Li AIJ 2014, Algorithm 3, problem (6)).

    Parameters
    ----------
    source
        Fixed 2-class linear :class:`~fedotl.online.sources.SourceClassifier` over the first m
        features (its feature names come first on the dict path).  ``None``: m = 0.
    C
        Aggressiveness bound on tau.
    gamma1, gamma2
        Co-regularisation weights of the source and target views.
    n_features
        Total width m + (target-only features) for the array path; adopted from the first
        array when omitted.

    Examples
    --------
    v = (1,), x = (1, 1), y = -1, gammas 1/2: f = 1/2, l = 3/2, tau = min(1, 1 * 1.5 / 1) = 1,
    so w1 = 1 - 1 = 0 and w2 = -1.

    >>> import numpy as np
    >>> from fedotl.online.sources import SourceClassifier
    >>> src = SourceClassifier([[-0.5], [0.5]], classes=(False, True))
    >>> model = HetOTL(src, n_features=2)
    >>> model.learn_array(np.array([1.0, 1.0]), -1)
    >>> model.weights_
    array([ 0., -1.])
    """

    def __init__(
        self,
        source: SourceClassifier | None = None,
        C: float = 1.0,
        gamma1: float = 0.5,
        gamma2: float = 0.5,
        n_features: int | None = None,
    ):
        self.source = source
        self.C = C
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        self.n_features = n_features
        names, m = _source_view(source)
        _check_params(C, gamma1, gamma2, n_features, m)
        self._m = m
        self._init_features(names)
        self._width_known = False
        self._w = np.zeros(m)
        self._c = 0.0
        if source is not None:
            v, self._c = source.binary_weights()
            self._w = v.copy()
        if n_features is not None:
            self._grow_to(n_features)
            self._width_known = True

    def _resize(self, d: int) -> None:
        self._w = np.concatenate([self._w, np.zeros(d - self._w.shape[0])])

    @property
    def weights_(self) -> np.ndarray:
        """(w1, w2) concatenated, a copy."""
        return self._w.copy()

    def _margin(self, x: np.ndarray) -> float:
        return 0.5 * (float(self._w @ x) + self._c)

    def _update(self, x: np.ndarray, sq: float, y: int, f: float) -> None:
        loss = 1.0 - y * f
        if loss <= 0.0:
            return
        m, g1, g2 = self._m, self.gamma1, self.gamma2
        x1 = x[:m]
        q1 = float(x1 @ x1)
        q2 = sq - q1
        denom = q1 * g2 + q2 * g1
        if denom <= 0.0:
            return
        tau = min(self.C, 4.0 * g1 * g2 * loss / denom)
        self._w[:m] += (tau * y / (2.0 * g1)) * x1
        self._w[m:] += (tau * y / (2.0 * g2)) * x[m:]

    def _learn_enc(self, x: np.ndarray, sq: float, y: int) -> None:
        self._update(x, sq, y, self._margin(x))

    def _predict_learn_enc(self, x: np.ndarray, sq: float, y: int) -> int:
        f = self._margin(x)
        self._update(x, sq, y, f)
        return 1 if f > 0.0 else -1


class MulticlassHetOTL(MulticlassOnlineClassifier):
    """Multi-class HetOTL (extension of Zhao & Hoi's HetOTL; see the module docstring).

    Parameters
    ----------
    source
        Fixed linear :class:`~fedotl.online.sources.SourceClassifier` over the first m features;
        its rows initialise W1 for the classes it knows (other classes start at 0).
    C, gamma1, gamma2, n_features
        As in :class:`HetOTL`.
    classes
        Labels known in advance (before the source's classes).

    Examples
    --------
    V = I, x = (1, 0 | 1), y = "b": f = (1/2, 0), l = 3/2, ||x1||^2 = ||x2||^2 = 1, so
    tau = min(1, 2 * 1/4 * 3/2 / 1) = 3/4 and rows a, b move by -+3/4 (x1, x2).

    >>> import numpy as np
    >>> from fedotl.online.sources import SourceClassifier
    >>> src = SourceClassifier(np.eye(2), classes=("a", "b"))
    >>> model = MulticlassHetOTL(src, n_features=3)
    >>> model.predict_learn_array(np.array([1.0, 0.0, 1.0]), "b")
    'a'
    >>> model.weights_
    array([[ 0.25,  0.  , -0.75],
           [ 0.75,  1.  ,  0.75]])
    """

    def __init__(
        self,
        source: SourceClassifier | None = None,
        C: float = 1.0,
        gamma1: float = 0.5,
        gamma2: float = 0.5,
        n_features: int | None = None,
        classes: tuple | None = None,
    ):
        self.source = source
        self.C = C
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        self.n_features = n_features
        self.classes = classes
        names, m = _source_view(source)
        _check_params(C, gamma1, gamma2, n_features, m)
        self._m = m
        self._init_features(names)
        self._width_known = False
        labels = list(classes or ()) + (list(source.classes) if source is not None else [])
        self._init_classes(labels)
        K = len(self._classes)
        if source is not None:
            self._W, self._c = source.aligned(self._classes, 0.0)
        else:
            self._W, self._c = np.zeros((K, 0)), np.zeros(K)
        self._f = np.zeros(K)
        if n_features is not None:
            self._grow_to(n_features)
            self._width_known = True

    def _resize(self, d: int) -> None:
        self._W = np.pad(self._W, ((0, 0), (0, d - self._W.shape[1])))

    def _add_class(self) -> None:
        self._W = np.pad(self._W, ((0, 1), (0, 0)))
        self._c = np.append(self._c, 0.0)
        self._f = np.zeros(self._W.shape[0])

    @property
    def weights_(self) -> np.ndarray:
        """[W1 | W2], shape (K, d), a copy."""
        return self._W.copy()

    def _scores(self, x: np.ndarray) -> np.ndarray:
        f = np.dot(self._W, x, out=self._f)
        f += self._c
        f *= 0.5
        return f

    def _predict_enc(self, x: np.ndarray) -> int:
        return int(self._scores(x).argmax()) if self._classes else -1

    def _proba_enc(self, x: np.ndarray) -> np.ndarray:
        if not self._classes:
            return np.zeros(0)
        p = margin_pi(self._scores(x))
        return p / p.sum()

    def _update(self, x: np.ndarray, sq: float, yi: int, f: np.ndarray) -> None:
        if f.shape[0] < 2:
            return
        fy = f[yi]
        f[yi] = -np.inf
        s = int(f.argmax())
        loss = 1.0 - fy + f[s]
        if loss <= 0.0:
            return
        m, g1, g2 = self._m, self.gamma1, self.gamma2
        x1 = x[:m]
        q1 = float(x1 @ x1)
        denom = q1 * g2 + (sq - q1) * g1
        if denom <= 0.0:
            return
        tau = min(self.C, 2.0 * g1 * g2 * loss / denom)
        d1 = (tau / (2.0 * g1)) * x1
        d2 = (tau / (2.0 * g2)) * x[m:]
        W = self._W
        W[yi, :m] += d1
        W[s, :m] -= d1
        W[yi, m:] += d2
        W[s, m:] -= d2

    def _learn_enc(self, x: np.ndarray, sq: float, yi: int) -> None:
        self._update(x, sq, yi, self._scores(x))

    def _predict_learn_enc(self, x: np.ndarray, sq: float, yi: int) -> int:
        f = self._scores(x)
        pred = int(f.argmax())
        self._update(x, sq, yi, f)
        return pred
