"""Bad input gives a clear ValueError; feature and label policies; no silent corruption."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from fedotl import online
from fedotl.online.sources import SourceClassifier


def _learners():
    src2 = SourceClassifier(np.eye(2)[:, :2] * [1, -1], classes=(False, True))
    srcm = SourceClassifier(np.eye(2), classes=("a", "b"))
    return [
        online.PA(),
        online.MulticlassPA(),
        online.HomOTL1(src2),
        online.HomOTL2(src2),
        online.HetOTL(src2, n_features=2),
        online.MulticlassHomOTL1(srcm),
        online.MulticlassHomOTL2(srcm),
        online.MulticlassHetOTL(srcm, n_features=2),
        online.HomOTLMS((srcm, srcm)),
        online.HomOTLODDM(),
        online.SourceOnly(srcm),
        online.PAIO(srcm),
        online.FixedAlphaHomOTL(srcm),
    ]


def _label(m):
    return True if isinstance(m, online.base.BinaryOnlineClassifier) else "a"


@pytest.mark.parametrize("m", _learners(), ids=lambda m: type(m).__name__)
def test_array_path_rejects_bad_input(m):
    y = _label(m)
    m.learn_array(np.array([1.0, 2.0]), y)
    before = pickle.dumps(m)
    for bad in ([np.nan, 1.0], [np.inf, 0.0], [0.0, -np.inf]):
        xb = np.array(bad)
        for call in (m.learn_array, m.predict_learn_array):
            with pytest.raises(ValueError, match="NaN or infinite"):
                call(xb, y)
        for call in (m.predict_array, m.predict_proba_array):
            with pytest.raises(ValueError, match="NaN or infinite"):
                call(xb)
    with pytest.raises(ValueError, match="expected 2 features, got 3"):
        m.learn_array(np.ones(3), y)
    with pytest.raises(ValueError, match="expected 2 features, got 1"):
        m.predict_array(np.ones(1))
    with pytest.raises(ValueError, match="1-D"):
        m.predict_array(np.ones((1, 2)))
    with pytest.raises(ValueError, match="row 1"):
        m.partial_fit(np.array([[1.0, 2.0], [np.nan, 0.0]]), [y, y])
    with pytest.raises(ValueError, match="labels"):
        m.partial_fit(np.ones((2, 2)), [y])
    assert pickle.dumps(m) == before  # nothing was learned from the rejected calls


@pytest.mark.parametrize("m", _learners(), ids=lambda m: type(m).__name__)
def test_dict_path_rejects_bad_values_naming_the_key(m):
    y = _label(m)
    with pytest.raises(ValueError, match="'acc_x'"):
        m.learn_one({"acc_x": float("nan")}, y)
    with pytest.raises(ValueError, match="'acc_y'"):
        m.predict_one({"acc_y": "high"})
    with pytest.raises(ValueError, match="'gyr'"):
        m.learn_one({0: 1.0, "gyr": float("inf")}, y)
    assert "acc_x" not in m.feature_names_in_  # rejected samples register nothing


def test_bad_labels():
    with pytest.raises(ValueError, match="binary learner"):
        online.PA().learn_array(np.ones(2), "walk")
    with pytest.raises(ValueError, match="binary learner"):
        online.HomOTL1().learn_one({"a": 1.0}, 2)
    m = online.MulticlassPA()
    for bad in (None, float("nan"), np.float64("nan")):
        with pytest.raises(ValueError, match="invalid class label"):
            m.learn_array(np.ones(2), bad)
    with pytest.raises(ValueError, match="hashable"):
        m.learn_array(np.ones(2), ["a"])
    assert m.classes_ == []


def test_unseen_label_adds_a_row_everywhere():
    srcm = SourceClassifier(np.eye(2), classes=("a", "b"))
    for m in (online.MulticlassHomOTL1(srcm), online.HomOTLMS((srcm,)), online.MulticlassHetOTL(srcm, n_features=2),
              online.PAIO(srcm), online.SourceOnly(srcm), online.HomOTLODDM()):
        m.learn_array(np.array([1.0, 0.0]), "c")
        assert m.classes_[-1] == "c"
        p = m.predict_proba_array(np.array([1.0, 0.0]))
        assert p.shape == (len(m.classes_),) and p.sum() == pytest.approx(1.0)


def test_feature_order_and_emerging_features():
    m = online.MulticlassPA()
    m.learn_one({"b": 1.0, "a": 2.0}, "x")
    m.learn_one({"a": 1.0, "c": 3.0}, "y")  # "c" appears later: a zero column, then learned
    assert m.feature_names_in_ == ["b", "a", "c"]
    assert m.n_features_in_ == 3
    # prediction ignores unknown keys and treats missing ones as 0
    assert m.predict_one({"zzz": 5.0, "c": 1.0}) == m.predict_array(np.array([0.0, 0.0, 1.0]))
    assert "zzz" not in m.feature_names_in_
    # the array path now expects the 3 columns
    with pytest.raises(ValueError, match="expected 3 features"):
        m.learn_array(np.ones(2), "x")


def test_array_width_adopted_once():
    m = online.MulticlassPA()
    m.learn_array([1, 2, 3], 0)  # lists and ints are converted
    assert m.n_features_in_ == 3 and m.feature_names_in_ == [0, 1, 2]
    with pytest.raises(ValueError, match="expected 3"):
        m.learn_array(np.ones(4), 0)


@pytest.mark.parametrize(
    "make",
    [
        lambda s: online.HomOTLMS((s, s), horizon=50),
        lambda s: online.MulticlassHomOTL1(s),
        lambda s: online.FixedAlphaHomOTL(s),
    ],
)
def test_pickle_and_deepcopy_keep_the_stacked_views(make):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 2)), rng.integers(0, 2, 60)
    src = SourceClassifier(np.eye(2), classes=(0, 1))
    a = make(src)
    a.partial_fit(X[:30], y[:30])
    for b in (pickle.loads(pickle.dumps(a)), copy.deepcopy(a)):
        np.testing.assert_array_equal(b.prequential(X[30:], y[30:]), copy.deepcopy(a).prequential(X[30:], y[30:]))
        # the target block is still a view of the stacked weights
        assert np.shares_memory(b._Wt, b._M)


def test_unseen_label_cannot_leak_into_its_own_prediction():
    # every known score is negative at x, so a fresh zero row for the new label would win
    # if it were added before predicting
    m = online.MulticlassPA(classes=("a", "b"))
    m.learn_array(np.zeros(2), "a")  # fixes the width; x = 0 is passive
    m._W[:] = [[-1.0, -1.0], [-2.0, -2.0]]
    x = np.array([1.0, 1.0])
    assert m.predict_learn_array(x, "c") == "a"
    assert m.prequential(np.array([[2.0, 2.0]]), ["d"]).tolist() == [True]
    assert m.classes_ == ["a", "b", "c", "d"]
    src = SourceClassifier(-np.ones((2, 2)), classes=("a", "b"))
    h = online.MulticlassHomOTL1(src)
    assert h.predict_learn_array(x, "c") == "a"
