"""Robust aggregation (run config ``aggregation``) with Flower 1.42's own Message-API rules.

Each rule is one of Flower's strategies, used only for its ``aggregate_train``
on the round's usable replies, so the rule is Flower's code and our
strategies (:mod:`fedotl.server.strategies`) keep their own sampling,
tracking and personalisation:

============  ===========================================================================
median        ``FedMedian``: the coordinate-wise median (Yin et al., "Byzantine-Robust
              Distributed Learning: Towards Optimal Statistical Rates", ICML 2018).
trimmed-mean  ``FedTrimmedAvg``: the coordinate-wise mean after cutting ``trim-fraction``
              of the values at each end (Yin et al. 2018).
krum          ``Krum``: the one update with the smallest sum of squared distances to its
              n − f − 2 nearest others (Blanchard et al., "Machine Learning with
              Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017).
multikrum     ``MultiKrum``: the example-weighted mean of the m = n − f best-scored
              updates (Blanchard et al. 2017, "Multi-Krum"; Flower's default m is 1).
bulyan        ``Bulyan``: Multi-Krum selects θ = n − 2f updates, then each coordinate is
              the mean of the β = θ − 2f values nearest their median (El Mhamdi et al.,
              "The Hidden Vulnerability of Distributed Learning in Byzantium", ICML 2018).
============  ===========================================================================

f, the number of malicious replies the rule assumes, is ``⌊byzantine-fraction ·
n⌋`` over the round's n usable replies, capped where a rule needs it: Krum and
Multi-Krum need n ≥ f + 3 and Bulyan n ≥ 4f + 3 (with fewer replies Flower's
Bulyan skips the round and the model stays).  The rules are unweighted
except Multi-Krum's final mean; BatchNorm's running statistics are
aggregated by the same rule as the weights.

>>> assumed_malicious("bulyan", 10, 0.2), assumed_malicious("krum", 10, 0.2), assumed_malicious("krum", 3, 0.4)
(1, 2, 0)
"""

from __future__ import annotations

from flwr.app import ArrayRecord, Message, MetricRecord
from flwr.serverapp.strategy import Bulyan, FedAvg, FedMedian, FedTrimmedAvg, Krum, MultiKrum

from fedotl.client.protocol import AGGREGATIONS

ROBUST = tuple(a for a in AGGREGATIONS if a != "mean")


def assumed_malicious(rule: str, n: int, fraction: float) -> int:
    """f for ``rule`` over ``n`` replies: ``⌊fraction · n⌋``, capped so that the rule is defined."""
    f = int(fraction * n)
    if rule == "bulyan":
        return max(0, min(f, (n - 3) // 4))
    if rule in ("krum", "multikrum"):
        return max(0, min(f, n - 3))
    return f


def robust_rule(rule: str, n: int, *, trim_fraction: float, byzantine_fraction: float) -> FedAvg:
    """The Flower strategy whose ``aggregate_train`` is ``rule`` for a round of ``n`` replies."""
    if rule == "median":
        return FedMedian()
    if rule == "trimmed-mean":
        return FedTrimmedAvg(beta=trim_fraction)
    f = assumed_malicious(rule, n, byzantine_fraction)
    if rule == "krum":
        return Krum(num_malicious_nodes=f)
    if rule == "multikrum":
        return MultiKrum(num_malicious_nodes=f, num_nodes_to_select=max(1, n - f))
    if rule == "bulyan":
        return Bulyan(num_malicious_nodes=f)
    raise ValueError(f"unknown robust aggregation {rule!r}; choose from {', '.join(ROBUST)}")


def robust_aggregate(rule: str, server_round: int, replies: list[Message], *, trim_fraction: float, byzantine_fraction: float
                     ) -> tuple[ArrayRecord | None, MetricRecord | None]:
    """``rule`` over the round's usable replies (sorted, finite, with examples), by Flower's own code."""
    strategy = robust_rule(rule, len(replies), trim_fraction=trim_fraction, byzantine_fraction=byzantine_fraction)
    return strategy.aggregate_train(server_round, replies)
