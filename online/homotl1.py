"""HomOTL-I: homogeneous online transfer learning with exponential weights.

Zhao & Hoi, "OTL: A Framework of Online Transfer Learning", ICML 2010, and Zhao, Hoi, Wang &
Li, "Online Transfer Learning", Artificial Intelligence 216, 2014 (HomOTL-I, AIJ Algorithm 1;
the AIJ numbering was checked against a stored full text of that paper).

A fixed source classifier v and a target PA-I learner w (Crammer et al. 2006) are combined:

* prediction      y_hat = sign(a1 Pi(v.x) + a2 Pi(w.x) - 1/2),  Pi(z) = max(0, min(1, (z+1)/2)),
                  a1 = a2 = 1/2 at the start
* weights         a_i <- a_i s_i / (a1 s1 + a2 s2),  s_i = exp(-eta (Pi(f_i) - Pi(y))^2)
* target learner  PA-I on (x, y): w <- w + min(C, l/||x||^2) y x

Both updates use the scores computed for the prediction.  ``eta = 1/2`` is the value for
which the squared loss on [0, 1] is eta-exp-concave (the AIJ bound's setting).

Multi-class extension (:class:`MulticlassHomOTL1`, our choice; the papers are binary):
each expert's ``Pi(f)`` becomes the vector ``P_k = Pi(f_k - max_{j != k} f_j)`` of squashed
multi-class margins (:func:`fedotl.online.kernels.margin_pi`), the prediction is
``argmax_k sum_i a_i P_ik``, and the loss is ``(1 - P_{i,y})^2``.  With two classes this is
exactly the binary algorithm: for y = +1, (Pi(f) - 1)^2 = (1 - Pi(y f))^2, and for y = -1,
Pi(f)^2 = (1 - Pi(-f))^2, while ``a1 P1 + a2 P2`` compared across the two classes is
``a1 Pi(f1) + a2 Pi(f2)`` compared with 1/2.  The target learner is the multi-class PA-I.
"""

from __future__ import annotations

import math

import numpy as np

from .base import BinaryOnlineClassifier
from .ensemble import PiCombination, SourceEnsemble
from .kernels import margin_pi, pa_step, pi
from .sources import SourceClassifier
from .validation import check_positive

__all__ = ["BinarySource", "HomOTL1", "MulticlassHomOTL1"]


class BinarySource:
    """Binary score ``v.x + c`` of a 2-class source; a zero scorer when there is no source."""

    def __init__(self, source: SourceClassifier | None, d: int):
        self.source = None
        self.m = d
        if source is None:
            self.v, self.c = np.zeros(d), 0.0
        elif not isinstance(source, SourceClassifier):
            raise TypeError(f"source must be a SourceClassifier, got {type(source).__name__}")
        elif source.is_linear:
            v, self.c = source.binary_weights()
            self.v = v.copy()
        else:
            source.positive_index()  # validates the 2 classes
            self.source, self.v, self.c = source, None, 0.0
            self.m = source.n_features

    def score(self, x: np.ndarray) -> float:
        if self.source is None:
            return float(self.v @ x) + self.c
        return self.source.binary_score(x[: self.m])

    def resize(self, d: int) -> None:
        if self.v is not None:
            self.v = np.concatenate([self.v, np.zeros(d - self.v.shape[0])])


def source_names(source: SourceClassifier | None) -> tuple | None:
    return None if source is None else source.feature_names


