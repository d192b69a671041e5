"""How the harness cuts a dataset into devices and writes each device's store."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedotl.client.config import RunConfig
from fedotl.client.data import load_cloud, load_device
from fedotl.simulations.devices import build_devices, prepare_devices


def cfg(path, **kw):
    return RunConfig(dataset="dsads", data_path=str(path), **kw)


@pytest.fixture(scope="module")
def stores(synth_dsads, tmp_path_factory):
    return prepare_devices(cfg(synth_dsads), tmp_path_factory.mktemp("stores") / "s")


def test_one_device_per_subject_and_position(stores):
    assert len(stores.ids) == 4 * 5
    assert stores.ids[:6] == ["p1/T", "p1/RA", "p1/LA", "p1/RL", "p1/LL", "p2/T"]
    d = load_device(stores.store(1), 0.5)
    assert d.client_id == "p1/RA"
    assert d.X_train.shape[1:] == (9, 125) and d.X_test.shape[1:] == (9, 125)
    assert d.n_classes == 19 and d.n_inputs == 9
    assert d.X_train.dtype == np.float32


def test_time_split_per_activity_and_own_standardisation(stores):
    d = load_device(stores.store(0), 0.5)
    # 6 segments per activity: the earliest 3 train, the last 3 test
    assert np.bincount(d.y_train, minlength=19).tolist() == [3] * 19
    assert np.bincount(d.y_test, minlength=19).tolist() == [3] * 19
    # standardised with the device's own training windows
    np.testing.assert_allclose(d.X_train.mean(axis=(0, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(d.X_train.std(axis=(0, 2)), 1, atol=1e-3)


def test_label_scarce_split_keeps_one_window_per_activity(stores):
    d = load_device(stores.store(3), 0.05)
    assert np.bincount(d.y_train, minlength=19).tolist() == [1] * 19


def test_clients_by_subject_keeps_all_channels(synth_dsads, tmp_path):
    s = prepare_devices(cfg(synth_dsads, clients_by="subject"), tmp_path / "s")
    assert s.ids == ["p1", "p2", "p3", "p4"]
    assert load_device(s.store(2), 0.5).X_train.shape[1] == 45


def test_server_subjects_go_to_the_cloud_store(synth_dsads, tmp_path):
    s = prepare_devices(cfg(synth_dsads, server_subjects="p2"), tmp_path / "s")
    assert len(s.ids) == 15 and not any(i.startswith("p2/") for i in s.ids)
    assert s.cloud_ids == ["p2/T", "p2/RA", "p2/LA", "p2/RL", "p2/LL"]
    X, y = load_cloud(s.root)
    assert X.shape == (5 * 19 * 6, 9, 125) and len(y) == len(X)
    with pytest.raises(ValueError, match="unknown server subject"):
        build_devices(cfg(synth_dsads, server_subjects="p9"))
    with pytest.raises(ValueError, match="no device is left"):
        build_devices(cfg(synth_dsads, server_subjects="p1,p2,p3,p4"))


def test_feature_representation_for_the_mlp(stores):
    d = load_device(stores.store(0), 0.5, "features")
    assert d.X_train.ndim == 2 and d.X_train.shape[1] == (9 + 3) * 10


def test_a_store_holds_only_its_device(stores):
    """The device's folder has its own windows and nothing of the others'."""
    meta = json.loads((stores.store(1) / "store.json").read_text())
    assert meta["device"] == "p1/RA" and meta["subject"] == "p1" and len(meta["channels"]) == 9
    total = sum(len(load_device(stores.store(i), 0.5).y_train) + len(load_device(stores.store(i), 0.5).y_test) for i in range(20))
    assert total == 20 * 19 * 6


def test_stores_are_written_once_per_content(synth_dsads, monkeypatch, tmp_path):
    monkeypatch.setenv("FEDOTL_CACHE_DIR", str(tmp_path / "cache"))
    a = prepare_devices(cfg(synth_dsads))
    stamp = (a.store(0) / "store.json").stat().st_mtime_ns
    b = prepare_devices(cfg(synth_dsads, seed=5))  # a key that does not change the data: same folder, not rewritten
    assert b.root == a.root and (b.store(0) / "store.json").stat().st_mtime_ns == stamp
    c = prepare_devices(cfg(synth_dsads, window_seconds=2.5))
    assert c.root != a.root


def test_a_dataset_without_positions_falls_back_to_subjects(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["timestamp,subject,label,ax,ay,az"]
    for subject in ("u1", "u2"):
        for i in range(400):  # 20 s at 20 Hz, two activities
            rows.append(f"{i / 20:.2f},{subject},{'sit' if i < 200 else 'walk'}," + ",".join(f"{v:.3f}" for v in rng.normal(size=3)))
    (tmp_path / "rec.csv").write_text("\n".join(rows) + "\n")
    s = prepare_devices(RunConfig(dataset="generic", data_path=str(tmp_path / "rec.csv"), window_seconds=2.0), tmp_path / "s")
    assert "no body positions" in s.note and len(s.ids) == 2


def test_dirichlet_partition_is_wired(synth_dsads, tmp_path):
    s = prepare_devices(cfg(synth_dsads, clients_by="dirichlet", dirichlet_clients=6, dirichlet_alpha=0.3), tmp_path / "s")
    assert s.ids == [f"c{k:03d}" for k in range(6)]
    sizes = [len(load_device(s.store(i), 0.5).y_train) for i in range(6)]
    assert min(sizes) >= 1 and len(set(sizes)) > 1  # label skew: devices differ


def test_existing_folder_that_is_not_a_store_is_refused(synth_dsads, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a device-store folder"):
        prepare_devices(cfg(synth_dsads), tmp_path / "busy")
