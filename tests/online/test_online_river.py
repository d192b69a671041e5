"""river.checks.check_estimator on every learner, with and without sources."""

from __future__ import annotations

import numpy as np
import pytest
from river import checks

from fedotl import online
from fedotl.online.sources import SourceClassifier

LEARNERS = [
    online.PA,
    online.MulticlassPA,
    online.HomOTL1,
    online.MulticlassHomOTL1,
    online.HomOTL2,
    online.MulticlassHomOTL2,
    online.HetOTL,
    online.MulticlassHetOTL,
    online.HomOTLMS,
    online.HomOTLODDM,
    online.SourceOnly,
    online.PAIO,
    online.FixedAlphaHomOTL,
    online.Persistence,
    online.TargetStandardized,
]


def _params():
    for cls in LEARNERS:
        for i, params in enumerate(cls._unit_test_params()):
            yield pytest.param(cls, params, id=f"{cls.__name__}-{i}")


@pytest.mark.parametrize("cls, params", list(_params()))
def test_check_estimator_defaults(cls, params):
    checks.check_estimator(cls(**params))


# sources over the first features of river's Phishing dataset (the check's binary stream)
# plus positional features; labels overlap the check streams' (False/True) partially
PHISHING = ("empty_server_form_handler", "popup_window", "https", "request_from_other_domain")


def _sources():
    rng = np.random.default_rng(0)
    binary = SourceClassifier(rng.normal(size=(2, 4)), rng.normal(size=2), classes=(False, True), features=PHISHING)
    multi = SourceClassifier(
        rng.normal(size=(3, 4)), classes=(True, "brickface", "sky"), features=PHISHING
    )
    return binary, multi


@pytest.mark.parametrize(
    "make",
    [
        lambda b, m: online.HomOTL1(b),
        lambda b, m: online.HomOTL2(b, horizon=200),
        lambda b, m: online.HetOTL(b),
        lambda b, m: online.MulticlassHomOTL1(m),
        lambda b, m: online.MulticlassHetOTL(m),
        lambda b, m: online.HomOTLMS((b, m), horizon=200),
        lambda b, m: online.SourceOnly(m),
        lambda b, m: online.PAIO(b, fit_intercept=False),
        lambda b, m: online.FixedAlphaHomOTL(m, alpha=0.3),
        lambda b, m: online.TargetStandardized(online.HomOTLMS((b, m), horizon=200), prior_weight=2.0),
    ],
    ids=["HomOTL1", "HomOTL2", "HetOTL", "MCHomOTL1", "MCHetOTL", "HomOTLMS", "SourceOnly", "PAIO", "FixedAlpha",
         "TargetStd"],
)
def test_check_estimator_with_sources(make):
    checks.check_estimator(make(*_sources()))


def test_check_estimator_oddm_with_sources():
    rng = np.random.default_rng(1)
    Xs = rng.normal(size=(40, 4))
    ys = np.where(Xs[:, 0] > 0, "sky", "grass")
    src = online.ProjectedSource.fit(Xs, ys, rng.normal(size=(20, 4)), n_components=2, n_iter=1, features=PHISHING)
    checks.check_estimator(online.HomOTLODDM((src,), update_every=5))