class HomOTL1(BinaryOnlineClassifier):
    """Binary HomOTL-I (Zhao & Hoi ICML 2010; Zhao, Hoi, Wang & Li AIJ 2014, Algorithm 1).

    Parameters
    ----------
    source
        Fixed 2-class :class:`~fedotl.online.sources.SourceClassifier` (its positive row is ``True``/``1``).
        Without a source the source expert scores 0 (Pi = 1/2), which never changes a prediction.
    C
        PA-I aggressiveness of the target learner.
    eta
        Learning rate of the exponential weights.

    Examples
    --------
    Source v = (1, 0), x = (1, 0), y = -1: Pi(v.x) = 1 and Pi(w.x) = 1/2, so
    s1 = exp(-1/2), s2 = exp(-1/8) and a1 = s1 / (s1 + s2) = 0.407.

    >>> import numpy as np
    >>> from fedotl.online.sources import SourceClassifier
    >>> src = SourceClassifier([[-0.5, 0.0], [0.5, 0.0]], classes=(False, True))
    >>> model = HomOTL1(src)
    >>> model.predict_learn_array(np.array([1.0, 0.0]), -1)
    1
    >>> model.alpha_.round(3)
    array([0.407, 0.593])
    """

    def __init__(self, source: SourceClassifier | None = None, C: float = 1.0, eta: float = 0.5):
        self.source = source
        self.C = C
        self.eta = eta
        check_positive("C", C)
        if not (math.isfinite(eta) and eta >= 0):
            raise ValueError(f"eta must be >= 0, got {eta!r}")
        self._init_features(source_names(source))
        self._src = BinarySource(source, self._d)
        self._w = np.zeros(self._d)
        self._a1 = self._a2 = 0.5

    def _resize(self, d: int) -> None:
        self._src.resize(d)
        self._w = np.concatenate([self._w, np.zeros(d - self._w.shape[0])])

    @property
    def alpha_(self) -> np.ndarray:
        """(a_source, a_target)."""
        return np.array([self._a1, self._a2])

    @property
    def target_weights_(self) -> np.ndarray:
        return self._w.copy()

    def reset_weights(self) -> None:
        self._a1 = self._a2 = 0.5

    def _q(self, x: np.ndarray) -> tuple[float, float, float]:
        p1 = pi(self._src.score(x))
        fw = float(self._w @ x)
        return p1, fw, self._a1 * p1 + self._a2 * pi(fw)

    def _predict_enc(self, x: np.ndarray) -> int:
        return 1 if self._q(x)[2] - 0.5 > 0.0 else -1

    def _proba_enc(self, x: np.ndarray) -> np.ndarray:
        q = self._q(x)[2]
        return np.array([1.0 - q, q])

    def _update(self, x: np.ndarray, sq: float, y: int, p1: float, fw: float) -> None:
        target = 1.0 if y > 0 else 0.0  # Pi(y)
        s1 = math.exp(-self.eta * (p1 - target) ** 2)
        s2 = math.exp(-self.eta * (pi(fw) - target) ** 2)
        z = self._a1 * s1 + self._a2 * s2
        self._a1, self._a2 = self._a1 * s1 / z, self._a2 * s2 / z
        pa_step(self._w, x, sq, y, fw, 1, self.C)  # target PA-I

    def _learn_enc(self, x: np.ndarray, sq: float, y: int) -> None:
        p1, fw, _ = self._q(x)
        self._update(x, sq, y, p1, fw)

    def _predict_learn_enc(self, x: np.ndarray, sq: float, y: int) -> int:
        p1, fw, q = self._q(x)
        self._update(x, sq, y, p1, fw)
        return 1 if q - 0.5 > 0.0 else -1


class MulticlassHomOTL1(PiCombination, SourceEnsemble):
    """Multi-class HomOTL-I: exponential weights over Pi-squashed multi-class margins.

    See the module docstring for the extension (it reduces to Zhao & Hoi's HomOTL-I with two
    classes).  Source classes are aligned with target labels by value; a label the source does
    not know gets P = 0 from it.  Without a source this is the multi-class PA-I.

    Parameters
    ----------
    source
        Fixed :class:`~fedotl.online.sources.SourceClassifier`.
    C
        PA-I aggressiveness of the target learner.
    eta
        Learning rate of the exponential weights (``eta = 0`` keeps a = (1/2, 1/2)).
    classes
        Labels known in advance (before the source's own classes).
    target_start
        First input column the target PA-I learner reads (0: all); see
        :class:`~fedotl.online.homotlms.HomOTLMS`.

    Examples
    --------
    >>> import numpy as np
    >>> from fedotl.online.sources import SourceClassifier
    >>> src = SourceClassifier(np.eye(3), classes=("sit", "walk", "run"))
    >>> model = MulticlassHomOTL1(src)
    >>> model.predict_learn_array(np.array([0.0, 3.0, 0.0]), "run")
    'walk'
    >>> model.alpha_.round(3)
    array([0.407, 0.593])
    """

    def __init__(
        self,
        source: SourceClassifier | None = None,
        C: float = 1.0,
        eta: float = 0.5,
        classes: tuple | None = None,
        target_start: int = 0,
    ):
        self.source = source
        self.C = C
        self.eta = eta
        self.classes = classes
        self.target_start = target_start
        check_positive("C", C)
        if not (math.isfinite(eta) and eta >= 0):
            raise ValueError(f"eta must be >= 0, got {eta!r}")
        self._init_ensemble(() if source is None else (source,), classes, True, C, target_start)
        self._a = np.full(self.n_experts, 1.0 / self.n_experts)

    @property
    def alpha_(self) -> np.ndarray:
        """Expert weights (source first, target last)."""
        return self._a.copy()

    def reset_weights(self) -> None:
        self._a = np.full(self.n_experts, 1.0 / self.n_experts)

    def _update_weights(self, F: np.ndarray, yi: int) -> None:
        if self.eta == 0.0:
            return
        loss = (1.0 - margin_pi(F)[:, yi]) ** 2
        a = self._a * np.exp(-self.eta * loss)
        self._a = a / a.sum()

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"eta": 1.0, "C": 0.5}
