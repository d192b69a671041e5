"""A recording device and its SuperNode share one store: real processes, side by side.

The writer is another process appending chunks as the device runtime does
(:meth:`DeviceStore.append`); the reader takes what a train round takes
(:meth:`DeviceStore.snapshot` and :func:`fedotl.client.data.load_device`).
"""

from __future__ import annotations

import multiprocessing as mp

import numpy as np

from fedotl.client.data import load_device
from fedotl.client.store import DeviceStore

ROWS, CHANNELS = 4, 2
CH = [{"name": f"c{i}", "position": "wrist", "sensor": "acc", "axis": "xyz"[i]} for i in range(CHANNELS)]


def chunk(first: int, n: int, writer: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windows numbered first..first+n-1: every sample of window w holds w, so a torn window shows."""
    ids = np.arange(first, first + n)
    X = np.repeat(ids.astype(np.float32), ROWS * CHANNELS).reshape(n, ROWS, CHANNELS)
    return X, 3 + (ids % 2) * 4, np.full(n, writer), ROWS * ids


def record(root: str, writer: int, chunks: int, seed: int) -> None:
    """A device runtime: appends ``chunks`` chunks of 1..6 windows, numbered on from its own count."""
    rng = np.random.default_rng(seed)
    store, done = DeviceStore(root), 0
    for _ in range(chunks):
        n = int(rng.integers(1, 7))
        X, y, session, start = chunk(writer * 100_000 + done, n, writer)
        store.append(X, y, session=session, start=start)
        done += n


def new_store(tmp_path) -> DeviceStore:
    return DeviceStore.create(tmp_path / "store", device="u1/wrist", channels=CH, rate_hz=10.0, window_rows=ROWS, classes=(3, 7), subject="u1")


def test_a_train_round_beside_a_recording_device_reads_whole_chunks_in_order(tmp_path):
    store = new_store(tmp_path)
    writer = mp.get_context("spawn").Process(target=record, args=(str(store.root), 0, 400, 1))
    writer.start()
    seen, loads, last = [], 0, -1
    while writer.is_alive() or not seen:
        snap = DeviceStore(store.root).snapshot()
        n = len(snap.y)
        assert snap.X.shape == (n, ROWS, CHANNELS) and len(snap.session) == len(snap.start) == n
        # a prefix of the recording: windows 0..n-1, each whole, none twice
        assert np.array_equal(snap.X[:, 0, 0], np.arange(n)) and (snap.X == snap.X[:, :1, :1]).all()
        assert n >= last  # chunks only ever add
        last = n
        seen.append(n)
        if n:  # what the train handler loads (an empty store is an error of its own)
            data = load_device(store.root, 0.5)
            assert n <= len(data.y_train) + len(data.y_test) <= len(DeviceStore(store.root).snapshot().y)
            loads += 1
    writer.join()
    assert writer.exitcode == 0
    final = DeviceStore(store.root).snapshot()
    assert np.array_equal(final.X[:, 0, 0], np.arange(len(final.y)))
    assert len(set(seen)) > 5 and seen[0] < len(final.y) and loads > 5  # the reads really did overlap the recording


def test_two_writers_on_one_store_never_overwrite_each_others_chunks(tmp_path):
    # a device runtime started twice on one store (say, by hand beside its service)
    store = new_store(tmp_path)
    ctx = mp.get_context("spawn")
    writers = [ctx.Process(target=record, args=(str(store.root), w, 150, w)) for w in (1, 2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert [w.exitcode for w in writers] == [0, 0]
    snap = DeviceStore(store.root).snapshot()
    assert len(store.chunks()) == 300
    for w in (1, 2):
        ids = snap.X[snap.session == w, 0, 0].astype(int) - w * 100_000
        assert np.array_equal(np.sort(ids), np.arange(len(ids)))  # every window of each writer, once
    assert not list((store.root / "windows").glob(".*"))  # no temporary file left behind
