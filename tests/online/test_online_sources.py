"""Source classifier adapters give the same scores as the models they wrap."""

from __future__ import annotations

import numpy as np
import pytest

from fedotl.online.homotlms import HomOTLMS
from fedotl.online.pa import PA, MulticlassPA
from fedotl.online.sources import (
    SourceClassifier,
    from_pa,
    from_sklearn,
    from_torch,
    train_averaged_pa,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    y3 = np.array(["sit", "walk", "run"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)]
    y2 = np.where(X[:, 2] + 0.3 * X[:, 3] > 0, "up", "down")
    return X, y3, y2


def test_sklearn_multiclass(data):
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    X, y3, _ = data
    for model in (LogisticRegression(max_iter=500), SGDClassifier(random_state=0, fit_intercept=False)):
        model.fit(X, y3)
        src = from_sklearn(model, name="lr")
        np.testing.assert_allclose(src.scores_batch(X), model.decision_function(X), atol=1e-10)
        np.testing.assert_allclose(src.decision_function(X), model.decision_function(X), atol=1e-10)
        assert list(src.predict(X)) == list(model.predict(X))
        assert src.classes == tuple(model.classes_)


def test_sklearn_binary_single_row(data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    X, _, y2 = data
    for model in (LogisticRegression(), LinearSVC()):
        model.fit(X, y2)
        assert model.coef_.shape[0] == 1
        src = from_sklearn(model)
        assert src.n_classes == 2
        np.testing.assert_allclose(src.decision_function(X), model.decision_function(X), atol=1e-10)
        assert list(src.predict(X)) == list(model.predict(X))
        # rows are centred: the positive row is decision / 2
        np.testing.assert_allclose(src.scores_batch(X)[:, 1], model.decision_function(X) / 2, atol=1e-10)


def test_sklearn_bool_labels_drive_binary_learners(data):
    from sklearn.linear_model import LogisticRegression

    from fedotl.online.homotl1 import HomOTL1

    X, _, y2 = data
    yb = y2 == "up"
    model = LogisticRegression().fit(X, yb)
    src = from_sklearn(model)
    v, c = src.binary_weights()
    np.testing.assert_allclose(X @ v + c, model.decision_function(X), atol=1e-10)
    m = HomOTL1(src)
    assert m.predict_array(X[0]) == (1 if model.decision_function(X[:1])[0] > 0 else -1)


def test_sklearn_feature_names_and_rejects_unfitted(data):
    from sklearn.linear_model import LogisticRegression

    X, y3, _ = data
    model = LogisticRegression(max_iter=500).fit(X, y3)
    src = from_sklearn(model, features=list("abcde"))
    assert src.feature_names == tuple("abcde")
    m = HomOTLMS((src,))
    x = dict(zip("abcde", X[0]))
    np.testing.assert_allclose(m.expert_scores(X[0])[0], model.decision_function(X[:1])[0])
    assert m.predict_one(x) in src.classes
    with pytest.raises(ValueError, match="fitted"):
        from_sklearn(LogisticRegression())


def test_from_averaged_pa(data):
    X, y3, y2 = data
    pa = MulticlassPA(average=True, fit_intercept=True)
    pa.partial_fit(X, y3)
    src = from_pa(pa)
    W, b = pa.averaged_weights()
    np.testing.assert_allclose(src.scores_batch(X), X @ W.T + b)
    assert src.classes == tuple(pa.classes_)
    assert [pa.predict_array(x) for x in X] == list(src.predict(X))

    bpa = PA(average=True, fit_intercept=True)
    bpa.partial_fit(X, y2 == "up")
    bsrc = from_pa(bpa)
    w, c = bpa.averaged_weights()
    np.testing.assert_allclose(bsrc.decision_function(X), X @ w + c)
    assert bsrc.classes == (False, True)


def test_train_averaged_pa_is_deterministic(data):
    X, y3, _ = data
    a = train_averaged_pa(X, y3, epochs=3, seed=1)
    b = train_averaged_pa(X, y3, epochs=3, seed=1)
    np.testing.assert_array_equal(a.W, b.W)
    assert (a.predict(X) == y3).mean() > 0.8


def test_torch_head_over_frozen_extractor(data):
    torch = pytest.importorskip("torch")
    X, _, _ = data
    torch.manual_seed(0)
    extractor = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Dropout(0.5))
    head = torch.nn.Linear(8, 3)
    model = torch.nn.Sequential(extractor, head).eval()
    src = from_torch(head, extractor, classes=("sit", "walk", "run"))
    assert src.n_features == 5 and not src.is_linear
    with torch.no_grad():
        expected = model(torch.as_tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(src.scores_batch(X), expected, atol=1e-5)
    np.testing.assert_allclose(src.scores(X[0]), expected[0], atol=1e-5)
    # a snapshot: training the original afterwards does not change the source
    with torch.no_grad():
        extractor[0].weight.add_(1.0)
    np.testing.assert_allclose(src.scores_batch(X), expected, atol=1e-5)
    # usable by the ensembles (scores only), rejected where weights are needed
    m = HomOTLMS((src,), horizon=10)
    m.partial_fit(X[:10], ["sit"] * 10)
    from fedotl.online.baselines import PAIO

    with pytest.raises(ValueError, match="linear"):
        PAIO(src)


def test_torch_head_alone(data):
    torch = pytest.importorskip("torch")
    X, _, _ = data
    head = torch.nn.Linear(5, 2)
    src = from_torch(head)
    with torch.no_grad():
        expected = head(torch.as_tensor(X, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(src.scores_batch(X), expected, atol=1e-5)
    assert src.is_linear
    with pytest.raises(ValueError, match="n_features"):
        from_torch(head, feature_fn=lambda t: t)


def test_alignment_by_label_value():
    src = SourceClassifier([[1.0, 0.0], [0.0, 1.0]], [0.5, -0.5], classes=("walk", "run"))
    W, b = src.aligned(["run", "sit", "walk"], -np.inf)
    np.testing.assert_array_equal(W, [[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(b, [-0.5, -np.inf, 0.5])
    m = HomOTLMS((src,), classes=("run", "sit", "walk"))
    assert m.classes_ == ["run", "sit", "walk"]
    np.testing.assert_array_equal(m.expert_scores(np.array([2.0, 1.0]))[0], [0.5, -np.inf, 2.5])


def test_source_validation():
    with pytest.raises(ValueError, match="distinct"):
        SourceClassifier(np.eye(2), classes=("a", "a"))
    with pytest.raises(ValueError, match="NaN"):
        SourceClassifier([[np.nan, 0.0]])
    with pytest.raises(ValueError, match="2-class"):
        SourceClassifier(np.eye(3)).positive_index()
    with pytest.raises(ValueError, match="share"):
        HomOTLMS((SourceClassifier(np.eye(2)), SourceClassifier(np.eye(3))))
    src = SourceClassifier(np.eye(2))
    with pytest.raises(ValueError):
        src.W[0, 0] = 5.0  # read-only: a source never changes
    assert SourceClassifier([[1.0], [2.0]], classes=(1, 0)).positive_index() == 0
