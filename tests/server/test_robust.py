"""Robust aggregation through the strategies, against hand-computed results on tiny updates."""

from __future__ import annotations

import numpy as np
import pytest

from fedotl.server.robust import assumed_malicious
from fedotl.server.strategies import FedHealth, TrackedFedAvg
from fedotl.server.report import RunRecorder

from tests.server.test_strategies import rec, reply

pytestmark = pytest.mark.usefixtures("task_identity")

# Four honest updates near 1 and one attacker far away: w of partition p is HONEST[p].
HONEST = [[1.0, 2.0], [1.2, 2.2], [0.8, 1.8], [1.1, 1.9]]
ATTACKER = [-40.0, 60.0]


def robust(rule: str, cls=TrackedFedAvg, **kw):
    s = cls(min_train_nodes=1, min_evaluate_nodes=1, min_available_nodes=1)
    s.setup_tracking(RunRecorder(None, "test", 3, progress=False), num_rounds=3, aggregation=rule, **kw)
    return s


def replies(with_attacker: bool = True, n: int = 10):
    out = [reply(10 + p, p, n, rec(w=w)) for p, w in enumerate(HONEST)]
    if with_attacker:
        out.append(reply(20, 4, n, rec(w=ATTACKER)))
    return out


def aggregated(rule: str, cls=TrackedFedAvg, **kw) -> np.ndarray:
    arrays, _ = robust(rule, cls, **kw).aggregate_train(1, replies())
    return arrays["w"].numpy()


def test_the_mean_follows_the_attacker():
    np.testing.assert_allclose(aggregated("mean"), [(4.1 - 40) / 5, (7.9 + 60) / 5], rtol=1e-6)


def test_median_is_the_middle_value_per_coordinate():
    np.testing.assert_allclose(aggregated("median"), [1.0, 2.0])  # sorted: -40 .8 1 1.1 1.2 | 1.8 1.9 2 2.2 60


def test_trimmed_mean_cuts_one_value_at_each_end_of_five():
    np.testing.assert_allclose(aggregated("trimmed-mean", trim_fraction=0.2), [(0.8 + 1.0 + 1.1) / 3, (1.9 + 2.0 + 2.2) / 3], rtol=1e-6)


def test_krum_picks_the_update_closest_to_its_neighbours():
    # f = ⌊0.2·5⌋ = 1: each update's score sums its n − f − 2 = 2 nearest squared distances.
    w = np.array(HONEST + [ATTACKER])
    d = ((w[:, None] - w[None]) ** 2).sum(-1)
    scores = [np.sort(row)[1:3].sum() for row in d]
    np.testing.assert_allclose(aggregated("krum", byzantine_fraction=0.2), w[int(np.argmin(scores))])
    assert int(np.argmin(scores)) != 4


def test_multikrum_averages_the_n_minus_f_best_and_leaves_out_the_attacker():
    np.testing.assert_allclose(aggregated("multikrum", byzantine_fraction=0.2), np.mean(HONEST, axis=0), rtol=1e-6)


def test_bulyan_with_f_1_needs_7_replies_and_keeps_the_model_with_fewer():
    assert assumed_malicious("bulyan", 5, 0.2) == 0  # 4f + 3 ≤ 5 only for f = 0
    s = robust("bulyan", byzantine_fraction=0.2)
    arrays, _ = s.aggregate_train(1, replies())
    # f = 0: Multi-Krum keeps all 5, then each coordinate averages the β = 5 values nearest the median: the mean.
    np.testing.assert_allclose(arrays["w"].numpy(), aggregated("mean"), rtol=1e-6)
    seven = replies() + [reply(30, 5, 10, rec(w=[1.05, 2.05])), reply(31, 6, 10, rec(w=[0.95, 1.95]))]
    arrays, _ = robust("bulyan", byzantine_fraction=0.2).aggregate_train(1, seven)  # f = 1, θ = 5, β = 3
    assert abs(arrays["w"].numpy()[0] - 1.0) < 0.2 and abs(arrays["w"].numpy()[1] - 2.0) < 0.2


def test_fedhealth_federated_rounds_use_the_rule_too():
    np.testing.assert_allclose(aggregated("median", cls=FedHealth), [1.0, 2.0])


def test_non_finite_updates_are_refused_before_the_rule_sees_them():
    s = robust("median")
    bad = reply(21, 5, 10, rec(w=[np.nan, 0.0]))
    arrays, _ = s.aggregate_train(1, [*replies(with_attacker=False), bad])
    np.testing.assert_allclose(arrays["w"].numpy(), np.median(HONEST, axis=0))
    assert [f["reason"] for f in s.recorder.failures] == ["non-finite update refused"]
