"""The feature index of the online learners: dict features <-> array columns, and the width.

Dict features are mapped to columns in first-seen order (a source classifier's features come
first).  A feature that appears after the first sample adds a zero column to every weight
matrix, which is exactly "it was 0 until now"; a feature missing from a dict is 0.
Prediction never registers features: unknown keys are ignored (their weights are 0).
Non-numeric, NaN or infinite values raise ``ValueError`` naming the key.

On the array path a sample is a 1-D float array of exactly ``n_features_in_`` values.  A
learner that was not given its width (no source, no ``n_features``) adopts the length of the
first array it sees.  A wrong length, a non 1-D input, or NaN/inf values raise ``ValueError``.

:class:`FeatureColumns` is a mixin of :class:`fedotl.online.base.OnlineClassifier`: the
learner itself holds the index, so the hot paths read plain attributes of ``self``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np

from .validation import F64, NONFINITE, reject_values, row_norms

__all__ = ["FeatureColumns"]


class FeatureColumns:
    """Mixin: feature names -> columns, the current width, and the array-path shape checks.

    The class using it implements ``_resize(d)`` (pad every weight matrix to ``d`` columns).
    State: ``_feature_index`` (name -> column), ``_d`` (width), ``_shape`` (``(d,)``, for the
    shape check), ``_width_known`` (the width is fixed: a given source / ``n_features``, or
    adopted from the first array) and ``_key_cache`` (column positions of the last key order).
    """

    _d: int

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

    # ------------------------------------------------------------------ dict path
    def _dict_to_array(self, x: dict, learn: bool) -> np.ndarray:
        try:
            vals = np.fromiter(x.values(), dtype=np.float64, count=len(x))
        except (TypeError, ValueError):
            vals = None
        if vals is None or not np.isfinite(vals).all():
            reject_values(x)
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

    # ------------------------------------------------------------------ array path
    def _check_x(self, x: Any) -> tuple[np.ndarray, float]:
        """Validate one sample for the array path; returns (x as float64, ||x||^2)."""
        if type(x) is not np.ndarray or x.dtype is not F64:
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
        return X, row_norms(X)
