"""Source classifiers: fixed linear scorers ``s(x) = W phi(x) + b`` with labelled rows.

A :class:`SourceClassifier` is what every transfer learner consumes.  It holds one score row
per source class; multi-class OTL learners align those rows with their own classes *by label
value* (a source class the target never uses is kept as a row; a target label the source does
not know gets a score of ``-inf`` from that source).  Binary learners use the score difference
``s_pos(x) - s_neg(x)`` where the positive class is ``True``/``1`` if present, else the second
class (scikit-learn's convention).

``phi`` is the identity for linear sources.  The torch adapter can keep a frozen feature
extractor as ``phi``; such a source still gives scores for every ensemble learner, but the
learners that need source *weights* in the input space (PAIO, HetOTL) reject it.

Adapters:

* :func:`from_sklearn` -- any fitted linear model with ``coef_``, ``intercept_``, ``classes_``;
* :func:`from_pa` / :func:`train_averaged_pa` -- the averaged PA of :mod:`fedotl.online.pa`;
* :func:`from_torch` -- an ``nn.Linear`` head over a frozen feature extractor (torch is imported
  only here, lazily).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "SourceClassifier",
    "from_pa",
    "from_sklearn",
    "from_torch",
    "train_averaged_pa",
]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


class SourceClassifier:
    """A fixed source classifier producing one score per class.

    Parameters
    ----------
    W
        Weights, shape (K, e): one row per class.
    b
        Biases, shape (K,); zeros if omitted.
    classes
        Class label of each row; ``range(K)`` if omitted.
    features
        Names of the input features (dict keys); positions ``0..n_features-1`` if omitted.
    transform
        Optional frozen feature map ``phi`` from the n_features inputs to the e columns of W.
    n_features
        Input width; required with ``transform`` (defaults to ``W.shape[1]`` otherwise).
    name
        Free-form label shown in ``repr``.

    Examples
    --------
    >>> src = SourceClassifier([[1.0, 0.0], [0.0, 1.0]], classes=("walk", "run"))
    >>> src.scores(np.array([0.2, 0.9]))
    array([0.2, 0.9])
    >>> src.predict(np.array([[0.2, 0.9], [1.0, 0.0]])).tolist()
    ['run', 'walk']
    """

    def __init__(
        self,
        W: Any,
        b: Any = None,
        classes: Sequence[Hashable] | None = None,
        features: Sequence[Hashable] | None = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        n_features: int | None = None,
        name: str = "",
    ):
        W = np.asarray(W, dtype=np.float64)
        if W.ndim != 2 or W.shape[0] == 0:
            raise ValueError(f"W must have shape (n_classes, n_columns), got {W.shape}")
        if not np.isfinite(W).all():
            raise ValueError("W contains NaN or infinite values")
        K = W.shape[0]
        b = np.zeros(K) if b is None else np.asarray(b, dtype=np.float64).reshape(-1)
        if b.shape != (K,) or not np.isfinite(b).all():
            raise ValueError(f"b must be {K} finite values, got shape {b.shape}")
        classes = tuple(range(K)) if classes is None else tuple(
            c.item() if isinstance(c, np.generic) else c for c in classes
        )
        if len(classes) != K or len(set(classes)) != K:
            raise ValueError(f"need {K} distinct class labels, got {classes!r}")
        if transform is None:
            if n_features is not None and n_features != W.shape[1]:
                raise ValueError(f"n_features={n_features} but W has {W.shape[1]} columns")
            n_features = W.shape[1]
        elif n_features is None:
            raise ValueError("n_features is required when a transform is given")
        if features is not None:
            features = tuple(features)
            if len(features) != n_features or len(set(features)) != n_features:
                raise ValueError(f"need {n_features} distinct feature names, got {len(features)}")
        self.W = _readonly(W)
        self.b = _readonly(b)
        self.classes = classes
        self.features = features
        self.transform = transform
        self.n_features = int(n_features)
        self.name = name

    # ------------------------------------------------------------------ info
    @property
    def n_classes(self) -> int:
        return self.W.shape[0]

    @property
    def is_linear(self) -> bool:
        """True when the scores are linear in the inputs (no transform)."""
        return self.transform is None

    @property
    def feature_names(self) -> tuple:
        return self.features if self.features is not None else tuple(range(self.n_features))

    def __repr__(self) -> str:
        kind = "linear" if self.is_linear else "transform"
        name = f", name={self.name!r}" if self.name else ""
        return (
            f"SourceClassifier(n_classes={self.n_classes}, n_features={self.n_features}, "
            f"{kind}{name})"
        )

    # ------------------------------------------------------------------ scoring
    def _phi(self, X: np.ndarray) -> np.ndarray:
        return X if self.transform is None else np.asarray(self.transform(X), dtype=np.float64)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Scores of one sample, shape (K,)."""
        return self.W @ self._phi(np.asarray(x, dtype=np.float64)) + self.b

    def scores_batch(self, X: np.ndarray) -> np.ndarray:
        """Scores of many samples, shape (n, K)."""
        return self._phi(np.asarray(X, dtype=np.float64)) @ self.W.T + self.b

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """scikit-learn style: (n,) ``s_pos - s_neg`` for two classes, else (n, K)."""
        S = self.scores_batch(X)
        if self.n_classes == 2:
            pos = self.positive_index()
            return S[:, pos] - S[:, 1 - pos]
        return S

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels (first class wins ties)."""
        idx = self.scores_batch(X).argmax(axis=1)
        return np.asarray([self.classes[i] for i in idx])

    # ------------------------------------------------------------------ alignment
    def positive_index(self) -> int:
        """Row of the positive class for binary use: ``True``/``1`` if present, else row 1."""
        if self.n_classes != 2:
            raise ValueError(f"a binary learner needs a 2-class source, got {self.n_classes} classes")
        for i, c in enumerate(self.classes):
            if c is True or (isinstance(c, (int, float)) and not isinstance(c, bool) and c == 1):
                return i
        return 1

    def binary_weights(self) -> tuple[np.ndarray, float]:
        """(v, c) with ``v . x + c = s_pos(x) - s_neg(x)``; linear sources only."""
        self.require_linear("binary_weights")
        p = self.positive_index()
        return self.W[p] - self.W[1 - p], float(self.b[p] - self.b[1 - p])

    def binary_score(self, x: np.ndarray) -> float:
        s = self.scores(x)
        p = self.positive_index()
        return float(s[p] - s[1 - p])

    def aligned(self, classes: Sequence[Hashable], missing_bias: float) -> tuple[np.ndarray, np.ndarray]:
        """(W, b) with rows in the order of ``classes``; unknown classes get W = 0, b = missing_bias."""
        index = {c: i for i, c in enumerate(self.classes)}
        W = np.zeros((len(classes), self.W.shape[1]))
        b = np.full(len(classes), float(missing_bias))
        for k, c in enumerate(classes):
            i = index.get(c)
            if i is not None:
                W[k] = self.W[i]
                b[k] = self.b[i]
        return W, b

    def row_map(self, classes: Sequence[Hashable]) -> np.ndarray:
        """For each of ``classes``, the source row holding it, or -1."""
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index.get(c, -1) for c in classes], dtype=np.intp)

    def require_linear(self, what: str) -> None:
        if not self.is_linear:
            raise ValueError(f"{what} needs a linear source (weights in the input space); this one has a transform")


# ---------------------------------------------------------------------- adapters
def _two_rows(w: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    # binary score f = w.x + c as the centred pair of rows (-f/2, f/2): the multi-class
    # margin of the positive class is then exactly f
    return np.vstack([-0.5 * w, 0.5 * w]), np.array([-0.5 * c, 0.5 * c])


def from_sklearn(model: Any, features: Sequence[Hashable] | None = None, name: str = "") -> SourceClassifier:
    """Wrap a fitted scikit-learn linear classifier (``coef_``, ``intercept_``, ``classes_``).

    Binary models (``coef_`` with one row) become two centred rows (-f/2, f/2), so that
    ``decision_function`` (positive minus negative row) equals the model's.

    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 0.9], [0.9, 0.2]])
    >>> lr = LogisticRegression().fit(X, ["a", "b", "a", "b"])
    >>> src = from_sklearn(lr)
    >>> bool(np.allclose(src.decision_function(X), lr.decision_function(X)))
    True
    """
    try:
        coef = np.asarray(model.coef_, dtype=np.float64)
        classes = list(model.classes_)
    except AttributeError as e:
        raise ValueError(f"{type(model).__name__} is not a fitted linear classifier: {e}") from None
    intercept = np.broadcast_to(np.asarray(getattr(model, "intercept_", 0.0), dtype=np.float64), (coef.shape[0],))
    if coef.ndim == 1:
        coef = coef[None, :]
    if features is None and hasattr(model, "feature_names_in_"):
        features = list(model.feature_names_in_)
    if coef.shape[0] == 1:
        if len(classes) != 2:
            raise ValueError(f"one coefficient row but {len(classes)} classes")
        W, b = _two_rows(coef[0], float(intercept[0]))
    else:
        W, b = coef, np.array(intercept)
    return SourceClassifier(W, b, classes=classes, features=features, name=name)


def from_pa(
    model: Any,
    averaged: bool = True,
    classes: Sequence[Hashable] | None = None,
    name: str = "",
) -> SourceClassifier:
    """Freeze a (preferably averaged) :class:`~fedotl.online.pa.PA` or :class:`~fedotl.online.pa.MulticlassPA`.

    For a binary PA the classes default to ``(False, True)``.
    """
    from .pa import PA, MulticlassPA

    if isinstance(model, MulticlassPA):
        W, b = model.averaged_weights() if averaged else (model.weights_, model.intercept_)
        if not model.classes_:
            raise ValueError("the PA model has not seen any class yet")
        return SourceClassifier(
            W, b, classes=classes or model.classes_, features=model.feature_names_in_, name=name
        )
    if isinstance(model, PA):
        w, c = model.averaged_weights() if averaged else (model.weights_, model.intercept_)
        W, b = _two_rows(w, c)
        return SourceClassifier(
            W, b, classes=classes or (False, True), features=model.feature_names_in_, name=name
        )
    raise ValueError(f"expected PA or MulticlassPA, got {type(model).__name__}")


def train_averaged_pa(
    X: np.ndarray,
    y: Sequence[Hashable],
    variant: str = "PA-I",
    C: float = 1.0,
    fit_intercept: bool = True,
    epochs: int = 5,
    seed: int = 0,
    classes: Sequence[Hashable] | None = None,
    features: Sequence[Hashable] | None = None,
    name: str = "",
) -> SourceClassifier:
    """Train an averaged multi-class PA offline (``epochs`` shuffled passes) and freeze it.

    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-2, 1, (50, 3)), rng.normal(2, 1, (50, 3))])
    >>> y = [0] * 50 + [1] * 50
    >>> src = train_averaged_pa(X, y, epochs=2)
    >>> float((src.predict(X) == np.array(y)).mean()) > 0.95
    True
    """
    from .pa import MulticlassPA

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    model = MulticlassPA(
        variant=variant,
        C=C,
        fit_intercept=fit_intercept,
        average=True,
        classes=tuple(classes) if classes is not None else tuple(dict.fromkeys(y.tolist())),
    )
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(X.shape[0])
        model.partial_fit(X[order], y[order])
    src = from_pa(model, averaged=True, name=name)
    if features is not None:
        src = SourceClassifier(src.W, src.b, classes=src.classes, features=features, name=name)
    return src


class TorchFeatureFn:
    """numpy -> numpy wrapper around a frozen torch feature extractor (a private snapshot, eval mode)."""

    def __init__(self, module: Any):
        import torch

        self.module = copy.deepcopy(module)
        if isinstance(self.module, torch.nn.Module):
            self.module.eval()
            params = list(self.module.parameters())
            self.dtype = params[0].dtype if params else torch.get_default_dtype()
        else:
            self.dtype = torch.get_default_dtype()

    def __call__(self, X: np.ndarray) -> np.ndarray:
        import torch

        X = np.asarray(X)
        single = X.ndim == 1
        t = torch.as_tensor(X[None, :] if single else X, dtype=self.dtype)
        with torch.no_grad():
            out = self.module(t)
        out = out.detach().cpu().double().numpy()
        return out[0] if single else out


def from_torch(
    head: Any,
    feature_fn: Any | None = None,
    classes: Sequence[Hashable] | None = None,
    n_features: int | None = None,
    features: Sequence[Hashable] | None = None,
    name: str = "",
) -> SourceClassifier:
    """Source from a torch ``nn.Linear`` head over a frozen feature extractor.

    ``feature_fn`` maps a float tensor (n, n_features) to the head's inputs (n, e); it is
    deep-copied and put in eval mode (the source must not change when the model trains on).
    Without ``feature_fn`` the head is applied to the inputs directly (e.g. to pre-computed
    embeddings).  ``n_features`` is inferred from the first ``nn.Linear`` of ``feature_fn``
    when omitted.
    """
    import torch

    if not isinstance(head, torch.nn.Linear):
        raise TypeError(f"head must be a torch.nn.Linear, got {type(head).__name__}")
    W = head.weight.detach().cpu().double().numpy()
    b = head.bias.detach().cpu().double().numpy() if head.bias is not None else None
    transform = None
    if feature_fn is not None:
        if n_features is None and isinstance(feature_fn, torch.nn.Module):
            first = next((m for m in feature_fn.modules() if isinstance(m, torch.nn.Linear)), None)
            if first is not None:
                n_features = first.in_features
        if n_features is None:
            raise ValueError("n_features is required: it cannot be inferred from feature_fn")
        transform = TorchFeatureFn(feature_fn)
    return SourceClassifier(
        W, b, classes=classes, features=features, transform=transform, n_features=n_features, name=name
    )
