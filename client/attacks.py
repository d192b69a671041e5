"""Simulated poisoning attacks of a device on its own update (run config ``attack``).

A device whose partition id is in run config ``attack-partitions`` attacks in
every train round; the others are honest.  :func:`pick_attackers` is how the
harness picks those partitions (``fedotl simulate --attackers FRACTION``), and
the server reads the same key to report accuracy over the honest devices.

The attacks, with ``k`` = ``attack-scale`` and ``Δ = w_trained − w_received``
the honest update of each learnable parameter:

``sign-flip``
    sends ``w_received − k·Δ`` (the update reversed and scaled; Fang et al.,
    "Local Model Poisoning Attacks to Byzantine-Robust Federated Learning",
    USENIX Security 2020, use reversed directions of this kind).
``gaussian``
    sends ``w_received + ε``, ``ε ~ N(0, (k·rms(Δ))²)`` per parameter tensor: noise
    ``k`` times the size of an honest update, carrying no information.
``label-flip``
    trains honestly on flipped labels ``y → K − 1 − y`` (a data-poisoning
    attack: the update has an honest size and a wrong direction).
``nan``
    sends NaN weights (the server refuses non-finite updates).

Only learnable parameters are attacked: BatchNorm's running statistics and
counters are sent as trained (a negative variance would break the model of
every strategy alike, which measures nothing about aggregation).

>>> pick_attackers(10, 0.2, seed=0)
(6, 7)
>>> import numpy as np
>>> sent = attack_update({"w": np.array([1.0, 1.0])}, {"w": np.array([2.0, 0.0])}, "sign-flip", scale=2.0, learnable={"w"}, seed=0)
>>> sent["w"].tolist()
[-1.0, 3.0]
"""

from __future__ import annotations

from typing import Collection, Mapping

import numpy as np

from fedotl.client.protocol import ATTACKS

Arrays = Mapping[str, np.ndarray]


def pick_attackers(n_devices: int, fraction: float, seed: int) -> tuple[int, ...]:
    """``round(fraction · n)`` partition ids drawn without replacement from the seed, sorted."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the attackers' fraction must be in [0, 1), got {fraction}")
    k = int(round(fraction * n_devices))
    rng = np.random.default_rng(seed)
    return tuple(sorted(int(i) for i in rng.choice(n_devices, size=k, replace=False)))


def parse_partitions(text: str) -> tuple[int, ...]:
    """``"1, 4"`` → ``(1, 4)`` (run config ``attack-partitions``)."""
    try:
        return tuple(sorted({int(p) for p in str(text).split(",") if p.strip()}))
    except ValueError:
        raise ValueError(f"attack-partitions must be comma-separated partition ids, got {text!r}") from None


def flip_labels(y: np.ndarray, n_classes: int) -> np.ndarray:
    """``y → K − 1 − y``: every class becomes another (for K ≥ 2 and odd K, all but the middle one)."""
    return (n_classes - 1 - np.asarray(y)).astype(np.asarray(y).dtype)


def attack_update(received: Arrays, trained: Arrays, attack: str, *, scale: float, learnable: Collection[str], seed: int) -> dict[str, np.ndarray]:
    """The arrays an attacking device sends instead of ``trained`` (``label-flip`` sends them as trained)."""
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; choose from {', '.join(ATTACKS)}")
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, w in trained.items():
        if name not in learnable or name not in received or attack in ("none", "label-flip"):
            out[name] = w
            continue
        w0 = np.asarray(received[name], dtype=np.float64)
        delta = np.asarray(w, dtype=np.float64) - w0
        if attack == "sign-flip":
            bad = w0 - scale * delta
        elif attack == "gaussian":
            rms = float(np.sqrt(np.mean(delta**2))) if delta.size else 0.0
            bad = w0 + rng.normal(0.0, scale * rms, size=w0.shape)
        else:  # nan
            bad = np.full(w0.shape, np.nan)
        out[name] = bad.astype(np.asarray(w).dtype)
    return out
