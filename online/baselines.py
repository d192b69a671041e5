"""Baselines of the OTL papers (Zhao & Hoi 2010/2014; Wu et al. 2017) and of streaming HAR.

* PA on the target only          -> :class:`fedotl.online.pa.MulticlassPA` (PA-I, no source)
* :class:`SourceOnly`            -- the fixed source classifier, never updated
* :class:`PAIO`                  -- "PA Initialised with the Old classifier": PA started at v
* :class:`FixedAlphaHomOTL`      -- HomOTL-I's combination with alpha fixed (1/2 by default)
* :class:`Persistence`           -- predicts the previous label: the reference for streams in
  time order, where activity bouts make "same as before" a strong predictor
"""

from __future__ import annotations

from typing import Any

import numpy as np
from river import base

from .ensemble import PiCombination, SourceEnsemble, vote
from .pa import MulticlassPA
from .sources import SourceClassifier
from .validation import check_positive

__all__ = ["PAIO", "FixedAlphaHomOTL", "Persistence", "SourceOnly"]


class SourceOnly(SourceEnsemble):
    """The source classifier alone (argmax of its scores); learning only records new labels.

    Labels the source does not know are tracked (so that they appear in
    ``predict_proba_one``, with probability 0) but never predicted.  Without a source it
    predicts the first label it has seen.

    Examples
    --------
    >>> import numpy as np
    >>> from fedotl.online.sources import SourceClassifier
    >>> model = SourceOnly(SourceClassifier(np.eye(2), classes=("a", "b")))
    >>> model.predict_learn_array(np.array([0.0, 1.0]), "a")
    'b'
    """

    def __init__(self, source: SourceClassifier | None = None, classes: tuple | None = None):
        self.source = source
        self.classes = classes
        self._init_ensemble(() if source is None else (source,), classes, False)
        self._u = np.ones(self.n_experts)

    def _combine(self, F: np.ndarray) -> np.ndarray:
        if F.shape[0] == 0:
            p = np.zeros(F.shape[1])
            p[:1] = 1.0
            return p
        return vote(F, self._u)

    def _update_weights(self, F: np.ndarray, yi: int) -> None:
        pass


class PAIO(MulticlassPA):
    """Multi-class PA initialised with the source classifier's weights (PAIO).

    The target learner starts at W = V (rows aligned by label; labels unknown to the source
    start at 0).  With ``fit_intercept=True`` the source intercepts initialise a learned bias;
    with ``False`` they stay as a fixed offset.

    Examples
    --------
    >>> import numpy as np
    >>> from fedotl.online.sources import SourceClassifier
    >>> model = PAIO(SourceClassifier(np.eye(2), classes=("a", "b")))
    >>> model.predict_array(np.array([0.0, 1.0]))
    'b'
    """

    def __init__(
        self,
        source: SourceClassifier | None = None,
        variant: str = "PA-I",
        C: float = 1.0,
        fit_intercept: bool = True,
        classes: tuple | None = None,
    ):
        labels = list(classes or ()) + (list(source.classes) if source is not None else [])
        super().__init__(variant=variant, C=C, fit_intercept=fit_intercept, classes=tuple(dict.fromkeys(labels)) or None)
        self.source = source
        self.classes = classes
        if source is not None:
            if not isinstance(source, SourceClassifier):
                raise TypeError(f"source must be a SourceClassifier, got {type(source).__name__}")
            source.require_linear("PAIO")
            W, b = source.aligned(self.classes_, 0.0)
            self.start_from(W, b, source.feature_names)

    @classmethod
    def _unit_test_params(cls):
        yield {}


class FixedAlphaHomOTL(PiCombination, SourceEnsemble):
    """HomOTL-I's prediction with a fixed weight: argmax of alpha P_source + (1 - alpha) P_target.

    P are the squashed multi-class margins of :func:`fedotl.online.kernels.margin_pi`; in the binary
    case this is sign(alpha Pi(v.x) + (1 - alpha) Pi(w.x) - 1/2).  The target is a PA-I learner.

    Examples
    --------
    >>> import numpy as np
    >>> from fedotl.online.sources import SourceClassifier
    >>> model = FixedAlphaHomOTL(SourceClassifier(np.eye(2), classes=("a", "b")))
    >>> model.predict_array(np.array([0.0, 1.0]))
    'b'
    """

    def __init__(
        self,
        source: SourceClassifier | None = None,
        alpha: float = 0.5,
        C: float = 1.0,
        classes: tuple | None = None,
    ):
        self.source = source
        self.alpha = alpha
        self.C = C
        self.classes = classes
        check_positive("C", C)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        self._init_ensemble(() if source is None else (source,), classes, True, C)
        self._a = np.array([alpha, 1.0 - alpha]) if source is not None else np.ones(1)

    def _update_weights(self, F: np.ndarray, yi: int) -> None:
        pass

    @classmethod
    def _unit_test_params(cls):
        yield {}


class Persistence(base.Classifier):
    """Predicts the previous label (``None`` before the first one).

    Examples
    --------
    >>> model = Persistence()
    >>> model.learn_one({}, "walk")
    >>> model.predict_one({})
    'walk'
    """

    def __init__(self):
        self._last: Any = None
        self._seen: dict = {}

    @property
    def _multiclass(self) -> bool:
        return True

    def learn_one(self, x: dict, y: Any) -> None:
        self._last = y.item() if isinstance(y, np.generic) else y
        self._seen.setdefault(self._last, None)

    def predict_one(self, x: dict, **kwargs: Any) -> Any:
        return self._last

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict:
        if self._last is None:
            return {}
        return {c: float(c == self._last) for c in self._seen}

    # array API, for symmetry with the other learners
    def learn_array(self, x: np.ndarray, y: Any) -> None:
        self.learn_one({}, y)

    def predict_array(self, x: np.ndarray) -> Any:
        return self._last

    def predict_learn_array(self, x: np.ndarray, y: Any) -> Any:
        p = self._last
        self.learn_one({}, y)
        return p

    def prequential(self, X: np.ndarray, y: Any) -> np.ndarray:
        """Mistakes of "predict the previous label" (the first sample is always a mistake)."""
        ys = list(y)
        mistakes = np.ones(len(ys), dtype=bool)
        for i, yi in enumerate(ys):
            mistakes[i] = self._last is None or self._last != yi
            self.learn_one({}, yi)
        return mistakes
