"""The live-stream inputs: CSV rows become Samples as they arrive; bad rows are located exactly; follow() tails a growing file."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from fedotl.client.inputs import CsvInput, InputError, Sample, follow



def read(lines, source="sensor.csv", **kw):
    return list(CsvInput(lines, source, **kw))


def error(lines, source="sensor.csv", **kw) -> InputError:
    with pytest.raises(InputError) as info:
        read(lines, source, **kw)
    return info.value


# -- parsing ---------------------------------------------------------------------


def test_columns_in_any_order_become_channels_in_header_order_with_labels():
    src = CsvInput(["acc_z, label ,timestamp,acc_x\r\n", "3.0,walking,0.5,1.0\r\n", " 4.0 , sitting , 1.5 , -2e-3 \n"], "s.csv")
    assert src.channels == ["acc_z", "acc_x"]
    assert src.columns == ["acc_z", "label", "timestamp", "acc_x"]
    samples = list(src)
    assert [s.t for s in samples] == [0.5, 1.5]
    assert [s.label for s in samples] == ["walking", "sitting"]
    np.testing.assert_array_equal(samples[0].values, [3.0, 1.0])
    np.testing.assert_array_equal(samples[1].values, [4.0, -0.002])
    assert samples[0].values.dtype == np.float64 and samples[0].values.shape == (2,)


def test_without_a_label_column_every_sample_is_unlabelled_and_an_empty_label_is_none():
    assert [s.label for s in read(["timestamp,a", "0,1", "1,2"])] == [None, None]
    assert [s.label for s in read(["timestamp,a,label", "0,1,", "1,2,  ", "2,3,run"])] == [None, None, "run"]


def test_empty_fields_and_nan_are_missing_values():
    samples = read(["timestamp,a,b,c", "0,,1,nan", "1,NaN, ,2", "2,1,2,3"])
    assert np.isnan(samples[0].values).tolist() == [True, False, True]
    assert np.isnan(samples[1].values).tolist() == [True, True, False]
    assert not np.isnan(samples[2].values).any()


def test_blank_lines_and_comments_are_skipped_but_counted_as_lines():
    lines = ["# recorded by the wrist unit", "", "timestamp,a", "   ", "# pause", "0,1", "1,x"]
    err = error(lines)
    assert (err.line, err.field) == (7, "a")  # the 7th physical line


def test_channels_are_known_before_any_row_and_the_header_is_read_lazily():
    lines = iter(["timestamp,b,a", "0,1,2"])
    src = CsvInput(lines, "s.csv")
    assert next(lines) == "timestamp,b,a"  # the constructor read nothing
    src = CsvInput(iter(["timestamp,b,a", "0,1,2"]), "s.csv")
    assert src.read_header() == ["b", "a"]
    assert src.line == 1  # only the header was read
    assert [s.values.tolist() for s in src] == [[1.0, 2.0]]


def test_sample_is_frozen_its_values_read_only_and_equal_by_value():
    s = read(["timestamp,a", "0,nan"])[0]
    with pytest.raises(AttributeError):
        s.t = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        s.values[0] = 1.0
    assert s == Sample(0.0, np.array([np.nan]), None)
    assert s != Sample(0.0, np.array([np.nan]), "walk")
    assert not hasattr(s, "__dict__")  # slots


def test_a_string_is_not_mistaken_for_lines():
    with pytest.raises(TypeError, match="splitlines"):
        CsvInput("timestamp,a\n0,1\n", "s.csv")


def test_many_rows_parse_quickly():
    n = 100_000
    lines = ["timestamp,a,b,c,d,e,f,label"] + [f"{i * 0.02:.2f},{i % 7},0.5,-1.25,,3e-3,{i},walk" for i in range(n)]
    t0 = time.perf_counter()
    count = sum(1 for _ in CsvInput(lines, "big.csv"))
    elapsed = time.perf_counter() - t0
    assert count == n
    assert elapsed < 5.0, f"{n} rows took {elapsed:.2f} s"


# -- errors: each names the source, the line and the field -----------------------


def test_the_message_names_source_line_and_field():
    err = error(["timestamp,acc_x", "0,1", "1,2", "2,3", "3,4", "4,5", "5,abc"])
    assert str(err) == "sensor.csv, line 7, field 'acc_x': 'abc' is not a number"
    assert (err.source, err.line, err.field) == ("sensor.csv", 7, "acc_x")
    assert isinstance(err, ValueError)
    assert "\n" not in str(err)


def test_stdin_is_named_as_stdin():
    assert str(error(["timestamp,a", "0,?"], source="<stdin>")).startswith("<stdin>, line 2, field 'a':")


def test_missing_timestamp_column():
    err = error(["time,a,b", "0,1,2"])
    assert (err.line, err.field) == (1, "timestamp")
    assert "time, a, b" in str(err)


def test_required_column_missing_is_named():
    err = error(["timestamp,acc_x,acc_y", "0,1,2"], required=["acc_x", "acc_z"])
    assert (err.line, err.field) == (1, "acc_z")
    assert "required" in str(err)
    assert read(["timestamp,acc_y,acc_x", "0,1,2"], required=["acc_x", "acc_y"])[0].values.tolist() == [1.0, 2.0]


def test_duplicate_column_names():
    err = error(["# header next", "timestamp,a,b,a", "0,1,2,3"])
    assert (err.line, err.field) == (2, "a")
    assert "duplicate" in str(err)


def test_empty_column_name_and_header_without_channels_and_empty_input():
    assert "no name" in str(error(["timestamp,a,", "0,1,2"]))
    assert error(["timestamp,label", "0,x"]).line == 1
    err = error(["# nothing", ""])
    assert err.line == 3 and "no header" in str(err)


@pytest.mark.parametrize(
    "row, field, words",
    [
        ("1,2", "b", ["expected 3 fields", "got 2"]),
        ("1,2,3,4", None, ["expected 3 fields", "got 4"]),
    ],
)
def test_wrong_number_of_fields(row, field, words):
    err = error(["timestamp,a,b", "0,1,2", row])
    assert (err.line, err.field) == (3, field)
    for w in words:
        assert w in str(err)


@pytest.mark.parametrize("value", ["abc", "inf", "-inf", "Infinity", "1e999", "1_0", "0x10", "1.2.3"])
def test_non_numbers_and_infinities_are_errors(value):
    err = error(["timestamp,a,b", "0,1,2", f"1,1,{value}"])
    assert (err.line, err.field) == (3, "b")
    assert repr(value) in str(err)


@pytest.mark.parametrize("value", ["1e39", "-3.5e38", "1e308"])
def test_values_beyond_float32_are_errors_not_infinities_in_the_windows(value):
    # the windows are float32: 1e308 became inf there, with an "overflow in cast" RuntimeWarning
    err = error(["timestamp,a,b", "0,1,2", f"1,{value},2"])
    assert (err.line, err.field) == (3, "a") and "out of range" in str(err)
    big = read(["timestamp,a", "0,3.4e38", "1,nan"])  # the largest float32 and a missing value still read
    assert big[0].values[0] == 3.4e38 and np.isnan(big[1].values[0])


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_a_stream_that_is_not_utf8_is_an_input_error_at_the_line_reached(encoding):
    import io

    raw = "timestamp,a,label\n0,1,sit\n1,2,caf\u00e9\n".encode(encoding)
    stdin = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")  # as sys.stdin or an opened file decodes
    with pytest.raises(InputError, match=r"^<stdin>, line 1: not UTF-8 text \(byte 0x..\) at or after this line") as info:
        list(CsvInput(stdin, "<stdin>"))  # a UnicodeDecodeError that named neither source nor line
    assert info.value.field is None


@pytest.mark.parametrize("value, words", [("", "empty"), ("x", "'x' is not a number"), ("inf", "finite"), ("nan", "finite"), ("1_0", "finite")])
def test_bad_timestamps(value, words):
    err = error(["timestamp,a", "0,1", f"{value},2"])
    assert (err.line, err.field) == (3, "timestamp")
    assert words in str(err)


def test_timestamps_that_repeat_or_go_backwards():
    err = error(["timestamp,a", "0,1", "1,1", "1.0,2"])
    assert (err.line, err.field) == (4, "timestamp") and "repeat" in str(err)
    err = error(["timestamp,a", "0,1", "2,1", "", "1.5,2"])
    assert (err.line, err.field) == (5, "timestamp") and "backwards" in str(err) and "1.5 after 2.0" in str(err)


def test_rows_before_the_error_were_already_yielded():
    it = iter(CsvInput(["timestamp,a", "0,1", "1,oops"], "s.csv"))
    assert next(it).t == 0.0
    with pytest.raises(InputError):
        next(it)


def test_input_error_survives_pickling():
    import pickle

    err = InputError("s.csv", 3, "a", "bad")
    back = pickle.loads(pickle.dumps(err))
    assert (str(back), back.line, back.field) == (str(err), 3, "a")


# -- row by row from a pipe -----------------------------------------------------------


def test_a_row_from_a_pipe_becomes_a_sample_before_the_next_row_is_written():
    r, w = os.pipe()
    out: queue.Queue = queue.Queue()

    def consume():
        with os.fdopen(r, "r") as f:
            try:
                for s in CsvInput(f, "<stdin>"):
                    out.put(s)
            except Exception as e:  # pragma: no cover - reported below
                out.put(e)
        out.put(None)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    with os.fdopen(w, "w", buffering=1) as writer:
        writer.write("timestamp,a,label\n")
        for i in range(5):
            writer.write(f"{i},{i * 10},step{i}\n")
            writer.flush()
            # the pipe holds only this row: if the reader waited for more, this times out
            s = out.get(timeout=5)
            assert isinstance(s, Sample), s
            assert (s.t, s.values.tolist(), s.label) == (float(i), [i * 10.0], f"step{i}")
            assert out.empty()
    assert out.get(timeout=5) is None  # EOF ends the iteration
    thread.join(5)


def test_stdin_of_a_subprocess_row_by_row():
    code = (
        "import sys\n"
        "from fedotl.client.inputs import CsvInput\n"
        "for s in CsvInput(sys.stdin, '<stdin>'):\n"
        "    print(s.t, s.label, flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        proc.stdin.write("timestamp,x,label\n")  # type: ignore[union-attr]
        for i in range(3):
            proc.stdin.write(f"{i}.5,1,L{i}\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
            assert lines.get(timeout=20).split() == [f"{i}.5", f"L{i}"]
        proc.stdin.write("9,bad,x\n")  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
        assert proc.wait(timeout=20) != 0
        assert "<stdin>, line 5, field 'x': 'bad' is not a number" in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()


# -- follow ------------------------------------------------------------------------------


def test_follow_a_growing_file_yields_every_row_in_order_and_ends_when_idle(tmp_path):
    path = tmp_path / "live.csv"
    path.write_text("timestamp,a\n")
    n = 30

    def write():
        with open(path, "a") as f:
            for i in range(n):
                f.write(f"{i},{i * 2}\n")
                f.flush()
                time.sleep(0.005)

    writer = threading.Thread(target=write)
    t0 = time.monotonic()
    writer.start()
    samples = list(CsvInput(follow(path, poll_s=0.01, idle_timeout=0.5), str(path)))
    elapsed = time.monotonic() - t0
    writer.join()
    assert [s.t for s in samples] == [float(i) for i in range(n)]
    assert [s.values[0] for s in samples] == [2.0 * i for i in range(n)]
    assert 0.5 <= elapsed < 3.0  # it waited out the idle timeout after the last row, then ended


def _consume(gen, out: queue.Queue) -> threading.Thread:
    def run():
        for line in gen:
            out.put(line)
        out.put(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_follow_holds_a_partial_line_until_its_newline(tmp_path):
    path = tmp_path / "live.csv"
    path.write_bytes(b"timestamp,a\n0,1")
    out: queue.Queue = queue.Queue()
    _consume(follow(path, poll_s=0.01, idle_timeout=0.8), out)
    assert out.get(timeout=2) == "timestamp,a\n"
    with pytest.raises(queue.Empty):
        out.get(timeout=0.3)  # "0,1" has no newline yet
    with open(path, "ab") as f:
        f.write(b".5\n1,2\n2")
    assert out.get(timeout=2) == "0,1.5\n"
    assert out.get(timeout=2) == "1,2\n"
    assert out.get(timeout=5) == "2"  # idle: the unterminated last line is yielded as it is
    assert out.get(timeout=2) is None


def test_follow_ends_when_stop_is_set_and_drops_a_half_written_line(tmp_path):
    path = tmp_path / "live.csv"
    path.write_text("a\nb")
    stop = threading.Event()
    out: queue.Queue = queue.Queue()
    thread = _consume(follow(path, poll_s=0.02, stop=stop), out)
    assert out.get(timeout=2) == "a\n"
    time.sleep(0.1)
    t0 = time.monotonic()
    stop.set()
    assert out.get(timeout=2) is None
    assert time.monotonic() - t0 < 1.0
    thread.join(2)


def test_follow_waits_through_pauses_shorter_than_the_idle_timeout(tmp_path):
    path = tmp_path / "live.txt"
    path.write_text("")
    out: queue.Queue = queue.Queue()
    _consume(follow(path, poll_s=0.01, idle_timeout=0.6), out)
    for word in ["one", "two"]:
        time.sleep(0.3)
        with open(path, "a") as f:
            f.write(word + "\n")
    assert [out.get(timeout=3) for _ in range(3)] == ["one\n", "two\n", None]
