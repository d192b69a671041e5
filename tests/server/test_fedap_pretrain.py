"""FedAP's similarity matrix comes from a pretrained model (k FedAvg rounds), not the initial one.

The strategy is driven round by round with the real node code (client/node.py), so the test
covers both sides of the protocol: which rounds send the whole model, what the nodes send back,
and from which model the BatchNorm statistics are taken.
"""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict

from fedotl.client.config import RunConfig
from fedotl.client.data import ClientData
from fedotl.client.model import bn_keys, build_model, get_arrays, set_arrays, shared_keys
from fedotl.client.node import node_model, node_train
from fedotl.client.records import arrays_to_record, record_to_arrays
from fedotl.client.train import bn_input_stats
from fedotl.server.aggregation import fedap_weight_matrix, weighted_average
from fedotl.server.report import RunRecorder
from fedotl.server.run import fedap_pretrain_rounds
from fedotl.server.strategies import FedAP

pytestmark = pytest.mark.usefixtures("task_identity")

NODES = [101, 102, 103]
CFG = RunConfig({"strategy": "fedap", "local-epochs": 2, "augment": False, "model-width": 4, "bottleneck": 8, "batch-size": 8})


class FakeGrid:
    def get_node_ids(self):
        return list(NODES)


def device(i: int) -> ClientData:
    rng = np.random.default_rng(i)
    y = np.arange(16) % 2
    X = (rng.normal(size=(16, 3, 16)) * (1 + i) + 2.0 * i).astype(np.float32)  # each device its own scale and offset
    X[:, 0] += 3.0 * (y[:, None] - 0.5)
    return ClientData(f"c{i}", X, y, X[:4], y[:4], classes=(0, 1))


DATA = {n: device(i) for i, n in enumerate(NODES)}


def model():
    return build_model("cnn", 3, 2, seed=0, width=4, bottleneck=8)


def stats_matrix(arrays: dict) -> np.ndarray:
    """FedAP's W computed by hand from every device's BatchNorm-input statistics under ``arrays``."""
    m = model()
    set_arrays(m, arrays)
    means, variances = zip(*(bn_input_stats(m, DATA[n].X_train) for n in NODES))
    return fedap_weight_matrix(list(means), list(variances), 0.5)


def run_round(s: FedAP, rnd: int, current, states):
    msgs = list(s.configure_train(rnd, current, ConfigRecord(), FakeGrid()))
    replies, sent = [], {}
    for m in msgs:
        n = m.metadata.dst_node_id
        incoming = record_to_arrays(m.content["arrays"])
        config = dict(m.content["config"])
        send, metrics, extra = node_train(DATA[n], CFG, incoming, states[n], partition_id=NODES.index(n), config=config)
        content = RecordDict({"arrays": arrays_to_record(send), "metrics": MetricRecord(metrics),
                              "client": ConfigRecord({"client-id": DATA[n].client_id, "partition-id": NODES.index(n)})})
        if extra:  # as client_app.train does
            content["fedap"] = ConfigRecord({"bn-mean": [float(v) for v in extra["bn-mean"]], "bn-var": [float(v) for v in extra["bn-var"]],
                                             "bn-sizes": [int(v) for v in extra["bn-sizes"]]})
        replies.append(Message(content, reply_to=m))
        sent[n] = (incoming, config, send)
    new, _ = s.aggregate_train(rnd, replies)
    return msgs, sent, (new if new is not None else current)


def test_the_weight_matrix_is_taken_after_k_fedavg_rounds():
    m0 = model()
    s = FedAP(shared_keys(m0), momentum=0.5, pretrain_rounds=2, min_train_nodes=1, min_evaluate_nodes=1, min_available_nodes=1)
    s.setup_tracking(RunRecorder(None, "test", 4, progress=False), num_rounds=4)
    states: dict[int, dict] = {n: {} for n in NODES}
    initial = get_arrays(m0)
    current = arrays_to_record(initial)
    for rnd in (1, 2):  # FedAvg: the whole model goes out and comes back, BatchNorm included
        msgs, sent, current = run_round(s, rnd, current, states)
        assert all(c.get("fedavg-round") and "bn-stats" not in c for _, c, _ in sent.values())
        assert all(set(send) == set(initial) for _, _, send in sent.values())
        assert s.W is None
        mean = weighted_average([sent[n][2] for n in NODES], [16, 16, 16])
        got = record_to_arrays(current)
        assert all(np.allclose(got[k], mean[k], atol=1e-6) for k in bn_keys(m0))  # BN averaged too: plain FedAvg
    pretrained = record_to_arrays(current)
    msgs, sent, current = run_round(s, 3, current, states)  # every node gets the pretrained model whole, reports BN stats
    assert all(c.get("bn-stats") and not c.get("fedavg-round") for _, c, _ in sent.values())
    assert all(set(inc) == set(initial) and all(np.array_equal(inc[k], pretrained[k]) for k in inc) for inc, _, _ in sent.values())
    assert all(set(send) == set(shared_keys(m0)) for _, _, send in sent.values())  # from now on BN stays on the node
    assert s.W == pytest.approx(stats_matrix(pretrained), abs=1e-6)
    assert not np.allclose(s.W, stats_matrix(initial), atol=1e-3)  # what the old code used: the round-1 (initial) model
    # round 4 is FedAP proper: per-node shared layers, the node's own BatchNorm
    msgs4 = list(s.configure_train(4, current, ConfigRecord(), FakeGrid()))
    assert all(set(m.content["arrays"]) == set(shared_keys(m0)) and "bn-stats" not in m.content["config"] for m in msgs4)


def test_without_pretraining_rounds_the_matrix_comes_from_round_1_as_before():
    m0 = model()
    s = FedAP(shared_keys(m0), momentum=0.5, pretrain_rounds=0, min_train_nodes=1, min_evaluate_nodes=1, min_available_nodes=1)
    s.setup_tracking(RunRecorder(None, "test", 2, progress=False), num_rounds=2)
    states: dict[int, dict] = {n: {} for n in NODES}
    _, sent, _ = run_round(s, 1, arrays_to_record(get_arrays(m0)), states)
    assert all(c.get("bn-stats") for _, c, _ in sent.values())
    assert s.W == pytest.approx(stats_matrix(get_arrays(m0)), abs=1e-6)


def test_pretraining_rounds_from_the_run_config():
    assert fedap_pretrain_rounds(RunConfig(strategy="fedap"), pretrained=False) == 5  # the declared default
    assert fedap_pretrain_rounds(RunConfig(strategy="fedap", fedap_pretrain_rounds=3), pretrained=True) == 0  # the cloud model is pretrained
    assert fedap_pretrain_rounds(RunConfig(strategy="fedap", num_server_rounds=4), pretrained=False) == 3  # one FedAP round left


def test_a_node_uses_the_batchnorm_the_server_sends_over_its_own():
    m0 = model()
    full = get_arrays(m0)
    own = {k: np.full_like(v, 7.0) for k, v in full.items() if k in set(bn_keys(m0))}
    got = get_arrays(node_model(DATA[101], CFG, full, {"local-bn": own}))
    assert all(np.array_equal(got[k], full[k]) for k in own)  # sent BN wins
    shared = {k: full[k] for k in shared_keys(m0)}
    got = get_arrays(node_model(DATA[101], CFG, shared, {"local-bn": own}))
    assert all(np.array_equal(got[k], own[k]) for k in own)  # not sent: the node's own
