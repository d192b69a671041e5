"""PAMAP2 reader: synthetic round trip, NaN policies, splits, bad input, cache."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fedotl.simulations.dataset import DataFormatError
from fedotl.simulations.readers import pamap2
from simulations.readers.pamap2 import N_COLUMNS, PROTOCOL_ACTIVITIES

HAND, CHEST, ANKLE = 3, 20, 37  # 0-based first column of each IMU block


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDOTL_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pamap2")
    pamap2.write_synthetic(out, n_subjects=2, seed=3, bout_s=1.0)
    return out / "PAMAP2_Dataset"


def _table(n: int, activity: int = 1) -> np.ndarray:
    """A clean (n, 54) table: column j holds j + row/100 (so every cell is known)."""
    t = np.arange(N_COLUMNS)[None, :] + np.arange(n)[:, None] / 100.0
    t[:, 0] = 10.0 + np.arange(n) / 100.0
    t[:, 1] = activity
    return t


def _write(folder: Path, table: np.ndarray, name: str = "subject101.dat") -> Path:
    path = folder / "PAMAP2_Dataset" / "Protocol" / name
    pamap2.write_table(path, table, ["%.2f", "%.0f"] + ["%.6g"] * (N_COLUMNS - 2))
    return path


def _write_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "PAMAP2_Dataset" / "Protocol" / "subject101.dat"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _line(values) -> str:
    return " ".join(str(v) for v in values)


# ------------------------------------------------------------ round trip
def test_synthetic_round_trip(synth):
    ds = pamap2.read(synth)
    assert ds.name == "pamap2" and ds.rate_hz == 100.0
    assert ds.subjects == ["101", "102"]
    assert ds.n_channels == 27 and ds.positions == ["hand", "chest", "ankle"]
    assert {r.session for r in ds.recordings} == {"Protocol", "Optional"}
    codes = set(ds.activity_counts())
    assert codes == set(PROTOCOL_ACTIVITIES) | {10, 19, 20}  # 101 also has an Optional file
    assert 0 not in codes and 0 not in ds.activities
    for r in ds.recordings:
        assert r.data.dtype == np.float32 and np.isfinite(r.data).all()
    # Spot-check against an independent parse of the file.
    raw = np.loadtxt(synth / "Protocol" / "subject102.dat")
    rec = next(r for r in ds.recordings if r.subject == "102" and r.session == "Protocol")
    start = int(np.flatnonzero(np.isclose(raw[:, 0], rec.t0))[0])
    rows = raw[start : start + len(rec)]
    np.testing.assert_array_equal(rec.labels, rows[:, 1].astype(int))
    names = ds.channel_names
    for name, col in (("hand_acc_x", HAND + 1), ("chest_gyro_y", CHEST + 8), ("ankle_mag_z", ANKLE + 12)):
        got, want = rec.data[:, names.index(name)], rows[:, col]
        ok = np.isfinite(want)
        assert ok.sum() > 0.9 * len(want)
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-6, atol=1e-6)


def test_synthetic_file_format(synth):
    lines = (synth / "Protocol" / "subject101.dat").read_text().splitlines()
    cells = [ln.split(" ") for ln in lines]
    assert {len(c) for c in cells} == {54}
    hr = np.array([c[2] for c in cells])
    assert (hr[::11] != "NaN").all() and (np.delete(hr, np.s_[::11]) == "NaN").all()
    assert "nan" not in "".join(lines)  # spelled "NaN", as in the UCI files
    t = np.array([float(c[0]) for c in cells])
    np.testing.assert_allclose(np.diff(t), 0.01, atol=1e-6)
    assert {float(c[1]) for c in cells} >= {0.0}  # transient rows are there


def test_optional_channels_and_heart_rate(synth):
    ds = pamap2.read(synth, heart_rate=True, temperature=True, acc6=True)
    assert ds.n_channels == 3 * (9 + 3 + 1) + 1
    hr = ds.channels[-1]
    assert (hr.name, hr.unit, hr.position) == ("heart_rate", "bpm", "chest")
    assert "heart_rate" in ds.select_position("chest").channel_names
    assert "heart_rate" not in ds.select_position("hand").channel_names
    values = np.concatenate([r.data[:, -1] for r in ds.recordings])
    assert np.isfinite(values).all() and 50 < values.min() and values.max() < 200
    temp = ds.channel_names.index("ankle_temp")
    assert ds.channels[temp].unit == "degC"
    acc6 = np.concatenate([r.data[:, ds.channel_names.index("hand_acc6_x")] for r in ds.recordings])
    assert np.abs(acc6).max() < 6 * 9.81 + 0.5  # the ±6 g sensor saturates


def test_path_variants(synth, tmp_path):
    protocol_only = pamap2.read(synth / "Protocol")
    assert {r.session for r in protocol_only.recordings} == {"Protocol"}
    no_optional = pamap2.read(synth, include_optional=False)
    assert {r.session for r in no_optional.recordings} == {"Protocol"}
    parent = pamap2.read(synth.parent)  # the folder holding PAMAP2_Dataset
    assert parent.n_samples == pamap2.read(synth).n_samples
    single = pamap2.read(synth / "Protocol" / "subject102.dat")
    assert single.subjects == ["102"]


# ------------------------------------------------------------ NaN policy
def test_short_gaps_interpolated(tmp_path):
    t = _table(30)
    t[:, 2] = np.nan
    t[0, 2], t[10, 2], t[20, 2] = 80, 90, 70  # heart rate at ~9 Hz
    t[5:8, HAND + 1] = np.nan  # 3 rows <= 10: interpolated
    t[0:2, CHEST + 7] = np.nan  # leading run: nearest value
    t[:, HAND + 13 : HAND + 17] = np.nan  # orientation: ignored
    _write(tmp_path, t)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no row is dropped, so no warning
        ds = pamap2.read(tmp_path / "PAMAP2_Dataset", heart_rate=True)
    (rec,) = ds.recordings
    assert len(rec) == 30
    acc = rec.data[:, ds.channel_names.index("hand_acc_x")]
    np.testing.assert_allclose(acc[4:9], HAND + 1 + np.arange(4, 9) / 100.0, rtol=1e-6)
    gyro = rec.data[:, ds.channel_names.index("chest_gyro_x")]
    np.testing.assert_allclose(gyro[:2], gyro[2], rtol=1e-6)
    hr = rec.data[:, -1]
    assert hr[5] == pytest.approx(85.0) and hr[15] == pytest.approx(80.0) and hr[25] == pytest.approx(70.0)
    assert ds.notes["pamap2_nan_cells_interpolated"] == 5
    assert ds.notes["pamap2_rows_dropped_long_gaps"] == 0


def test_long_gap_dropped_split_and_warned(tmp_path):
    t = _table(300)
    t[100:150, CHEST + 8] = np.nan  # 0.5 s > max_gap_s
    t[200:205, ANKLE + 1 : ANKLE + 17] = np.nan  # a short packet drop
    _write(tmp_path, t)
    root = tmp_path / "PAMAP2_Dataset"
    with pytest.warns(UserWarning, match=r"dropped 50 rows in 1 IMU NaN gaps"):
        ds = pamap2.read(root)
    assert [len(r) for r in ds.recordings] == [100, 150]
    assert ds.recordings[1].t0 == pytest.approx(11.5)
    assert ds.notes["pamap2_rows_dropped_long_gaps"] == 50
    assert ds.notes["pamap2_long_gaps"] == 1
    assert ds.notes["pamap2_long_gap_rows_by_file"] == {"Protocol/subject101.dat": 50}
    assert all(np.isfinite(r.data).all() for r in ds.recordings)
    with pytest.warns(UserWarning, match="dropped 50 rows"):
        pamap2.read(root)  # from the cache: the policy is still reported
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wide = pamap2.read(root, max_gap_s=1.0)
    assert [len(r) for r in wide.recordings] == [300]
    # Unrequested temperature NaN must not drop rows.
    t[:, HAND] = np.nan
    t[100:150, CHEST + 8] = 1.0
    _write(tmp_path, t)
    os.utime(root / "Protocol" / "subject101.dat", ns=(1, 1))
    assert [len(r) for r in pamap2.read(root).recordings] == [300]


def test_null_dropped_and_recordings_split(tmp_path):
    t = _table(100)
    t[50:60, 1] = 0
    t[60:, 1] = 2
    _write(tmp_path, t)
    root = tmp_path / "PAMAP2_Dataset"
    ds = pamap2.read(root)
    assert [(len(r), set(r.labels.tolist())) for r in ds.recordings] == [(50, {1}), (40, {2})]
    assert ds.recordings[1].t0 == pytest.approx(10.6)
    assert ds.notes["pamap2_rows_dropped_null"] == 10
    kept = pamap2.read(root, keep_null=True)
    assert [len(r) for r in kept.recordings] == [100]
    assert kept.activities[0] == "other" and kept.activity_counts()[0] == 10


def test_time_jump_splits(tmp_path):
    t = _table(40)
    t[20:, 0] += 5.0
    _write(tmp_path, t)
    ds = pamap2.read(tmp_path / "PAMAP2_Dataset")
    assert [(len(r), round(r.t0, 2)) for r in ds.recordings] == [(20, 10.0), (20, 15.2)]


# ------------------------------------------------------------ bad input
def test_missing_folder(tmp_path):
    with pytest.raises(DataFormatError, match="no such file or folder") as e:
        pamap2.read(tmp_path / "nowhere")
    assert e.value.path == str(tmp_path / "nowhere")
    (tmp_path / "PAMAP2_Dataset" / "Protocol").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="no subject10N.dat files") as e:
        pamap2.read(tmp_path / "PAMAP2_Dataset")
    assert e.value.path.endswith("Protocol")


def test_wrong_column_count_names_file_and_line(tmp_path):
    t = _table(3)
    rows = [_line(r) for r in t]
    rows[2] = _line(t[2][:53])
    path = _write_text(tmp_path, "\n".join(rows) + "\n")
    with pytest.raises(DataFormatError, match="expected 54 columns, found 53") as e:
        pamap2.read(tmp_path / "PAMAP2_Dataset")
    assert (e.value.path, e.value.line) == (str(path), 3)
    assert f"{path}, line 3" in str(e.value)


def test_non_numeric_cell_names_file_and_line(tmp_path):
    rows = [_line(r) for r in _table(4)]
    cells = rows[1].split()
    cells[7] = "abc"
    rows[1] = " ".join(cells)
    path = _write_text(tmp_path, "\n".join(rows) + "\n")
    with pytest.raises(DataFormatError, match=r"non-numeric value 'abc' in column 8") as e:
        pamap2.read(tmp_path / "PAMAP2_Dataset")
    assert (e.value.path, e.value.line) == (str(path), 2)


def test_truncated_last_line(tmp_path):
    text = "\n".join(_line(r) for r in _table(5)) + "\n"
    path = _write_text(tmp_path, text[:-40])  # cut mid-row, no final newline
    with pytest.raises(DataFormatError, match="truncated last line") as e:
        pamap2.read(tmp_path / "PAMAP2_Dataset")
    assert (e.value.path, e.value.line) == (str(path), 5)


def test_empty_file(tmp_path):
    path = _write_text(tmp_path, "")
    with pytest.raises(DataFormatError, match="empty") as e:
        pamap2.read(tmp_path / "PAMAP2_Dataset")
    assert e.value.path == str(path)


def test_unknown_activity_code_names_line(tmp_path):
    t = _table(4)
    t[2, 1] = 8  # 8 is not a PAMAP2 activity
    rows = [_line(r) for r in t]
    path = _write_text(tmp_path, rows[0] + "\n\n" + "\n".join(rows[1:]) + "\n")  # a blank line 2
    with pytest.raises(DataFormatError, match="unknown activity code 8") as e:
        pamap2.read(tmp_path / "PAMAP2_Dataset")
    assert (e.value.path, e.value.line) == (str(path), 4)


def test_error_leaves_no_cache(tmp_path):
    _write_text(tmp_path, "1 2 3\n")
    with pytest.raises(DataFormatError):
        pamap2.read(tmp_path / "PAMAP2_Dataset")
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir())


# ------------------------------------------------------------ cache
def test_cache_hit_and_invalidation(tmp_path, monkeypatch):
    t = _table(50)
    path = _write(tmp_path, t)
    root = tmp_path / "PAMAP2_Dataset"
    first = pamap2.read(root)
    assert len(list((tmp_path / "cache").glob("pamap2-*"))) == 1

    def no_parse(*a, **k):
        raise AssertionError("parsed again despite a valid cache entry")

    monkeypatch.setattr(pamap2, "load_table", no_parse)
    second = pamap2.read(root)
    np.testing.assert_array_equal(first.recordings[0].data, second.recordings[0].data)
    assert second.channels == first.channels and second.activities == first.activities
    monkeypatch.undo()
    monkeypatch.setenv("FEDOTL_CACHE_DIR", str(tmp_path / "cache"))
    t[0, HAND + 1] = 123.0
    _write(tmp_path, t)
    os.utime(path, ns=(2, 2))
    third = pamap2.read(root)
    assert third.recordings[0].data[0, 0] == pytest.approx(123.0)


# ------------------------------------------------------------ shared helpers
@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 25), st.integers(1, 4))))
def test_nan_run_lengths_matches_a_plain_loop(mask):
    want = np.zeros(mask.shape, int)
    for c in range(mask.shape[1]):
        r = 0
        while r < mask.shape[0]:
            if mask[r, c]:
                end = r
                while end < mask.shape[0] and mask[end, c]:
                    end += 1
                want[r:end, c] = end - r
                r = end
            else:
                r += 1
    np.testing.assert_array_equal(pamap2.nan_run_lengths(mask), want)


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.integers(2, 30)), st.floats(-5, 5), st.floats(-3, 3))
def test_fill_nan_linear_restores_a_line(missing, intercept, slope):
    line = intercept + slope * np.arange(len(missing), dtype=float)
    x = np.where(missing, np.nan, line)[:, None]
    pamap2.fill_nan_linear(x)
    if missing.all():
        assert np.isnan(x).all()  # nothing to interpolate from: left for the caller's policy
        return
    ok = np.flatnonzero(~missing)
    inside = slice(ok[0], ok[-1] + 1)
    np.testing.assert_allclose(x[inside, 0], line[inside], atol=1e-9)
    np.testing.assert_allclose(x[: ok[0], 0], line[ok[0]])  # leading: nearest value
    np.testing.assert_allclose(x[ok[-1] + 1 :, 0], line[ok[-1]])  # trailing: nearest value
