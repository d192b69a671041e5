"""Strategies on hand-made messages (no Simulation Engine): order, failures, FedBN, FedAP."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict

from fedotl.server.report import RunRecorder
from fedotl.client.records import record_to_arrays
from fedotl.server.strategies import FedAP, FedBN, LocalOnly, TrackedFedAvg, TrackedFedProx, split_replies


pytestmark = pytest.mark.usefixtures("task_identity")


class FakeGrid:
    def __init__(self, nodes):
        self.nodes = list(nodes)

    def get_node_ids(self):
        return list(self.nodes)


def rec(**arrays) -> ArrayRecord:
    return ArrayRecord({k: Array(np.asarray(v, dtype=np.float32)) for k, v in arrays.items()})


def reply(node: int, pid: int, n: int, arrays: ArrayRecord | None = None, stage="train", extra=None) -> Message:
    sent = Message(RecordDict({"config": ConfigRecord()}), dst_node_id=node, message_type=stage)
    content = RecordDict({"metrics": MetricRecord({"num-examples": n, "accuracy": 0.5, "macro-f1": 0.4, "train-loss": 1.0})})
    if arrays is not None:
        content["arrays"] = arrays
    content["client"] = ConfigRecord({"client-id": f"c{pid}", "partition-id": pid})
    for k, v in (extra or {}).items():
        content[k] = v
    return Message(content, reply_to=sent)


def failed(node: int) -> Message:
    sent = Message(RecordDict({"config": ConfigRecord()}), dst_node_id=node, message_type="train")
    return Message(Error(code=0, reason="boom"), reply_to=sent)


def tracked(cls, *args, rounds=3, **kw):
    s = cls(*args, min_train_nodes=1, min_evaluate_nodes=1, min_available_nodes=1, **kw)
    s.setup_tracking(RunRecorder(None, "test", rounds, progress=False), num_rounds=rounds)
    return s


def test_replies_are_sorted_by_partition_and_errors_split():
    valid, errors = split_replies([reply(9, 2, 1), failed(5), reply(3, 0, 1), reply(4, 1, 1)])
    assert [m.content["client"]["partition-id"] for m in valid] == [0, 1, 2]
    assert len(errors) == 1


def test_fedavg_aggregates_sorted_usable_replies_and_logs_failures():
    s = tracked(TrackedFedAvg)
    replies = [reply(7, 1, 30, rec(w=[1.0, 1.0])), failed(8), reply(6, 0, 10, rec(w=[5.0, 9.0])), reply(5, 2, 0, rec(w=[100.0, 100.0]))]
    arrays, metrics = s.aggregate_train(1, replies)
    np.testing.assert_allclose(arrays["w"].numpy(), [2.0, 3.0])  # 0.75·1 + 0.25·5, 0.75·1 + 0.25·9; n=0 ignored
    assert metrics is not None and "train-loss" in metrics
    assert s.recorder.failures and s.recorder.failures[0]["node_id"] == 8
    assert s.recorder._train[1]["replies"] == 2


def test_all_zero_examples_keep_the_previous_model_instead_of_dividing_by_zero():
    s = tracked(TrackedFedAvg)
    assert s.aggregate_train(1, [reply(1, 0, 0, rec(w=[1.0])), reply(2, 1, 0, rec(w=[2.0]))]) == (None, None)
    assert s.aggregate_train(2, [failed(1), failed(2)]) == (None, None)


def test_min_replies_skips_the_round():
    s = tracked(TrackedFedAvg)
    s.min_replies = 3
    assert s.aggregate_train(1, [reply(1, 0, 5, rec(w=[1.0])), reply(2, 1, 5, rec(w=[2.0]))]) == (None, None)


def test_evaluation_records_per_client_mean_and_worst():
    s = tracked(TrackedFedAvg, rounds=1)
    s.recorder.round_started(1)
    a, b = reply(1, 0, 10, stage="evaluate"), reply(2, 1, 30, stage="evaluate")
    b.content["metrics"]["accuracy"] = 0.9
    agg = s.aggregate_evaluate(1, [a, failed(3), b])
    assert agg["mean-accuracy"] == pytest.approx(0.7) and agg["worst-accuracy"] == pytest.approx(0.5)
    assert agg["accuracy"] == pytest.approx(0.25 * 0.5 + 0.75 * 0.9)  # Flower's weighted mean
    assert s.recorder.last_eval["c1"]["accuracy"] == 0.9
    assert s.recorder.history[-1]["worst_client"] == "c0"


def test_evaluate_can_be_thinned():
    s = tracked(TrackedFedAvg, rounds=5)
    s.eval_every = 2
    grid = FakeGrid([1, 2])
    assert list(s.configure_evaluate(1, rec(w=[0.0]), ConfigRecord(), grid)) == []
    assert len(list(s.configure_evaluate(2, rec(w=[0.0]), ConfigRecord(), grid))) == 2
    assert len(list(s.configure_evaluate(5, rec(w=[0.0]), ConfigRecord(), grid))) == 2  # last round always


def test_fedprox_sends_mu():
    s = tracked(TrackedFedProx, proximal_mu=0.3)
    msgs = list(s.configure_train(1, rec(w=[0.0]), ConfigRecord(), FakeGrid([1, 2])))
    assert all(m.content["config"]["proximal-mu"] == 0.3 for m in msgs)


def test_local_only_never_averages():
    s = tracked(LocalOnly)
    first = list(s.configure_train(1, rec(w=[1.0]), ConfigRecord(), FakeGrid([1])))
    later = list(s.configure_train(2, rec(w=[1.0]), ConfigRecord(), FakeGrid([1])))
    assert len(first[0].content["arrays"]) == 1 and len(later[0].content["arrays"]) == 0
    arrays, metrics = s.aggregate_train(1, [reply(1, 0, 5, ArrayRecord()), reply(2, 1, 5, ArrayRecord())])
    assert arrays is None and metrics is not None


def test_fedbn_sends_and_averages_only_shared_layers():
    s = tracked(FedBN, ["conv.w", "head.w"])
    full = rec(**{"conv.w": [1.0], "bn.weight": [1.0], "bn.running_mean": [0.0], "head.w": [2.0]})
    msgs = list(s.configure_train(1, full, ConfigRecord(), FakeGrid([1, 2])))
    assert all(sorted(m.content["arrays"]) == ["conv.w", "head.w"] for m in msgs)
    replies = [reply(1, 0, 1, rec(**{"conv.w": [3.0], "head.w": [0.0]})), reply(2, 1, 1, rec(**{"conv.w": [5.0], "head.w": [4.0]}))]
    arrays, _ = s.aggregate_train(1, replies)
    out = record_to_arrays(arrays)
    assert out["conv.w"][0] == 4.0 and out["head.w"][0] == 2.0
    assert out["bn.weight"][0] == 1.0 and out["bn.running_mean"][0] == 0.0  # untouched
    ev = list(s.configure_evaluate(1, arrays, ConfigRecord(), FakeGrid([1])))
    assert sorted(ev[0].content["arrays"]) == ["conv.w", "head.w"]


def _stats(mean: float) -> ConfigRecord:
    return ConfigRecord({"bn-mean": [mean], "bn-var": [1.0], "bn-sizes": [1]})


def test_fedap_personalised_aggregates_follow_the_weight_matrix():
    s = tracked(FedAP, ["w"], momentum=0.5)
    grid = FakeGrid([11, 12, 13])
    full = rec(w=[0.0], **{"bn.weight": [1.0]})
    first = list(s.configure_train(1, full, ConfigRecord(), grid))
    assert all(m.content["config"]["bn-stats"] for m in first)
    assert all(sorted(m.content["arrays"]) == ["w"] for m in first)
    # clients at BN means 0, 1, 3 → the hand-computed matrix of test_fed_aggregation
    replies = [
        reply(11, 0, 10, rec(w=[0.0]), extra={"fedap": _stats(0.0)}),
        reply(12, 1, 10, rec(w=[4.0]), extra={"fedap": _stats(1.0)}),
        reply(13, 2, 10, rec(w=[8.0]), extra={"fedap": _stats(3.0)}),
    ]
    arrays, _ = s.aggregate_train(1, replies)
    assert record_to_arrays(arrays)["w"][0] == pytest.approx(4.0)  # plain average kept as "global"
    W = s.W
    expected = {11: W[0] @ [0, 4, 8], 12: W[1] @ [0, 4, 8], 13: W[2] @ [0, 4, 8]}
    ev = list(s.configure_evaluate(1, arrays, ConfigRecord(), grid))
    assert {m.metadata.dst_node_id: float(m.content["arrays"]["w"].numpy()[0]) for m in ev} == pytest.approx(expected)
    second = list(s.configure_train(2, arrays, ConfigRecord(), grid))
    assert not any("bn-stats" in m.content["config"] for m in second)
    assert {m.metadata.dst_node_id: float(m.content["arrays"]["w"].numpy()[0]) for m in second} == pytest.approx(expected)
    # node 13 fails in round 2: rows renormalised over 11 and 12
    s.aggregate_train(2, [reply(11, 0, 10, rec(w=[0.0])), reply(12, 1, 10, rec(w=[4.0])), failed(13)])
    row = W[2, :2] / W[2, :2].sum()
    assert float(s.personal[13]["w"].numpy()[0]) == pytest.approx(row @ [0, 4])


def test_fedbn_sends_the_whole_pretrained_model_in_round_1_only():
    s = tracked(FedBN, ["conv.w"], full_first_round=True)
    full = rec(**{"conv.w": [1.0], "bn.weight": [2.0]})
    first = list(s.configure_train(1, full, ConfigRecord(), FakeGrid([1])))
    second = list(s.configure_train(2, full, ConfigRecord(), FakeGrid([1])))
    assert sorted(first[0].content["arrays"]) == ["bn.weight", "conv.w"]
    assert sorted(second[0].content["arrays"]) == ["conv.w"]


def test_a_node_that_never_replies_is_recorded_as_a_timeout():
    s = tracked(TrackedFedAvg)
    sent = list(s.configure_train(1, rec(w=[0.0]), ConfigRecord(), FakeGrid([1, 2, 3])))
    assert len(sent) == 3
    arrays, _ = s.aggregate_train(1, [reply(1, 0, 10, rec(w=[1.0])), reply(2, 1, 10, rec(w=[3.0]))])
    assert arrays["w"].numpy()[0] == 2.0
    assert [(f["node_id"], f["reason"]) for f in s.recorder.failures] == [(3, "no reply within round-timeout")]


def test_non_finite_updates_are_refused_and_counted():
    s = tracked(TrackedFedAvg)
    rejected = reply(9, 3, 0)
    rejected.content["metrics"]["non-finite"] = 1  # the device rejected its own step
    replies = [reply(7, 0, 10, rec(w=[np.nan, 1.0])), reply(8, 1, 10, rec(w=[2.0, np.inf])), reply(6, 2, 10, rec(w=[4.0, 6.0])), rejected]
    arrays, _ = s.aggregate_train(1, replies)
    np.testing.assert_array_equal(arrays["w"].numpy(), [4.0, 6.0])  # only the finite update is averaged
    reasons = sorted((f["node_id"], f["reason"]) for f in s.recorder.failures)
    assert reasons == [(7, "non-finite update refused"), (8, "non-finite update refused"), (9, "the device rejected its non-finite training step")]
    assert s.recorder._train[1]["replies"] == 1
    assert s.aggregate_train(2, [reply(7, 0, 10, rec(w=[np.nan]))]) == (None, None)  # none left: the previous model stays


def test_failures_name_the_device_once_its_node_has_said_which_it_is():
    import io

    s = tracked(TrackedFedAvg)
    s.recorder.progress, s.recorder.stream = True, io.StringIO()
    s.aggregate_train(1, [reply(7, 0, 10, rec(w=[1.0])), reply(8, 1, 10, rec(w=[2.0]))])
    s.aggregate_train(2, [reply(7, 0, 10, rec(w=[1.0])), failed(8)])
    s.aggregate_train(3, [reply(7, 0, 10, rec(w=[1.0])), failed(99)])  # never replied: only its node id is known
    assert [(f["round"], f.get("client")) for f in s.recorder.failures] == [(2, "c1"), (3, None)]
    lines = s.recorder.stream.getvalue().splitlines()
    assert lines == ["[test] round 2: device c1 failed in train: boom", "[test] round 3: node 99 failed in train: boom"]


def _pushed(messages):
    """What the grid does as it sends: each message gets its id (flwr's grids set it in place)."""
    for i, m in enumerate(messages):
        m.metadata.__dict__["_message_id"] = f"msg-{i}"
    return messages


def test_a_device_lost_for_good_never_hangs_the_next_rounds():
    import threading

    s = TrackedFedAvg(min_train_nodes=2, min_evaluate_nodes=2, min_available_nodes=3)
    s.setup_tracking(RunRecorder(None, "test", 3, progress=False), num_rounds=3, round_timeout=0.5)
    grid = FakeGrid([11, 12, 13])
    assert len(list(s.configure_train(1, rec(w=[0.0]), ConfigRecord(), grid))) == 3  # round 1 waits for every device
    grid.nodes = [11, 12]  # device 13 died
    out: list = []
    t = threading.Thread(target=lambda: out.append(list(s.configure_train(2, rec(w=[0.0]), ConfigRecord(), grid))), daemon=True)
    t.start()
    t.join(timeout=20)  # Flower's sampling waited forever for min-available-nodes = 3
    assert not t.is_alive() and sorted(m.metadata.dst_node_id for m in out[0]) == [11, 12]
    grid.nodes = [11]  # fewer than min-train-nodes: the run ends within round-timeout, with a reason
    with pytest.raises(RuntimeError, match=r"round 3: 1 devices connected after round-timeout \(0.5 s\), fewer than the 2 a round needs"):
        s.configure_train(3, rec(w=[0.0]), ConfigRecord(), grid)


def test_a_node_the_superlink_reports_unavailable_is_one_failure_under_its_own_id():
    from flwr.server.superlink.linkstate.utils import create_message_error_unavailable_res_message

    s = tracked(TrackedFedAvg)
    sent = _pushed(list(s.configure_train(1, rec(w=[0.0]), ConfigRecord(), FakeGrid([21, 22, 23]))))
    dead = next(m for m in sent if m.metadata.dst_node_id == 23)
    unavailable = create_message_error_unavailable_res_message(dead.metadata, "node_unavail")
    assert unavailable.metadata.src_node_id != 23  # the SuperLink answers, not the node
    s.aggregate_train(1, [reply(21, 0, 10, rec(w=[1.0])), reply(22, 1, 10, rec(w=[3.0])), unavailable])
    assert [f["node_id"] for f in s.recorder.failures] == [23]  # once, not also as "no reply within round-timeout"
    assert "Node Unavailable" in s.recorder.failures[0]["reason"]


def test_two_nodes_claiming_one_device_are_both_excluded_and_counted():
    s = tracked(TrackedFedAvg)
    replies = [reply(7, 0, 10, rec(w=[100.0])), reply(8, 0, 10, rec(w=[-100.0])), reply(9, 1, 10, rec(w=[2.0]))]
    arrays, _ = s.aggregate_train(1, replies)
    assert arrays["w"].numpy()[0] == 2.0  # only the undisputed device's update; the mean of all three would be 0.667
    assert [(f["node_id"], f["client"]) for f in s.recorder.failures] == [(7, "c0"), (8, "c0")]
    assert all("2 nodes (7, 8) claim device c0: all excluded" == f["reason"] for f in s.recorder.failures)
