"""Fuzzing every dataset reader with hypothesis (issue #14, the data layer).

Each case starts from a tiny valid dataset that the reader's own writer produced in the
official layout (``fedotl.simulations.readers.writer``), breaks one of its files and reads
the dataset back through :func:`~fedotl.simulations.readers.load_dataset`.  The breaks:
random bytes, an empty file, a cut at any byte, bad cells (text, NaN, inf, 1e308, 1e400,
a NUL, other digits), another encoding (latin-1, UTF-16, invalid UTF-8 bytes), lines
dropped, repeated, swapped or inserted, and (with a header) a repeated column name.

The property, for every case:

* either a ``DataFormatError`` whose ``path`` is the broken file, a folder holding it or
  a member of the broken zip, whose message starts with that path, and whose line (when
  given) lies inside the broken file;
* or the dataset as the reader's documented policies make it: finite float32 channel
  values, labels that are known activity codes, a finite positive rate, and a
  ``DataWarning`` exactly when a policy changed the data (its count in ``notes``);
* and never another exception, nor any warning that is not a ``DataWarning``.

Run time is bounded by ``max_examples`` (profile ``fuzz`` below), never by a timing
assertion; ``pytest --hypothesis-show-statistics`` prints the number of cases run.
"""

from __future__ import annotations

import gzip
import io
from collections import Counter
import shutil
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from fedotl.simulations.dataset import DataFormatError, DataWarning, HARDataset
from fedotl.simulations.readers import load_dataset, writer

settings.register_profile(
    "fuzz",
    deadline=None,  # a case is a file write and a read: milliseconds, but the machine is shared
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("fuzz")
CASES: Counter[str] = Counter()  # outcomes of the cases run, reported at the end of the module


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request):
    yield
    if CASES:
        line = ", ".join(f"{k} {v}" for k, v in sorted(CASES.items()))
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():  # shown even when the tests pass
            print(f"\nfuzz cases run: {sum(CASES.values())} ({line})")

# Cells a real file breaks with.  Numbers beyond float32 (3.4e38) become inf where channels are kept.
BAD_CELLS = (
    "", " ", "NaN", "nan", "-nan", "inf", "-inf", "Infinity", "1e308", "-1e308", "1e400", "-1e400",
    "3.5e38", "1e39", "abc", "1,5", "1;5", "0x1F", "1_000", "\x00", "\uff11", "\u0661", "--1", "1e",
    "\u00e9", "\ufeff1", "99999999999999999999999", "1.5.2", '"', '"1"', "\t", "\r",
)
ENCODINGS = ("latin-1", "utf-16", "utf-16-le", "cp1252")
INVALID_UTF8 = (b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\x80", b"\xfe\xff", b"\xe9")


@dataclass
class Layout:
    """A tiny dataset in a reader's official layout, and the file the cases break."""

    reader: str
    root: Path  # what the reader is given
    target: Path  # the file a case breaks
    sep: str  # the cell separator of the target
    header: bool  # the target's first line names its columns
    gz: bool = False  # the target is gzip-compressed text
    binary: bool = False  # the target is no text at all (a zip): only its bytes are broken
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.valid = self.target.read_bytes()

    def text(self) -> str:
        return (gzip.decompress(self.valid) if self.gz else self.valid).decode("ascii")


# ---------------------------------------------------------------- mutations
@st.composite
def broken_text(draw, text: str, sep: str, header: bool) -> bytes:
    """``text`` (a valid file) broken as a real one breaks, encoded."""
    lines = text.splitlines()
    how = draw(st.sampled_from(("cells", "lines", "encoding", "invalid-utf8", "dup-column", "cut")))
    if how == "cells":
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(lines) - 1))
            cells = lines[i].split(sep)
            cells[draw(st.integers(0, len(cells) - 1))] = draw(st.sampled_from(BAD_CELLS))
            lines[i] = sep.join(cells)
    elif how == "lines":
        lines = draw(_line_edit(lines))
    elif how == "dup-column" and header:
        names = lines[0].split(sep)
        j, k = draw(st.integers(0, len(names) - 1)), draw(st.integers(0, len(names) - 1))
        names[j] = names[k]
        lines[0] = sep.join(names)
    out = "\n".join(lines) + ("\n" if draw(st.booleans()) or how != "lines" else "")
    if how == "encoding":
        i = draw(st.integers(0, len(lines) - 1))
        cells = lines[i].split(sep)
        cells[draw(st.integers(0, len(cells) - 1))] = draw(st.sampled_from(("\u00e9", "M\u00fcller", "1\u00b0", "\u00b5")))
        lines[i] = sep.join(cells)
        return ("\n".join(lines) + "\n").encode(draw(st.sampled_from(ENCODINGS)))
    data = out.encode("utf-8")
    if how == "invalid-utf8":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(INVALID_UTF8)) + data[at:]
    if how == "cut" or draw(st.integers(0, 4)) == 0:  # a cut also ends a fifth of the others
        data = data[: draw(st.integers(0, len(data)))]
    return data


