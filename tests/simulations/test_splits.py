"""Splits and partitions: coverage, disjointness and no time leakage."""

from __future__ import annotations

import numpy as np
import pytest

from fedotl.simulations.readers import dsads, generic
from fedotl.simulations.splits import (
    align_datasets,
    client_partition,
    dirichlet_partition,
    leave_one_subject_out,
    position_domains,
    time_split,
)
from fedotl.simulations.windows import make_windows


@pytest.fixture(scope="module")
def ws(synth_dsads):
    return make_windows(dsads.read(synth_dsads), 5.0, 2.5)  # overlapping windows


def test_loso_covers_each_subject_once(ws):
    folds = list(leave_one_subject_out(ws))
    assert [s for s, *_ in folds] == ["p1", "p2", "p3", "p4"]
    for s, tr, te in folds:
        assert set(ws.subject[te]) == {s} and s not in set(ws.subject[tr])
        assert len(tr) + len(te) == len(ws)


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.7])
def test_time_split_has_no_overlapping_windows(ws, fraction):
    idx = np.flatnonzero(ws.subject == "p2")
    tr, te = time_split(ws, idx, fraction)
    assert len(np.intersect1d(tr, te)) == 0 and len(te) > 0
    assert not ws.overlaps(tr, te)
    # the naive split (no purge) would leak: overlap detection must see it
    naive_te = np.setdiff1d(idx, tr)
    assert ws.overlaps(tr, naive_te)
    # every activity is in the training set, and training windows are the earliest
    assert set(ws.y[tr]) == set(ws.y[idx])
    for c in np.unique(ws.y[idx]):
        a, b = tr[ws.y[tr] == c], te[ws.y[te] == c]
        assert ws.start[a].max() < ws.start[b].min()


def test_partitions_by_subject_and_position(synth_dsads):
    ds = dsads.read(synth_dsads)
    doms = position_domains(ds)
    assert list(doms) == ["T", "RA", "LA", "RL", "LL"]
    per_pos = [make_windows(d, 5.0) for d in doms.values()]
    parts = client_partition(per_pos[1], "subject-position")
    assert list(parts) == ["p1/RA", "p2/RA", "p3/RA", "p4/RA"]
    with pytest.raises(ValueError, match="no position"):
        client_partition(make_windows(ds, 5.0), "subject-position")


def test_dirichlet_partition_is_a_partition_and_skews_labels():
    y = np.repeat(np.arange(5), 200)
    parts = dirichlet_partition(y, 10, alpha=0.1, seed=0)
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(len(y)))
    # small alpha: most clients are dominated by one class
    dominance = [np.bincount(y[p], minlength=5).max() / len(p) for p in parts]
    assert np.median(dominance) > 0.6
    even = dirichlet_partition(y, 10, alpha=1000.0, seed=0)
    assert max(np.bincount(y[p], minlength=5).max() / len(p) for p in even) < 0.35


def test_align_datasets_keeps_shared_activities_under_common_codes(tmp_path, synth_dsads):
    generic.write_synthetic(tmp_path, n_subjects=1, bout_s=2.0, activities=("sitting", "walking", "running", "ironing"))
    g = generic.read(tmp_path)
    d = dsads.read(synth_dsads)
    g = type(g)(**{**g.__dict__, "name": "pamap2"})  # pretend: generic names match PAMAP2's
    a, b = align_datasets([d, g])
    assert a.activities == b.activities == {0: "running", 1: "sitting", 2: "walking"}
    assert set(np.concatenate([r.labels for r in a.recordings]).tolist()) == {0, 1, 2}
    assert set(np.concatenate([r.labels for r in b.recordings]).tolist()) == {0, 1, 2}
