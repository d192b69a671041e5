"""Property-based fuzzing (hypothesis) of the readers and of the device's CSV input.

Each case starts from a small valid file that our own code writes, then breaks it: random
bytes, a cut at any byte, a bad cell (text, NaN, inf, 1e400, a NUL), another encoding, or a
repeated column.  The property: a named error (``DataFormatError`` naming the file, or the
device's ``InputError`` naming the source and line), or the documented policy with nothing
non-finite left for a learner.  Never another exception, never silent NaN.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedotl.client.inputs import CsvInput, InputError
from fedotl.simulations.dataset import DataFormatError
from fedotl.simulations.readers import dsads, generic

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
BAD_CELLS = ["", "NaN", "nan", "inf", "-inf", "1e400", "-1e400", "1e308", "abc", "0x1F", "1,5", "\x00", "１", "--1", "1e", " "]
ENCODINGS = ["utf-8", "latin-1", "utf-16", "utf-8-sig"]


@st.composite
def broken(draw, valid: str) -> bytes:
    """``valid`` broken in one of the ways a real file breaks."""
    how = draw(st.sampled_from(["bytes", "cut", "cell", "encoding", "cell+cut"]))
    if how == "bytes":
        return draw(st.binary(max_size=400))
    text = valid
    if how in ("cell", "cell+cut"):
        lines = text.splitlines()
        i = draw(st.integers(1, len(lines) - 1))
        cells = lines[i].split(",")
        j = draw(st.integers(0, len(cells) - 1))
        cells[j] = draw(st.sampled_from(BAD_CELLS))
        lines[i] = ",".join(cells)
        text = "\n".join(lines) + "\n"
    data = text.encode(draw(st.sampled_from(ENCODINGS)) if how == "encoding" else "utf-8", errors="replace")
    if how in ("cut", "cell+cut"):
        data = data[: draw(st.integers(0, len(data)))]
    return data


# ------------------------------------------------------------ DSADS segment files
def _valid_segment() -> str:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(dsads.ROWS_PER_SEGMENT, dsads.N_COLUMNS))
    return "".join(",".join(f"{v:.4f}" for v in r) + "\n" for r in rows)


SEGMENT = _valid_segment()


@FUZZ
@given(data=broken(SEGMENT))
def test_dsads_segment_is_parsed_whole_or_refused_naming_the_file(data):
    name = "a07/p2/s03.txt"
    try:
        out = dsads.parse_segment(data, name)
    except DataFormatError as e:
        assert str(e).startswith(name)
        return
    assert out.shape == (dsads.ROWS_PER_SEGMENT, dsads.N_COLUMNS) and np.isfinite(out).all()


# ------------------------------------------------------------ generic CSV
GENERIC = "subject,label,ax,ay\n" + "".join(f"s1,{'walk' if i < 10 else 'sit'},{i * 0.1:.2f},{1 - i * 0.05:.2f}\n" for i in range(20))


@FUZZ
@given(data=broken(GENERIC), repeat=st.booleans())
def test_generic_csv_is_read_by_its_policy_or_refused_naming_the_file(tmp_path_factory, data, repeat):
    if repeat and data.startswith(b"subject,label,ax,ay"):
        data = data.replace(b"subject,label,ax,ay", b"subject,label,ax,ax", 1)
    f = tmp_path_factory.mktemp("fuzz") / "rec.csv"
    f.write_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the interpolation warning is the policy, checked below
            ds = generic.read(f, rate_hz=10, cache=False)
    except DataFormatError as e:
        assert str(f) in str(e)
        return
    for r in ds.recordings:  # the policy: short NaN gaps interpolated, nothing non-finite left
        assert np.isfinite(r.data).all()
        assert len(r.labels) == len(r.data)


# ------------------------------------------------------------ the device's CSV / stdin input
DEVICE = "timestamp,ax,ay,label\n" + "".join(f"{i * 0.02:.2f},{i * 0.1:.2f},0.5,{'walk' if i % 2 else ''}\n" for i in range(15))


@FUZZ
@given(data=broken(DEVICE), dup=st.booleans())
def test_device_csv_input_gives_samples_or_an_input_error_naming_source_and_line(data, dup):
    text = data.decode("utf-8", errors="replace")  # what reading stdin as text gives
    if dup:
        text = text.replace("timestamp,ax,ay", "timestamp,ax,ax", 1)
    source = "<stdin>"
    inp = CsvInput(text.splitlines(keepends=True), source)
    try:
        samples = list(inp)
    except InputError as e:
        assert str(e).startswith(source) and "line" in str(e)
        return
    last = -math.inf
    for s in samples:  # accepted samples: increasing finite timestamps, float channel values
        assert math.isfinite(s.t) and s.t > last
        last = s.t
        assert s.values.dtype == np.float64 and not np.isinf(s.values).any()  # NaN is a missing value (the device's gap policy)


# ------------------------------------------------------------ PAMAP2 and OPPORTUNITY, one file of the layout broken
@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    from fedotl.simulations.readers import opportunity, pamap2

    out = {}
    for name, write in (("pamap2", lambda d: pamap2.write_synthetic(d, n_subjects=1, bout_s=3.0, activities=(1, 4), optional=False)),
                        ("opportunity", lambda d: opportunity.write_synthetic(d, n_subjects=1, sessions=("ADL1",), session_s=6.0))):
        root = tmp_path_factory.mktemp(name)
        files = write(root)
        data_file = next(f for f in files if f.suffix in (".dat", ".txt") and "column" not in f.name.lower() and "label" not in f.name.lower())
        out[name] = (root, data_file, data_file.read_text())
    return out


LAYOUT_FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@LAYOUT_FUZZ
@given(name=st.sampled_from(["pamap2", "opportunity"]), data=st.data())
def test_pamap2_and_opportunity_read_by_their_policy_or_refuse_naming_the_file(layouts, name, data):
    from fedotl.simulations.readers import load_dataset

    root, path, valid = layouts[name]
    path.write_bytes(data.draw(broken(valid)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the gap policies warn with their counts
            ds = load_dataset(name, root, cache=False)
    except DataFormatError as e:
        assert str(root) in str(e) or path.name in str(e)
        return
    finally:
        path.write_text(valid)
    for r in ds.recordings:
        assert np.isfinite(r.data).all()
