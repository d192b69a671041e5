"""HomOTL-II: homogeneous online transfer learning with the Hedge algorithm.

Zhao & Hoi, ICML 2010, and Zhao, Hoi, Wang & Li, Artificial Intelligence 216, 2014
(HomOTL-II, AIJ Algorithm 2, the "mistake-driven" algorithm with Hedge weights and
beta = sqrt(T) / (sqrt(T) + sqrt(ln 2)) of its Theorem 2; checked against a stored full text of
the AIJ paper).

A fixed source classifier v and a target PA-I learner w are the two experts of Hedge
(Freund & Schapire 1997):

* prediction  y_hat = sign(theta_1 sign(v.x) + theta_2 sign(w.x))  (weighted majority vote)
* weights     theta_i <- theta_i beta^{z_i} (normalised), z_i = [y_t f_i(x_t) < 0],
              beta = sqrt(T) / (sqrt(T) + sqrt(ln 2)), theta_1 = theta_2 = 1/2 at the start
* target      PA-I: w <- w + min(C, l/||x||^2) y x

T is the horizon: given, or ``None`` for the anytime schedule T = t (current round).  The
weights are kept as ``beta ** (L_i - min L)`` / sum over cumulative mistakes L_i (the same
numbers as the multiplicative rule when beta is fixed).  ``y_hat = +1`` only for a positive
vote: a tie (sign 0) predicts -1 (``False``).  The mistake indicator is strict, as in the
authors' reference code: an expert scoring exactly 0 (the untrained target on step 1) abstains
from the vote and is not counted wrong (the papers write the indicator loosely; ``<= 0`` would
penalise the target before it has seen a label).

:class:`MulticlassHomOTL2` is :class:`~fedotl.online.homotlms.HomOTLMS` with a single source, whose
beta is exactly sqrt(T) / (sqrt(T) + sqrt(ln 2)).
"""

from __future__ import annotations

import numpy as np

from .base import BinaryOnlineClassifier
from .homotl1 import BinarySource, source_names
from .homotlms import HomOTLMS
from .kernels import hedge_beta, hedge_weights, pa_step
from .sources import SourceClassifier
from .validation import check_positive

__all__ = ["HomOTL2", "MulticlassHomOTL2"]


def _sign(z: float) -> float:
    return 1.0 if z > 0.0 else (-1.0 if z < 0.0 else 0.0)


class HomOTL2(BinaryOnlineClassifier):
    """Binary HomOTL-II (Zhao & Hoi ICML 2010; Zhao, Hoi, Wang & Li AIJ 2014, Algorithm 2).

    Parameters
    ----------
    source
        Fixed 2-class :class:`~fedotl.online.sources.SourceClassifier`; without one, the source
        expert scores 0 (abstains, so it never decides the vote and is never counted wrong).
    C
        PA-I aggressiveness of the target learner.
    horizon
        Stream length T for beta; ``None``: anytime schedule.

    Examples
    --------
    T = 100: beta = 10 / (10 + sqrt(ln 2)) = 0.9231.  The source (v = (1, 0)) is right on
    (x, y) = ((1, 0), +1); the untrained target scores 0, which is not a mistake (y f < 0 is),
    so theta stays (1/2, 1/2).  The target's PA-I step gives w = (1, 0) (tau = 1).  On
    (x, y) = ((0, 1), +1) both experts score 0: the vote ties, which predicts -1, and neither
    expert is counted wrong.

    >>> import numpy as np
    >>> from fedotl.online.sources import SourceClassifier
    >>> src = SourceClassifier([[-0.5, 0.0], [0.5, 0.0]], classes=(False, True))
    >>> model = HomOTL2(src, horizon=100)
    >>> model.predict_learn_array(np.array([1.0, 0.0]), 1)
    1
    >>> model.theta_.round(4)
    array([0.5, 0.5])
    >>> model.predict_learn_array(np.array([0.0, 1.0]), 1)
    -1
    >>> model.theta_.round(4)
    array([0.5, 0.5])
    """

    def __init__(self, source: SourceClassifier | None = None, C: float = 1.0, horizon: int | None = None):
        self.source = source
        self.C = C
        self.horizon = horizon
        check_positive("C", C)
        if horizon is not None and (not isinstance(horizon, (int, np.integer)) or horizon < 1):
            raise ValueError(f"horizon must be a positive integer or None, got {horizon!r}")
        self._init_features(source_names(source))
        self._src = BinarySource(source, self._d)
        self._w = np.zeros(self._d)
        self.reset_weights()

    def reset_weights(self) -> None:
        self._L1 = self._L2 = 0.0
        self._th1 = self._th2 = 0.5
        self._t = 0

    def _resize(self, d: int) -> None:
        self._src.resize(d)
        self._w = np.concatenate([self._w, np.zeros(d - self._w.shape[0])])

    @property
    def theta_(self) -> np.ndarray:
        """(theta_source, theta_target)."""
        return np.array([self._th1, self._th2])

    @property
    def target_weights_(self) -> np.ndarray:
        return self._w.copy()

    def _vote(self, x: np.ndarray) -> tuple[float, float, float]:
        fv = self._src.score(x)
        fw = float(self._w @ x)
        return fv, fw, self._th1 * _sign(fv) + self._th2 * _sign(fw)

    def _predict_enc(self, x: np.ndarray) -> int:
        return 1 if self._vote(x)[2] > 0.0 else -1

    def _proba_enc(self, x: np.ndarray) -> np.ndarray:
        q = 0.5 + 0.5 * self._vote(x)[2]  # share of the vote for +1 (ties split)
        return np.array([1.0 - q, q])

    def _update(self, x: np.ndarray, sq: float, y: int, fv: float, fw: float) -> None:
        self._t += 1
        self._L1 += y * fv < 0.0  # strict, as the reference code: a zero score abstains
        self._L2 += y * fw < 0.0
        self._th1, self._th2 = hedge_weights((self._L1, self._L2), hedge_beta(self.horizon, 2, self._t))
        pa_step(self._w, x, sq, y, fw, 1, self.C)  # target PA-I

    def _learn_enc(self, x: np.ndarray, sq: float, y: int) -> None:
        fv, fw, _ = self._vote(x)
        self._update(x, sq, y, fv, fw)

    def _predict_learn_enc(self, x: np.ndarray, sq: float, y: int) -> int:
        fv, fw, v = self._vote(x)
        self._update(x, sq, y, fv, fw)
        return 1 if v > 0.0 else -1

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"horizon": 100}


class MulticlassHomOTL2(HomOTLMS):
    """Multi-class HomOTL-II: Hedge over one source and a target PA-I (HomOTLMS with n = 1).

    Parameters
    ----------
    source
        Fixed :class:`~fedotl.online.sources.SourceClassifier`; ``None``: the target PA-I alone.
    C
        PA-I aggressiveness of the target learner.
    horizon
        Stream length T for beta = sqrt(T) / (sqrt(T) + sqrt(ln 2)); ``None``: anytime.
    classes
        Labels known in advance.

    Examples
    --------
    >>> import numpy as np
    >>> from fedotl.online.sources import SourceClassifier
    >>> model = MulticlassHomOTL2(SourceClassifier(np.eye(2), classes=("a", "b")), horizon=100)
    >>> round(model.beta_, 4)
    0.9231
    """

    def __init__(
        self,
        source: SourceClassifier | None = None,
        C: float = 1.0,
        horizon: int | None = None,
        classes: tuple | None = None,
    ):
        self.source = source
        super().__init__(sources=None if source is None else (source,), C=C, horizon=horizon, classes=classes)

    @classmethod
    def _unit_test_params(cls):
        yield {}