@st.composite
def _line_edit(draw, lines: list[str]) -> list[str]:
    lines = list(lines)
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    edit = draw(st.sampled_from(("drop", "repeat", "swap", "reverse", "blank", "garbage", "keep-header")))
    if edit == "drop":
        del lines[i]
    elif edit == "repeat":
        lines.insert(i, lines[j])
    elif edit == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif edit == "reverse":
        lines.reverse()
    elif edit == "blank":
        lines.insert(i, draw(st.sampled_from(("", " ", "\t", ","))))
    elif edit == "garbage":
        lines.insert(i, draw(st.text(max_size=40)))
    else:
        lines = lines[:1]
    return lines


@st.composite
def broken(draw, layout: Layout) -> bytes:
    """The bytes a case writes over the layout's target file."""
    how = draw(st.sampled_from(("bytes", "empty", "raw-cut") if layout.binary else ("text", "text", "text", "bytes", "empty", "raw-cut")))
    if how == "bytes":
        return draw(st.binary(max_size=300))
    if how == "empty":
        return draw(st.sampled_from((b"", b"\n", b" \n\n", b"\x00")))
    if how == "raw-cut":  # a cut of the file as it is on disk (inside the gzip stream too)
        return layout.valid[: draw(st.integers(0, len(layout.valid) - 1))]
    data = draw(broken_text(layout.text(), layout.sep, layout.header))
    return gzip.compress(data) if layout.gz else data


# ---------------------------------------------------------------- the property
# notes counting a policy that changed the data: when one is non-zero, the reader warned
POLICY_NOTES = {
    "generic": ("interpolated_values",),
    "pamap2": ("pamap2_rows_dropped_long_gaps", "pamap2_files_without_heart_rate"),
    "opportunity": ("opportunity_all_nan_channels",),
    "dsads": (),
}


def read_broken(layout: Layout, data: bytes, options: dict) -> str:
    """Write ``data`` over the target, read the dataset, check the property; "refused" or "read"."""
    layout.target.write_bytes(data)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ds = load_dataset(layout.reader, layout.root, cache=False, **options)
            except DataFormatError as e:
                assert_names_the_file(e, layout, data)
                outcome = "refused"
            else:
                assert_clean(ds)
                warned = any(issubclass(w.category, DataWarning) for w in caught)
                assert warned == any(ds.notes.get(k) for k in POLICY_NOTES[layout.reader]), [str(w.message) for w in caught]
                outcome = "read"
    finally:
        layout.target.write_bytes(layout.valid)
    stray = [f"{w.category.__name__}: {w.message}" for w in caught if not issubclass(w.category, DataWarning)]
    assert not stray, stray
    if currently_in_test_context():
        event(f"{layout.reader}: {outcome}")
        CASES[f"{layout.reader}: {outcome}"] += 1
    return outcome


def assert_names_the_file(e: DataFormatError, layout: Layout, data: bytes) -> None:
    assert e.path is not None, f"no file named: {e}"
    assert str(e).startswith(e.path), e
    target = str(layout.target)
    member = e.path.startswith(f"{target}:")  # a zip member: path is "<zip>:<member>"
    folder = target.startswith(e.path.rstrip("/") + "/")
    # a mismatch between two files (two CSVs, a data file and its legend) names the broken one in the message
    assert e.path == target or member or folder or target in str(e), f"{e.path!r} is not {target!r}: {e}"
    if e.line is not None and e.path == target and not layout.gz:
        lines = data.count(b"\n") + data.count(b"\r") + 1
        assert 1 <= e.line <= lines + 1, e  # + 1: "no data rows after the header" is the line after the last


def assert_clean(ds: HARDataset) -> None:
    assert np.isfinite(ds.rate_hz) and ds.rate_hz > 0
    for r in ds.recordings:
        assert r.data.dtype == np.float32 and r.data.shape == (len(r.labels), ds.n_channels) and len(r) > 0
        assert np.isfinite(r.data).all(), "a non-finite value reached a recording"
        assert set(np.unique(r.labels).tolist()) <= set(ds.activities), "a label code without an activity"


# ---------------------------------------------------------------- the layouts
def _generic(root: Path, gz: bool) -> Layout:
    files = writer("generic")(root, n_subjects=1 if gz else 2, rate_hz=10.0, bout_s=0.5, positions=("wrist",),
                              activities=("sit", "walk"), gzip_files=gz)
    return Layout("generic", root, files[0], ",", header=True, gz=gz)


