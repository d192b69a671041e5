"""SecAgg+ (Flower's workflow stages and secaggplus_mod) under our Grid wrapper, in one process.

An in-process grid delivers each message to a toy ClientApp, copying it on
the way as the real transport's serialisation would.  Everything the server
receives passes through that grid, so the tests can check what it saw.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.common import bytes_to_ndarray
from flwr.common.secure_aggregation.secaggplus_constants import Key

from fedotl.client.secure_aggregation import as_fitres_reply, maybe_secaggplus_mod
from fedotl.server.report import RunRecorder
from fedotl.client.config import RunConfig
from fedotl.server.secure_aggregation import SecAggPlusGrid, auto_num_shares
from fedotl.server.strategies import TrackedFedAvg

START = np.array([0.25, -1.0, 3.0], dtype=np.float32)


pytestmark = pytest.mark.usefixtures("task_identity")


def update_of(node: int) -> np.ndarray:
    return START + np.array([node, -2.0 * node, 0.5], dtype=np.float32)


def toy_app(crash: set[int] = frozenset(), mods=(maybe_secaggplus_mod,)) -> ClientApp:
    """Node n trains on 10·n examples and moves w to update_of(n); nodes in ``crash`` raise."""
    app = ClientApp()

    @app.train(mods=list(mods))
    def train(msg: Message, context: Context) -> Message:
        node = msg.metadata.dst_node_id
        if node in crash:
            raise RuntimeError("device battery died")
        sent = msg.content["arrays"]["w"].numpy()
        assert np.array_equal(sent, START)
        content = RecordDict(
            {
                "arrays": ArrayRecord({"w": Array(update_of(node))}),
                "metrics": MetricRecord({"num-examples": 10 * node, "train-loss": 0.1 * node}),
                "client": ConfigRecord({"client-id": f"dev{node}", "partition-id": node}),
            }
        )
        return Message(content, reply_to=msg)

    return app


class InProcessGrid:
    def __init__(self, app: ClientApp, nodes: list[int]):
        self.app, self.nodes = app, list(nodes)
        self.contexts = {n: Context(run_id=1, node_id=n, node_config={}, state=RecordDict(), run_config={}) for n in nodes}
        self.replies: list[Message] = []
        self.sent_types: list[str] = []

    def get_node_ids(self):
        return list(self.nodes)

    def send_and_receive(self, messages, *, timeout=None):
        out = []
        for m in messages:
            self.sent_types.append(m.metadata.message_type)
            try:
                r = self.app(copy.deepcopy(m), self.contexts[m.metadata.dst_node_id])
            except Exception as e:  # Flower turns a ClientApp exception into an error reply
                r = Message(Error(code=1, reason=str(e)), reply_to=m)
            out.append(r)
        self.replies += out
        return out


def train_messages(nodes, server_round=1):
    return [
        Message(RecordDict({"arrays": ArrayRecord({"w": Array(START)}), "config": ConfigRecord({"server-round": server_round})}), dst_node_id=n, message_type="train")
        for n in nodes
    ]


def weighted_mean(nodes):
    w = np.array([10.0 * n for n in nodes])
    return np.sum([wi * update_of(n) for wi, n in zip(w, nodes)], axis=0) / w.sum()


def test_the_server_gets_the_weighted_mean_and_never_an_update():
    nodes = [1, 2, 3, 4, 5]
    inner = InProcessGrid(toy_app(), nodes)
    replies = SecAggPlusGrid(inner, max_weight=100.0, timeout=10).send_and_receive(train_messages(nodes))
    assert sorted(r.metadata.src_node_id for r in replies) == nodes and not any(r.has_error() for r in replies)
    expected = weighted_mean(nodes)  # [3.9167, -8.3333, 3.5]
    for r in replies:
        got = r.content["arrays"]["w"].numpy()
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-4)
        node = r.metadata.src_node_id
        assert r.content["client"]["client-id"] == f"dev{node}" and r.content["metrics"]["num-examples"] == 10 * node
    # Four stages, each a train message to every node, and no reply carried a plain update:
    # array records come back empty, and the masked vectors look nothing like the updates.
    assert inner.sent_types == ["train"] * 20
    masked = []
    for r in inner.replies:
        assert all(len(record) == 0 for record in r.content.array_records.values())
        cfg = r.content.config_records["secaggplus_configs"]
        if Key.MASKED_PARAMETERS in cfg:
            masked.append((r.metadata.src_node_id, [bytes_to_ndarray(b) for b in cfg[Key.MASKED_PARAMETERS]]))
    assert sorted(n for n, _ in masked) == nodes
    for node, vectors in masked:
        assert vectors[1].dtype.kind in "iu" and vectors[1].shape == (3,)  # [weight factor, masked w]
        assert np.abs(vectors[1].astype(float) - update_of(node)).min() > 1000


def test_the_secure_mean_is_reproducible_and_leaves_numpy_alone():
    nodes = [1, 2, 3]
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    means = []
    for _ in range(2):
        replies = SecAggPlusGrid(InProcessGrid(toy_app(), nodes), max_weight=100.0).send_and_receive(train_messages(nodes))
        means.append(replies[0].content["arrays"]["w"].numpy())
    assert np.array_equal(means[0], means[1])  # masks differ per run; quantisation is seeded by the update
    assert np.array_equal(np.random.get_state()[1], before)


def test_a_device_that_crashes_mid_round_is_dropped_and_the_rest_still_average():
    nodes = [1, 2, 3, 4, 5]
    inner = InProcessGrid(toy_app(crash={3}), nodes)
    grid = SecAggPlusGrid(inner, max_weight=100.0, timeout=10)
    replies = grid.send_and_receive(train_messages(nodes))
    ok = [r for r in replies if not r.has_error()]
    assert sorted(r.metadata.src_node_id for r in ok) == [1, 2, 4, 5]
    np.testing.assert_allclose(ok[0].content["arrays"]["w"].numpy(), weighted_mean([1, 2, 4, 5]), atol=1e-4)
    (dropped,) = [r for r in replies if r.has_error()]
    assert dropped.metadata.src_node_id == 3 and "SecAgg+" in dropped.error.reason and "device battery died" in dropped.error.reason
    assert grid.rounds == [{"round": 1, "sampled": 5, "aggregated": 4}]


def test_a_sparse_neighbour_graph_also_recovers_a_dropout():
    nodes = list(range(1, 13))  # auto: 9 neighbours each of 12, not the complete graph
    assert auto_num_shares(12) == 9
    grid = SecAggPlusGrid(InProcessGrid(toy_app(crash={7}), nodes), max_weight=1000.0)
    replies = grid.send_and_receive(train_messages(nodes))
    ok = [r for r in replies if not r.has_error()]
    assert len(ok) == 11
    np.testing.assert_allclose(ok[0].content["arrays"]["w"].numpy(), weighted_mean([n for n in nodes if n != 7]), atol=1e-4)


def test_too_few_survivors_halt_the_round_and_fedavg_keeps_the_model():
    nodes = [1, 2, 3]
    grid = SecAggPlusGrid(InProcessGrid(toy_app(crash={1, 2}), nodes), max_weight=100.0, timeout=10)
    replies = grid.send_and_receive(train_messages(nodes))
    assert len(replies) == 3 and all(r.has_error() for r in replies)
    strategy = TrackedFedAvg(min_train_nodes=1, min_evaluate_nodes=1, min_available_nodes=1)
    strategy.setup_tracking(RunRecorder(None, "t", 1, progress=False), num_rounds=1)
    assert strategy.aggregate_train(1, replies) == (None, None)
    assert len(strategy.recorder.failures) == 3


def test_fedavg_over_the_secure_replies_is_the_secure_mean():
    nodes = [2, 3, 4]
    replies = SecAggPlusGrid(InProcessGrid(toy_app(), nodes), max_weight=100.0).send_and_receive(train_messages(nodes))
    strategy = TrackedFedAvg(min_train_nodes=1, min_evaluate_nodes=1, min_available_nodes=1)
    strategy.setup_tracking(RunRecorder(None, "t", 1, progress=False), num_rounds=1)
    arrays, metrics = strategy.aggregate_train(1, replies)
    np.testing.assert_allclose(arrays["w"].numpy(), weighted_mean(nodes), atol=1e-4)
    assert metrics["train-loss"] == pytest.approx((20 * 0.2 + 30 * 0.3 + 40 * 0.4) / 90)


def test_client_side_dp_clipping_happens_on_the_device_before_masking():
    from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping

    from fedotl.client.client_app import maybe_fixedclipping_mod

    nodes = [1, 2, 3]
    inner = InProcessGrid(toy_app(mods=(maybe_secaggplus_mod, maybe_fixedclipping_mod)), nodes)
    grid = SecAggPlusGrid(inner, max_weight=100.0)
    fedavg = TrackedFedAvg(min_train_nodes=3, min_evaluate_nodes=1, min_available_nodes=3)
    fedavg.setup_tracking(RunRecorder(None, "t", 1, progress=False), num_rounds=1)
    dp = DifferentialPrivacyClientSideFixedClipping(fedavg, noise_multiplier=0.0, clipping_norm=1.0, num_sampled_clients=3)
    messages = dp.configure_train(1, ArrayRecord({"w": Array(START)}), ConfigRecord(), grid)
    arrays, _ = dp.aggregate_train(1, grid.send_and_receive(messages))
    deltas = [update_of(n) - START for n in nodes]
    clipped = [d / max(1.0, float(np.linalg.norm(d))) for d in deltas]  # each device clips its own ‖Δ‖ to 1
    expected = START + np.average(clipped, axis=0, weights=[10, 20, 30])
    np.testing.assert_allclose(arrays["w"].numpy(), expected, atol=1e-4)


def test_other_messages_and_plain_train_messages_pass_through():
    nodes = [1, 2]
    inner = InProcessGrid(toy_app(), nodes)
    grid = SecAggPlusGrid(inner)
    q = [Message(RecordDict({"config": ConfigRecord()}), dst_node_id=1, message_type="query.info")]
    assert grid.send_and_receive(q)[0].has_error()  # the toy app has no query handler: one plain call
    assert inner.sent_types == ["query.info"] and grid.get_node_ids() == nodes
    # Without the secaggplus record the mod steps aside and the handler's own reply comes back.
    plain = InProcessGrid(toy_app(), nodes).send_and_receive(train_messages([2]))
    np.testing.assert_allclose(plain[0].content["arrays"]["w"].numpy(), update_of(2))


@pytest.mark.parametrize(
    "nodes, bad_node, reason",
    [
        # node 6 trained on 60 examples, more than max-weight 50
        ([1, 2, 6], 6, "60 training examples exceed secagg-max-weight=50"),
        # node 4's w[1] = -9 scaled by 40/50 is -7.2, inside ±8; node 5's -11·50/50 is not
        ([3, 4, 5], 5, "> secagg-clipping-range 8"),
    ],
)
def test_an_update_secagg_would_corrupt_drops_that_device_with_the_reason(nodes, bad_node, reason):
    replies = SecAggPlusGrid(InProcessGrid(toy_app(), nodes), max_weight=50.0).send_and_receive(train_messages(nodes))
    (bad,) = [r for r in replies if r.has_error()]
    assert bad.metadata.src_node_id == bad_node and reason in bad.error.reason
    ok = [r for r in replies if not r.has_error()]
    np.testing.assert_allclose(ok[0].content["arrays"]["w"].numpy(), weighted_mean([n for n in nodes if n != bad_node]), atol=1e-4)


def test_more_devices_than_the_modulus_allows_is_a_clear_error():
    with pytest.raises(ValueError, match="overflows above 1023 devices"):
        SecAggPlusGrid(InProcessGrid(toy_app(), []), max_weight=1e5).send_and_receive(train_messages(range(1, 1025)))


def test_an_update_with_other_arrays_than_sent_is_refused():
    sent = train_messages([1])[0]
    reply = Message(RecordDict({"arrays": ArrayRecord({"v": Array(START)}), "metrics": MetricRecord({"num-examples": 3})}), reply_to=sent)
    with pytest.raises(ValueError, match="exactly the arrays the server sent"):
        as_fitres_reply(sent, reply)


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"strategy": "fedbn"}, "does not apply to fedbn"),
        ({"strategy": "fedhealth", "fedhealth-aggregation": "fedap"}, "fedhealth with fedap aggregation"),
        ({"strategy": "fedavg", "dp": "server-fixed"}, "use dp=client-fixed"),
        ({"strategy": "fedavg", "secagg-max-weight": 0.0}, "must be > 0"),
    ],
)
def test_settings_refuse_what_secagg_cannot_protect(cfg, match):
    with pytest.raises(ValueError, match=match):
        RunConfig({"secagg": True, **cfg})
