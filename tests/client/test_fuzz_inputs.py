"""Fuzzing the device's CSV input with hypothesis (issue #14, the data layer).

Each case starts from the sensor CSV that ``fedotl data csv`` writes for a tiny synthetic
subject (the file ``fedotl device --input`` reads), breaks it, and reads it the three ways
``fedotl device`` does: a file opened as UTF-8, standard input (a text stream decoding
strictly, or with ``surrogateescape`` as under a C locale), and :func:`follow` on a file.
The breaks: random bytes, a cut at any byte, bad cells (text, NaN, inf, 1e308, 1e400,
1e39, other digits), bad timestamps (repeated, backwards, huge), header edits (a repeated
or empty column name, no timestamp, a byte-order mark), lines dropped, repeated or
inserted, another encoding (latin-1, UTF-16) and invalid UTF-8 bytes.

The property: either an ``InputError`` whose message starts with the source and names a
line inside the input, or samples with finite, strictly increasing timestamps and float
values that are finite within float32's range or NaN (a missing value); fed to the
device's window buffers, every window kept is finite.  Never another exception.
"""

from __future__ import annotations

import io
import math
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fedotl.client.inputs import TIMESTAMP, CsvInput, InputError, follow
from fedotl.client.stream_windows import WindowBuffers, WindowSpec

settings.register_profile("fuzz-inputs", deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings.get_profile("fuzz-inputs")
RATE_HZ = 10.0
F32_MAX = float(np.finfo(np.float32).max)
CASES: Counter[str] = Counter()

CELLS = ("", " ", "nan", "NaN", "-nan", "inf", "-Infinity", "1e308", "-1e308", "1e400", "1e39", "3.4e38",
         "abc", "1_0", "0x10", "\uff11", "\u0661", "1e", "--1", "\x00", "\u00e9", '"1"', "1.5.2", "#")
TIMESTAMPS = ("0", "-1", "1e300", "1e16", "nan", "inf", "", "1e400", "0.1", "99999999999999999999")
HEADER_NAMES = ("", " ", "timestamp", "label", "acc_x", "Timestamp", "\ufefftimestamp", "#c")


@pytest.fixture(scope="module")
def sensor_csv(tmp_path_factory) -> bytes:
    """What ``fedotl data csv`` writes for one tiny synthetic subject."""
    from fedotl.simulations.cli import main
    from fedotl.simulations.readers import writer

    root = tmp_path_factory.mktemp("device_csv")
    writer("generic")(root / "data", n_subjects=1, rate_hz=RATE_HZ, bout_s=0.6, positions=("wrist",), activities=("sit", "walk"))
    out = root / "u01.csv"
    assert main(["data", "csv", "--dataset", "generic", str(root / "data"), "--subject", "u01", "--out", str(out)]) == 0
    return out.read_bytes()


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request):
    yield
    if CASES:
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\nfuzz cases run: {sum(CASES.values())} ({', '.join(f'{k} {v}' for k, v in sorted(CASES.items()))})")


