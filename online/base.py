"""Base classes of the online learners and their label codecs.

Every learner in :mod:`fedotl.online` is a :class:`river.base.Classifier` whose work is done by
a numpy *array path*; the river *dict path* only converts and delegates.  The feature index
(dict features <-> columns, the width) is :class:`fedotl.online.features.FeatureColumns`, the
input checks are in :mod:`fedotl.online.validation` and the shared math in
:mod:`fedotl.online.kernels`.

Array path
    ``learn_array`` / ``predict_array`` / ``predict_learn_array`` take a 1-D float array of
    exactly ``n_features_in_`` values (see :mod:`fedotl.online.features`).  The finiteness
    check is nearly free: ``x.dot(x)`` is needed anyway for the update, and it is NaN/inf
    exactly when some value is (or when the values are so large that the squared norm
    overflows, reported the same way).

Labels
    Binary learners speak river's bool labels on the dict path (``True`` is the +1 class) and
    accept ``True/False``, ``1/0`` or ``+1/-1`` on both paths; their array path returns +1/-1.
    Multi-class learners keep one weight row per class in first-seen order; an unseen label
    adds a zero row (and, in ensembles, a row of ``-inf`` scores for sources that do not know
    the label).  In a test-then-train step the row is added after the prediction, so a new
    label cannot leak into its own prediction.  ``None`` and NaN labels raise ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from river import base

from .features import FeatureColumns
from .kernels import pi

__all__ = [
    "BinaryOnlineClassifier",
    "MulticlassOnlineClassifier",
    "OnlineClassifier",
]


def _plain_label(y: Any) -> Any:
    """numpy scalars become Python scalars so that stored classes print and serialise cleanly."""
    return y.item() if isinstance(y, np.generic) else y


class OnlineClassifier(FeatureColumns, base.Classifier):
    """Base class: dict <-> array conversion (:class:`FeatureColumns`), validation and bulk loops.

    Subclasses implement the encoded-label primitives ``_predict_enc(x)``,
    ``_learn_enc(x, sq, y)``, ``_predict_learn_enc(x, sq, y)``, ``_proba_enc(x)``,
    ``_resize(d)`` and the label codec (see the binary / multi-class subclasses).
    """

    # views into other arrays must not be pickled (they would come back as copies);
    # subclasses list them here and rebuild them in _rebuild_views()
    _VIEWS: tuple[str, ...] = ()

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in self._VIEWS:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._rebuild_views()

    def _rebuild_views(self) -> None:  # pragma: no cover - overridden where needed
        pass

    # ------------------------------------------------------------------ codec (subclasses)
    def _encode(self, y: Any) -> int:
        raise NotImplementedError

    def _decode(self, e: int) -> Any:
        raise NotImplementedError

    def _proba_dict(self, p: np.ndarray) -> dict:
        raise NotImplementedError

    # ------------------------------------------------------------------ array API
    def learn_array(self, x: np.ndarray, y: Any) -> None:
        """Update on one sample given as a 1-D float array."""
        x, sq = self._check_x(x)
        self._learn_enc(x, sq, self._encode(y))

    def predict_array(self, x: np.ndarray) -> Any:
        """Predict the label of one sample given as a 1-D float array."""
        x, _ = self._check_x(x)
        return self._decode(self._predict_enc(x))

    def predict_proba_array(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities aligned with :attr:`classes_`."""
        x, _ = self._check_x(x)
        return self._proba_enc(x)

    def predict_learn_array(self, x: np.ndarray, y: Any) -> Any:
        """Prequential step: predict ``x``, then learn ``(x, y)``; returns the prediction."""
        x, sq = self._check_x(x)
        return self._decode(self._test_then_train(x, sq, y)[0])

    def predict_learn_encoded(self, x: np.ndarray, y: Any) -> tuple[int, int]:
        """Prequential step on a 1-D array, in encoded labels: (predicted code, label code).

        The codes are +1/-1 for binary learners and row indices for multi-class ones, so
        ``predicted != label`` is a mistake whatever the label type (``True`` vs ``1``).
        Used by :func:`fedotl.online.evaluation.prequential`.
        """
        x, sq = self._check_x(x)
        return self._test_then_train(x, sq, y)

    def _test_then_train(self, x: np.ndarray, sq: float, y: Any) -> tuple[int, int]:
        """(predicted code, label code).  An unseen label is registered only after the
        prediction, so its new row cannot influence (or leak into) that prediction."""
        e = self._lookup(y)
        if e is None:
            p = self._predict_enc(x)
            e = self._encode(y)
            self._learn_enc(x, sq, e)
            return p, e
        return self._predict_learn_enc(x, sq, e), e

    def _lookup(self, y: Any) -> int | None:
        """Code of a known label, ``None`` for an unseen one (nothing is registered)."""
        return self._encode(y)

    def partial_fit(self, X: np.ndarray, y: Iterable) -> OnlineClassifier:
        """Learn the rows of ``X`` one by one, in order (an online pass, not a batch fit)."""
        X, sq = self._check_X(X)
        ys = list(y)
        if len(ys) != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {len(ys)} labels")
        learn = self._learn_enc
        encode = self._encode
        for i in range(X.shape[0]):
            learn(X[i], float(sq[i]), encode(ys[i]))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict each row of ``X`` without learning."""
        X, _ = self._check_X(X)
        pred = self._predict_enc
        decode = self._decode
        return np.asarray([decode(pred(X[i])) for i in range(X.shape[0])])

    def prequential(self, X: np.ndarray, y: Iterable) -> np.ndarray:
        """Test-then-train over the rows of ``X``; returns a bool array of mistakes."""
        X, sq = self._check_X(X)
        ys = list(y)
        if len(ys) != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {len(ys)} labels")
        step = self._test_then_train
        mistakes = np.empty(X.shape[0], dtype=bool)
        for i in range(X.shape[0]):
            p, e = step(X[i], float(sq[i]), ys[i])
            mistakes[i] = p != e
        return mistakes

    def reset_weights(self) -> None:
        """Reset ensemble weights to their initial values (no-op for single learners).

        Called by the drift hook of :func:`fedotl.online.evaluation.prequential`.
        """

    # ------------------------------------------------------------------ river dict API
    def learn_one(self, x: dict, y: Any) -> None:
        e = self._encode(y)
        v = self._dict_to_array(x, learn=True)
        self._learn_enc(v, float(v @ v), e)

    def predict_one(self, x: dict, **kwargs: Any) -> Any:
        return self._decode(self._predict_enc(self._dict_to_array(x, learn=False)))

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict:
        return self._proba_dict(self._proba_enc(self._dict_to_array(x, learn=False)))

    # default fused step; learners override it to share the score computation
    def _predict_learn_enc(self, x: np.ndarray, sq: float, e: int) -> int:
        p = self._predict_enc(x)
        self._learn_enc(x, sq, e)
        return p


class BinaryOnlineClassifier(OnlineClassifier):
    """Binary learner: labels are encoded as +1 / -1 (paper notation)."""

    @property
    def classes_(self) -> list:
        return [False, True]

    def _encode(self, y: Any) -> int:
        # `y == 1` also matches True, np.True_ and 1.0
        try:
            if y is True or y == 1:
                return 1
            if y is False or y == 0 or y == -1:
                return -1
        except (TypeError, ValueError):
            pass
        raise ValueError(f"binary learner expects labels True/False, 1/0 or +1/-1, got {y!r}")

    def _decode(self, e: int) -> int:
        return e

    def predict_one(self, x: dict, **kwargs: Any) -> bool:
        return self._predict_enc(self._dict_to_array(x, learn=False)) == 1

    def _proba_dict(self, p: np.ndarray) -> dict:
        return {False: float(p[0]), True: float(p[1])}

    # Learners with one real-valued margin f(x) (PA, HetOTL) only define _margin;
    # ensembles (HomOTL-I/II) override the two methods below.
    def _margin(self, x: np.ndarray) -> float:
        raise NotImplementedError

    def _predict_enc(self, x: np.ndarray) -> int:
        return 1 if self._margin(x) > 0.0 else -1

    def _proba_enc(self, x: np.ndarray) -> np.ndarray:
        p = pi(self._margin(x))
        return np.array([1.0 - p, p])


class MulticlassOnlineClassifier(OnlineClassifier):
    """Multi-class learner: one row per class, labels encoded by first-seen index."""

    def _init_classes(self, classes: Iterable | None = None) -> None:
        self._classes: list = []
        self._class_index: dict = {}
        for c in classes or ():
            if c not in self._class_index:
                self._register_class(c)

    def _register_class(self, y: Any) -> int:
        if y is None or (isinstance(y, (float, np.floating)) and math.isnan(y)):
            raise ValueError(f"invalid class label {y!r}")
        try:
            hash(y)
        except TypeError:
            raise ValueError(f"class labels must be hashable, got {y!r}") from None
        y = _plain_label(y)
        self._class_index[y] = len(self._classes)
        self._classes.append(y)
        return self._class_index[y]

    @property
    def _multiclass(self) -> bool:
        return True

    @property
    def classes_(self) -> list:
        """Known classes, in row order."""
        return list(self._classes)

    def _encode(self, y: Any) -> int:
        try:
            k = self._class_index.get(y)
        except TypeError:  # unhashable: _register_class raises the ValueError
            k = None
        if k is None:
            k = self._register_class(y)
            self._add_class()
        return k

    def _lookup(self, y: Any) -> int | None:
        try:
            return self._class_index.get(y)
        except TypeError:
            return None  # unhashable: _encode will raise

    def _add_class(self) -> None:
        raise NotImplementedError

    def _decode(self, e: int) -> Any:
        return self._classes[e] if e >= 0 else None

    def _proba_dict(self, p: np.ndarray) -> dict:
        return {c: float(v) for c, v in zip(self._classes, p)}
