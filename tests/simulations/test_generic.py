"""Generic CSV reader: round trip, options and every malformed-input error."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from fedotl.simulations.dataset import DataFormatError
from fedotl.simulations.readers import generic


def test_synthetic_round_trip_with_positions_and_timestamps(tmp_path):
    generic.write_synthetic(tmp_path, n_subjects=2, seed=3, bout_s=4.0, rate_hz=20.0)
    ds = generic.read(tmp_path)
    assert ds.subjects == ["u01", "u02"]
    assert ds.positions == ["wrist", "waist"]
    assert ds.rate_hz == pytest.approx(20.0)
    assert ds.n_channels == 9
    assert {c.sensor for c in ds.channels} == {"acc", "gyro", "mag"}
    assert sorted(ds.activities.values())[0] == "cycling"
    assert ds.n_samples == 2 * 2 * 6 * 80
    # Each (subject, position) stream is one recording: bouts are contiguous.
    assert len(ds.recordings) == 4
    wrist = ds.select_position("wrist")
    assert {r.position for r in wrist.recordings} == {"wrist"}


def test_gzip_without_timestamps_needs_rate(tmp_path):
    generic.write_synthetic(tmp_path, n_subjects=1, bout_s=2.0, timestamps=False, gzip_files=True)
    with pytest.raises(DataFormatError, match="pass the sampling rate"):
        generic.read(tmp_path)
    ds = generic.read(tmp_path, rate_hz=50.0)
    assert ds.rate_hz == 50.0 and ds.n_samples == 2 * 6 * 100


def _write(tmp_path, text, name="x.csv"):
    f = tmp_path / name
    f.write_text(text)
    return f


def test_integer_labels_keep_codes_and_text_columns_are_ignored(tmp_path):
    f = _write(tmp_path, "subject,label,note,ax,ay,az\n" + "".join(f"s1,{3 if i < 5 else 7},hi,{i},0,1\n" for i in range(10)))
    ds = generic.read(f, rate_hz=10)
    assert ds.activities == {3: "3", 7: "7"}
    assert ds.notes["ignored_columns"] == ["note"]
    assert ds.channels[0].sensor == "a" and ds.channels[0].axis == "x"


def test_nan_cells_are_interpolated_with_a_count(tmp_path):
    f = _write(tmp_path, "subject,label,v\ns,a,0\ns,a,\ns,a,2\ns,a,NaN\ns,a,4\n")
    with pytest.warns(UserWarning, match="interpolated 2 missing"):
        ds = generic.read(f, rate_hz=1, cache=False)
    np.testing.assert_allclose(ds.recordings[0].data[:, 0], [0, 1, 2, 3, 4])
    assert ds.notes["interpolated_values"] == 2


def test_timestamp_gap_splits_recording(tmp_path):
    rows = [f"{t:.2f},s,a,1" for t in (0.0, 0.1, 0.2, 5.0, 5.1)]
    f = _write(tmp_path, "timestamp,subject,label,v\n" + "\n".join(rows) + "\n")
    ds = generic.read(f, cache=False)
    assert [len(r) for r in ds.recordings] == [3, 2]
    assert ds.recordings[1].t0 == pytest.approx(5.0)


@pytest.mark.parametrize(
    "text, needle, line",
    [
        ("subject,label,v\ns,a,1\ns,a,1,2\n", "expected 3 columns, found 4", 3),
        ("subject,label,v\ns,a,1\ns,a,oops\n", "non-numeric value 'oops' in column 'v'", 3),
        ("", "file is empty", None),
        ("subject,label,v\n", "no data rows", 2),
        ("subject,v\ns,1\n", "missing required column(s) ['label']", 1),
        ("subject,label,v\ns,a,1\ns,,1\n", "empty label", 3),
        ("timestamp,subject,label,v\n0.0,s,a,1\n0.1,s,a,1\n0.05,s,a,1\n", "timestamps must increase", 4),
    ],
    ids=["column-count", "non-numeric", "empty", "header-only", "no-label", "empty-label", "time-order"],
)
def test_malformed_csv_names_file_and_line(tmp_path, text, needle, line):
    f = _write(tmp_path, text)
    with pytest.raises(DataFormatError) as err:
        generic.read(f, rate_hz=None if "timestamp" in text else 10.0, cache=False)
    assert needle in str(err.value) and str(f) in str(err.value)
    assert err.value.line == line


def test_truncated_gzip_and_missing_path(tmp_path):
    f = tmp_path / "t.csv.gz"
    f.write_bytes(gzip.compress(b"subject,label,v\n" + b"s,a,1\n" * 100)[:-20])
    with pytest.raises(DataFormatError, match="cannot read"):
        generic.read(f, rate_hz=1.0)
    with pytest.raises(DataFormatError, match="no such file"):
        generic.read(tmp_path / "none.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no .csv"):
        generic.read(tmp_path / "empty")


def test_a_repeated_column_name_is_refused_with_file_and_line(tmp_path):
    f = _write(tmp_path, "subject,label,ax,ax\ns,a,1,2\ns,a,1,2\n")
    with pytest.raises(DataFormatError, match=r"x\.csv.*line 1.*\['ax'\] appear more than once"):
        generic.read(f, rate_hz=1, cache=False)


def test_the_cli_prints_a_data_warning_as_one_line(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    f = _write(tmp_path, "subject,label,v\n" + "".join(f"s,{'ab'[i // 10]},{'' if i == 3 else i}\n" for i in range(20)))
    r = subprocess.run([sys.executable, "-m", "fedotl.simulations.cli", "data", "info", "--dataset", "generic", str(f), "--rate", "1"],
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
                       env={**os.environ, "FEDOTL_CACHE_DIR": str(tmp_path / "cache")}, timeout=120)
    assert r.returncode == 0, r.stderr
    warned = [line for line in r.stderr.splitlines() if line.strip()]
    assert warned == [f"warning: {f}: interpolated 1 missing channel values"], r.stderr


def test_the_interpolation_warning_is_given_on_a_cache_hit_too(tmp_path):
    from fedotl.simulations.dataset import DataWarning

    f = _write(tmp_path, "subject,label,v\ns,a,1\ns,a,\ns,b,3\n")
    for _ in range(2):  # the second read comes from the cache: the policy still applied
        with pytest.warns(DataWarning, match=r"interpolated 1 missing channel values"):
            generic.read(f, rate_hz=1)