# ---------------------------------------------------------------- mutations
@st.composite
def broken_csv(draw, valid: bytes) -> bytes:
    lines = valid.decode("ascii").splitlines()
    how = draw(st.sampled_from(("cell", "timestamp", "header", "lines", "encoding", "bytes", "cut")))
    if how == "bytes":
        return draw(st.binary(max_size=300))
    if how == "cell":
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(1, len(lines) - 1))
            cells = lines[i].split(",")
            cells[draw(st.integers(1, len(cells) - 1))] = draw(st.sampled_from(CELLS))
            lines[i] = ",".join(cells)
    elif how == "timestamp":
        i = draw(st.integers(1, len(lines) - 1))
        lines[i] = draw(st.sampled_from(TIMESTAMPS)) + lines[i][lines[i].index(","):]
    elif how == "header":
        names = lines[0].split(",")
        names[draw(st.integers(0, len(names) - 1))] = draw(st.sampled_from(HEADER_NAMES))
        lines[0] = ",".join(names)
    elif how == "lines":
        i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(("drop", "repeat", "insert")))
        if edit == "drop":
            del lines[i]
        elif edit == "repeat":
            lines.insert(i, lines[j])
        else:
            lines.insert(i, draw(st.sampled_from(("", "# note", ",", ",,,", "\t"))) if draw(st.booleans()) else draw(st.text(max_size=30)))
    text = "\r\n".join(lines) if draw(st.booleans()) else "\n".join(lines)
    text += "\n" if draw(st.booleans()) else ""
    if how == "encoding":
        i = draw(st.integers(1, len(lines) - 1))
        lines[i] = lines[i].rsplit(",", 1)[0] + "," + draw(st.sampled_from(("caf\u00e9", "M\u00fcller", "1\u00b0")))
        data = "\n".join(lines).encode(draw(st.sampled_from(("latin-1", "utf-16", "cp1252", "utf-8"))))
    else:
        data = text.encode("utf-8", errors="surrogateescape")
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from((b"\xff", b"\xe9", b"\xc3(", b"\x80", b"\xed\xa0\x80"))) + data[at:]
    if how == "cut" or draw(st.integers(0, 4)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


# ---------------------------------------------------------------- the property
def consume(inp: CsvInput, data: bytes) -> str:
    """Read every sample; check the property; "refused" or "read"."""
    try:
        samples = list(inp)
    except InputError as e:
        assert str(e).startswith(f"{inp.source}, line {e.line}"), e
        assert 1 <= e.line <= data.count(b"\n") + data.count(b"\r") + 2, e  # + 2: "no header" is the line after the last
        return "refused"
    channels = inp.channels
    assert TIMESTAMP not in channels and len(set(inp.columns)) == len(inp.columns) and all(inp.columns)
    last = -math.inf
    for s in samples:
        assert math.isfinite(s.t) and s.t > last, (s.t, last)
        last = s.t
        assert s.values.dtype == np.float64 and s.values.shape == (len(channels),)
        finite = s.values[~np.isnan(s.values)]
        assert (np.abs(finite) <= F32_MAX).all(), s.values  # NaN is a missing value; inf or 1e39 is refused
        assert s.label is None or (s.label and s.label == s.label.strip())
    assert_windows_finite(samples, len(channels))
    return "read"


def assert_windows_finite(samples, n_channels: int) -> None:
    """What reaches a learner: the windows the device's buffers keep hold no NaN or inf."""
    if not samples:
        return
    wb = WindowBuffers(1, n_channels, WindowSpec(rate_hz=RATE_HZ, window_s=0.5, stride_s=0.2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cast that overflows (a timestamp jump of 1e300 s once did) is a bug
        for s in samples:
            try:
                w = wb.push(np.zeros(1, dtype=np.int64), np.array([s.t]), s.values[None, :])
            except ValueError as e:  # the buffers' policy for a jump past their sample clock: refused, naming the device
                assert str(e).startswith("device 0: timestamp ") and "beyond the sample clock's range" in str(e), e
                return
            assert np.isfinite(w.X[w.ok]).all()


def _record(how: str, outcome: str) -> None:
    event(f"{how}: {outcome}")
    CASES[f"{how}: {outcome}"] += 1


# ---------------------------------------------------------------- the fuzz tests
@settings(FUZZ, max_examples=1500)
@given(data=st.data())
def test_a_csv_file_gives_clean_samples_or_an_input_error(sensor_csv, tmp_path_factory, data):
    raw = data.draw(broken_csv(sensor_csv))
    path = tmp_path_factory.getbasetemp() / "fuzz_sensor.csv"
    path.write_bytes(raw)
    with path.open(encoding="utf-8", newline="") as f:  # as `fedotl device --input FILE` opens it
        _record("file", consume(CsvInput(f, str(path)), raw))


@settings(FUZZ, max_examples=1500)
@given(data=st.data(), errors=st.sampled_from(["strict", "surrogateescape"]))
def test_standard_input_gives_clean_samples_or_an_input_error(sensor_csv, data, errors):
    raw = data.draw(broken_csv(sensor_csv))
    stdin = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", errors=errors)  # what sys.stdin is
    _record("stdin", consume(CsvInput(stdin, "<stdin>"), raw))


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_a_followed_file_gives_clean_samples_or_an_input_error(sensor_csv, tmp_path_factory, data):
    raw = data.draw(broken_csv(sensor_csv))
    path: Path = tmp_path_factory.getbasetemp() / "fuzz_followed.csv"
    path.write_bytes(raw)
    # follow() decodes with "replace": invalid bytes become U+FFFD, which the parser then locates
    _record("follow", consume(CsvInput(follow(path, poll_s=0.01, idle_timeout=0.0), str(path)), raw))


def test_the_unbroken_csv_reads_every_row(sensor_csv):
    # the cases start from this file: it must read whole, or every case would be a refusal
    stdin = io.TextIOWrapper(io.BytesIO(sensor_csv), encoding="utf-8")
    inp = CsvInput(stdin, "<stdin>")
    assert consume(inp, sensor_csv) == "read"
    assert len(list(CsvInput(sensor_csv.decode().splitlines(), "<stdin>"))) == sensor_csv.count(b"\n") - 1
