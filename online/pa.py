"""Passive-Aggressive learners, binary and multi-class (Crammer et al., JMLR 7, 2006).

Equation, section and figure numbers of the paper are not cited: they could not be checked
against a copy of the paper, so each rule is named instead.

Binary (labels y in {-1, +1}), the paper's binary classification algorithms:

* hinge loss  l_t = max(0, 1 - y_t (w_t . x_t))
* update      w_{t+1} = w_t + tau_t y_t x_t
* step sizes  PA: tau = l / ||x||^2;  PA-I: tau = min(C, l / ||x||^2);
              PA-II: tau = l / (||x||^2 + 1/(2C))

Multi-class, the paper's multiclass section with one weight row per class (the multi-vector
construction Phi(x, y), for which ||Phi(x, y) - Phi(x, s)||^2 = 2 ||x||^2):

* s_t = argmax_{r != y_t} W_r . x_t  (highest-scoring wrong class: the max-loss update,
  which also updates when the prediction is right but the margin is below 1)
* l_t = max(0, 1 - (W_y . x - W_s . x))
* W_y += tau x,  W_s -= tau x  with  tau = l / (2||x||^2),  min(C, l / (2||x||^2)),
  l / (2||x||^2 + 1/(2C))  for PA, PA-I, PA-II.

Bias (``fit_intercept=True``): the usual constant feature 1 appended to x, so the bias moves
like any weight and ||x||^2 becomes ||x||^2 + 1.  With ``x = 0`` and no bias the update
direction is zero, so nothing is updated (PA's tau would be l / 0).

Averaging (``average=True``): predictions use the mean of the weights after each of the T
learning steps, ((T + 1) W_T - sum_t t * Delta_t) / T, kept in O(1) per update; learning
still uses the current weights.  This is the variant used to build source classifiers offline
(:func:`fedotl.online.sources.from_pa`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from .base import BinaryOnlineClassifier, MulticlassOnlineClassifier
from .kernels import margin_pi, multiclass_pa_step, pa_step
from .validation import check_positive, variant_code

__all__ = ["PA", "MulticlassPA"]


class PA(BinaryOnlineClassifier):
    """Binary Passive-Aggressive classifier (Crammer et al., JMLR 2006: hinge loss, PA / PA-I / PA-II steps).

    Parameters
    ----------
    variant
        ``"PA"``, ``"PA-I"`` or ``"PA-II"``.
    C
        Aggressiveness parameter of PA-I / PA-II (ignored by PA).
    fit_intercept
        Learn a bias as the weight of a constant feature 1.
    average
        Predict with the averaged weights (for building source classifiers offline).

    Examples
    --------
    One PA-I step by hand: w = 0, x = (1, 2), y = +1 gives l = 1,
    tau = min(C, 1/5) = 0.2 and w = (0.2, 0.4).

    >>> import numpy as np
    >>> model = PA(variant="PA-I", C=1.0)
    >>> model.learn_array(np.array([1.0, 2.0]), 1)
    >>> model.weights_
    array([0.2, 0.4])
    >>> model.predict_one({0: 1.0, 1: 0.0})
    True
    """

    def __init__(
        self,
        variant: str = "PA-I",
        C: float = 1.0,
        fit_intercept: bool = False,
        average: bool = False,
    ):
        self.variant = variant
        self.C = C
        self.fit_intercept = fit_intercept
        self.average = average
        self._code = variant_code(variant)
        check_positive("C", C)
        self._init_features()
        self._w = np.zeros(0)
        self._b = 0.0
        self._t = 0  # number of learning steps (for averaging)
        self._u = np.zeros(0)  # sum over steps of t * Delta_t
        self._ub = 0.0

    def _resize(self, d: int) -> None:
        pad = d - self._w.shape[0]
        self._w = np.concatenate([self._w, np.zeros(pad)])
        self._u = np.concatenate([self._u, np.zeros(pad)])

    @property
    def weights_(self) -> np.ndarray:
        """Current weight vector (a copy)."""
        return self._w.copy()

    @property
    def intercept_(self) -> float:
        return self._b

    def averaged_weights(self) -> tuple[np.ndarray, float]:
        """(w, b) averaged over the learning steps taken so far (current ones if none)."""
        T = self._t
        if T == 0:
            return self._w.copy(), self._b
        return ((T + 1) * self._w - self._u) / T, ((T + 1) * self._b - self._ub) / T

    def _margin(self, x: np.ndarray) -> float:
        if self.average:
            w, b = self.averaged_weights()
            return float(w.dot(x)) + b
        return float(self._w.dot(x)) + self._b

    def _update(self, x: np.ndarray, sq: float, y: int, f: float) -> None:
        self._t += 1
        ty = pa_step(self._w, x, sq + 1.0 if self.fit_intercept else sq, y, f, self._code, self.C)
        if not ty:  # passive
            return
        if self.fit_intercept:
            self._b += ty
        if self.average:
            self._u += (self._t * ty) * x
            if self.fit_intercept:
                self._ub += self._t * ty

    def _learn_enc(self, x: np.ndarray, sq: float, y: int) -> None:
        self._update(x, sq, y, float(self._w.dot(x)) + self._b)

    def _predict_learn_enc(self, x: np.ndarray, sq: float, y: int) -> int:
        f = float(self._w.dot(x)) + self._b
        pred = (1 if f > 0.0 else -1) if not self.average else self._predict_enc(x)
        self._update(x, sq, y, f)
        return pred

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"variant": "PA-II", "fit_intercept": True, "average": True}


class MulticlassPA(MulticlassOnlineClassifier):
    """Multi-class Passive-Aggressive classifier (Crammer et al., JMLR 2006, multi-class max-loss update).

    One weight row per class; the update moves the true class row and the highest-scoring
    wrong class row by +-tau x (see the module docstring for tau).  An unseen label adds a
    zero row.  Ties in the prediction go to the class seen first.

    Parameters
    ----------
    variant
        ``"PA"``, ``"PA-I"`` or ``"PA-II"``.
    C
        Aggressiveness parameter of PA-I / PA-II.
    fit_intercept
        Learn a per-class bias (constant feature 1).
    average
        Predict with the averaged weights.
    classes
        Labels known in advance (rows are created in this order).

    Examples
    --------
    W = 0, x = (1, 0), y = "a" with classes ("a", "b"): l = 1, ||x||^2 = 1, PA-I tau =
    min(C, 1/2) = 0.5, so W_a = (0.5, 0) and W_b = (-0.5, 0).

    >>> import numpy as np
    >>> model = MulticlassPA(classes=("a", "b"))
    >>> model.learn_array(np.array([1.0, 0.0]), "a")
    >>> model.weights_
    array([[ 0.5,  0. ],
           [-0.5,  0. ]])
    >>> model.predict_one({0: 2.0, 1: 1.0})
    'a'
    >>> model.predict_proba_one({0: 2.0, 1: 1.0})
    {'a': 1.0, 'b': 0.0}
    """

    def __init__(
        self,
        variant: str = "PA-I",
        C: float = 1.0,
        fit_intercept: bool = False,
        average: bool = False,
        classes: tuple | None = None,
    ):
        self.variant = variant
        self.C = C
        self.fit_intercept = fit_intercept
        self.average = average
        self.classes = classes
        self._code = variant_code(variant)
        check_positive("C", C)
        self._init_features()
        self._init_classes(classes)
        K = len(self._classes)
        self._W = np.zeros((K, 0))
        self._b = np.zeros(K)
        self._U = np.zeros((K, 0))
        self._Ub = np.zeros(K)
        self._t = 0
        self._b_fixed = False  # set by start_from when a fixed (source) intercept is kept

    # ------------------------------------------------------------------ shape changes
    def _resize(self, d: int) -> None:
        pad = ((0, 0), (0, d - self._W.shape[1]))
        self._W = np.pad(self._W, pad)
        self._U = np.pad(self._U, pad)

    def _add_class(self) -> None:
        self._W = np.pad(self._W, ((0, 1), (0, 0)))
        self._U = np.pad(self._U, ((0, 1), (0, 0)))
        self._b = np.append(self._b, 0.0)
        self._Ub = np.append(self._Ub, 0.0)

    def start_from(self, W: np.ndarray, b: np.ndarray, feature_names: Sequence[Hashable]) -> None:
        """Start from given weights before learning (PAIO starts from a source's weights).

        ``W`` (K, d) and ``b`` (K,) are aligned with :attr:`classes_`; ``feature_names`` names
        the d columns (and fixes the width).  Without ``fit_intercept`` a non-zero ``b`` is kept
        as a fixed offset.
        """
        self._init_features(feature_names)
        self._resize(self._d)
        self._W[...] = W
        self._b[...] = b
        self._b_fixed = bool(np.any(b))

    # ------------------------------------------------------------------ weights
    @property
    def weights_(self) -> np.ndarray:
        """Current weight matrix (K, d), a copy."""
        return self._W.copy()

    @property
    def intercept_(self) -> np.ndarray:
        return self._b.copy()

    def averaged_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(W, b) averaged over the learning steps taken so far (current ones if none)."""
        T = self._t
        if T == 0:
            return self._W.copy(), self._b.copy()
        return ((T + 1) * self._W - self._U) / T, ((T + 1) * self._b - self._Ub) / T

    # ------------------------------------------------------------------ primitives
    def _scores(self, x: np.ndarray) -> np.ndarray:
        if self.average:
            W, b = self.averaged_weights()
            return W @ x + b
        f = self._W.dot(x)
        if self._has_b:
            f += self._b
        return f

    @property
    def _has_b(self) -> bool:
        # the bias is learned, or fixed but non-zero (PAIO without fit_intercept)
        return self.fit_intercept or self._b_fixed

    def predict_array(self, x: np.ndarray) -> Any:
        """Predict the label of one sample given as a 1-D float array."""
        x, _ = self._check_x(x)  # hot path: inlined _predict_enc / _decode
        if self.average or not self._classes:
            return self._decode(self._predict_enc(x))
        f = self._W.dot(x)
        if self._has_b:
            f += self._b
        return self._classes[int(f.argmax())]

    def _predict_enc(self, x: np.ndarray) -> int:
        if not self._classes:
            return -1
        return int(self._scores(x).argmax())

    def _proba_enc(self, x: np.ndarray) -> np.ndarray:
        if not self._classes:
            return np.zeros(0)
        p = margin_pi(self._scores(x))
        return p / p.sum()

    def _update(self, x: np.ndarray, sq: float, yi: int, f: np.ndarray) -> None:
        self._t += 1
        tau, s = multiclass_pa_step(
            self._W, self._b if self.fit_intercept else None, x, sq, f, yi, self._code, self.C
        )
        if tau and self.average:
            step = (self._t * tau) * x
            self._U[yi] += step
            self._U[s] -= step
            if self.fit_intercept:
                self._Ub[yi] += self._t * tau
                self._Ub[s] -= self._t * tau

    def _learn_enc(self, x: np.ndarray, sq: float, yi: int) -> None:
        f = self._W.dot(x)
        if self._has_b:
            f += self._b
        self._update(x, sq, yi, f)

    def _predict_learn_enc(self, x: np.ndarray, sq: float, yi: int) -> int:
        if self.average:
            pred = self._predict_enc(x)
            self._learn_enc(x, sq, yi)
            return pred
        f = self._W.dot(x)
        if self._has_b:
            f += self._b
        pred = int(f.argmax())
        self._update(x, sq, yi, f)
        return pred

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"variant": "PA-II", "fit_intercept": True, "average": True}
