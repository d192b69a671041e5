"""Shared plumbing for the online learners: features, labels, validation, bulk loops.

Every learner in :mod:`online` is a :class:`river.base.Classifier` whose work is done by a
numpy *array path*; the river *dict path* only converts and delegates.

Features
    Dict features are mapped to columns in first-seen order (a source classifier's features
    come first).  A feature that appears after the first sample adds a zero column to every
    weight matrix, which is exactly "it was 0 until now"; a feature missing from a dict is 0.
    Prediction never registers features: unknown keys are ignored (their weights are 0).
    Non-numeric, NaN or infinite values raise ``ValueError`` naming the key.

Array path
    ``learn_array`` / ``predict_array`` / ``predict_learn_array`` take a 1-D float array of
    exactly ``n_features_in_`` values.  A learner that was not given its width (no source, no
    ``n_features``) adopts the length of the first array it sees.  A wrong length, a non 1-D
    input, or NaN/inf values raise ``ValueError``.  The finiteness check is nearly free:
    ``x.dot(x)`` is needed anyway for the update, and it is NaN/inf exactly when some value is
    (or when the values are so large that the squared norm overflows, reported the same way).

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
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
from river import base

__all__ = [
    "BinaryOnlineClassifier",
    "MulticlassOnlineClassifier",
    "OnlineClassifier",
    "hedge_beta",
    "hedge_weights",
    "margin_pi",
    "pi",
]

VARIANTS = ("PA", "PA-I", "PA-II")
_F64 = np.dtype(np.float64)


NONFINITE = "x contains NaN or infinite values (or values whose squared norm overflows)"


def variant_code(variant: str) -> int:
    """Map a PA variant name to 0 (PA), 1 (PA-I) or 2 (PA-II)."""
    try:
        return VARIANTS.index(variant)
    except ValueError:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}") from None


def check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def pi(z: float) -> float:
    """Zhao & Hoi's squashing function Pi(z) = max(0, min(1, (z + 1) / 2))."""
    return min(1.0, max(0.0, 0.5 * z + 0.5))


def margin_pi(F: np.ndarray) -> np.ndarray:
    """Per-class scores in [0, 1] from raw scores, ``P_k = Pi(f_k - max_{j != k} f_j)``.

    This is the multi-class reading of Zhao & Hoi's Pi(w.x): the argument is the multi-class
    margin of class k (the quantity whose hinge the multi-class PA minimises).  With two classes
    and scores (-f/2, f/2) it gives (1 - Pi(f), Pi(f)), i.e. the binary case exactly.  Works on
    a vector (K,) or a stack (N, K); ``-inf`` scores (a source that does not know a class) give 0.

    >>> margin_pi(np.array([2.0, 0.5, -1.0]))
    array([1., 0., 0.])
    >>> margin_pi(np.array([0.0, 0.0]))
    array([0.5, 0.5])
    """
    F = np.asarray(F, dtype=float)
    K = F.shape[-1]
    if K == 0:
        return F.copy()
    if K == 1:
        return np.ones_like(F)
    part = np.partition(F, K - 2, axis=-1)
    top = part[..., K - 1 : K]
    gap = top - part[..., K - 2 : K - 1]
    M = F - top
    # the top class gets (top - second); on ties both are 0, which is correct
    M = np.where(M >= 0.0, gap, M)
    np.clip(M, -1.0, 1.0, out=M)
    M += 1.0
    M *= 0.5
    return M


def hedge_beta(horizon: int | None, n_experts: int, t: int) -> float:
    """Hedge discount beta = sqrt(T) / (sqrt(T) + sqrt(ln N)) (Freund & Schapire 1997).

    ``horizon=None`` is the anytime variant: T is replaced by the current round ``t``.
    """
    T = horizon if horizon is not None else max(t, 1)
    if n_experts <= 1:
        return 1.0
    r = math.sqrt(T)
    return r / (r + math.sqrt(math.log(n_experts)))


def hedge_weights(L: np.ndarray, beta: float | np.ndarray) -> np.ndarray:
    """Normalised Hedge weights beta^L / sum beta^L from cumulative mistakes ``L`` (last axis).

    Computed as beta^(L - min L), which is scale-free: the same weights as the multiplicative
    rule u_i <- u_i beta^{z_i}, without underflow.  For a stack of rows (N, n), ``beta`` may
    be one discount per row (shape (N, 1)).

    >>> hedge_weights(np.array([0.0, 1.0]), 0.5).tolist()
    [0.6666666666666666, 0.3333333333333333]
    """
    u = np.power(beta, L - L.min(axis=-1, keepdims=True))
    return u / u.sum(axis=-1, keepdims=True)


def _plain_label(y: Any) -> Any:
    """numpy scalars become Python scalars so that stored classes print and serialise cleanly."""
    return y.item() if isinstance(y, np.generic) else y


