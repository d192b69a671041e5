"""Client side without Flower: model, local training, FedProx, evaluation, personalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedotl.client.model import (
    FeatureMLP,
    HARCNN,
    bn_keys,
    build_model,
    count_params,
    fc_keys,
    get_arrays,
    set_arrays,
    shared_keys,
    state_keys,
)
from fedotl.client.personalize import coral_loss, covariance, personalize
from fedotl.server.aggregation import pooled_moments
from fedotl.client.train import (
    TrainSettings, bn_input_stats, confusion_counts, derive_seed, embedding_moments, evaluate, macro_f1, train_local,
)


def toy(n=60, c=3, length=32, k=3, seed=0):
    """Separable windows: class k has a sine of frequency k+1 on channel 0."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    t = np.linspace(0, 2 * np.pi, length)
    X = rng.normal(0, 0.3, (n, c, length)).astype(np.float32)
    X[:, 0, :] += np.sin(np.outer(y + 1, t))
    return X, y


@pytest.mark.parametrize("channels", [9, 45])
def test_cnn_is_small_and_shaped(channels):
    m = build_model("cnn", channels, 19, seed=0)
    assert isinstance(m, HARCNN)
    assert count_params(m) <= 200_000
    out = m(torch.zeros(4, channels, 125))
    assert out.shape == (4, 19)
    assert m.embed(torch.zeros(4, channels, 125)).shape == (4, 64)
    # any window length works (global pooling)
    assert m(torch.zeros(2, channels, 50)).shape == (2, 19)


def test_mlp_and_build_errors():
    m = build_model("mlp", 120, 19, seed=0)
    assert isinstance(m, FeatureMLP) and m(torch.zeros(3, 120)).shape == (3, 19)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("rnn", 9, 19)
    with pytest.raises(ValueError):
        build_model("cnn", 9, 1)


def test_same_seed_same_weights_and_key_groups():
    a, b, c = (build_model("cnn", 9, 5, seed=s) for s in (3, 3, 4))
    for k in state_keys(a):
        assert torch.equal(a.state_dict()[k], b.state_dict()[k])
    assert any(not torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in state_keys(a))
    keys, bn, shared, fc = state_keys(a), bn_keys(a), shared_keys(a), fc_keys(a)
    assert set(bn) | set(shared) == set(keys) and not set(bn) & set(shared)
    assert all("running_mean" in k or "running_var" in k or k.endswith(("weight", "bias")) for k in bn)
    assert all(k.startswith(("bottleneck.", "head.")) for k in fc)
    assert not any("num_batches_tracked" in k for k in keys)
    # get/set round trip, and shape errors
    set_arrays(c, get_arrays(a))
    assert all(torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in keys)
    with pytest.raises(ValueError, match="shape"):
        set_arrays(c, {"head.bias": np.zeros(99, np.float32)})
    with pytest.raises(KeyError):
        set_arrays(c, {"nope": np.zeros(1)})


def test_local_training_learns_and_is_deterministic():
    X, y = toy()
    s = TrainSettings(epochs=15, lr=3e-3, batch_size=16, augment=False)
    m1, m2 = build_model("cnn", 3, 3, seed=0), build_model("cnn", 3, 3, seed=0)
    before = evaluate(m1, X, y)["accuracy"]
    r1 = train_local(m1, X, y, s, seed=5)
    train_local(m2, X, y, s, seed=5)
    after = evaluate(m1, X, y)
    assert after["accuracy"] > max(before, 0.9)
    assert r1["steps"] == 15 * 4
    assert all(np.array_equal(v, get_arrays(m2)[k]) for k, v in get_arrays(m1).items())
    assert 0 <= after["macro_f1"] <= 1 and after["n"] == len(y)


def test_batch_of_one_is_folded_in():
    X, y = toy(n=17)
    m = build_model("cnn", 3, 3, seed=0)
    r = train_local(m, X, y, TrainSettings(epochs=1, batch_size=16, augment=True), seed=0)
    assert r["steps"] == 1  # 17 = 16 + 1 → one batch of 17


def test_fedprox_term_keeps_weights_near_the_global_model():
    X, y = toy()
    s = TrainSettings(epochs=5, lr=1e-2, batch_size=16, augment=False)

    def drift(mu):
        m = build_model("cnn", 3, 3, seed=0)
        start = [p.detach().clone() for p in m.parameters()]
        train_local(m, X, y, s, seed=1, proximal_mu=mu)
        return float(sum(((p.detach() - q) ** 2).sum() for p, q in zip(m.parameters(), start)))

    assert drift(10.0) < 0.5 * drift(0.0)


