"""Windowing and features: labels, purity, layout and agreement with plain numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedotl.client.features import STATS, add_magnitudes, feature_names, window_features
from fedotl.client.windowing import sliding_windows
from fedotl.simulations.readers import dsads
from fedotl.simulations.windows import make_windows


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 3), min_size=1, max_size=60),
    length=st.integers(1, 12),
    stride=st.integers(1, 12),
)
def test_majority_label_matches_a_per_window_count(labels, length, stride):
    y = np.array(labels)
    x = np.arange(len(y), dtype=np.float32)[:, None]
    w, lab, start, pur = sliding_windows(x, y, length, stride)
    expected_starts = list(range(0, len(y) - length + 1, stride))
    assert start.tolist() == expected_starts
    for i, s in enumerate(expected_starts):
        vals, counts = np.unique(y[s : s + length], return_counts=True)
        assert lab[i] == vals[counts.argmax()]
        assert pur[i] == pytest.approx(counts.max() / length)
        np.testing.assert_array_equal(w[i, :, 0], x[s : s + length, 0])


def test_purity_option_drops_impure_windows():
    y = np.repeat([0, 1, 0], [7, 3, 10])
    x = np.zeros((20, 2))
    _, lab, start, pur = sliding_windows(x, y, 5, 5, min_purity=1.0)
    assert start.tolist() == [0, 10, 15] and (pur == 1.0).all()  # [5, 10) is 2 zeros + 3 ones


def test_features_equal_numpy_reference_and_magnitude_is_appended():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(7, 25, 3)).astype(np.float32)
    f = window_features(w, triples=[(0, 1, 2)])
    mag = np.sqrt((w**2).sum(-1))
    x = np.concatenate([w, mag[..., None]], -1)
    ref = np.stack(
        [x.mean(1), x.std(1), x.min(1), x.max(1), *np.percentile(x, [10, 25, 50, 75, 90], axis=1), (x**2).mean(1)], -1
    ).reshape(7, -1)
    np.testing.assert_allclose(f, ref, rtol=1e-5, atol=1e-5)
    names = feature_names(["acc_x", "acc_y", "acc_z"], [(0, 1, 2)])
    assert len(names) == f.shape[1] == 4 * len(STATS)
    assert names[-1] == "acc_mag_energy" and names[0] == "acc_x_mean"
    assert add_magnitudes(w, []).shape == w.shape
    with pytest.raises(ValueError, match="unknown feature statistic"):
        window_features(w, stats=("kurtosis",))


def test_dsads_windows_are_segments_with_provenance(synth_dsads):
    ds = dsads.read(synth_dsads)
    ws = make_windows(ds, 5.0)
    assert ws.X.shape == (19 * 4 * 6, 125, 45)
    assert (ws.purity == 1.0).all()
    # 5 units × 3 sensors = 15 magnitude channels
    assert len(ws.triples()) == 15
    assert ws.features().shape == (len(ws), (45 + 15) * len(STATS))
    r0 = ds.recordings[ws.recording[10]]
    np.testing.assert_array_equal(ws.X[10], r0.data[ws.start[10] : ws.start[10] + 125])
    half = make_windows(ds, 5.0, 2.5)
    assert len(half) == 19 * 4 * 11
    with pytest.raises(ValueError, match="no 60-second window fits"):
        make_windows(ds, 60.0)
