"""Data-layer reliability (issue #14): each bug the fuzzing found, the policies' warnings, and
untrainable single-class datasets refused at the boundary, naming the file.

Every dataset here is written by our own writers (or is a few lines of the generic CSV), then
broken on purpose at one cell.
"""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest

from fedotl.simulations.dataset import DataFormatError, DataWarning
from fedotl.simulations.readers import dsads, generic, load_dataset, opportunity, pamap2, writer
from fedotl.simulations.readers._text import check_codes, load_table


def _csv(tmp_path: Path, text: str | bytes, name: str = "rec.csv") -> Path:
    f = tmp_path / name
    f.write_bytes(text.encode() if isinstance(text, str) else text)
    return f


def _read(f: Path, **options):
    return generic.read(f, cache=False, **options)


def _refused(f: Path, match: str, **options) -> DataFormatError:
    with pytest.raises(DataFormatError, match=match) as info:
        _read(f, **options)
    assert info.value.path == str(f)
    return info.value


def _set_cell(path: Path, row: int, col: int, value: str) -> int:
    """Replace one space-separated cell; the 1-based line changed."""
    lines = path.read_text().splitlines()
    cells = lines[row].split(" ")
    cells[col] = value
    lines[row] = " ".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return row + 1


def _activity_row(path: Path, label_col: int) -> int:
    """A row inside an activity bout (not a dropped Null row), away from the edges."""
    labels = [line.split(" ")[label_col] for line in path.read_text().splitlines()]
    return next(i for i in range(len(labels) // 2, len(labels)) if labels[i] not in ("0", "NaN"))


# ------------------------------------------------------------------ generic CSV: bugs the fuzzing found
def test_a_subject_holding_any_character_is_its_own_stream(tmp_path):
    # the streams were keyed by "subject\x1fposition": this subject was a traceback
    f = _csv(tmp_path, "subject,label,ax\na\x1fb,w,1\na\x1fb,s,2\nc,w,3\n")
    ds = _read(f, rate_hz=1)
    assert ds.subjects == ["a\x1fb", "c"] and [len(r) for r in ds.recordings] == [2, 1]


@pytest.mark.parametrize("second", ["1e30", "1e-320"])
def test_timestamps_without_a_usable_rate_are_refused(tmp_path, second):
    # a step of 1e30 s gave rate 0 (ZeroDivisionError); one of 1e-320 s gave rate inf
    f = _csv(tmp_path, f"timestamp,subject,label,ax\n0,a,w,1\n{second},a,s,2\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow RuntimeWarning on the way
        _refused(f, r"median step .* gives no usable rate: pass --rate HZ")


def test_a_corrupt_gzip_stream_is_refused(tmp_path):
    raw = bytearray(gzip.compress(b"subject,label,ax\na,w,1\na,s,2\n"))
    raw[10] ^= 0xFF  # zlib.error, which escaped as a traceback
    _refused(_csv(tmp_path, bytes(raw), "rec.csv.gz"), "cannot read")


def test_a_field_beyond_the_csv_size_limit_is_refused_with_its_line(tmp_path):
    f = _csv(tmp_path, "subject,label,ax\na,w,1\na,s," + "1" * 200_000 + "\n")
    assert _refused(f, "not a CSV row: field larger than field limit").line == 3


def test_a_file_without_a_sensor_channel_is_refused(tmp_path):
    # every candidate column was text: np.column_stack([]) was a traceback
    f = _csv(tmp_path, "subject,label,note\na,w,x\na,s,y\n")
    assert _refused(f, r"no sensor channel column").line == 1


def test_a_channel_whose_first_cell_is_empty_is_a_channel_interpolated(tmp_path):
    # the first cell decided: an empty one made the channel an ignored text column
    f = _csv(tmp_path, "subject,label,ax,ay\na,w,,1\na,w,2,2\na,s,4,3\n")
    with pytest.warns(DataWarning, match=r"interpolated 1 missing channel values"):
        ds = _read(f, rate_hz=1)
    assert ds.channel_names == ["ax", "ay"] and "ignored_columns" not in ds.notes
    np.testing.assert_array_equal(ds.recordings[0].data[:, 0], [2, 2, 4])


@pytest.mark.parametrize(
    "text, match, line",
    [
        ("subject,label,,ax\na,w,1,1\n", r"column 3 of 4 has no name", 1),
        ("subject,label,ax\n,w,1\na,s,2\n", r"empty subject", 2),
        ("subject,label,ax\na,w,1\na, ,2\n", r"empty label", 3),
        ("subject,label,ax\na,99999999999999999999,1\na,1,2\n", r"integer label 99999999999999999999 is out of range", 2),
        ('subject,label,ax\na,"two\nlines",1\na,s,zz\n', r"non-numeric value 'zz'", 4),  # a quoted newline counts
        ("subject,label,ax\na,w,1\n\na,s,zz\n", r"non-numeric value 'zz'", 4),  # so does a skipped blank line
        ("subject,label,ax\na,w,1\na,s,inf\n", r"infinite or out-of-range value 'inf' in column 'ax'", 3),
        ("subject,label,ax\na,w,1\na,s,1e308\n", r"infinite or out-of-range value '1e308' in column 'ax'", 3),
    ],
)
def test_generic_errors_name_file_line_and_column(tmp_path, text, match, line):
    assert _refused(_csv(tmp_path, text), match, rate_hz=1).line == line


def test_text_that_is_not_utf8_names_the_line_of_the_first_bad_byte(tmp_path):
    f = _csv(tmp_path, "subject,label,ax\na,w,1\na,caf\u00e9,2\n".encode("latin-1"))
    assert _refused(f, r"not UTF-8 text \(byte 0xe9\)").line == 3


def test_a_blank_line_inside_the_data_is_skipped(tmp_path):
    ds = _read(_csv(tmp_path, "subject,label,ax\na,w,1\n\n   \na,s,2\n"), rate_hz=1)
    assert ds.n_samples == 2


def test_a_channel_without_any_value_in_a_recording_is_named(tmp_path):
    f = _csv(tmp_path, "subject,label,ax,ay\na,w,1,\na,s,2,\nb,w,3,4\n")
    assert _refused(f, r"channel 'ay' has no value in the recording that starts here", rate_hz=1).line == 2


# ------------------------------------------------------------------ PAMAP2, OPPORTUNITY, DSADS
@pytest.fixture
def pamap2_root(tmp_path) -> Path:
    pamap2.write_synthetic(tmp_path, n_subjects=1, bout_s=1.0, activities=(1, 4), optional=False)
    return tmp_path


@pytest.mark.parametrize("value", ["inf", "-inf", "1e308", "3.5e38"])
def test_pamap2_refuses_inf_and_float32_overflow_in_a_kept_channel(pamap2_root, value):
    # they reached the recordings as inf (1e308 with an "overflow in cast" RuntimeWarning)
    f = pamap2_root / "PAMAP2_Dataset" / "Protocol" / "subject101.dat"
    line = _set_cell(f, _activity_row(f, 1), 4, value)  # column 5: hand acc x (±16 g)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(DataFormatError, match=r"infinite or out-of-range value .* in channel 'hand_acc_x'") as info:
            pamap2.read(pamap2_root, cache=False)
    assert (info.value.path, info.value.line) == (str(f), line)


def test_pamap2_ignores_inf_in_a_dropped_column_as_it_ignores_nan(pamap2_root):
    f = pamap2_root / "PAMAP2_Dataset" / "Protocol" / "subject101.dat"
    _set_cell(f, _activity_row(f, 1), 16, "inf")  # column 17: hand orientation, never kept
    ds = pamap2.read(pamap2_root, cache=False)
    assert all(np.isfinite(r.data).all() for r in ds.recordings)


@pytest.fixture
def opportunity_root(tmp_path) -> Path:
    opportunity.write_synthetic(tmp_path, n_subjects=1, sessions=("ADL1",), session_s=20.0)
    return tmp_path


def test_opportunity_refuses_inf_in_a_selected_channel(opportunity_root):
    f = opportunity_root / "OpportunityUCIDataset" / "dataset" / "S1-ADL1.dat"
    line = _set_cell(f, _activity_row(f, 243), 1, "1e39")  # column 2: Accelerometer RKN^ accX
    with pytest.raises(DataFormatError, match=r"1e\+39 in channel 'Accelerometer RKN\^ accX'") as info:
        opportunity.read(opportunity_root, cache=False)
    assert (info.value.path, info.value.line) == (str(f), line)


def test_opportunity_names_the_legend_a_label_code_is_missing_from(opportunity_root):
    legend = opportunity_root / "OpportunityUCIDataset" / "dataset" / "label_legend.txt"
    legend.write_text("\n".join(line for line in legend.read_text().splitlines() if "Locomotion   -   Stand" not in line) + "\n")
    with pytest.raises(DataFormatError, match=rf"unknown Locomotion label code 1 \(not in {legend}\)"):
        opportunity.read(opportunity_root, cache=False)


def test_dsads_names_column_and_line_of_an_out_of_range_value_without_a_runtime_warning():
    rows = ["1.0," * 44 + "1.0"] * dsads.ROWS_PER_SEGMENT
    rows[6] = "1e308," + rows[6].split(",", 1)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataFormatError, match=r"s01\.txt, line 7: NaN or infinite value 1e\+308 in column 1 \(beyond float32's range counts"):
            dsads.parse_segment(("\n".join(rows) + "\n").encode(), "a01/p1/s01.txt")


def test_a_table_of_separator_characters_is_empty_not_a_numpy_warning(tmp_path):
    f = _csv(tmp_path, b"\x1c\n\x1c\n", "subject101.dat")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "loadtxt: input contained no data" leaked
        with pytest.raises(DataFormatError, match="file is empty"):
            load_table(f, 54)


def test_a_huge_label_code_is_unknown_without_an_overflow_warning(tmp_path):
    f = _csv(tmp_path, "0 1\n0 1e300\n", "t.dat")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataFormatError, match=r"line 2: unknown activity code 1e\+300"):
            check_codes(np.array([1.0, 1e300]), {1}, f, "activity")


# ------------------------------------------------------------------ one warning class, one line on the CLI
def test_every_reader_policy_warning_is_a_data_warning(tmp_path):
    f = _csv(tmp_path, "subject,label,ax\na,w,\na,w,1\na,s,2\n")
    with pytest.warns(DataWarning, match="interpolated 1"):
        _read(f, rate_hz=1)
    pamap2.write_synthetic(tmp_path / "p", n_subjects=1, bout_s=2.0, activities=(1, 4), optional=False, long_gaps=1)
    with pytest.warns(DataWarning, match="PAMAP2: dropped"):
        pamap2.read(tmp_path / "p", cache=False)
    opportunity.write_synthetic(tmp_path / "o", n_subjects=1, sessions=("ADL1",), session_s=10.0)
    dat = tmp_path / "o" / "OpportunityUCIDataset" / "dataset" / "S1-ADL1.dat"
    table = np.loadtxt(dat)
    table[:, 1] = np.nan  # a channel without any value: filled with 0, warned
    np.savetxt(dat, table, fmt="%.0f")
    with pytest.warns(DataWarning, match="OPPORTUNITY: 1 channel"):
        opportunity.read(tmp_path / "o", cache=False)


def test_the_cli_prints_a_multi_line_warning_as_one_line_and_restores_the_hook(capsys, monkeypatch):
    import fedotl.simulations.cli as cli

    def warn_twice(args):
        warnings.warn("first line\n  second line", DataWarning)
        warnings.warn("a library's notice", DeprecationWarning)
        return 0

    monkeypatch.setattr(cli.data, "cmd_info", warn_twice)
    before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert cli.main(["data", "info", "--dataset", "generic", "x.csv"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == ["warning: first line second line", "warning: a library's notice"], err
    assert "UserWarning" not in err and "warnings.warn" not in err
    assert warnings.showwarning is before  # main() may run inside a larger program


def test_data_info_on_a_csv_with_a_nan_cell_prints_one_warning_line(tmp_path, capsys):
    from fedotl.simulations.cli import main

    generic.write_synthetic(tmp_path / "d", n_subjects=1, rate_hz=10.0, bout_s=1.0, positions=("wrist",), activities=("sit", "walk"))
    f = tmp_path / "d" / "subject_01.csv"
    lines = f.read_text().splitlines()
    cells = lines[3].split(",")
    cells[-1] = "NaN"
    lines[3] = ",".join(cells)
    f.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        assert main(["data", "info", "--dataset", "generic", str(f)]) == 0
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.strip()] == [f"warning: {f}: interpolated 1 missing channel values"], err


# ------------------------------------------------------------------ single-class data: refused before training
def _one_class(tmp_path: Path, name: str) -> Path:
    """A dataset of one activity, in the reader's official layout."""
    out = tmp_path / name
    if name == "generic":
        writer(name)(out, n_subjects=2, rate_hz=10.0, bout_s=12.0, activities=("walking",))
    else:
        writer(name)(out, n_subjects=2, bout_s=12.0, activities=(4,), optional=False)  # PAMAP2 4: walking
    return out


@pytest.mark.parametrize("name", ["generic", "pamap2"])
def test_prepare_devices_refuses_a_single_class_dataset_naming_it_before_any_store(tmp_path, name):
    from fedotl.simulations.devices import prepare_devices

    root = _one_class(tmp_path, name)
    stores = tmp_path / "stores"
    with pytest.raises(ValueError, match=r"hold 1 class\(es\) \['walking'\]; training needs at least two") as info:
        prepare_devices({"dataset": name, "data-path": str(root), "window-seconds": 2.0}, stores)
    assert str(info.value).startswith(f"{root}: ")  # the name, not the code 4, for PAMAP2 too
    assert not stores.exists()


def test_stream_refuses_a_single_class_target_naming_the_file(tmp_path):
    from fedotl.simulations.stream import build_task

    root = _one_class(tmp_path, "generic")
    ds = load_dataset("generic", root, cache=False)
    with pytest.raises(ValueError, match=r"1 class\(es\); an online learner needs at least two") as info:
        build_task(ds, "u01", window_s=2.0)
    assert str(info.value).startswith(f"{root}: ")


def test_simulate_exits_2_naming_the_file_and_leaves_no_run_folder_even_without_the_store_cache(tmp_path, capsys, monkeypatch):
    from fedotl.simulations.cli import main

    monkeypatch.setenv("FEDOTL_CACHE_DIR", "off")  # the stores would go under the run folder itself
    root = _one_class(tmp_path, "generic")
    f = root / "subject_01.csv"
    out = tmp_path / "D"
    rc = main(["simulate", "--dataset", "generic", str(f), "--rounds", "1", "--window", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists(), err
    assert err.splitlines() == [f"error: {f.resolve()}: the devices' windows hold 1 class(es) ['walking']; training needs at least two"], err


def test_a_form_feed_inside_a_line_does_not_shift_the_line_number(tmp_path):
    # the slow path split lines with str.splitlines, which breaks at \x0c (and \x1c ...): it blamed
    # line 1 ("expected 3 columns, found 1") for the bad cell of line 2
    f = _csv(tmp_path, b"1 \x0c 2 3\n4 5 x\n", "t.dat")
    with pytest.raises(DataFormatError, match=r"t\.dat, line 2: non-numeric value 'x' in column 3"):
        load_table(f, 3)
