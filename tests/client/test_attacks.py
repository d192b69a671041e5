"""Simulated attacks: hand-computed updates, who attacks, and the run-config rules."""

from __future__ import annotations

import numpy as np
import pytest

from fedotl.client.attacks import attack_update, flip_labels, parse_partitions, pick_attackers
from fedotl.client.config import RunConfig

W0 = {"conv.weight": np.array([1.0, -1.0], np.float32), "bn.running_var": np.array([1.0], np.float32)}
W1 = {"conv.weight": np.array([1.5, -2.0], np.float32), "bn.running_var": np.array([0.5], np.float32)}
LEARNABLE = {"conv.weight"}


def test_sign_flip_reverses_and_scales_the_update_of_learnable_parameters_only():
    sent = attack_update(W0, W1, "sign-flip", scale=4.0, learnable=LEARNABLE, seed=0)
    np.testing.assert_allclose(sent["conv.weight"], [1 - 4 * 0.5, -1 - 4 * -1.0])  # w0 − kΔ
    np.testing.assert_array_equal(sent["bn.running_var"], W1["bn.running_var"])  # buffers go as trained
    assert sent["conv.weight"].dtype == np.float32


def test_gaussian_noise_has_k_times_the_honest_update_size():
    w0 = {"w": np.zeros(20000, np.float32)}
    w1 = {"w": np.full(20000, 0.1, np.float32)}
    sent = attack_update(w0, w1, "gaussian", scale=10.0, learnable={"w"}, seed=1)
    assert abs(float(np.std(sent["w"])) - 1.0) < 0.02  # k · rms(Δ) = 10 · 0.1
    assert abs(float(np.mean(sent["w"]))) < 0.03  # no information about Δ
    again = attack_update(w0, w1, "gaussian", scale=10.0, learnable={"w"}, seed=1)
    np.testing.assert_array_equal(sent["w"], again["w"])


def test_nan_and_label_flip():
    assert np.isnan(attack_update(W0, W1, "nan", scale=1.0, learnable=LEARNABLE, seed=0)["conv.weight"]).all()
    np.testing.assert_array_equal(attack_update(W0, W1, "label-flip", scale=1.0, learnable=LEARNABLE, seed=0)["conv.weight"], W1["conv.weight"])
    assert flip_labels(np.array([0, 1, 2, 3]), 4).tolist() == [3, 2, 1, 0]


def test_attackers_are_a_seeded_share_of_the_devices():
    picked = pick_attackers(40, 0.2, seed=0)
    assert len(picked) == 8 and len(set(picked)) == 8 and all(0 <= p < 40 for p in picked)
    assert picked == pick_attackers(40, 0.2, seed=0) and picked != pick_attackers(40, 0.2, seed=1)
    assert pick_attackers(40, 0.0, seed=0) == ()
    assert parse_partitions(" 3, 1,3") == (1, 3)
    with pytest.raises(ValueError, match="attack-partitions"):
        parse_partitions("1,x")


def test_run_config_rules():
    with pytest.raises(ValueError, match="needs attackers"):
        RunConfig({"attack": "sign-flip"})
    with pytest.raises(ValueError, match="does not apply to fedap"):
        RunConfig({"strategy": "fedap", "aggregation": "median"})
    with pytest.raises(ValueError, match="secagg reveals only their sum"):
        RunConfig({"strategy": "fedavg", "aggregation": "krum", "secagg": True})
    assert RunConfig({"strategy": "fedhealth", "aggregation": "bulyan", "attack": "nan", "attack-partitions": "2"}).attack_partition_list == (2,)


def test_an_attacking_node_poisons_what_it_sends_not_what_it_keeps():
    from fedotl.client.data import ClientData
    from fedotl.client.model import build_model, get_arrays
    from fedotl.client.node import node_train

    rng = np.random.default_rng(0)
    y = np.arange(24) % 3
    X = rng.normal(size=(24, 3, 32)).astype(np.float32)
    data = ClientData("p1/RA", X[:16], y[:16], X[16:], y[16:], classes=(1, 2, 3))
    cfg = RunConfig({"strategy": "fedavg", "attack": "sign-flip", "attack-partitions": "0", "local-epochs": 1, "augment": False})
    incoming = get_arrays(build_model("cnn", data.n_inputs, data.n_classes, seed=0))
    honest, _, _ = node_train(data, RunConfig({**cfg, "attack": "none", "attack-partitions": ""}), incoming, {}, partition_id=0, config={"server-round": 1})
    sent, metrics, _ = node_train(data, cfg, incoming, {}, partition_id=0, config={"server-round": 1})
    other, _, _ = node_train(data, cfg, incoming, {}, partition_id=1, config={"server-round": 1})
    model = build_model("cnn", data.n_inputs, data.n_classes, seed=0)
    k = next(name for name, _ in model.named_parameters())
    buffer = next(name for name, _ in model.named_buffers() if name.endswith("running_var"))
    np.testing.assert_allclose(sent[buffer], honest[buffer])  # buffers go as trained
    np.testing.assert_allclose(sent[k], incoming[k] - 10.0 * (honest[k] - incoming[k]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(other[k], honest[k])  # partition 1 is honest
    assert metrics["num-examples"] == len(data.y_train)
