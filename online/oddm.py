"""HomOTL-ODDM: multi-source OTL with online distribution discrepancy minimisation.

Du, Tan, Chen, Zhang & Wang, "Homogeneous Online Transfer Learning with Online Distribution
Discrepancy Minimization", ECAI 2020 (arXiv:1912.13226).

Offline, per source domain i (:meth:`ProjectedSource.fit`):

* a projection A_i (d x p) by JDA (:func:`fedotl.online.jda.jda`: MMD matrices, generalised
  eigenproblem, pseudo-label rounds) from the source data and a small unlabelled target slice;
* a multi-class PA-I source learner trained on the projected source data (averaged PA);
* the source mean and per-class means in the input space.

Online, for each target sample x (:class:`HomOTLODDM`):

* z_i = A_i^T x (scaled to unit norm with ``normalize=True``, as in the authors' code);
* 2n experts: the fixed source learner F_s,i(z_i) and a target multi-class PA-I learner
  F_t,i(z_i) per projected space; prediction argmax_k sum_i (u_i F_s,i + v_i F_t,i)_k with
  Hedge weights u, v (1/(2n) at the start, x beta^{mistake}, beta = sqrt(T)/(sqrt(T)+sqrt(ln 2n)));
* every ``update_every`` samples, the projections move away from the remaining discrepancy:

      A_i <- (I + mu d d^T + mu sum_k d_k d_k^T)^{-1} A_i,

  d = (source mean) - (running target mean), d_k the same for each class k whose target label
  has been revealed.  This is the closed-form minimiser of ||A - A_i||_F^2 + mu ||A^T d||^2 +
  mu sum_k ||A^T d_k||^2; it is applied through the Woodbury identity (an r x r solve, r <= K + 1).

Choices where the paper leaves room: expert mistakes are "y is not the unique top class"
(as for HomOTLMS); weights use cumulative mistakes (``horizon=None``: anytime T = t); the
source learners get a zero row for labels they never saw (finite, so the weighted score sum
stays defined).  Without sources the learner is a single multi-class PA-I on (normalised) x.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from .base import MulticlassOnlineClassifier
from .ensemble import strict_top
from .jda import jda
from .kernels import batched_pa_step, hedge_beta, hedge_weights, margin_pi
from .pa import MulticlassPA
from .sources import SourceClassifier, from_pa
from .validation import check_positive

__all__ = ["HomOTLODDM", "ProjectedSource", "oddm_projection_update"]


def oddm_projection_update(A: np.ndarray, D: np.ndarray, mu: float) -> np.ndarray:
    """(I + mu D D^T)^{-1} A for D = [d, d_1, ..., d_r] (columns), via Woodbury.

    (I + mu D D^T)^{-1} = I - D (I/mu + D^T D)^{-1} D^T.

    >>> A = np.eye(2); d = np.array([[1.0], [0.0]])
    >>> oddm_projection_update(A, d, mu=1.0)      # (I + d d^T)^{-1} = diag(1/2, 1)
    array([[0.5, 0. ],
           [0. , 1. ]])
    """
    if D.shape[1] == 0:
        return A.copy()
    G = np.eye(D.shape[1]) / mu + D.T @ D
    return A - D @ np.linalg.solve(G, D.T @ A)


def _rownorm(Z: np.ndarray) -> np.ndarray:
    n = np.sqrt(np.einsum("ij,ij->i", Z, Z))
    return Z / np.where(n > 0, n, 1.0)[:, None]


class ProjectedSource:
    """One source domain prepared for HomOTL-ODDM (see :meth:`fit`).

    Parameters
    ----------
    A
        Projection (d, p).
    classifier
        Fixed source learner over the p projected features.
    mean
        Source mean in the input space (d,).
    class_means
        Mapping label -> source class mean (d,).
    features
        Input feature names (positions when omitted).
    name
        Free-form label.
    """

    def __init__(
        self,
        A: np.ndarray,
        classifier: SourceClassifier,
        mean: np.ndarray,
        class_means: dict,
        features: Sequence[Hashable] | None = None,
        name: str = "",
    ):
        A = np.array(A, dtype=np.float64)
        if A.ndim != 2 or not np.isfinite(A).all():
            raise ValueError(f"A must be a finite (d, p) matrix, got shape {A.shape}")
        d, p = A.shape
        if not isinstance(classifier, SourceClassifier) or not classifier.is_linear or classifier.n_features != p:
            raise ValueError(f"classifier must be a linear SourceClassifier over {p} projected features")
        mean = np.array(mean, dtype=np.float64)
        if mean.shape != (d,):
            raise ValueError(f"mean must have shape ({d},)")
        self.A = A
        self.classifier = classifier
        self.mean = mean
        self.class_means = {k: np.array(v, dtype=np.float64) for k, v in class_means.items()}
        if any(v.shape != (d,) for v in self.class_means.values()):
            raise ValueError(f"class means must have shape ({d},)")
        self.features = tuple(features) if features is not None else None
        if self.features is not None and len(self.features) != d:
            raise ValueError(f"need {d} feature names")
        self.name = name

    @property
    def n_features(self) -> int:
        return self.A.shape[0]

    @property
    def n_components(self) -> int:
        return self.A.shape[1]

    @property
    def feature_names(self) -> tuple:
        return self.features if self.features is not None else tuple(range(self.n_features))

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name else ""
        return (
            f"ProjectedSource(n_features={self.n_features}, n_components={self.n_components}, "
            f"n_classes={self.classifier.n_classes}{name})"
        )

    @classmethod
    def fit(
        cls,
        Xs: np.ndarray,
        ys: Sequence[Hashable],
        Xt_unlabeled: np.ndarray,
        n_components: int = 20,
        lambda_: float = 1.0,
        n_iter: int = 10,
        C: float = 1.0,
        epochs: int = 5,
        seed: int = 0,
        normalize: bool = True,
        classes: Sequence[Hashable] | None = None,
        features: Sequence[Hashable] | None = None,
        name: str = "",
    ) -> ProjectedSource:
        """JDA projection + averaged multi-class PA-I on the projected source data.

        ``classes`` lists labels to give rows to besides the source's own (e.g. the target's
        label set); ``normalize`` must match the online learner's.
        """
        Xs = np.asarray(Xs, dtype=np.float64)
        ys = np.asarray(ys)
        res = jda(Xs, ys, Xt_unlabeled, n_components=n_components, lambda_=lambda_, n_iter=n_iter, normalize=normalize)
        Z = Xs @ res.A
        if normalize:
            Z = _rownorm(Z)
        labels = tuple(dict.fromkeys(list(classes or ()) + ys.tolist()))
        pa = MulticlassPA(variant="PA-I", C=C, average=True, classes=labels)
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(Z.shape[0])
            pa.partial_fit(Z[order], ys[order])
        clf = from_pa(pa, averaged=True)
        clf = SourceClassifier(clf.W, clf.b, classes=clf.classes)  # projected features are positional
        means = {c: Xs[ys == c].mean(axis=0) for c in dict.fromkeys(ys.tolist())}
        return cls(res.A, clf, Xs.mean(axis=0), means, features=features, name=name)


class HomOTLODDM(MulticlassOnlineClassifier):
    """HomOTL-ODDM (Du et al., ECAI 2020): Hedge over source and target PA-I learners in
    per-source JDA spaces whose projections are updated online.

    Parameters
    ----------
    sources
        Tuple of :class:`ProjectedSource` (same input features and projected dimension).
        ``None`` (or empty): a single multi-class PA-I on (normalised) x.
    C
        PA-I aggressiveness of the target learners.
    mu
        Strength of the online discrepancy update of the projections.  The update compounds
        (d is measured in the input space, so it does not shrink as A moves): the component of
        A along a persistent discrepancy d shrinks by 1/(1 + mu ||d||^2) at every update, and
        noisy early class means shrink useful directions too.  Scale mu to ||d||^2 of the data.
    update_every
        Update the projections every this many samples (10 in the authors' code).
    horizon
        Stream length T for beta; ``None``: anytime schedule.
    normalize
        Scale projected samples to unit norm.
    classes
        Labels known in advance.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Xs = rng.normal(size=(80, 4)); ys = np.where(Xs[:, 0] > 0, "up", "down")
    >>> Xt = rng.normal(size=(30, 4)) + 0.5
    >>> src = ProjectedSource.fit(Xs, ys, Xt, n_components=2, n_iter=1)
    >>> model = HomOTLODDM((src,), horizon=30)
    >>> model.n_experts
    2
    >>> mistakes = model.prequential(Xt, np.where(Xt[:, 0] > 0.5, "up", "down"))
    >>> mistakes.shape
    (30,)
    """

    def __init__(
        self,
        sources: tuple | None = None,
        C: float = 1.0,
        mu: float = 0.1,
        update_every: int = 10,
        horizon: int | None = None,
        normalize: bool = True,
        classes: tuple | None = None,
    ):
        self.sources = sources
        self.C = C
        self.mu = mu
        self.update_every = update_every
        self.horizon = horizon
        self.normalize = normalize
        self.classes = classes
        check_positive("C", C)
        check_positive("mu", mu)
        if not isinstance(update_every, (int, np.integer)) or update_every < 1:
            raise ValueError(f"update_every must be a positive integer, got {update_every!r}")
        if horizon is not None and (not isinstance(horizon, (int, np.integer)) or horizon < 1):
            raise ValueError(f"horizon must be a positive integer or None, got {horizon!r}")
        sources = tuple(sources or ())
        for s in sources:
            if not isinstance(s, ProjectedSource):
                raise TypeError(f"sources must be ProjectedSource objects, got {type(s).__name__}")
        if sources:
            s0 = sources[0]
            for s in sources[1:]:
                if s.feature_names != s0.feature_names or s.n_components != s0.n_components:
                    raise ValueError("all sources need the same input features and projected dimension")
            self._init_features(s0.feature_names)
        else:
            self._init_features()
        labels = list(classes or ())
        for s in sources:
            labels.extend(s.classifier.classes)
        self._init_classes(labels)
        self._n = n = len(sources)
        self._identity = n == 0
        d, K = self._d, len(self._classes)
        if n:
            p = sources[0].n_components
            self._A = np.stack([s.A for s in sources])  # (n, d, p)
            Ws = np.zeros((n, K, p))
            Bs = np.zeros((n, K))
            for i, s in enumerate(sources):
                Ws[i], Bs[i] = s.classifier.aligned(self._classes, 0.0)
            self._Ws, self._Bs = Ws, Bs
            self._mu_s = np.stack([s.mean for s in sources])
            self._Scm = np.zeros((n, K, d))
            self._Smask = np.zeros((n, K), dtype=bool)
            for i, s in enumerate(sources):
                for label, m in s.class_means.items():
                    k = self._class_index.get(label)
                    if k is not None:
                        self._Scm[i, k], self._Smask[i, k] = m, True
        else:
            self._A = np.eye(d)[None]  # (1, d, d)
            self._Ws = np.zeros((0, K, d))
            self._Bs = np.zeros((0, K))
        self._Wt = np.zeros((max(n, 1), K, self._A.shape[2]))
        self._mu_t = np.zeros(d)
        self._Tcm = np.zeros((K, d))
        self._Tn = np.zeros(K)
        self._nt = 0
        self.reset_weights()

    @property
    def n_experts(self) -> int:
        return self._n + self._Wt.shape[0]

    def reset_weights(self) -> None:
        N = self.n_experts
        self._L = np.zeros(N)
        self._u = np.full(N, 1.0 / N)
        self._t = 0

    @property
    def weights_(self) -> np.ndarray:
        """Hedge weights: source learners first, then target learners."""
        return self._u.copy()

    @property
    def projections_(self) -> np.ndarray:
        """Current projections (n, d, p), a copy."""
        return self._A.copy()

    # ------------------------------------------------------------------ shape changes
    def _resize(self, d: int) -> None:
        pad = d - self._A.shape[1]
        if self._identity:
            self._A = np.eye(d)[None]
            self._Wt = np.pad(self._Wt, ((0, 0), (0, 0), (0, pad)))
        else:
            # a feature the sources never saw: no effect on the projections, source mean 0
            self._A = np.pad(self._A, ((0, 0), (0, pad), (0, 0)))
            self._mu_s = np.pad(self._mu_s, ((0, 0), (0, pad)))
            self._Scm = np.pad(self._Scm, ((0, 0), (0, 0), (0, pad)))
        self._mu_t = np.pad(self._mu_t, (0, pad))
        self._Tcm = np.pad(self._Tcm, ((0, 0), (0, pad)))

    def _add_class(self) -> None:
        self._Ws = np.pad(self._Ws, ((0, 0), (0, 1), (0, 0)))
        self._Bs = np.pad(self._Bs, ((0, 0), (0, 1)))
        self._Wt = np.pad(self._Wt, ((0, 0), (0, 1), (0, 0)))
        self._Tcm = np.pad(self._Tcm, ((0, 1), (0, 0)))
        self._Tn = np.append(self._Tn, 0.0)
        if not self._identity:
            self._Scm = np.pad(self._Scm, ((0, 0), (0, 1), (0, 0)))
            self._Smask = np.pad(self._Smask, ((0, 0), (0, 1)))

    # ------------------------------------------------------------------ scores
    def _project(self, x: np.ndarray) -> np.ndarray:
        Z = np.einsum("d,ndp->np", x, self._A)
        return _rownorm(Z) if self.normalize else Z

    def _expert_scores(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Ft = np.einsum("nkp,np->nk", self._Wt, Z)
        if self._n:
            Fs = np.einsum("nkp,np->nk", self._Ws, Z) + self._Bs
            return np.concatenate([Fs, Ft]), Ft
        return Ft, Ft

    def _predict_enc(self, x: np.ndarray) -> int:
        if not self._classes:
            return -1
        F, _ = self._expert_scores(self._project(x))
        return int((self._u @ F).argmax())

    def _proba_enc(self, x: np.ndarray) -> np.ndarray:
        if not self._classes:
            return np.zeros(0)
        F, _ = self._expert_scores(self._project(x))
        p = margin_pi(self._u @ F)
        return p / p.sum()

    # ------------------------------------------------------------------ learning
    def _learn_enc(self, x: np.ndarray, sq: float, yi: int) -> None:
        self._predict_learn_enc(x, sq, yi)

    def _predict_learn_enc(self, x: np.ndarray, sq: float, yi: int) -> int:
        Z = self._project(x)
        F, Ft = self._expert_scores(Z)
        pred = int((self._u @ F).argmax())
        # Hedge over the 2n experts
        self._t += 1
        self._L += ~strict_top(F, yi)
        self._u = hedge_weights(self._L, hedge_beta(self.horizon, self.n_experts, self._t))
        # PA-I on every projected space (same label, different inputs)
        nt = Z.shape[0]
        batched_pa_step(self._Wt, Z, np.full(nt, yi), Ft.copy(), np.einsum("ij,ij->i", Z, Z), 1, self.C)
        # running target statistics (all samples; classes as their labels are revealed)
        self._nt += 1
        self._mu_t += (x - self._mu_t) / self._nt
        self._Tn[yi] += 1
        self._Tcm[yi] += (x - self._Tcm[yi]) / self._Tn[yi]
        if self._n and self._t % self.update_every == 0:
            self._update_projections()
        return pred

    def _update_projections(self) -> None:
        revealed = self._Tn > 0
        for i in range(self._n):
            ks = np.flatnonzero(revealed & self._Smask[i])
            D = np.column_stack([self._mu_s[i] - self._mu_t] + [self._Scm[i, k] - self._Tcm[k] for k in ks])
            self._A[i] = oddm_projection_update(self._A[i], D, self.mu)

    @classmethod
    def _unit_test_params(cls):
        yield {}
