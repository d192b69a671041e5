"""The synthetic generator: deterministic, and its domain shifts bite."""

from __future__ import annotations

import numpy as np

from fedotl.simulations.baseline import make_classifier
from fedotl.simulations.readers import dsads
from fedotl.simulations.splits import client_partition, leave_one_subject_out, time_split
from fedotl.simulations.synthetic import SyntheticHAR
from fedotl.simulations.windows import make_windows


def test_same_seed_same_signal_other_seed_differs():
    a = SyntheticHAR(4, ["T"], seed=5).signal(1, 2, "T", 100, 25.0)
    b = SyntheticHAR(4, ["T"], seed=5).signal(1, 2, "T", 100, 25.0)
    c = SyntheticHAR(4, ["T"], seed=6).signal(1, 2, "T", 100, 25.0)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_subject_shift_costs_accuracy_but_nothing_is_perfect(synth_dsads):
    ws = make_windows(dsads.read(synth_dsads), 5.0)
    X = ws.features(stats=("mean", "std", "min", "max"))
    cross = []
    for _, tr, te in leave_one_subject_out(ws):
        cross.append((make_classifier().fit(X[tr], ws.y[tr]).predict(X[te]) == ws.y[te]).mean())
    within = []
    for ix in client_partition(ws, "subject").values():
        tr, te = time_split(ws, ix, 0.5)
        within.append((make_classifier().fit(X[tr], ws.y[tr]).predict(X[te]) == ws.y[te]).mean())
    # An unseen subject is clearly harder than unseen time of a known one...
    assert np.mean(cross) < np.mean(within) - 0.08
    # ...and no subject is solved perfectly across subjects.
    assert max(cross) < 0.98 and min(cross) > 1 / 19 * 3


def test_position_shift_is_larger_than_subject_shift(synth_dsads):
    ds = dsads.read(synth_dsads)
    ra, la = (make_windows(ds.select_position(p), 5.0) for p in ("RA", "LA"))
    stats = ("mean", "std", "min", "max")
    clf = make_classifier().fit(ra.features(stats=stats), ra.y)
    cross_position = (clf.predict(la.features(stats=stats)) == la.y).mean()
    tr, te = (ra.subject != "p4"), (ra.subject == "p4")
    Xra = ra.features(stats=stats)
    cross_subject = (make_classifier().fit(Xra[tr], ra.y[tr]).predict(Xra[te]) == ra.y[te]).mean()
    assert cross_position < cross_subject - 0.2