def _dsads(root: Path, as_zip: bool) -> Layout:
    # The writer writes all 19 activities; two keep a case at milliseconds.
    files = writer("dsads")(root, n_subjects=1, n_segments=1, as_zip=as_zip)
    keep = ("data/a01/", "data/a02/")
    if as_zip:
        with zipfile.ZipFile(files[0]) as zf:
            members = {n: zf.read(n) for n in zf.namelist() if n.startswith(keep)}
        with zipfile.ZipFile(files[0], "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, content in members.items():
                zf.writestr(name, content)
        return Layout("dsads", files[0], files[0], ",", header=False, binary=True)
    for folder in (root / "data").iterdir():
        if f"data/{folder.name}/" not in keep:
            shutil.rmtree(folder)
    return Layout("dsads", root, root / "data" / "a01" / "p1" / "s01.txt", ",", header=False)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Layout]:
    def root(name: str) -> Path:
        return tmp_path_factory.mktemp(name)

    pamap2 = writer("pamap2")(root("pamap2"), n_subjects=1, bout_s=0.5, activities=(1, 4), optional=False, long_gaps=0)
    opp_root = root("opportunity")
    opp = writer("opportunity")(opp_root, n_subjects=1, sessions=("ADL1",), session_s=4.0)
    by_name = {p.name: p for p in opp}
    return {
        "generic": _generic(root("generic"), gz=False),
        "generic-gz": _generic(root("generic_gz"), gz=True),
        "dsads": _dsads(root("dsads"), as_zip=False),
        "dsads-zip": _dsads(root("dsads_zip"), as_zip=True),
        "pamap2": Layout("pamap2", pamap2[0].parents[2], pamap2[0], " ", header=False),
        "opportunity": Layout("opportunity", opp_root, by_name["S1-ADL1.dat"], " ", header=False),
        "opportunity-columns": Layout("opportunity", opp_root, by_name["column_names.txt"], " ", header=False),
        "opportunity-legend": Layout("opportunity", opp_root, by_name["label_legend.txt"], "   -   ", header=False),
    }


@pytest.mark.parametrize("name", ["generic", "generic-gz", "dsads", "dsads-zip", "pamap2", "opportunity"])
def test_each_unbroken_layout_reads_cleanly(layouts, name):
    # The fuzz cases start from these files: they must read, or every case would be a refusal.
    layout = layouts[name]
    assert read_broken(layout, layout.valid, layout.options) == "read"
    assert len(load_dataset(layout.reader, layout.root, cache=False).recordings) > 0


# ---------------------------------------------------------------- the fuzz tests
@settings(FUZZ, max_examples=2000)
@given(data=st.data(), gz=st.booleans(), rate=st.sampled_from([None, 10.0]))
def test_generic_csv_reads_by_its_policy_or_names_the_file(layouts, data, gz, rate):
    layout = layouts["generic-gz" if gz else "generic"]
    read_broken(layout, data.draw(broken(layout)), {} if rate is None else {"rate_hz": rate})


@settings(FUZZ, max_examples=600)
@given(data=st.data(), as_zip=st.booleans())
def test_dsads_reads_whole_or_names_the_file(layouts, data, as_zip):
    layout = layouts["dsads-zip" if as_zip else "dsads"]
    read_broken(layout, data.draw(_zip_case(layout) if as_zip else broken(layout)), {})


@st.composite
def _zip_case(draw, layout: Layout) -> bytes:
    """The DSADS zip with its bytes broken, or with one member's text broken and re-zipped."""
    if draw(st.booleans()):
        return draw(broken(layout))
    with zipfile.ZipFile(io.BytesIO(layout.valid)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    name = draw(st.sampled_from(sorted(members)))
    members[name] = draw(broken_text(members[name].decode("ascii"), ",", header=False))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=draw(st.sampled_from((zipfile.ZIP_DEFLATED, zipfile.ZIP_LZMA, zipfile.ZIP_STORED)))) as zf:
        for n, content in members.items():
            zf.writestr(n, content)
    return buf.getvalue()


@settings(FUZZ, max_examples=1000)
@given(
    data=st.data(),
    options=st.fixed_dictionaries({
        "heart_rate": st.booleans(), "temperature": st.booleans(), "acc6": st.booleans(),
        "keep_null": st.booleans(), "max_gap_s": st.sampled_from([0.0, 0.1, 1.0]),
    }),
)
def test_pamap2_reads_by_its_policies_or_names_the_file(layouts, data, options):
    layout = layouts["pamap2"]
    read_broken(layout, data.draw(broken(layout)), options)


@settings(FUZZ, max_examples=1000)
@given(
    data=st.data(),
    which=st.sampled_from(["opportunity", "opportunity", "opportunity-columns", "opportunity-legend"]),
    options=st.fixed_dictionaries({
        "label_track": st.sampled_from(["locomotion", "gesture"]), "channels": st.sampled_from(["body113", "imu", "all"]),
        "keep_null": st.booleans(), "si_units": st.booleans(),
    }),
)
def test_opportunity_reads_by_its_policies_or_names_the_file(layouts, data, which, options):
    layout = layouts[which]
    read_broken(layout, data.draw(broken(layout)), options)
