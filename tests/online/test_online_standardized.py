"""TargetStandardized: hand-computed z, dict path == array path, no look-ahead, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from river import linear_model

from fedotl import online
from fedotl.online import MulticlassPA, TargetStandardized
from fedotl.online.evaluation import evaluate_learner
from fedotl.online.sources import SourceClassifier


class Recorder(MulticlassPA):
    """A MulticlassPA that remembers what it was asked to predict and to learn."""

    def __init__(self):
        super().__init__()
        self.seen: list = []

    def predict_one(self, x, **kwargs):
        self.seen.append(("predict", dict(x)))
        return super().predict_one(x)

    def learn_one(self, x, y, **kwargs):
        self.seen.append(("learn", dict(x)))
        super().learn_one(x, y)


# m0 = 1, stream x = 2, 4, 0, 2 (one feature), worked out by hand:
#   t=1: c=0, mean = 0/1 = 0,  E[x2] = 1/1 = 1,            var = 1,           z = 2
#   t=2: c=1, mean = 2/2 = 1,  E[x2] = (1+4)/2 = 2.5,      var = 2.5-1 = 1.5, z = 3/sqrt(1.5) = sqrt(6)
#   t=3: c=2, mean = 6/3 = 2,  E[x2] = (1+4+16)/3 = 7,     var = 7-4 = 3,     z = -2/sqrt(3)
#   t=4: c=3, mean = 6/4 = 1.5, E[x2] = (1+20+0)/4 = 5.25, var = 5.25-2.25 = 3, z = 0.5/sqrt(3)
STREAM = [2.0, 4.0, 0.0, 2.0]
HAND_Z = [2.0, math.sqrt(6.0), -2.0 / math.sqrt(3.0), 0.5 / math.sqrt(3.0)]


def test_hand_computed_z_array_path():
    model = TargetStandardized(MulticlassPA(), prior_weight=1.0)
    z = model.standardize(np.array(STREAM)[:, None])[:, 0]
    np.testing.assert_allclose(z, HAND_Z, rtol=1e-12)
    assert model.n_seen_ == 0  # standardize() learns nothing


def test_hand_computed_z_dict_path_same_z_for_predict_and_learn():
    rec = Recorder()
    model = TargetStandardized(rec, prior_weight=1.0)
    for x, y in zip(STREAM, "abab"):
        model.predict_one({"f": x})
        model.learn_one({"f": x}, y)
    predicted = [x["f"] for kind, x in rec.seen if kind == "predict"]
    learned = [x["f"] for kind, x in rec.seen if kind == "learn"]
    np.testing.assert_allclose(predicted, HAND_Z, rtol=1e-12)
    assert predicted == learned  # test-then-train: the same z, bit for bit
    mean, var = model.moments()
    # after all four: c=4, mean = 8/5, E[x2] = (1+24)/5 = 5, var = 5 - 64/25 = 61/25
    np.testing.assert_allclose(mean, [8 / 5], rtol=1e-12)
    np.testing.assert_allclose(var, [61 / 25], rtol=1e-12)


def test_prior_only_at_start_means_source_scale():
    model = TargetStandardized(MulticlassPA(), prior_weight=20.0)
    assert model.standardize_one({"a": 3.5, "b": -1.0}) == {"a": 3.5, "b": -1.0}


def test_missing_and_new_features_are_zeros_so_far():
    model = TargetStandardized(MulticlassPA(), prior_weight=1.0)
    model.learn_one({"a": 2.0}, "x")
    # "b" was 0 in the first sample: mean 0, E[x2] = 1/2; "a" is missing now, i.e. 0
    z = model.standardize_one({"b": 1.0})
    assert list(z) == ["a", "b"]
    assert z["a"] == pytest.approx((0.0 - 1.0) / math.sqrt(2.5 - 1.0))
    assert z["b"] == pytest.approx(1.0 / math.sqrt(0.5))


def _dict_path_mistakes(model, X, y):
    """Test-then-train through predict_one / learn_one on dicts with integer keys."""
    mistakes = []
    for xi, yi in zip(X, y):
        x = dict(enumerate(xi.tolist()))
        mistakes.append(model.predict_one(x) != yi)
        model.learn_one(x, yi)
    return mistakes


def _sources(d, classes, rng):
    return tuple(SourceClassifier(rng.normal(size=(len(classes), d)), classes=classes) for _ in range(2))


@pytest.mark.parametrize(
    "make",
    [
        lambda s: MulticlassPA(),
        lambda s: online.HomOTLMS(s, horizon=300),
        lambda s: online.PAIO(s[0]),
        lambda s: online.MulticlassHomOTL1(s[0]),
    ],
    ids=["PA", "HomOTLMS", "PAIO", "HomOTL1"],
)
def test_dict_and_array_paths_make_the_same_mistakes(make):
    rng = np.random.default_rng(3)
    classes = ("a", "b", "c")
    X = 5.0 + 3.0 * rng.normal(size=(300, 6))
    y = np.array(classes)[np.argmax(X[:, :3] + 0.5 * rng.normal(size=(300, 3)), axis=1)]
    sources = _sources(6, classes, rng)
    fast = TargetStandardized(make(sources), prior_weight=4.0)
    slow = TargetStandardized(make(sources), prior_weight=4.0)
    m_fast = fast.prequential(X, y)
    m_slow = _dict_path_mistakes(slow, X, y)
    np.testing.assert_array_equal(m_fast, m_slow)
    assert 0 < m_fast.sum() < 300
    # the statistics agree exactly too, so a later step continues identically
    for a, b in zip(fast.moments(), slow.moments()):
        np.testing.assert_array_equal(a, b)
    assert fast.n_seen_ == slow.n_seen_ == 300


def test_array_path_continues_across_calls_like_one_call():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(120, 3)) * [1.0, 10.0, 100.0]
    y = (X[:, 0] > 0).astype(int)
    once = TargetStandardized(MulticlassPA(), prior_weight=3.0).prequential(X, y)
    split = TargetStandardized(MulticlassPA(), prior_weight=3.0)
    twice = np.concatenate([split.prequential(X[:50], y[:50]), split.prequential(X[50:], y[50:])])
    np.testing.assert_array_equal(once, twice)


def test_river_learner_without_prequential_uses_its_dict_api():
    rng = np.random.default_rng(5)
    X = 5.0 + 3.0 * rng.normal(size=(200, 2))
    y = X[:, 0] > 5.0
    fast = TargetStandardized(linear_model.LogisticRegression(), prior_weight=2.0)
    slow = TargetStandardized(linear_model.LogisticRegression(), prior_weight=2.0)
    m_fast = fast.prequential(X, y)
    m_slow = _dict_path_mistakes(slow, X, y)
    np.testing.assert_array_equal(m_fast, m_slow)
    assert m_fast[100:].mean() < 0.15


def _moments_before(X, t, m0=20.0):
    """Variance used for row t: rows 0..t-1 and the default prior, written out directly."""
    past = X[:t]
    mean = past.sum(axis=0) / (m0 + t)
    return (m0 + (past**2).sum(axis=0)) / (m0 + t) - mean**2


def test_no_look_ahead():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(80, 4)) * 7.0 + 2.0
    y = np.where(X[:, 1] > 2.0, "up", "down")
    X2 = X.copy()
    X2[60:] *= 1000.0  # a wildly different future
    y2 = y.copy()
    y2[60:] = "down"
    m1 = TargetStandardized(MulticlassPA()).prequential(X, y)
    m2 = TargetStandardized(MulticlassPA()).prequential(X2, y2)
    np.testing.assert_array_equal(m1[:60], m2[:60])
    z1 = TargetStandardized(MulticlassPA()).standardize(X)
    z2 = TargetStandardized(MulticlassPA()).standardize(X2)
    np.testing.assert_array_equal(z1[:60], z2[:60])
    # row 60 is standardised with rows 0..59 only: same moments, so z scales with x
    np.testing.assert_allclose(z2[60] - z1[60], (X2[60] - X[60]) / np.sqrt(_moments_before(X, 60)), rtol=1e-9)


def test_wrapped_learners_work_in_evaluate():
    # features far from the source scale (mean 30, sd 5): a PA without a bias is lost on the
    # raw features and recovers once they are standardised online
    rng = np.random.default_rng(7)
    X = 30.0 + 5.0 * rng.normal(size=(150, 3))
    y = (X[:, 2] > 30.0).astype(int)
    raw = evaluate_learner(MulticlassPA, X, y, n_permutations=3)
    stats = evaluate_learner(lambda: TargetStandardized(MulticlassPA(), prior_weight=1.0), X, y, n_permutations=3)
    assert stats.curves.shape == (3, 150)
    assert raw.final_mean > 0.4
    assert stats.final_mean < 0.2


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "20"])
def test_prior_weight_must_be_positive(bad):
    with pytest.raises(ValueError, match="prior_weight must be a positive finite number"):
        TargetStandardized(MulticlassPA(), prior_weight=bad)


def test_learner_must_be_a_classifier():
    with pytest.raises(TypeError, match="learner must be a river classifier"):
        TargetStandardized(object())


@pytest.mark.parametrize(
    "x, needle",
    [
        ({"a": 1.0, "b": float("nan")}, "feature 'b' is nan"),
        ({"a": float("inf")}, "feature 'a' is inf"),
        ({"a": "high"}, "feature 'a' has a non-numeric value 'high'"),
    ],
)
def test_dict_path_rejects_bad_values_and_learns_nothing(x, needle):
    model = TargetStandardized(MulticlassPA())
    model.learn_one({"a": 1.0}, "u")
    for call in (model.predict_one, model.predict_proba_one, lambda x: model.learn_one(x, "u")):
        with pytest.raises(ValueError, match=needle):
            call(x)
    assert model.n_seen_ == 1 and model.feature_names_in_ == ["a"]


def test_bad_label_learns_nothing():
    model = TargetStandardized(MulticlassPA())
    with pytest.raises(ValueError, match="invalid class label"):
        model.learn_one({"a": 1.0}, None)
    assert model.n_seen_ == 0 and model.feature_names_in_ == []


@pytest.mark.parametrize(
    "X, y, needle",
    [
        (np.ones(3), [1, 2, 3], "expected a 2-D array"),
        (np.array([[1.0, np.nan], [1.0, 2.0]]), [1, 2], "X row 0 contains NaN or infinite values"),
        (np.array([[1.0, 2.0], [np.inf, 2.0]]), [1, 2], "X row 1 contains NaN or infinite values"),
        (np.ones((3, 2)), [1, 2], "X has 3 rows but y has 2 labels"),
    ],
)
def test_array_path_rejects_bad_input(X, y, needle):
    model = TargetStandardized(MulticlassPA())
    with pytest.raises(ValueError, match=needle):
        model.prequential(X, y)
    assert model.n_seen_ == 0


def test_array_path_checks_the_width():
    model = TargetStandardized(MulticlassPA())
    model.prequential(np.ones((4, 3)), [0, 1, 0, 1])
    assert model.feature_names_in_ == [0, 1, 2]
    with pytest.raises(ValueError, match="expected 3 features, got 2"):
        model.prequential(np.ones((2, 2)), [0, 1])
    assert model.n_seen_ == 4
