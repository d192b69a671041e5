"""HomOTLMS: homogeneous online transfer learning from multiple sources (Hedge).

Wu, Wu, Zhou, Tan, Xu, Yan & Hao, "Online Transfer Learning with Multiple Homogeneous or
Heterogeneous Sources", IEEE TKDE 29(7), 2017 (HomOTLMS).

n fixed source classifiers v_1..v_n and a target PA-I learner w form n + 1 experts:

* weights     u_i = 1/(n+1) at the start, u_i <- u_i beta^{z_i} (then normalised),
              z_i = [y_t f_i(x_t) < 0], beta = sqrt(T) / (sqrt(T) + sqrt(ln(n+1)))
* prediction  weighted majority vote of the experts' predicted labels
* target      PA-I update of w (Crammer et al. 2006), multi-class form

Hedge is scale-free, so the weights are kept as ``beta ** (L_i - min L)`` / sum over the
cumulative mistake counts L_i: the same numbers as the multiplicative rule, without underflow.
``horizon=None`` (T unknown) uses the anytime schedule T = t, the current round.

Mistakes follow the authors' reference code, z = [y f < 0]: an expert that scores 0 (the
untrained target on step 1) abstains and is not penalised.  (The rule z = [y f <= 0] would
penalise it, and cost the target learner a factor beta before it has seen a label.)  The
multi-class reading (:func:`hedge_mistakes`): expert i errs (z_i = 1) when another class scores
strictly above y, i.e. y is not among its top classes; a tie at the top that includes y is the
binary f = 0 and is not a mistake.  With two classes and scores (-f/2, f/2) this is y f < 0
exactly.  An expert votes for its top class, splitting its weight over ties (the binary
sign(0) = 0 abstention).  Source classes are aligned with target labels by value; a source never
votes for, and is always wrong on, a label it does not know (its score is -inf).
"""

from __future__ import annotations

import numpy as np

from .ensemble import SourceEnsemble, vote
from .kernels import hedge_beta, hedge_weights
from .validation import check_positive

__all__ = ["HomOTLMS", "hedge_mistakes"]


def hedge_mistakes(F: np.ndarray, yi: int) -> np.ndarray:
    """Hedge's z_i per expert: does another class score strictly above ``yi``?

    The multi-class reading of the reference code's ``y f < 0``: a tie at the top that
    includes ``yi`` (an untrained learner's all-zero scores) is not a mistake.

    >>> hedge_mistakes(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]]), 0)
    array([False, False,  True])
    """
    return F[:, yi] < F.max(axis=1)


class HomOTLMS(SourceEnsemble):
    """HomOTLMS (Wu et al., IEEE TKDE 2017): Hedge over n sources and a target PA-I learner.

    Parameters
    ----------
    sources
        Tuple of fixed :class:`~fedotl.online.sources.SourceClassifier` over the same features.
        ``None`` (or empty): the target PA-I learner alone.
    C
        PA-I aggressiveness of the target learner.
    horizon
        Stream length T for beta; ``None`` for the anytime schedule (T = current round).
    classes
        Labels known in advance (before the sources' classes).
    target_start
        First input column the target PA-I learner reads (0: all of them).  Columns before it
        are for the sources' transforms only, e.g. a frozen extractor's features beside the
        hand features the target learns on.  It is positional, so it is meant for the array
        API; river's feature-order checks run with the default 0.

    Examples
    --------
    Two sources and the target, T = 100: beta = 10 / (10 + sqrt(ln 3)) = 0.9051.  Source 1
    is right and source 2 is wrong; the untrained target scores 0 for every class (y f = 0,
    not a mistake), so the weights become (1, beta, 1) / (2 + beta).

    >>> import numpy as np
    >>> from fedotl.online.sources import SourceClassifier
    >>> s1 = SourceClassifier(np.eye(2), classes=("a", "b"))
    >>> s2 = SourceClassifier(-np.eye(2), classes=("a", "b"))
    >>> model = HomOTLMS((s1, s2), horizon=100)
    >>> model.predict_learn_array(np.array([1.0, 0.0]), "a")
    'a'
    >>> model.weights_.round(4)
    array([0.3442, 0.3116, 0.3442])
    """

    def __init__(
        self,
        sources: tuple | None = None,
        C: float = 1.0,
        horizon: int | None = None,
        classes: tuple | None = None,
        target_start: int = 0,
    ):
        self.sources = sources
        self.C = C
        self.horizon = horizon
        self.classes = classes
        self.target_start = target_start
        check_positive("C", C)
        if horizon is not None and (not isinstance(horizon, (int, np.integer)) or horizon < 1):
            raise ValueError(f"horizon must be a positive integer or None, got {horizon!r}")
        self._init_ensemble(tuple(sources or ()), classes, True, C, target_start)
        self.reset_weights()

    def reset_weights(self) -> None:
        N = self.n_experts
        self._L = np.zeros(N)  # cumulative mistakes per expert
        self._u = np.full(N, 1.0 / N)
        self._t = 0

    @property
    def weights_(self) -> np.ndarray:
        """Normalised Hedge weights (sources first, target last)."""
        return self._u.copy()

    @property
    def beta_(self) -> float:
        """Current Hedge discount."""
        return hedge_beta(self.horizon, self.n_experts, max(self._t, 1))

    def _combine(self, F: np.ndarray) -> np.ndarray:
        return vote(F, self._u)

    def _hedge(self, z: np.ndarray) -> None:
        self._t += 1
        if self.horizon is not None and not z.any():
            return  # no mistakes: the weights are unchanged
        self._L += z
        self._u = hedge_weights(self._L, self.beta_)

    def _update_weights(self, F: np.ndarray, yi: int) -> None:
        self._hedge(hedge_mistakes(F, yi))

    def _predict_learn_enc(self, x: np.ndarray, sq: float, yi: int) -> int:
        # fused step: the top-class mask serves both the vote and the mistakes
        F = self._all_scores(x)
        mask = F == F.max(axis=1, keepdims=True)
        cnt = mask.sum(axis=1)
        pred = int(np.dot(self._u / cnt, mask).argmax())
        self._hedge(~mask[:, yi])  # hedge_mistakes: y is not among the top classes
        self._target_update(x, sq, F, yi)
        return pred

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"horizon": 500, "C": 0.5}
