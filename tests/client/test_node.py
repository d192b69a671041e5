"""What one node does per message (client/node.py), without Flower's engine."""

from __future__ import annotations

import numpy as np
import pytest

from fedotl.client.data import ClientData
from fedotl.client.model import bn_keys, build_model, fc_keys, get_arrays, shared_keys
from fedotl.client.config import RunConfig
from fedotl.client.node import InjectedFailure, node_evaluate, node_model, node_personalize, node_stats, node_train
from fedotl.client.train import predict


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = np.arange(40) % 4
    X = rng.normal(size=(40, 3, 32)).astype(np.float32)
    X[:, 0] += (y[:, None] - 1.5).astype(np.float32)
    return ClientData("p1/RA", X[:24], y[:24], X[24:], y[24:], classes=(1, 2, 3, 4))


def settings(strategy, **kw):
    return RunConfig({"strategy": strategy, "local-epochs": 1, "personalize-epochs": 2, **kw})


def initial(data):
    return get_arrays(build_model("cnn", data.n_inputs, data.n_classes, seed=0))


def test_fedavg_node_returns_the_whole_model_and_keeps_no_state(data):
    state: dict = {}
    send, metrics, extra = node_train(data, settings("fedavg"), initial(data), state, partition_id=0, config={"server-round": 1})
    assert list(send) == list(initial(data)) and state == {} and extra == {}
    assert metrics["num-examples"] == 24 and 0 <= metrics["train-accuracy"] <= 1
    ev = node_evaluate(data, settings("fedavg"), send, state)
    assert ev["num-examples"] == 16 and set(ev) == {"num-examples", "accuracy", "macro-f1", "loss", "confusion"}
    k = data.n_classes
    cm = np.asarray(ev["confusion"]).reshape(k, k)  # rows: true class; its diagonal is the correct windows
    assert cm.sum() == 16 and cm.trace() == round(ev["accuracy"] * 16)
    assert (cm.sum(1) == np.bincount(data.y_test, minlength=k)).all()


def test_fedbn_node_keeps_batchnorm_local(data):
    model = build_model("cnn", data.n_inputs, data.n_classes, seed=0)
    state: dict = {}
    full = initial(data)
    send, _, _ = node_train(data, settings("fedbn"), full, state, partition_id=0, config={"server-round": 1})
    assert set(send) == set(shared_keys(model))  # BN never leaves, even when the whole model came in
    assert set(state["local-bn"]) == set(bn_keys(model))
    shared = {k: full[k] for k in shared_keys(model)}
    send2, _, _ = node_train(data, settings("fedbn"), shared, state, partition_id=0, config={"server-round": 2, "bn-stats": True})
    assert set(send2) == set(shared)


def test_fedap_stats_on_request(data):
    _, _, extra = node_train(data, settings("fedap"), initial(data), {}, partition_id=0, config={"server-round": 1, "bn-stats": True})
    assert extra["bn-sizes"] == [32, 64, 64, 64] and len(extra["bn-mean"]) == 224 and (extra["bn-var"] >= 0).all()


def test_local_node_trains_its_own_model(data):
    state: dict = {}
    send, _, _ = node_train(data, settings("local"), initial(data), state, partition_id=0, config={"server-round": 1})
    assert send == {} and "local-model" in state
    first = {k: v.copy() for k, v in state["local-model"].items()}
    node_train(data, settings("local"), {}, state, partition_id=0, config={"server-round": 2})
    assert any(not np.array_equal(first[k], state["local-model"][k]) for k in first)
    assert node_evaluate(data, settings("local"), {}, state)["num-examples"] == 16


def test_proximal_mu_comes_with_the_message(data):
    s = settings("fedprox", **{"local-epochs": 5})
    a, _, _ = node_train(data, s, initial(data), {}, partition_id=0, config={"server-round": 1, "proximal-mu": 0.0})
    b, _, _ = node_train(data, s, initial(data), {}, partition_id=0, config={"server-round": 1, "proximal-mu": 100.0})
    init = initial(data)
    drift = lambda s: sum(float(((s[k] - init[k]) ** 2).sum()) for k in shared_keys(build_model("cnn", 3, 4)))  # noqa: E731
    assert drift(b) < drift(a)


def test_injected_failure(data):
    s = settings("fedavg", **{"fail-partition": 3, "fail-round": 2})
    node_train(data, s, initial(data), {}, partition_id=3, config={"server-round": 1})
    with pytest.raises(InjectedFailure, match="partition 3 in round 2"):
        node_train(data, s, initial(data), {}, partition_id=3, config={"server-round": 2})


def test_personalize_and_stats(data):
    state: dict = {}
    arrays, metrics = node_stats(data, settings("fedhealth"), initial(data), state)
    assert metrics["num-examples"] == 24 and arrays["sum"].shape == (64,) and arrays["outer"].shape == (64, 64)
    head, m, summary = node_personalize(data, settings("fedhealth", **{"coral-weight": 0.5}), initial(data), state, np.eye(64))
    assert set(head) == set(fc_keys(build_model("cnn", 3, 4))) and "personal-head" in state
    assert {"accuracy", "global-accuracy", "macro-f1", "global-macro-f1"} <= set(m)
    assert summary == {}  # share-heads is off: nothing but metrics would leave the device
    _, _, shared = node_personalize(data, settings("fedhealth", **{"share-heads": True}), initial(data), {}, None)
    # the summary is of the *received* model's embeddings on the training windows
    _, emb = predict(node_model(data, settings("fedhealth"), initial(data), {}), data.X_train)
    assert int(shared["n"]) == len(data.y_train) and np.allclose(shared["mean"], emb.mean(0), atol=1e-5)
    assert shared["class_count"].tolist() == np.bincount(data.y_train, minlength=4).tolist()


