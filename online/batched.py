"""Many independent learners advanced in lockstep, one per simulated device.

Device i owns its own weights; at each step every device receives one sample (or sits out,
see ``active``) and does exactly what the corresponding single learner does on it:

* :class:`BatchedPA`        -- D multi-class PA / PA-I / PA-II learners, weights (D, K, d);
* :class:`BatchedHomOTLMS`  -- D HomOTLMS ensembles sharing the same fixed sources, each with
  its own target PA-I learner (D, K, d) and Hedge weights (D, n + 1).

Everything is vectorised over devices with numpy: one batched mat-vec for the scores, one
scatter for the two updated rows per device (:func:`fedotl.online.kernels.batched_pa_step`).
The work per step is dominated by reading the (D, K, d) weights once, so ``dtype=np.float32``
roughly halves the step time; the default is float64, which matches the single learners to
rounding error.

Labels are class *indices* ``0..K-1`` of ``classes`` (use :meth:`encode` for labels); the set
of classes is fixed at construction (unlike the single learners, no row is added online).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .kernels import batched_pa_step, hedge_beta, hedge_weights
from .sources import SourceClassifier
from .validation import variant_code

__all__ = ["BatchedHomOTLMS", "BatchedPA"]


class _Batched:
    """Device bookkeeping, validation and the optional split of devices over threads."""

    def _setup(
        self, n_devices: int, n_features: int, classes: Sequence[Hashable], dtype: type, n_threads: int
    ) -> None:
        if n_devices < 1 or n_features < 1:
            raise ValueError("n_devices and n_features must be positive")
        if n_threads < 1:
            raise ValueError("n_threads must be positive")
        self.classes = tuple(classes)
        if len(self.classes) < 1 or len(set(self.classes)) != len(self.classes):
            raise ValueError("classes must be a non-empty sequence of distinct labels")
        self.n_devices = n_devices
        self.n_features = n_features
        self.n_threads = n_threads
        self.dtype = np.dtype(dtype)
        self._index = {c: i for i, c in enumerate(self.classes)}
        bounds = np.linspace(0, n_devices, min(n_threads, n_devices) + 1).astype(int)
        self._ranges = [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        self._pool: ThreadPoolExecutor | None = None

    def _zeros(self, shape: tuple) -> np.ndarray:
        a = np.zeros(shape, dtype=self.dtype)
        a.fill(0)  # touch the pages now, not in the middle of the first steps
        return a

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_pool"] = None  # thread pools do not pickle
        return state

    def _run(self, fn: Callable[[int, int], None]) -> None:
        """Apply ``fn(a, b)`` to each device range; ranges run in parallel threads (numpy
        releases the GIL in the heavy kernels, and the ranges share no state)."""
        if len(self._ranges) == 1:
            fn(*self._ranges[0])
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(len(self._ranges))
        for f in [self._pool.submit(fn, a, b) for a, b in self._ranges]:
            f.result()

    def encode(self, labels: Sequence[Hashable]) -> np.ndarray:
        """Class indices of ``labels`` (``ValueError`` for a label not in ``classes``)."""
        try:
            return np.array([self._index[c] for c in labels], dtype=np.intp)
        except KeyError as e:
            raise ValueError(f"unknown label {e.args[0]!r}; classes are fixed: {self.classes}") from None

    def decode(self, idx: np.ndarray) -> list:
        return [self.classes[i] for i in idx]

    def _check(self, X: np.ndarray, y: np.ndarray | None, active: np.ndarray | None):
        X = np.asarray(X, dtype=self.dtype)
        if X.shape != (self.n_devices, self.n_features):
            raise ValueError(f"X must have shape {(self.n_devices, self.n_features)}, got {X.shape}")
        sq = np.einsum("ij,ij->i", X, X)
        if not np.isfinite(sq).all():
            bad = int(np.flatnonzero(~np.isfinite(sq))[0])
            raise ValueError(f"X row {bad} (device {bad}) contains NaN or infinite values")
        if y is not None:
            y = np.asarray(y)
            if y.shape != (self.n_devices,) or not np.issubdtype(y.dtype, np.integer):
                raise ValueError(f"y must be {self.n_devices} integer class indices, got {y.shape} {y.dtype}")
            if y.size and (y.min() < 0 or y.max() >= len(self.classes)):
                raise ValueError(f"class indices must be in [0, {len(self.classes)})")
        if active is not None:
            active = np.asarray(active, dtype=bool)
            if active.shape != (self.n_devices,):
                raise ValueError(f"active must have shape {(self.n_devices,)}")
        return X, sq, y, active


class BatchedPA(_Batched):
    """D independent multi-class PA learners (Crammer et al. 2006, multi-class), stepped together.

    Device i is equivalent to ``MulticlassPA(variant, C, fit_intercept, classes=classes)`` fed
    the i-th rows.  ``n_threads > 1`` splits the devices over that many threads.

    Examples
    --------
    >>> import numpy as np
    >>> engine = BatchedPA(n_devices=2, n_features=2, classes=("a", "b"))
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> engine.step(X, engine.encode(["a", "b"])).tolist()   # predictions before learning
    [0, 0]
    >>> engine.weights_[1]
    array([[ 0.  , -0.25],
           [ 0.  ,  0.25]])
    """

    def __init__(
        self,
        n_devices: int,
        n_features: int,
        classes: Sequence[Hashable],
        variant: str = "PA-I",
        C: float = 1.0,
        fit_intercept: bool = False,
        dtype: type = np.float64,
        n_threads: int = 1,
    ):
        self._setup(n_devices, n_features, classes, dtype, n_threads)
        self.variant, self.C, self.fit_intercept = variant, C, fit_intercept
        self._code = variant_code(variant)
        K = len(self.classes)
        self.W = self._zeros((n_devices, K, n_features))
        self.b = self._zeros((n_devices, K)) if fit_intercept else None

    @property
    def weights_(self) -> np.ndarray:
        return self.W.copy()

    def _scores(self, X: np.ndarray, a: int, b: int) -> np.ndarray:
        F = np.einsum("dkf,df->dk", self.W[a:b], X[a:b])
        if self.b is not None:
            F += self.b[a:b]
        return F

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class indices predicted by each device (no learning)."""
        X, _, _, _ = self._check(X, None, None)
        pred = np.empty(self.n_devices, dtype=np.intp)

        def run(a: int, b: int) -> None:
            pred[a:b] = self._scores(X, a, b).argmax(axis=1)

        self._run(run)
        return pred

    def step(self, X: np.ndarray, y: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        """Prequential step: predict every device's row, then learn it; returns predictions.

        ``active`` (bool, D) marks devices that have a sample this step; the others only predict.
        """
        X, sq, y, active = self._check(X, y, active)
        pred = np.empty(self.n_devices, dtype=np.intp)

        def run(a: int, b: int) -> None:
            F = self._scores(X, a, b)
            pred[a:b] = F.argmax(axis=1)
            batched_pa_step(
                self.W[a:b], X[a:b], y[a:b], F, sq[a:b], self._code, self.C,
                None if self.b is None else self.b[a:b],
                None if active is None else active[a:b],
            )

        self._run(run)
        return pred

    # ------------------------------------------------------------------ a subset of devices
    def _rows(self, rows: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(rows, dtype=np.intp)
        X = np.asarray(X, dtype=self.dtype)
        if rows.ndim != 1 or X.shape != (len(rows), self.n_features):
            raise ValueError(f"expected rows (n,) and X (n, {self.n_features}), got {rows.shape} and {X.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_devices):
            raise ValueError(f"device rows must be in [0, {self.n_devices})")
        return rows, X

    def scores_rows(self, rows: np.ndarray, X: np.ndarray) -> np.ndarray:
        """(n, K) class scores of device ``rows[i]`` on ``X[i]``: only those devices' work.

        >>> engine = BatchedPA(n_devices=3, n_features=1, classes=(0, 1))
        >>> engine.learn_rows(np.array([2]), np.array([[1.0]]), np.array([1]))
        >>> engine.scores_rows(np.array([0, 2]), np.array([[1.0], [1.0]])).tolist()
        [[0.0, 0.0], [-0.5, 0.5]]
        """
        rows, X = self._rows(rows, X)
        F = np.einsum("nkf,nf->nk", self.W[rows], X)
        if self.b is not None:
            F += self.b[rows]
        return F

    def learn_rows(self, rows: np.ndarray, X: np.ndarray, y: np.ndarray) -> None:
        """One PA step of device ``rows[i]`` on ``(X[i], y[i])``; the rows must be distinct."""
        rows, X = self._rows(rows, X)
        y = np.asarray(y, dtype=np.intp)
        if y.shape != rows.shape or (y.size and (y.min() < 0 or y.max() >= len(self.classes))):
            raise ValueError(f"y must be {len(rows)} class indices in [0, {len(self.classes)})")
        if len(np.unique(rows)) != len(rows):
            raise ValueError("learn_rows needs distinct device rows (one step per device)")
        W = self.W[rows]
        b = None if self.b is None else self.b[rows]
        F = np.einsum("nkf,nf->nk", W, X)
        if b is not None:
            F += b
        batched_pa_step(W, X, y, F, np.einsum("nf,nf->n", X, X), self._code, self.C, b)
        self.W[rows] = W
        if b is not None:
            self.b[rows] = b


class BatchedHomOTLMS(_Batched):
    """D HomOTLMS ensembles (Wu et al., TKDE 2017) over shared fixed sources, stepped together.

    Device i is equivalent to ``HomOTLMS(sources, C, horizon, classes=classes)`` fed the i-th
    rows (sources must be linear and their classes a subset of ``classes``).
    """

    def __init__(
        self,
        n_devices: int,
        n_features: int,
        sources: Sequence[SourceClassifier],
        classes: Sequence[Hashable],
        C: float = 1.0,
        horizon: int | None = None,
        dtype: type = np.float64,
        n_threads: int = 1,
    ):
        self._setup(n_devices, n_features, classes, dtype, n_threads)
        self.C, self.horizon = C, horizon
        K = len(self.classes)
        for s in sources:
            s.require_linear("BatchedHomOTLMS")
            if s.n_features != n_features:
                raise ValueError(f"source has {s.n_features} features, expected {n_features}")
            missing = set(s.classes) - set(self.classes)
            if missing:
                raise ValueError(f"source classes {sorted(missing, key=repr)} are not in classes")
        self.n_sources = n = len(sources)
        V = np.zeros((n, K, n_features))
        Vb = np.zeros((n, K))
        for i, s in enumerate(sources):
            V[i], Vb[i] = s.aligned(self.classes, -np.inf)
        self._V = V.reshape(n * K, n_features).astype(self.dtype)
        self._Vb = Vb.reshape(n * K).astype(self.dtype)
        self.W = self._zeros((n_devices, K, n_features))
        self.reset_weights()

    def reset_weights(self, devices: np.ndarray | None = None) -> None:
        """Reset Hedge state (all devices, or the boolean/int selection ``devices``)."""
        N = self.n_sources + 1
        if devices is None:
            self.L = np.zeros((self.n_devices, N))
            self.u = np.full((self.n_devices, N), 1.0 / N)
            self.t = np.zeros(self.n_devices, dtype=np.int64)
        else:
            self.L[devices] = 0.0
            self.u[devices] = 1.0 / N
            self.t[devices] = 0

    def _scores(self, X: np.ndarray, a: int, b: int) -> np.ndarray:
        K = len(self.classes)
        Fs = (X[a:b] @ self._V.T + self._Vb).reshape(b - a, self.n_sources, K)
        Ft = np.einsum("dkf,df->dk", self.W[a:b], X[a:b])
        return np.concatenate([Fs, Ft[:, None, :]], axis=1)  # (b - a, N, K)

    def _vote(self, F: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mask = F == F.max(axis=2, keepdims=True)
        cnt = mask.sum(axis=2)
        votes = np.einsum("dn,dnk->dk", self.u[a:b] / cnt, mask)
        return votes, mask, cnt

    def predict(self, X: np.ndarray) -> np.ndarray:
        X, _, _, _ = self._check(X, None, None)
        pred = np.empty(self.n_devices, dtype=np.intp)

        def run(a: int, b: int) -> None:
            pred[a:b] = self._vote(self._scores(X, a, b), a, b)[0].argmax(axis=1)

        self._run(run)
        return pred

    def step(self, X: np.ndarray, y: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        """Prequential step for every device; returns the ensembles' predictions."""
        X, sq, y, active = self._check(X, y, active)
        pred = np.empty(self.n_devices, dtype=np.intp)
        N = self.n_sources + 1

        def run(a: int, b: int) -> None:
            F = self._scores(X, a, b)
            votes, mask, cnt = self._vote(F, a, b)
            pred[a:b] = votes.argmax(axis=1)
            ya = y[a:b]
            z = ~mask[np.arange(b - a), :, ya]  # (devices, N): expert erred (y not among its top classes, HomOTLMS.hedge_mistakes)
            act = None if active is None else active[a:b]
            if act is not None:
                z &= act[:, None]
                self.t[a:b] += act
            else:
                self.t[a:b] += 1
            self.L[a:b] += z
            if self.horizon is not None:
                beta = np.full(b - a, hedge_beta(self.horizon, N, 1))
            else:
                beta = np.array([hedge_beta(None, N, int(t)) for t in np.maximum(self.t[a:b], 1)])
            self.u[a:b] = hedge_weights(self.L[a:b], beta[:, None])
            Ft = np.ascontiguousarray(F[:, -1, :])
            batched_pa_step(self.W[a:b], X[a:b], ya, Ft, sq[a:b], 1, self.C, None, act)

        self._run(run)
        return pred
