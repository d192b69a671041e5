"""Online standardisation of the target stream, wrapped around any online learner.

Source classifiers are trained on features standardised with the *source* domains' mean and
standard deviation.  When the target's sensors differ (another body position, another dataset,
other units), the same transform leaves the target features off-centre and badly scaled for
those classifiers.  :class:`TargetStandardized` re-centres and re-scales every feature with
running statistics of the target stream itself, causally: sample t is standardised with the
samples *before* it only, so nothing of the future leaks into a prediction.

Estimator, per feature, after c earlier target samples x_1..x_c and with a prior worth
``m0 = prior_weight`` pseudo-samples of mean 0 and variance 1 (the source-standardised scale)::

    mean  = (sum_i x_i) / (m0 + c)
    E[x2] = (m0 * 1 + sum_i x_i^2) / (m0 + c)
    var   = max(E[x2] - mean^2, VAR_FLOOR)
    z     = (x - mean) / sqrt(var)

At the start (c = 0) z = x, i.e. the source standardisation; as c grows the target's own
moments take over.  This is plain running-moment standardisation with the prior read as
``m0`` pseudo-observations, in the manner of the conjugate normal prior's "prior sample size"
(e.g. Gelman et al., *Bayesian Data Analysis*, 3rd ed., Sec. 3.3); it is a shrinkage
estimate of the two moments, not an exact posterior.  Re-estimating normalisation statistics
on the target domain is also the idea behind AdaBN (Li et al., "Revisiting batch
normalization for practical domain adaptation", arXiv:1603.04779), which does it offline on
a network's hidden layers; here it is done online on the input features.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
from river import base

from .validation import check_positive, reject_values

__all__ = ["VAR_FLOOR", "TargetStandardized", "running_standardize"]

#: Lower bound of the estimated variance (guards against cancellation in E[x^2] - mean^2).
VAR_FLOOR = 1e-8


def _moments(S: np.ndarray, Q: np.ndarray, c: Any, m0: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) from sums ``S``, sums of squares ``Q`` and counts ``c``, prior ``m0``."""
    denom = m0 + c
    mean = S / denom
    var = (m0 + Q) / denom - mean * mean
    return mean, np.maximum(var, VAR_FLOOR)


def running_standardize(X: np.ndarray, S: np.ndarray, Q: np.ndarray, c: Any, m0: float) -> np.ndarray:
    """z = (X - mean) / sd, the moments broadcast over the rows of ``X``.

    The dict path (one row) and the array path (all rows at once) both call this, with the
    same elementwise IEEE operations, so they give bit-identical z.
    """
    mean, var = _moments(S, Q, c, m0)
    return (X - mean) / np.sqrt(var)