def test_evaluate_on_known_predictions():
    m = build_model("mlp", 2, 2, seed=0)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.head.bias.copy_(torch.tensor([1.0, 0.0]))  # always predicts class 0
    r = evaluate(m, np.zeros((4, 2), np.float32), np.array([0, 0, 0, 1]))
    assert r["accuracy"] == 0.75
    assert r["macro_f1"] == pytest.approx((6 / 7 + 0) / 2)
    assert evaluate(m, np.zeros((0, 2), np.float32), np.zeros(0, int))["n"] == 0


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")  # sklearn's, on the one-class cases
def test_confusion_and_macro_f1_equal_sklearns(seed):
    from sklearn.metrics import confusion_matrix, f1_score

    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 8))
    n = int(rng.integers(1, 40))
    # a narrow range leaves some classes absent from truth, prediction or both
    y, pred = rng.integers(0, max(1, k // 2 + 1), n), rng.integers(0, k, n)
    assert np.array_equal(confusion_counts(y, pred, k), confusion_matrix(y, pred, labels=np.arange(k)))
    assert macro_f1(confusion_counts(y, pred, k)) == pytest.approx(f1_score(y, pred, average="macro", zero_division=0), abs=1e-12)


def test_bn_input_stats_and_embedding_moments_match_direct_computation():
    X, _ = toy(n=20)
    m = build_model("cnn", 3, 3, seed=0).eval()
    means, variances = bn_input_stats(m, X, batch_size=7)
    assert [len(v) for v in means] == [32, 64, 64, 64]
    first = m.features[0](torch.from_numpy(X)).detach().double()
    np.testing.assert_allclose(means[0], first.mean(dim=(0, 2)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(variances[0], first.var(dim=(0, 2), unbiased=False).numpy(), rtol=1e-4, atol=1e-6)
    n, s, ss = embedding_moments(m, X)
    f = m.embed(torch.from_numpy(X)).detach().double().numpy()
    assert n == 20
    np.testing.assert_allclose(s, f.sum(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pooled_moments([n], [s], [ss])[2], np.cov(f.T), rtol=1e-4, atol=1e-6)


def test_coral_loss_formula():
    rng = np.random.default_rng(0)
    f = torch.tensor(rng.normal(size=(50, 4)), dtype=torch.float64)
    cs = torch.tensor(np.diag([1.0, 2.0, 3.0, 4.0]))
    ct = torch.tensor(np.cov(f.numpy().T))
    assert torch.allclose(covariance(f), ct)
    expected = float(((cs - ct) ** 2).sum() / (4 * 4**2))
    assert float(coral_loss(cs, f)) == pytest.approx(expected)
    assert float(coral_loss(covariance(f), f)) == pytest.approx(0.0, abs=1e-12)


def test_personalize_freezes_convs_tunes_fc_and_aligns_covariance():
    X, y = toy(n=48)
    base = build_model("cnn", 3, 3, seed=0)
    train_local(base, X, y, TrainSettings(epochs=3, augment=False), seed=0)
    target = np.eye(64) * 2.0
    gaps = {}
    for weight in (0.0, 100.0):
        m = build_model("cnn", 3, 3, seed=0)
        set_arrays(m, get_arrays(base))
        conv_before = {k: v.copy() for k, v in get_arrays(m).items() if k.startswith("features.")}
        fc_before = get_arrays(m, fc_keys(m))
        personalize(m, X, y, target, TrainSettings(epochs=20, lr=3e-3, augment=False), seed=0, coral_weight=weight)
        after = get_arrays(m)
        for k, v in conv_before.items():  # conv weights and BN running stats untouched
            np.testing.assert_array_equal(after[k], v)
        assert any(not np.array_equal(after[k], v) for k, v in fc_before.items())
        assert all(p.requires_grad for p in m.parameters())
        f = m.eval().embed(torch.from_numpy(X)).detach()
        gaps[weight] = float(coral_loss(torch.tensor(target, dtype=torch.float32), f))
    assert gaps[100.0] < 0.8 * gaps[0.0]


def test_derive_seed_is_stable():
    assert derive_seed(0, "p1/RA", 3) == derive_seed(0, "p1/RA", 3) != derive_seed(0, "p1/RA", 4)
    assert 0 <= derive_seed("x") < 2**31


def test_batches_per_epoch_counts_what_an_epoch_makes():
    import torch

    from fedotl.client.train import _batches, batches_per_epoch

    gen = torch.Generator().manual_seed(0)
    assert all(len(_batches(n, b, gen)) == batches_per_epoch(n, b) for n in range(1, 120) for b in (1, 2, 7, 32))
