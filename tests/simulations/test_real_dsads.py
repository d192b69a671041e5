"""Integration tests on the real DSADS zip (skipped, with the reason, when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from fedotl.simulations.baseline import make_classifier
from fedotl.simulations.readers import dsads
from fedotl.simulations.splits import subject_split
from fedotl.simulations.windows import make_windows


@pytest.fixture(scope="module")
def real(dsads_zip):
    return dsads.read(dsads_zip)


def test_shape_of_the_real_data(real):
    assert real.subjects == [f"p{i}" for i in range(1, 9)]
    assert len(real.activity_counts()) == 19
    assert real.n_channels == 45 and real.rate_hz == 25.0
    assert real.notes["n_segments"] == 9120
    assert real.n_samples == 9120 * 125
    ws = make_windows(real, 5.0)
    assert ws.X.shape == (9120, 125, 45)
    assert np.isfinite(ws.X).all()
    # windows are the original segments: every (subject, activity) has 60
    counts = np.unique(np.char.add(ws.subject.astype(str), ws.y.astype(str)), return_counts=True)[1]
    assert (counts == 60).all()


def test_cross_subject_baseline_on_real_dsads(real, capsys):
    ws = make_windows(real, 5.0)
    X = ws.features()
    tr, te = subject_split(ws, ["p8"])
    acc = (make_classifier().fit(X[tr], ws.y[tr]).predict(X[te]) == ws.y[te]).mean()
    with capsys.disabled():
        print(f"\n[real DSADS] logistic regression, train p1-p7, test p8: accuracy {acc:.3f}")
    # Cross-subject is hard on DSADS but far above chance (1/19).
    assert 0.5 < acc < 1.0
