"""When a device's window gets its label, and which windows get one at all.

A :class:`LabelPolicy` has three parts:

delay
    the label of a window that ends at t reaches the learner when the device's sample clock
    passes ``t + delay_s`` (an annotation typed in later, a clinician's review);
budget
    only a fraction ``budget`` of the predicted windows may be labelled; the choice is made
    the moment a window is predicted, by ``query``:

    * ``"random"``: each window with probability ``budget`` (seeded per device), the
      paper's *Random* strategy;
    * ``"uncertainty"``: the *Variable Uncertainty* strategy of Žliobaitė, Bifet, Pfahringer
      and Holmes, "Active learning with drifting streaming data", IEEE TNNLS 25(1), 2014
      (its section and algorithm numbers were not checked against the full text here):
      ask when the learner's uncertainty crosses a threshold θ, then
      tighten θ by a factor (1 - s) after a query and loosen it by (1 + s) otherwise, and
      never ask while the labels spent so far exceed the budget.  Deviation: the paper's
      uncertainty is the maximum posterior; here it is the *margin* between the two top
      class scores (:func:`margin`), asked when margin ≤ θ, with θ starting at 1 (so the
      first window is asked);
timeout
    a window still without a label ``timeout_s`` after it ended is given up: it was predicted
    and is never learnt from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUERIES = ("random", "uncertainty")


@dataclass(frozen=True)
class LabelPolicy:
    """Label delay, budget and query strategy of a device (see the module docstring)."""

    delay_s: float = 0.0
    budget: float = 1.0
    query: str = "random"
    step: float = 0.01  # s of the variable-uncertainty rule
    timeout_s: float = 600.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.delay_s) and self.delay_s >= 0):
            raise ValueError(f"label delay must be >= 0 seconds, got {self.delay_s}")
        if not 0.0 < self.budget <= 1.0:
            raise ValueError(f"label budget must be in (0, 1], got {self.budget}")
        if self.query not in QUERIES:
            raise ValueError(f"query must be one of {', '.join(QUERIES)}, got {self.query!r}")
        if not 0.0 < self.step < 1.0:
            raise ValueError(f"step must be in (0, 1), got {self.step}")
        if not self.timeout_s > self.delay_s:
            raise ValueError(f"timeout_s ({self.timeout_s}) must exceed the delay ({self.delay_s})")


def margin(proba: np.ndarray) -> np.ndarray:
    """Top minus second class score of each row: 0 is a coin toss, 1 is certain.

    >>> margin(np.array([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])).round(3).tolist()
    [0.5, 0.0]
    """
    p = np.asarray(proba, dtype=float)
    if p.shape[-1] < 2:
        return np.ones(p.shape[:-1])
    part = np.partition(p, p.shape[-1] - 2, axis=-1)
    return part[..., -1] - part[..., -2]


class LabelBudget:
    """The budget rule of :class:`LabelPolicy` for D devices; :meth:`ask` decides per window.

    >>> b = LabelBudget(LabelPolicy(budget=0.5, query="uncertainty"), n_devices=1)
    >>> [bool(b.ask(np.array([0]), np.array([m]))[0]) for m in (0.9, 0.9, 0.9, 0.2)]
    [True, False, True, False]
    """

    def __init__(self, policy: LabelPolicy, n_devices: int):
        self.policy = policy
        self.seen = np.zeros(n_devices, dtype=np.int64)
        self.asked = np.zeros(n_devices, dtype=np.int64)
        self.theta = np.ones(n_devices)
        self._rng = [np.random.default_rng([policy.seed, d]) for d in range(n_devices)] if policy.query == "random" else []

    def ask(self, device: np.ndarray, margins: np.ndarray) -> np.ndarray:
        """Whether each newly predicted window (device, margin) gets a label; updates the state.

        Windows of one device must come in time order (each decision sees the ones before).
        """
        p = self.policy
        out = np.ones(len(device), dtype=bool)
        if p.budget >= 1.0:
            np.add.at(self.seen, device, 1)
            np.add.at(self.asked, device, 1)
            return out
        for i, (d, m) in enumerate(zip(device.tolist(), np.asarray(margins, dtype=float).tolist())):
            self.seen[d] += 1
            if p.query == "random":
                out[i] = bool(self._rng[d].random() < p.budget)
            elif self.asked[d] >= p.budget * self.seen[d]:  # budget spent
                out[i] = False
            else:
                out[i] = m <= self.theta[d]
                self.theta[d] *= (1.0 - p.step) if out[i] else (1.0 + p.step)
            self.asked[d] += out[i]
        return out