def test_bad_settings():
    with pytest.raises(ValueError, match="strategy must be one of"):
        RunConfig({"strategy": "fedsgd"})
    with pytest.raises(ValueError, match="fedhealth-aggregation"):
        RunConfig({"strategy": "fedhealth", "fedhealth-aggregation": "x"})
    assert RunConfig({"strategy": "fedhealth", "fedhealth-aggregation": "fedap"}).local_bn
    assert not RunConfig({"strategy": "fedhealth"}).local_bn


def test_the_personalised_head_stays_on_the_device(synth_dsads, tmp_path, task_identity):
    from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict

    from fedotl.client.client_app import make_client_app
    from fedotl.simulations.devices import prepare_devices
    from fedotl.simulations.federated import make_config

    stores = prepare_devices(make_config(data_path=str(synth_dsads)), tmp_path / "stores")
    app = make_client_app(make_config(data_dir=str(stores.root), out_dir=str(tmp_path), personalize_epochs=1))
    ctx = Context(run_id=1, node_id=7, node_config={"partition-id": 3}, state=RecordDict(), run_config={})
    info = app(Message(RecordDict({"config": ConfigRecord()}), dst_node_id=7, message_type="query.info"), ctx)
    n_inputs, n_classes = int(info.content["metrics"]["n-inputs"]), int(info.content["metrics"]["n-classes"])
    model = build_model("cnn", n_inputs, n_classes, seed=0)
    content = RecordDict(
        {
            "arrays": ArrayRecord({k: Array(v) for k, v in get_arrays(model).items()}),
            "source": ArrayRecord({"cov": Array(np.eye(64, dtype=np.float32))}),
            "config": ConfigRecord(),
        }
    )
    reply = app(Message(content, dst_node_id=7, message_type="train.personalize"), ctx)
    assert not reply.has_error() and len(reply.content.array_records) == 0  # metrics only
    client_id = reply.content["client"]["client-id"]
    (path,) = (tmp_path / "heads").glob("*.npz")
    assert path.name == client_id.replace("/", "_") + ".npz"
    head = np.load(path)
    assert set(head.files) == set(fc_keys(model))
    np.testing.assert_array_equal(head["head.weight"], ctx.state["personal-head"]["head.weight"].numpy())
    assert not list((tmp_path / "heads").glob(".*tmp"))


def test_a_node_reads_only_the_store_it_is_given(synth_dsads, tmp_path, task_identity):
    """A SuperNode's node config data-dir wins over its partition; without either, a clear error."""
    from flwr.app import ConfigRecord, Context, Message, RecordDict

    from fedotl.client.client_app import make_client_app
    from fedotl.simulations.devices import prepare_devices
    from fedotl.simulations.federated import make_config

    stores = prepare_devices(make_config(data_path=str(synth_dsads)), tmp_path / "stores")
    query = lambda app, ctx: app(Message(RecordDict({"config": ConfigRecord()}), dst_node_id=7, message_type="query.info"), ctx)  # noqa: E731
    by_partition = make_client_app(make_config(data_dir=str(stores.root)))
    ctx = Context(run_id=1, node_id=7, node_config={"partition-id": 4}, state=RecordDict(), run_config={})
    assert query(by_partition, ctx).content["client"]["client-id"] == stores.ids[4]
    own = Context(run_id=1, node_id=7, node_config={"partition-id": 0, "data-dir": str(stores.store(6))}, state=RecordDict(), run_config={})
    assert query(make_client_app(), own).content["client"]["client-id"] == stores.ids[6]
    from fedotl.client.store import StoreError

    with pytest.raises(StoreError, match="no device store"):
        query(make_client_app(), Context(run_id=1, node_id=7, node_config={"partition-id": 0}, state=RecordDict(), run_config={}))


@pytest.mark.parametrize("strategy", ["fedavg", "fedbn", "local"])
def test_a_non_finite_training_step_is_rejected_and_the_state_kept(data, strategy):
    # one NaN cell in one training window makes the loss NaN: the node must not send (or keep) what it trained
    bad = ClientData(data.client_id, data.X_train.copy(), data.y_train, data.X_test, data.y_test, classes=data.classes)
    bad.X_train[3, 1, 7] = np.nan
    state: dict = {}
    node_train(data, settings(strategy), initial(data), state, partition_id=0, config={"server-round": 1})
    kept = {k: {n: a.copy() for n, a in v.items()} for k, v in state.items()}
    send, metrics, extra = node_train(bad, settings(strategy), initial(data), state, partition_id=0, config={"server-round": 2})
    assert send == {} and extra == {} and metrics == {"num-examples": 0, "non-finite": 1}
    assert state.keys() == kept.keys()
    for k in kept:
        assert all(np.array_equal(state[k][n], kept[k][n]) for n in kept[k])
