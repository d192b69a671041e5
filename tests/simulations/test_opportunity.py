"""OPPORTUNITY reader: round trip, label tracks, channel sets, metadata files, NaN, bad input, cache."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from fedotl.simulations.dataset import DataFormatError
from fedotl.simulations.readers import opportunity as opp
from fedotl.simulations.readers.opportunity import GESTURES, N_COLUMNS

LOCO, GEST = 243, 249  # 0-based label columns


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDOTL_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("opportunity")
    opp.write_synthetic(out, n_subjects=2, seed=5, sessions=("ADL1", "Drill"), session_s=25.0)
    return out / "OpportunityUCIDataset"


def _table(n: int, loco: int = 1) -> np.ndarray:
    """A clean (n, 250) table: column j (1-based) holds 1000 j + row."""
    t = 1000.0 * np.arange(1, N_COLUMNS + 1)[None, :] + np.arange(n)[:, None]
    t[:, 0] = np.round(np.arange(n) * 1000 / 30)
    t[:, LOCO : LOCO + 7] = 0
    t[:, LOCO] = loco
    return t


def _write(tmp_path: Path, table: np.ndarray, name: str = "S1-ADL1.dat") -> Path:
    path = tmp_path / "OpportunityUCIDataset" / "dataset" / name
    opp.write_table(path, table, ["%.0f"] * N_COLUMNS)
    return path


def _write_text(tmp_path: Path, text: str, name: str = "S1-ADL1.dat") -> Path:
    path = tmp_path / "OpportunityUCIDataset" / "dataset" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _lines(table: np.ndarray) -> list[str]:
    return [" ".join(f"{v:.0f}" for v in row) for row in table]


# ------------------------------------------------------------ round trip
def test_synthetic_round_trip(synth):
    ds = opp.read(synth)
    assert ds.name == "opportunity" and ds.rate_hz == 30.0
    assert ds.subjects == ["S1", "S2"]
    assert {r.session for r in ds.recordings} == {"ADL1", "Drill"}
    assert ds.n_channels == 113
    assert set(ds.activity_counts()) == {1, 2, 4, 5}
    assert ds.activities == {1: "Stand", 2: "Walk", 4: "Sit", 5: "Lie"}
    assert ds.notes["opportunity_metadata"] == {
        "column_names": "column_names.txt",
        "label_legend": "label_legend.txt",
    }
    assert ds.notes["opportunity_nan_cells_interpolated"] > 0  # the writer sprinkles gaps
    for r in ds.recordings:
        assert r.data.dtype == np.float32 and np.isfinite(r.data).all()
    # Spot-check against an independent parse of the file.
    raw = np.loadtxt(synth / "dataset" / "S2-Drill.dat")
    assert raw.shape[1] == 250 and (np.diff(raw[:, 0]) > 0).all()
    cols = opp.channel_numbers("body113")
    for rec in (r for r in ds.recordings if r.subject == "S2" and r.session == "Drill"):
        start = int(np.flatnonzero(raw[:, 0] == round(rec.t0 * 1000))[0])
        rows = raw[start : start + len(rec)]
        np.testing.assert_array_equal(rec.labels, rows[:, LOCO].astype(int))
        want = rows[:, [c - 1 for c in cols]]
        ok = np.isfinite(want)
        np.testing.assert_array_equal(rec.data[ok], want[ok].astype(np.float32))


def test_gesture_track(synth):
    ds = opp.read(synth, label_track="gesture")
    codes = set(ds.activity_counts())
    assert codes and codes <= set(GESTURES)
    assert ds.activities == dict(sorted(GESTURES.items()))
    assert ds.notes["opportunity_label_track"] == "ML_Both_Arms"
    raw = np.loadtxt(synth / "dataset" / "S1-ADL1.dat")
    for rec in (r for r in ds.recordings if r.subject == "S1" and r.session == "ADL1"):
        start = int(np.flatnonzero(raw[:, 0] == round(rec.t0 * 1000))[0])
        np.testing.assert_array_equal(rec.labels, raw[start : start + len(rec), GEST].astype(int))
    # Gestures are shorter events inside locomotion bouts: fewer labelled rows.
    assert ds.n_samples < opp.read(synth).n_samples


def test_include_drill_and_path_variants(synth):
    no_drill = opp.read(synth, include_drill=False)
    assert {r.session for r in no_drill.recordings} == {"ADL1"}
    assert (
        opp.read(synth / "dataset").n_samples == opp.read(synth.parent).n_samples == opp.read(synth).n_samples
    )


# ------------------------------------------------------------ channel selections
def test_body113_selects_exactly_the_right_columns(tmp_path):
    quats = {47, 48, 49, 50, 60, 61, 62, 63, 73, 74, 75, 76, 86, 87, 88, 89, 99, 100, 101, 102}
    expected = [c for c in range(2, 135) if c not in quats]
    assert opp.channel_numbers("body113") == expected and len(expected) == 113
    _write(tmp_path, _table(5))
    ds = opp.read(tmp_path)  # built-in metadata
    (rec,) = ds.recordings
    np.testing.assert_array_equal(rec.data[0], 1000.0 * np.array(expected))
    assert not any("Quaternion" in n for n in ds.channel_names)
    assert ds.channel_names[0] == "Accelerometer RKN^ accX"
    assert ds.channel_names[-1] == "InertialMeasurementUnit R-SHOE Compass"
    back = ds.select_position("BACK")
    assert [(c.sensor, c.axis) for c in back.channels] == [
        ("bt_acc", "x"),
        ("bt_acc", "y"),
        ("bt_acc", "z"),
        ("acc", "x"),
        ("acc", "y"),
        ("acc", "z"),
        ("gyro", "x"),
        ("gyro", "y"),
        ("gyro", "z"),
        ("mag", "x"),
        ("mag", "y"),
        ("mag", "z"),
    ]


def test_imu_and_all_selections(tmp_path):
    _write(tmp_path, _table(5))
    imu = opp.read(tmp_path, channels="imu")
    assert imu.n_channels == 45 and imu.positions == ["BACK", "RUA", "RLA", "LUA", "LLA"]
    assert {c.sensor for c in imu.channels} == {"acc", "gyro", "mag"}
    np.testing.assert_array_equal(imu.recordings[0].data[0, :9], 1000.0 * np.arange(38, 47))
    everything = opp.read(tmp_path, channels="all")
    assert everything.n_channels == 242
    assert everything.channels[-1].position == "" and everything.channels[-1].sensor == "TAG4_location"


def test_si_units(tmp_path):
    _write(tmp_path, _table(5))
    raw = opp.read(tmp_path)
    si = opp.read(tmp_path, si_units=True)
    i = raw.channel_names.index("InertialMeasurementUnit RUA accY")
    g = raw.channel_names.index("InertialMeasurementUnit RUA gyroY")
    assert raw.channels[i].unit == "milli g" and si.channels[i].unit == "m/s^2"
    assert si.recordings[0].data[0, i] == pytest.approx(raw.recordings[0].data[0, i] * 9.81 / 1000)
    assert si.recordings[0].data[0, g] == raw.recordings[0].data[0, g]


# ------------------------------------------------------------ metadata files
def test_metadata_files_used_when_present_else_defaults(tmp_path):
    opp.write_synthetic(tmp_path, n_subjects=1, sessions=("ADL1",), session_s=20.0)
    folder = tmp_path / "OpportunityUCIDataset" / "dataset"
    legend = folder / "label_legend.txt"
    legend.write_text(
        legend.read_text().replace("-   Locomotion   -   Stand", "-   Locomotion   -   Standing upright")
    )
    names = folder / "column_names.txt"
    names.write_text(names.read_text().replace("Accelerometer RKN^ acc", "Accelerometer KNEE acc"))
    ds = opp.read(tmp_path)
    assert ds.activities[1] == "Standing upright"
    assert ds.channel_names[:3] == [
        "Accelerometer KNEE accX",
        "Accelerometer KNEE accY",
        "Accelerometer KNEE accZ",
    ]
    assert ds.positions[0] == "KNEE"
    legend.unlink()
    names.unlink()
    ds = opp.read(tmp_path)
    assert ds.activities[1] == "Stand" and ds.channel_names[0] == "Accelerometer RKN^ accX"
    assert ds.notes["opportunity_metadata"] == {"column_names": "built-in", "label_legend": "built-in"}


def test_written_metadata_matches_builtin(tmp_path):
    folder = tmp_path / "meta"
    folder.mkdir()
    opp.write_column_names(folder / "column_names.txt", opp.default_columns())
    opp.write_label_legend(folder / "label_legend.txt", opp.default_legend())
    assert opp.parse_column_names(folder / "column_names.txt") == opp.default_columns()
    assert opp.parse_label_legend(folder / "label_legend.txt") == opp.default_legend()
    line = next(
        ln for ln in (folder / "column_names.txt").read_text().splitlines() if ln.startswith("Column: 2 ")
    )
    assert line == "Column: 2 Accelerometer RKN^ accX; value = round(original_value), unit = milli g"
    assert "406516   -   ML_Both_Arms   -   Open Door 1" in (folder / "label_legend.txt").read_text()


def test_malformed_column_names(tmp_path):
    _write(tmp_path, _table(3))
    folder = tmp_path / "OpportunityUCIDataset" / "dataset"
    opp.write_column_names(folder / "column_names.txt", opp.default_columns())
    lines = (folder / "column_names.txt").read_text().splitlines()
    lines[5] = lines[4]  # column 4 listed twice, column 5 missing
    (folder / "column_names.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match="listed twice") as e:
        opp.read(tmp_path)
    assert (Path(e.value.path).name, e.value.line) == ("column_names.txt", 6)


def test_legend_without_requested_track(tmp_path):
    _write(tmp_path, _table(3))
    (tmp_path / "OpportunityUCIDataset" / "dataset" / "label_legend.txt").write_text(
        "Unique index   -   Track name   -   Label name\n\n1   -   Locomotion   -   Stand\n"
    )
    assert opp.read(tmp_path).activities == {1: "Stand"}
    with pytest.raises(DataFormatError, match="ML_Both_Arms") as e:
        opp.read(tmp_path, label_track="gesture")
    assert Path(e.value.path).name == "label_legend.txt"


# ------------------------------------------------------------ NaN and nulls
def test_nan_interpolated_and_dead_channel_zeroed(tmp_path):
    t = _table(12)
    t[3:6, 1] = np.nan  # column 2: interior run, linear
    t[0:2, 4] = np.nan  # column 5: leading run, nearest value
    t[9:, 5] = np.nan  # column 6: trailing run, nearest value
    t[:, 7] = np.nan  # column 8: no value at all
    t[:, 46:50] = np.nan  # quaternions: not selected, ignored
    _write(tmp_path, t)
    with pytest.warns(UserWarning, match=r"1 channel\(s\) without any value.*Accelerometer LUA\^ accX"):
        ds = opp.read(tmp_path)
    (rec,) = ds.recordings
    assert len(rec) == 12 and np.isfinite(rec.data).all()
    np.testing.assert_array_equal(rec.data[:, 0], 2000.0 + np.arange(12))
    np.testing.assert_array_equal(rec.data[:2, 3], 5002.0)
    np.testing.assert_array_equal(rec.data[9:, 4], 6008.0)
    np.testing.assert_array_equal(rec.data[:, 6], 0.0)
    assert ds.notes["opportunity_all_nan_channels"] == 1
    assert ds.notes["opportunity_all_nan_channel_list"] == ["S1-ADL1.dat: Accelerometer LUA^ accX"]
    assert ds.notes["opportunity_nan_cells_interpolated"] == 3 + 2 + 3


def test_null_dropped_split_and_kept(tmp_path):
    t = _table(30)
    t[10:15, LOCO] = 0
    t[15:, LOCO] = 4
    _write(tmp_path, t)
    ds = opp.read(tmp_path)
    assert [(len(r), r.labels[0]) for r in ds.recordings] == [(10, 1), (15, 4)]
    assert ds.recordings[1].t0 == pytest.approx(0.5)
    kept = opp.read(tmp_path, keep_null=True)
    assert [len(r) for r in kept.recordings] == [30]
    assert kept.activities[0] == "Null" and kept.activity_counts()[0] == 5


# ------------------------------------------------------------ bad input
def test_missing_folder(tmp_path):
    with pytest.raises(DataFormatError, match="no such file or folder") as e:
        opp.read(tmp_path / "nowhere")
    assert e.value.path == str(tmp_path / "nowhere")
    (tmp_path / "OpportunityUCIDataset" / "dataset").mkdir(parents=True)
    with pytest.raises(DataFormatError, match=r"no S<n>-ADL<k>.dat"):
        opp.read(tmp_path / "OpportunityUCIDataset")


def test_wrong_column_count(tmp_path):
    lines = _lines(_table(4))
    lines[3] = lines[3] + " 7"
    path = _write_text(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match="expected 250 columns, found 251") as e:
        opp.read(tmp_path)
    assert (e.value.path, e.value.line) == (str(path), 4)


def test_non_numeric_cell(tmp_path):
    lines = _lines(_table(4))
    cells = lines[2].split()
    cells[100] = "1.2.3"
    lines[2] = " ".join(cells)
    path = _write_text(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"non-numeric value '1.2.3' in column 101") as e:
        opp.read(tmp_path)
    assert (e.value.path, e.value.line) == (str(path), 3)


def test_truncated_and_empty_files(tmp_path):
    text = "\n".join(_lines(_table(6))) + "\n"
    cut = text[: len(text) // 2]
    assert not cut.endswith("\n")
    path = _write_text(tmp_path, cut)
    with pytest.raises(DataFormatError, match="truncated last line") as e:
        opp.read(tmp_path)
    assert (e.value.path, e.value.line) == (str(path), cut.count("\n") + 1)
    path = _write_text(tmp_path, "\n\n")
    with pytest.raises(DataFormatError, match="empty") as e:
        opp.read(tmp_path)
    assert e.value.path == str(path)


def test_unknown_label_code(tmp_path):
    t = _table(6)
    t[4, LOCO] = 3  # not a locomotion code
    t[2, GEST] = 123456  # not a gesture code
    path = _write(tmp_path, t)
    with pytest.raises(DataFormatError, match="unknown Locomotion label code 3") as e:
        opp.read(tmp_path)
    assert (e.value.path, e.value.line) == (str(path), 5)
    t[4, LOCO] = 1
    _write(tmp_path, t)
    os.utime(path, ns=(3, 3))
    assert opp.read(tmp_path).n_samples == 6  # only the chosen track is checked
    with pytest.raises(DataFormatError, match="unknown ML_Both_Arms label code 123456") as e:
        opp.read(tmp_path, label_track="gesture")
    assert e.value.line == 3


def test_bad_options():
    with pytest.raises(ValueError, match="label_track"):
        opp.read(".", label_track="hl")
    with pytest.raises(ValueError, match="channels"):
        opp.read(".", channels="arms")


# ------------------------------------------------------------ cache
def test_cache_hit_and_invalidation(tmp_path, monkeypatch):
    t = _table(20)
    path = _write(tmp_path, t)
    first = opp.read(tmp_path)
    monkeypatch.setattr(opp, "load_table", lambda *a, **k: pytest.fail("parsed again despite a cache entry"))
    second = opp.read(tmp_path)
    np.testing.assert_array_equal(first.recordings[0].data, second.recordings[0].data)
    assert second.channels == first.channels and second.notes == first.notes
    monkeypatch.undo()
    monkeypatch.setenv("FEDOTL_CACHE_DIR", str(tmp_path / "cache"))
    t[0, 1] = 77.0
    _write(tmp_path, t)
    os.utime(path, ns=(4, 4))
    assert opp.read(tmp_path).recordings[0].data[0, 0] == 77.0
    # A changed legend is part of the key too.
    (path.parent / "label_legend.txt").write_text("1   -   Locomotion   -   Upright\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert opp.read(tmp_path).activities == {1: "Upright"}
