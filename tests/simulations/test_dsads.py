"""DSADS reader on synthetic files in the official layout, and on broken ones."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fedotl.simulations.dataset import DataFormatError
from fedotl.simulations.readers import dsads


def test_synthetic_folder_round_trip(synth_dsads):
    ds = dsads.read(synth_dsads)
    assert ds.subjects == ["p1", "p2", "p3", "p4"]
    assert ds.n_channels == 45 and ds.rate_hz == 25.0
    assert ds.positions == ["T", "RA", "LA", "RL", "LL"]
    assert len(ds.recordings) == 19 * 4
    assert ds.notes["n_segments"] == 19 * 4 * 6
    assert all(len(r) == 6 * 125 for r in ds.recordings)
    # Values equal what the file says (5 significant digits written).
    first = np.loadtxt(synth_dsads / "data" / "a01" / "p1" / "s02.txt", delimiter=",")
    rec = next(r for r in ds.recordings if r.subject == "p1" and r.session == "a01")
    np.testing.assert_allclose(rec.data[125:250], first, rtol=1e-6)
    assert (rec.segment[125:250] == 1).all()


def test_zip_deflate_and_lzma_and_data_folder_agree(synth_dsads, tmp_path):
    ref = dsads.read(synth_dsads, cache=False)
    for method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_LZMA):
        z = tmp_path / f"d{method}.zip"
        with zipfile.ZipFile(z, "w", compression=method) as zf:
            for f in sorted((synth_dsads / "data").rglob("*.txt")):
                zf.write(f, f.relative_to(synth_dsads).as_posix())
        got = dsads.read(z, cache=False)
        assert [r.subject for r in got.recordings] == [r.subject for r in ref.recordings]
        for a, b in zip(got.recordings, ref.recordings):
            np.testing.assert_array_equal(a.data, b.data)
    got = dsads.read(synth_dsads / "data", cache=False)
    assert got.n_samples == ref.n_samples


def test_cache_second_load_equal_and_invalidated_by_change(synth_dsads, tmp_path, monkeypatch):
    monkeypatch.setenv("FEDOTL_CACHE_DIR", str(tmp_path / "c"))
    src = tmp_path / "copy"
    shutil.copytree(synth_dsads, src)
    a = dsads.read(src)
    entries = list((tmp_path / "c").iterdir())
    assert len(entries) == 1 and (entries[0] / "meta.json").exists()
    b = dsads.read(src)
    np.testing.assert_array_equal(a.recordings[3].data, b.recordings[3].data)
    # Editing a file changes its size/mtime, so the cache must not be used.
    f = src / "data" / "a01" / "p1" / "s01.txt"
    lines = f.read_text().splitlines()
    lines[0] = ",".join(["7.5"] * 45)
    f.write_text("\n".join(lines) + "\n")
    c = dsads.read(src)
    assert c.recordings[0].data[0, 0] == pytest.approx(7.5)
    assert len(list((tmp_path / "c").iterdir())) == 2


def _one_file_set(tmp_path: Path, content: str, name: str = "a01/p1/s01.txt") -> Path:
    root = tmp_path / "ds"
    good = "\n".join([",".join(["1.0"] * 45)] * 125) + "\n"
    for n in ("a01/p1/s01.txt", "a01/p1/s02.txt"):
        f = root / "data" / n
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(good)
    f = root / "data" / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(content)
    return root


GOOD_ROW = ",".join(["1.0"] * 45)


@pytest.mark.parametrize(
    "content, needle, line",
    [
        ("\n".join([GOOD_ROW] * 10 + [",".join(["1.0"] * 44)] + [GOOD_ROW] * 114) + "\n", "expected 45 values, found 44", 11),
        ("\n".join([GOOD_ROW] * 3 + [GOOD_ROW.replace("1.0", "abc", 1)] + [GOOD_ROW] * 121) + "\n", "non-numeric value 'abc'", 4),
        ("\n".join([GOOD_ROW] * 87) + "\n", "truncated: 87 of 125 rows", 88),
        ("", "file is empty", None),
        ("\n".join([GOOD_ROW] * 23 + [GOOD_ROW.replace("1.0", "NaN", 1)] + [GOOD_ROW] * 101) + "\n", "NaN or infinite value", 24),
        ("\n".join([GOOD_ROW] * 5 + [GOOD_ROW[:-3] + "inf"] + [GOOD_ROW] * 119) + "\n", "NaN or infinite value", 6),
    ],
    ids=["column-count", "non-numeric", "truncated", "empty", "nan-cell", "inf-cell"],
)
def test_malformed_file_names_file_and_line(tmp_path, content, needle, line):
    root = _one_file_set(tmp_path, content, "a01/p1/s02.txt")
    with pytest.raises(DataFormatError) as err:
        dsads.read(root, cache=False)
    msg = str(err.value)
    assert needle in msg and "s02.txt" in msg
    assert err.value.line == line


def test_unknown_activity_code_is_named(tmp_path):
    root = _one_file_set(tmp_path, "\n".join([GOOD_ROW] * 125) + "\n", "a20/p1/s01.txt")
    with pytest.raises(DataFormatError, match=r"unknown activity code a20.*|a20/p1/s01.txt.*unknown activity"):
        dsads.read(root, cache=False)


def test_missing_segment_and_missing_folder(tmp_path):
    root = _one_file_set(tmp_path, "\n".join([GOOD_ROW] * 125) + "\n", "a01/p2/s01.txt")
    with pytest.raises(DataFormatError, match="missing segment file a01/p2/s02.txt"):
        dsads.read(root, cache=False)
    with pytest.raises(DataFormatError, match="no such file or folder"):
        dsads.read(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no DSADS activity folders"):
        dsads.read(tmp_path / "empty")


def test_corrupt_zip_member_is_named(synth_dsads, tmp_path):
    z = tmp_path / "d.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_STORED) as zf:
        for f in sorted((synth_dsads / "data" / "a01").rglob("*.txt")):
            zf.write(f, f.relative_to(synth_dsads).as_posix())
    raw = bytearray(z.read_bytes())
    at = raw.index(b"data/a01/p1/s01.txt") + 200  # inside the first member's bytes
    raw[at : at + 4] = b"\x00\xff\x00\xff"
    z.write_bytes(bytes(raw))
    with pytest.raises(DataFormatError, match="s01.txt.*(corrupt|CRC)"):
        dsads.read(z, cache=False)


def test_failed_parse_leaves_no_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDOTL_CACHE_DIR", str(tmp_path / "c"))
    root = _one_file_set(tmp_path, "1,2,3\n", "a01/p1/s02.txt")
    with pytest.raises(DataFormatError):
        dsads.read(root)
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def test_position_view_selects_nine_channels(synth_dsads):
    ds = dsads.read(synth_dsads)
    ra = ds.select_position("RA")
    assert ra.n_channels == 9 and all(c.position == "RA" for c in ra.channels)
    np.testing.assert_array_equal(ra.recordings[0].data, ds.recordings[0].data[:, 9:18])
    assert {r.position for r in ra.recordings} == {"RA"}


def test_error_from_a_parallel_worker_keeps_file_and_line(synth_dsads, tmp_path):
    # 456 members: large enough for the process pool, so the error crosses a process boundary.
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in sorted((synth_dsads / "data").rglob("*.txt")):
            text = f.read_text()
            if f.relative_to(synth_dsads).as_posix() == "data/a10/p3/s04.txt":
                lines = text.splitlines()
                lines[6] = lines[6].replace(",", ",x", 1)
                text = "\n".join(lines) + "\n"
            zf.writestr(f.relative_to(synth_dsads).as_posix(), text)
    with pytest.raises(DataFormatError) as err:
        dsads.read(z, cache=False)
    assert err.value.line == 7 and err.value.path.endswith("data/a10/p3/s04.txt")
    assert "non-numeric" in str(err.value)
