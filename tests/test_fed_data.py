"""How a node loads its own partition."""

from __future__ import annotations

import numpy as np
import pytest

from client.data import DataSpec, device_ids, load_partition, load_pooled, load_server_data, parse_subjects, spec_from_config


@pytest.fixture(scope="module")
def spec(synth_dsads):
    return DataSpec("dsads", str(synth_dsads), "subject-position", 0.5)


def test_one_device_per_subject_and_position(spec):
    ids = device_ids(spec)
    assert len(ids) == 4 * 5
    assert ids[:6] == ["p1/T", "p1/RA", "p1/LA", "p1/RL", "p1/LL", "p2/T"]
    d = load_partition(spec, 1)
    assert d.client_id == "p1/RA"
    assert d.X_train.shape[1:] == (9, 125) and d.X_test.shape[1:] == (9, 125)
    assert d.n_classes == 19 and d.n_inputs == 9
    assert d.X_train.dtype == np.float32


def test_time_split_per_activity_and_own_standardisation(spec):
    d = load_partition(spec, 0)
    # 6 segments per activity: the earliest 3 train, the last 3 test
    assert np.bincount(d.y_train, minlength=19).tolist() == [3] * 19
    assert np.bincount(d.y_test, minlength=19).tolist() == [3] * 19
    # standardised with the device's own training windows
    np.testing.assert_allclose(d.X_train.mean(axis=(0, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(d.X_train.std(axis=(0, 2)), 1, atol=1e-3)


def test_label_scarce_split_keeps_one_window_per_activity(synth_dsads):
    d = load_partition(DataSpec("dsads", str(synth_dsads), "subject-position", 0.05), 3)
    assert np.bincount(d.y_train, minlength=19).tolist() == [1] * 19


def test_clients_by_subject_keeps_all_channels(synth_dsads):
    spec = DataSpec("dsads", str(synth_dsads), "subject", 0.5)
    assert device_ids(spec) == ["p1", "p2", "p3", "p4"]
    assert load_partition(spec, 2).X_train.shape[1] == 45


def test_server_subjects_leave_the_federation(synth_dsads):
    spec = DataSpec("dsads", str(synth_dsads), "subject-position", 0.5, server_subjects=("p2",))
    ids = device_ids(spec)
    assert len(ids) == 15 and not any(i.startswith("p2/") for i in ids)
    X, y = load_server_data(spec)
    assert X.shape == (5 * 19 * 6, 9, 125) and len(y) == len(X)
    Xp, yp = load_pooled(spec)
    assert len(yp) == 15 * 19 * 3
    with pytest.raises(ValueError, match="unknown server subject"):
        device_ids(DataSpec("dsads", str(synth_dsads), server_subjects=("p9",)))
    with pytest.raises(ValueError, match="no device is left"):
        device_ids(DataSpec("dsads", str(synth_dsads), server_subjects=("p1", "p2", "p3", "p4")))


def test_feature_representation_for_the_mlp(synth_dsads):
    spec = spec_from_config({"dataset": "dsads", "data-path": str(synth_dsads), "model": "mlp", "train-fraction": 0.5})
    d = load_partition(spec, 0)
    assert d.X_train.ndim == 2 and d.X_train.shape[1] == (9 + 3) * 10


def test_bad_specs():
    assert parse_subjects(" p1, p2 ,") == ("p1", "p2") and parse_subjects("") == ()
    with pytest.raises(ValueError, match="clients-by"):
        DataSpec("dsads", "/x", clients_by="device")
    with pytest.raises(ValueError, match="train fraction"):
        DataSpec("dsads", "/x", train_fraction=1.0)
    with pytest.raises(ValueError, match="no data path"):
        DataSpec("dsads", "")


def test_partition_out_of_range(spec):
    with pytest.raises(ValueError, match="out of range"):
        load_partition(spec, 20)
