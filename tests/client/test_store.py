"""The device's local store: atomic chunks, consistent snapshots, the device's own time split."""

from __future__ import annotations

import numpy as np
import pytest

from fedotl.client.data import load_device, time_split
from fedotl.client.store import DeviceStore, StoreError

CH = [{"name": "ax", "position": "wrist", "sensor": "acc", "axis": "x"}, {"name": "ay", "position": "wrist", "sensor": "acc", "axis": "y"}]


def new_store(tmp_path, classes=(3, 7)):
    return DeviceStore.create(tmp_path / "store", device="u1/wrist", channels=CH, rate_hz=10.0, window_rows=4, classes=classes, subject="u1")


def windows(n, label, start0=0):
    X = np.arange(n * 4 * 2, dtype=np.float32).reshape(n, 4, 2) + label
    return X, np.full(n, label), np.zeros(n, int), start0 + 4 * np.arange(n)


def test_appends_are_chunks_and_a_snapshot_is_their_concatenation(tmp_path):
    store = new_store(tmp_path)
    X1, y1, s1, t1 = windows(3, 3)
    X2, y2, s2, t2 = windows(2, 7, start0=12)
    store.append(X1, y1, session=s1, start=t1)
    store.append(X2, y2, session=s2, start=t2)
    assert [p.name for p in store.chunks()] == ["000000.npz", "000001.npz"]
    snap = DeviceStore(store.root).snapshot()
    np.testing.assert_array_equal(snap.X, np.concatenate([X1, X2]))
    assert snap.y.tolist() == [3, 3, 3, 7, 7] and snap.start.tolist() == [0, 4, 8, 12, 16]
    assert snap.device == "u1/wrist" and snap.classes == (3, 7)


def test_a_half_written_chunk_is_never_read(tmp_path):
    store = new_store(tmp_path)
    store.append(*windows(2, 3)[:2], session=np.zeros(2, int), start=np.array([0, 4]))
    (store.root / "windows" / ".000001.npz.123.tmp").write_bytes(b"partial")  # a writer that died mid-write
    assert len(DeviceStore(store.root).snapshot().y) == 2


def test_a_new_chunk_changes_the_fingerprint_and_the_loaded_data(tmp_path):
    store = new_store(tmp_path)
    store.append(*windows(4, 3)[:2], session=np.zeros(4, int), start=4 * np.arange(4))
    store.append(*windows(4, 7)[:2], session=np.zeros(4, int), start=16 + 4 * np.arange(4))
    before, fp = load_device(store.root, 0.5), store.fingerprint()
    store.append(*windows(4, 7)[:2], session=np.ones(4, int), start=4 * np.arange(4))
    assert store.fingerprint() != fp
    after = load_device(store.root, 0.5)
    assert len(after.y_train) + len(after.y_test) > len(before.y_train) + len(before.y_test)


def test_bad_stores_name_the_file(tmp_path):
    with pytest.raises(StoreError, match="no device store here"):
        DeviceStore(tmp_path / "nothing").snapshot()
    store = new_store(tmp_path)
    with pytest.raises(StoreError, match="already there"):
        new_store(tmp_path)
    with pytest.raises(StoreError, match="expected \\(n, 4, 2\\)"):
        store.append(np.zeros((1, 5, 2)), np.array([3]), session=np.zeros(1, int), start=np.zeros(1, int))
    X = np.zeros((1, 4, 2), np.float32)
    X[0, 1, 1] = np.nan
    with pytest.raises(StoreError, match="NaN"):
        store.append(X, np.array([3]), session=np.zeros(1, int), start=np.zeros(1, int))
    store.append(np.zeros((1, 4, 2)), np.array([5]), session=np.zeros(1, int), start=np.zeros(1, int))
    with pytest.raises(StoreError, match=r"labels \[5\] are not in the store's classes"):
        load_device(store.root, 0.5)


def test_time_split_by_hand():
    """Windows of 4 samples every 2: per activity the earliest half trains, and the test window
    that overlaps the last training window is purged."""
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    session = np.array([0, 0, 0, 0, 0, 0, 0, 0])
    start = np.array([0, 2, 4, 6, 8, 10, 12, 14])
    train, test = time_split(y, session, start, 4, 0.5)
    assert train.tolist() == [0, 1, 4, 5] and test.tolist() == [3, 7]
    # In another session nothing overlaps, so nothing is purged.
    train, test = time_split(y, np.array([0, 0, 1, 1, 0, 0, 1, 1]), start, 4, 0.5)
    assert train.tolist() == [0, 1, 4, 5] and test.tolist() == [2, 3, 6, 7]
    with pytest.raises(ValueError, match="train fraction"):
        time_split(y, session, start, 4, 1.0)


def test_a_store_on_a_filesystem_without_hard_links_is_refused_naming_it(tmp_path, monkeypatch):
    import errno
    import os

    store = new_store(tmp_path)

    def no_links(src, dst):  # as on FAT
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "link", no_links)
    with pytest.raises(StoreError, match=f"{store.root}: cannot add 000000.npz .*POSIX filesystem"):
        store.append(*windows(2, 3)[:2], session=np.zeros(2, int), start=np.array([0, 4]))
    assert store.chunks() == [] and not list((store.root / "windows").glob(".*"))  # nothing half-added
