"""FedHealth's source covariance: a node never aligns to its own features."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from fedotl.server.aggregation import leave_one_out_covariances
from fedotl.server.report import RunRecorder
from fedotl.server.strategies import FedHealth

pytestmark = pytest.mark.usefixtures("task_identity")

# Three clients' bottleneck features (d = 2), small enough to check by hand.
FEATURES = {
    11: np.array([[0.0, 0.0], [2.0, 0.0]]),
    12: np.array([[0.0, 2.0], [0.0, 4.0], [0.0, 0.0]]),
    13: np.array([[4.0, 4.0], [6.0, 6.0]]),
}


def moments(f: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    return len(f), f.sum(0), f.T @ f


def test_leave_one_out_equals_the_pooled_covariance_of_the_others_by_hand():
    n, s, ss = zip(*(moments(FEATURES[k]) for k in (11, 12, 13)))
    c11, c12, c13 = leave_one_out_covariances(list(n), list(s), list(ss))
    # without client 11: the five rows (0,2) (0,4) (0,0) (4,4) (6,6); means (2, 3.2)
    # Σ(x−2)² = 4+4+4+4+16 = 32, Σ(y−3.2)² = 1.44+0.64+10.24+0.64+7.84 = 20.8,
    # Σ(x−2)(y−3.2) = 2.4−1.6+6.4+1.6+11.2 = 20; divided by n − 1 = 4
    assert c11 == pytest.approx(np.array([[8.0, 5.0], [5.0, 5.2]]))
    # without client 13: (0,0) (2,0) (0,2) (0,4) (0,0); means (0.4, 1.2)
    assert c13 == pytest.approx(np.cov(np.vstack([FEATURES[11], FEATURES[12]]).T))
    assert c12 == pytest.approx(np.cov(np.vstack([FEATURES[11], FEATURES[13]]).T))
    everyone = np.cov(np.vstack(list(FEATURES.values())).T)
    assert not np.allclose(c11, everyone)  # the old C_S (everyone, the client itself included) is another matrix


def test_fewer_than_two_other_vectors_give_no_source_covariance():
    out = leave_one_out_covariances([5, 1], [np.zeros(1), np.zeros(1)], [np.eye(1), np.eye(1)])
    assert out[0] is None and out[1] is not None


class AnsweringGrid:
    """Answers query.stats with each node's moments and train.personalize with fixed metrics; keeps what it got."""

    def __init__(self, features, silent=()):
        self.features = features
        self.silent = set(silent)  # nodes that never answer query.stats
        self.received: dict[int, np.ndarray | None] = {}

    def get_node_ids(self):
        return list(self.features)

    def send_and_receive(self, messages, timeout=None):
        out = []
        for m in messages:
            node = m.metadata.dst_node_id
            client = ConfigRecord({"client-id": f"c{node}", "partition-id": node})
            if m.metadata.message_type == "query.stats":
                if node in self.silent:
                    continue
                n, s, ss = moments(self.features[node])
                content = RecordDict({"moments": ArrayRecord({"sum": Array(s), "outer": Array(ss)}),
                                      "metrics": MetricRecord({"num-examples": n}), "client": client})
            else:
                src = m.content.array_records.get("source")
                self.received[node] = None if src is None else src["cov"].numpy().astype(np.float64)
                content = RecordDict({"metrics": MetricRecord({"num-examples": 1, "accuracy": 1.0, "macro-f1": 1.0,
                                                               "global-accuracy": 0.5, "global-macro-f1": 0.5}), "client": client})
            out.append(Message(content, reply_to=m))
        return out


def fedhealth() -> FedHealth:
    s = FedHealth(proximal_mu=0.0, min_train_nodes=1, min_evaluate_nodes=1, min_available_nodes=1)
    s.setup_tracking(RunRecorder(None, "test", 1, progress=False), num_rounds=1)
    return s


def test_each_node_gets_the_covariance_of_the_other_nodes():
    grid = AnsweringGrid(FEATURES)
    fedhealth().personalize(grid, ArrayRecord({"w": Array(np.zeros(1, np.float32))}), config=ConfigRecord())
    for node in FEATURES:
        others = np.vstack([f for k, f in FEATURES.items() if k != node])
        assert grid.received[node] == pytest.approx(np.cov(others.T), abs=1e-5), node


def test_a_node_that_did_not_report_gets_the_pool_of_those_that_did():
    grid = AnsweringGrid(FEATURES, silent={13})
    fedhealth().personalize(grid, ArrayRecord({"w": Array(np.zeros(1, np.float32))}), config=ConfigRecord())
    assert grid.received[13] == pytest.approx(np.cov(np.vstack([FEATURES[11], FEATURES[12]]).T), abs=1e-5)
    assert grid.received[11] == pytest.approx(np.cov(FEATURES[12].T), abs=1e-5)  # 13 sent nothing to pool


def test_the_cloud_covariance_goes_to_every_node():
    grid = AnsweringGrid(FEATURES)
    cloud = np.array([[2.0, 1.0], [1.0, 3.0]])
    fedhealth().personalize(grid, ArrayRecord({"w": Array(np.zeros(1, np.float32))}), config=ConfigRecord(), server_cov=cloud)
    assert all(c == pytest.approx(cloud) for c in grid.received.values())