class TargetStandardized(base.Wrapper, base.Classifier):
    """Standardise each target sample with the running statistics of the samples before it.

    A meta-learner: ``learner`` (any classifier of :mod:`online`, or any river classifier)
    only ever sees standardised features z.  Each feature's mean and variance are estimated
    from the target samples seen so far, shrunk towards mean 0 and variance 1 with the weight
    of ``prior_weight`` pseudo-samples (see the module docstring for the formulas).  In a
    test-then-train step the same z serves the prediction and the update; the statistics take
    the raw sample only afterwards, so a prediction never depends on its own sample or on
    later ones.

    Use it when source and target features are on different scales (another body position,
    another dataset): the source classifiers expect source-standardised inputs, and the
    target's own moments bring the stream back to that scale without looking ahead.

    Parameters
    ----------
    learner
        The wrapped classifier.  Its ``prequential(X, y)`` is used by the array fast path
        when it has one; otherwise its dict API is used.
    prior_weight
        Pseudo-sample count ``m0`` of the prior (mean 0, variance 1); positive.  Small values
        trust the target's statistics sooner; large values stay near the source scale longer.

    Features follow the package's dict conventions: columns in first-seen order, a feature
    missing from a dict is 0 (and is standardised like any 0), NaN / inf / non-numeric values
    raise ``ValueError`` naming the key.  The array path (:meth:`prequential`,
    :meth:`standardize`) maps columns to features in that same order.

    Examples
    --------
    >>> import numpy as np
    >>> from fedotl.online import MulticlassPA
    >>> model = TargetStandardized(MulticlassPA(), prior_weight=1.0)
    >>> model.standardize(np.array([[2.0], [4.0], [0.0]])).ravel().round(4).tolist()
    [2.0, 2.4495, -1.1547]
    >>> rng = np.random.default_rng(0)
    >>> X = 50.0 + 10.0 * rng.normal(size=(300, 3)); y = (X[:, 0] > 50.0).astype(int)
    >>> mistakes = model.prequential(X, y)
    >>> model.n_seen_, bool(mistakes[100:].mean() < 0.2)
    (300, True)
    """

    def __init__(self, learner: base.Classifier, prior_weight: float = 20.0):
        if not isinstance(learner, base.Classifier):
            raise TypeError(f"learner must be a river classifier, got {type(learner).__name__}")
        check_positive("prior_weight", prior_weight)
        self.learner = learner
        self.prior_weight = prior_weight
        self._index: dict[Hashable, int] = {}
        self._sum = np.zeros(0)
        self._sumsq = np.zeros(0)
        self.n_seen_ = 0  # target samples in the statistics

    @property
    def _wrapped_model(self) -> base.Classifier:
        return self.learner

    @classmethod
    def _unit_test_params(cls):
        from .pa import PA, MulticlassPA

        yield {"learner": MulticlassPA()}
        yield {"learner": PA(), "prior_weight": 5.0}

    # ------------------------------------------------------------------ statistics
    @property
    def feature_names_in_(self) -> list:
        """Features in column order."""
        return list(self._index)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Current (mean, variance) per feature, in column order (prior included, floored)."""
        return _moments(self._sum, self._sumsq, self.n_seen_, self.prior_weight)

    # ------------------------------------------------------------------ dict path
    def _dict_row(self, x: dict) -> tuple[np.ndarray, list]:
        """Raw values over the known columns then the new keys of ``x``; the new keys."""
        try:
            vals = np.fromiter(x.values(), dtype=np.float64, count=len(x))
            finite = bool(np.isfinite(vals).all())
        except (TypeError, ValueError):
            finite = False
        if not finite:  # the package's messages, naming the key
            reject_values(x)
        index = self._index
        new = [k for k in x if k not in index]
        col = {k: len(index) + j for j, k in enumerate(new)}
        row = np.zeros(len(index) + len(new))
        row[[index[k] if k in index else col[k] for k in x]] = vals
        return row, new

    def _z_dict(self, x: dict) -> tuple[dict, np.ndarray, list]:
        row, new = self._dict_row(x)
        pad = len(new)
        S = np.concatenate([self._sum, np.zeros(pad)]) if pad else self._sum
        Q = np.concatenate([self._sumsq, np.zeros(pad)]) if pad else self._sumsq
        z = running_standardize(row, S, Q, self.n_seen_, self.prior_weight)
        keys = [*self._index, *new]
        return dict(zip(keys, z.tolist())), row, new

    def standardize_one(self, x: dict) -> dict:
        """The standardised features the learner would see for ``x`` now (nothing is learned)."""
        return self._z_dict(x)[0]

    def predict_one(self, x: dict, **kwargs: Any) -> Any:
        return self.learner.predict_one(self._z_dict(x)[0], **kwargs)

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict:
        return self.learner.predict_proba_one(self._z_dict(x)[0], **kwargs)

    def learn_one(self, x: dict, y: Any, **kwargs: Any) -> None:
        z, row, new = self._z_dict(x)
        self.learner.learn_one(z, y, **kwargs)
        # the raw sample enters the statistics only after it was learned
        self._add_columns(new)
        self._sum = self._sum + row
        self._sumsq = self._sumsq + row * row
        self.n_seen_ += 1

    def _add_columns(self, names: Iterable[Hashable]) -> None:
        for k in names:
            self._index[k] = len(self._index)
        pad = len(self._index) - self._sum.shape[0]
        if pad:
            self._sum = np.concatenate([self._sum, np.zeros(pad)])
            self._sumsq = np.concatenate([self._sumsq, np.zeros(pad)])

    def reset_weights(self) -> None:
        """Forwarded to the learner (for the drift hook); the statistics are kept."""
        if hasattr(self.learner, "reset_weights"):
            self.learner.reset_weights()

    # ------------------------------------------------------------------ array path
    def _check_X(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D array (n_samples, n_features), got shape {X.shape}")
        d = len(self._index)
        if X.shape[0] and d and X.shape[1] != d:
            raise ValueError(f"expected {d} features, got {X.shape[1]}")
        finite = np.isfinite(X).all(axis=1)
        if not finite.all():
            raise ValueError(f"X row {int(np.flatnonzero(~finite)[0])} contains NaN or infinite values")
        return X

    def _running(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """z of every row of X (row i standardised with the rows before it) and the sums
        after all rows; O(n d) with cumulative sums."""
        d = X.shape[1]
        S0 = self._sum if self._sum.shape[0] == d else np.zeros(d)
        Q0 = self._sumsq if self._sumsq.shape[0] == d else np.zeros(d)
        # cumsum adds sequentially, exactly as learn_one does, so both paths agree bit for bit
        S = np.cumsum(np.vstack([S0, X]), axis=0)
        Q = np.cumsum(np.vstack([Q0, X * X]), axis=0)
        c = (self.n_seen_ + np.arange(X.shape[0], dtype=np.float64))[:, None]
        return running_standardize(X, S[:-1], Q[:-1], c, self.prior_weight), S[-1], Q[-1]

    def standardize(self, X: np.ndarray) -> np.ndarray:
        """z of the rows of ``X`` as if they were streamed next, in order (nothing is learned)."""
        X = self._check_X(X)
        return self._running(X)[0]

    def prequential(self, X: np.ndarray, y: Iterable) -> np.ndarray:
        """Test-then-train over the rows of ``X`` in order; returns a bool array of mistakes.

        All z are computed at once (row i from the rows before it), then handed to the
        learner's own ``prequential`` when it has one, else streamed through its dict API.
        """
        X = self._check_X(X)
        ys = list(y)
        if len(ys) != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {len(ys)} labels")
        if X.shape[0] == 0:
            return np.zeros(0, dtype=bool)
        Z, S, Q = self._running(X)
        if not self._index:  # the first array names its columns by position
            self._add_columns(range(X.shape[1]))
        if hasattr(self.learner, "prequential"):
            mistakes = np.asarray(self.learner.prequential(Z, ys), dtype=bool)
        else:
            keys = list(self._index)
            mistakes = np.empty(X.shape[0], dtype=bool)
            for i, yi in enumerate(ys):
                z = dict(zip(keys, Z[i].tolist()))
                mistakes[i] = self.learner.predict_one(z) != yi
                self.learner.learn_one(z, yi)
        self._sum, self._sumsq = S, Q
        self.n_seen_ += X.shape[0]
        return mistakes