class OnlineClassifier(base.Classifier):
    """Base class: dict <-> array conversion, validation and bulk loops.

    Subclasses implement the encoded-label primitives ``_predict_enc(x)``,
    ``_learn_enc(x, sq, y)``, ``_predict_learn_enc(x, sq, y)``, ``_proba_enc(x)``,
    ``_resize(d)`` and the label codec (see the binary / multi-class subclasses).
    """

    # views into other arrays must not be pickled (they would come back as copies);
    # subclasses list them here and rebuild them in _rebuild_views()
    _VIEWS: tuple[str, ...] = ()

    def _init_features(self, names: Iterable[Hashable] | None = None, d: int = 0) -> None:
        self._feature_index: dict[Hashable, int] = {}
        self._set_width(0)
        self._width_known = False
        if names is not None:
            for name in names:
                if name in self._feature_index:
                    raise ValueError(f"duplicate feature name {name!r}")
                self._feature_index[name] = len(self._feature_index)
            self._set_width(len(self._feature_index))
            self._width_known = True
        elif d:
            self._feature_index = {j: j for j in range(d)}
            self._set_width(d)
            self._width_known = True

    def _set_width(self, d: int) -> None:
        self._d = d
        self._shape = (d,)  # cached for the array path's shape check
        self._key_cache: tuple | None = None  # (keys, columns, all known, known mask)

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

    # ------------------------------------------------------------------ features
    @property
    def n_features_in_(self) -> int:
        """Current number of feature columns."""
        return self._d

    @property
    def feature_names_in_(self) -> list:
        """Feature names in column order."""
        return list(self._feature_index)

    def _resize(self, d: int) -> None:
        raise NotImplementedError

    def _grow_to(self, d: int) -> None:
        # columns introduced by the array path are named by their position
        for j in range(self._d, d):
            name: Hashable = j if j not in self._feature_index else ("_col", j)
            self._feature_index[name] = len(self._feature_index)
        self._resize(d)
        self._set_width(d)

    def _dict_to_array(self, x: dict, learn: bool) -> np.ndarray:
        try:
            vals = np.fromiter(x.values(), dtype=np.float64, count=len(x))
        except (TypeError, ValueError):
            vals = None
        if vals is None or not np.isfinite(vals).all():
            self._reject_values(x)
        keys = tuple(x)
        cache = self._key_cache
        # dicts from one stream usually share their key order: reuse the column positions
        if cache is None or cache[0] != keys or (learn and not cache[2]):
            index = self._feature_index
            if learn:
                new = [k for k in keys if k not in index]
                if new:
                    for k in new:
                        index[k] = len(index)
                    self._resize(len(index))
                    self._set_width(len(index))
            pos = np.array([index.get(k, -1) for k in keys], dtype=np.intp)
            known = pos >= 0
            cache = self._key_cache = (keys, pos, bool(known.all()), known)
        out = np.zeros(self._d)
        if cache[2]:
            out[cache[1]] = vals
        else:  # keys never learned are ignored (their weights would be 0)
            out[cache[1][cache[3]]] = vals[cache[3]]
        return out

    @staticmethod
    def _reject_values(x: dict) -> None:
        for k, v in x.items():
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"feature {k!r} has a non-numeric value {v!r}") from None
            if not math.isfinite(fv):
                raise ValueError(f"feature {k!r} is {fv} (NaN or infinite values are rejected)")
        raise ValueError("features must be real numbers")  # pragma: no cover - e.g. complex

    def _check_x(self, x: Any) -> tuple[np.ndarray, float]:
        """Validate one sample for the array path; returns (x as float64, ||x||^2)."""
        if type(x) is not np.ndarray or x.dtype is not _F64:
            x = np.asarray(x, dtype=np.float64)
        if x.shape != self._shape:
            self._adopt_width(x)
        sq = float(x.dot(x))
        if not math.isfinite(sq):
            raise ValueError(NONFINITE)
        return x, sq

    def _adopt_width(self, x: np.ndarray) -> None:
        if x.ndim != 1:
            raise ValueError(f"expected a 1-D feature array, got shape {x.shape}")
        if self._width_known or x.shape[0] < self._d:
            raise ValueError(f"expected {self._d} features, got {x.shape[0]}")
        self._grow_to(x.shape[0])
        self._width_known = True

    def _check_X(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validate a 2-D batch; returns (X as float64, row squared norms)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D array (n_samples, n_features), got shape {X.shape}")
        if X.shape[0] and X.shape[1] != self._d:
            self._adopt_width(X[0])
        sq = np.einsum("ij,ij->i", X, X)
        if not np.isfinite(sq).all():
            bad = int(np.flatnonzero(~np.isfinite(sq))[0])
            raise ValueError(f"X row {bad} contains NaN or infinite values")
        return X, sq

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

        Called by the drift hook of :func:`online.evaluation.prequential`.
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
