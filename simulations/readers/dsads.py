"""DSADS: UCI "Daily and Sports Activities" (Altun & Barshan), official layout.

Layout: ``data/aXX/pY/sZZ.txt`` for activity ``a01``–``a19``, subject
``p1``–``p8`` and segment ``s01``–``s60``.  Each file is a 5-second segment:
125 rows × 45 comma-separated values at 25 Hz, no header.  The 60 segments of
one (activity, subject) are consecutive pieces of one 5-minute recording, so
this reader joins them into one :class:`Recording` per (subject, activity)
and keeps each row's segment index in ``Recording.segment``.

Columns: five units (T, RA, LA, RL, LL) × (acc xyz m/s², gyro xyz rad/s,
magnetometer xyz, unitless as distributed).

PATH may be the zip as distributed (deflate) or re-packed (LZMA), the
extracted top folder (holding ``data/``), or the ``data`` folder itself.

Speed: the zip's members are decompressed straight from their raw bytes
(skipping zipfile's 4 kB read loop) in a process pool, and each worker
parses its chunk as one text block with ``np.loadtxt``.  Only when that fails does the
reader go file by file, to name the offending file and line.

Bad input raises :class:`~fedotl.simulations.dataset.DataFormatError` naming the
file (``<zip>:<member>`` inside a zip) and the line: a missing or corrupt zip or
member, a missing segment file, a wrong number of rows or values, a non-numeric
value, and NaN, ``inf`` or a value beyond float32's range (``1e308``): DSADS has no
missing values, so there is no interpolation policy.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import struct
import zipfile
import zlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedotl.simulations.cache import load_or_build
from fedotl.simulations.dataset import Channel, DataFormatError, HARDataset, Recording
from fedotl.simulations.progress import progress
from fedotl.simulations.readers._text import out_of_range

RATE_HZ = 25.0
ROWS_PER_SEGMENT = 125
POSITIONS = ("T", "RA", "LA", "RL", "LL")
ACTIVITIES = {
    1: "sitting",
    2: "standing",
    3: "lying on back",
    4: "lying on right side",
    5: "ascending stairs",
    6: "descending stairs",
    7: "standing in an elevator",
    8: "moving around in an elevator",
    9: "walking in a parking lot",
    10: "walking on a treadmill 4 km/h flat",
    11: "walking on a treadmill 4 km/h inclined",
    12: "running on a treadmill 8 km/h",
    13: "exercising on a stepper",
    14: "exercising on a cross trainer",
    15: "cycling on an exercise bike horizontal",
    16: "cycling on an exercise bike vertical",
    17: "rowing",
    18: "jumping",
    19: "playing basketball",
}
_SENSORS = (("acc", "m/s^2"), ("gyro", "rad/s"), ("mag", "a.u."))
CHANNELS = [
    Channel(name=f"{p}_{s}_{ax}", unit=u, position=p, sensor=s, axis=ax)
    for p in POSITIONS
    for s, u in _SENSORS
    for ax in "xyz"
]
N_COLUMNS = len(CHANNELS)  # 45
_MEMBER = re.compile(r"(?:^|/)a(\d\d)/p(\d+)/s(\d\d)\.txt$")


def read(path: str | Path, *, cache: bool = True) -> HARDataset:
    """Read DSADS from its zip or folder; see the module docstring."""
    src = _resolve(Path(path))
    files = [src] if src.is_file() else sorted(src.rglob("*.txt"))
    if not cache:
        return _parse(src)
    return load_or_build("dsads", files, {}, lambda: _parse(src))


def _resolve(p: Path) -> Path:
    if not p.exists():
        raise DataFormatError("no such file or folder (expected the DSADS zip or its folder)", path=str(p))
    if p.is_file():
        if not zipfile.is_zipfile(p):
            raise DataFormatError("not a zip archive (expected the DSADS zip or its folder)", path=str(p))
        return p
    for cand in (p / "data", p):
        if any(cand.glob("a[0-9][0-9]")):
            return cand
    raise DataFormatError("no DSADS activity folders (data/aXX/pY/sZZ.txt) found", path=str(p))


# ---------------------------------------------------------------- listing
def _index(names: list[str], where: str) -> dict[tuple[int, int, int], str]:
    """Map (activity, subject, segment) to member name; validate codes and gaps."""
    index: dict[tuple[int, int, int], str] = {}
    for n in names:
        m = _MEMBER.search(n)
        if m is None:
            continue
        a, p, s = (int(g) for g in m.groups())
        if a not in ACTIVITIES:
            raise DataFormatError(f"unknown activity code a{a:02d} (DSADS has a01-a19)", path=f"{where}:{n}")
        if s < 1:
            raise DataFormatError("segment numbers start at s01", path=f"{where}:{n}")
        index[(a, p, s)] = n
    if not index:
        raise DataFormatError("no DSADS segment files (aXX/pY/sZZ.txt) found", path=where)
    # Segments of one (activity, subject) must be s01..sN without holes, and
    # every (activity, subject) present must have the same N.
    per_pair: dict[tuple[int, int], list[int]] = {}
    for a, p, s in index:
        per_pair.setdefault((a, p), []).append(s)
    n_seg = max(len(v) for v in per_pair.values())
    activities = sorted({a for a, _ in per_pair})
    subjects = sorted({p for _, p in per_pair})
    for a in activities:
        for p in subjects:
            have = set(per_pair.get((a, p), []))
            for s in range(1, n_seg + 1):
                if s not in have:
                    missing = f"a{a:02d}/p{p}/s{s:02d}.txt"
                    raise DataFormatError(f"missing segment file {missing}", path=where)
    return index


# ---------------------------------------------------------------- decoding
@dataclass(frozen=True)
class _Member:
    """What a worker needs to decode one zip member without re-reading the directory."""

    name: str
    offset: int
    method: int
    compressed: int
    size: int
    crc: int

    @classmethod
    def of(cls, info: zipfile.ZipInfo) -> "_Member":
        return cls(info.filename, info.header_offset, info.compress_type, info.compress_size, info.file_size, info.CRC)


def _read_member(fd: int, m: _Member, where: str) -> bytes:
    """Decode one member from its raw bytes (zipfile reads LZMA in 4 kB steps)."""
    try:
        header = os.pread(fd, 30, m.offset)
        if header[:4] != b"PK\x03\x04":
            raise DataFormatError("corrupt zip local header", path=where)
        n_name, n_extra = struct.unpack("<HH", header[26:30])
        blob = os.pread(fd, m.compressed, m.offset + 30 + n_name + n_extra)
        if m.method == zipfile.ZIP_LZMA:
            (psize,) = struct.unpack("<H", blob[2:4])
            filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, blob[4 : 4 + psize])
            dec = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
            out = dec.decompress(blob[4 + psize :], max_length=m.size)
        elif m.method == zipfile.ZIP_DEFLATED:
            out = zlib.decompress(blob, -15)
        elif m.method == zipfile.ZIP_STORED:
            out = blob
        else:
            raise DataFormatError(f"unsupported zip compression method {m.method}", path=where)
    except (lzma.LZMAError, zlib.error, struct.error, OSError) as exc:
        raise DataFormatError(f"cannot decompress member: {exc}", path=where) from None
    if len(out) != m.size or zlib.crc32(out) != m.crc:
        raise DataFormatError("member is truncated or corrupt (size/CRC mismatch)", path=where)
    return out


# ---------------------------------------------------------------- parsing
def _parse_block(contents: list[bytes], labels: list[str]) -> np.ndarray:
    """Parse many segment files at once into (n_files, 125, 45) float32."""
    rows = ROWS_PER_SEGMENT
    ok = all(c.count(b"\n") == rows and c.endswith(b"\n") for c in contents)
    if ok:
        try:
            arr = np.loadtxt(io.BytesIO(b"".join(contents)), delimiter=",", dtype=np.float32, ndmin=2)
            # loadtxt reads "nan" and "inf" as numbers: those blocks take the slow path, which names the file and line
            if arr.shape == (rows * len(contents), N_COLUMNS) and np.isfinite(arr).all():
                return arr.reshape(len(contents), rows, N_COLUMNS)
        except ValueError:
            pass
    # Slow path, only on bad input: find the first offending file and line.
    out = np.empty((len(contents), rows, N_COLUMNS), dtype=np.float32)
    for i, (c, name) in enumerate(zip(contents, labels)):
        out[i] = parse_segment(c, name)
    return out


def parse_segment(content: bytes, name: str) -> np.ndarray:
    """Parse one segment file strictly, raising DataFormatError with its line."""
    if not content.strip():
        raise DataFormatError("file is empty", path=name)
    lines = content.decode("ascii", errors="replace").splitlines()
    out = np.empty((ROWS_PER_SEGMENT, N_COLUMNS), dtype=np.float64)  # float64 first: 1e308 must not become inf unnoticed
    for i, line in enumerate(lines, start=1):
        cells = line.split(",")
        if len(cells) != N_COLUMNS:
            raise DataFormatError(f"expected {N_COLUMNS} values, found {len(cells)}", path=name, line=i)
        if i > ROWS_PER_SEGMENT:
            raise DataFormatError(f"more than {ROWS_PER_SEGMENT} rows", path=name, line=i)
        try:
            out[i - 1] = [float(c) for c in cells]
        except ValueError:
            bad = next(c for c in cells if not _is_float(c))
            raise DataFormatError(f"non-numeric value {bad.strip()!r}", path=name, line=i) from None
    if len(lines) < ROWS_PER_SEGMENT:
        raise DataFormatError(
            f"truncated: {len(lines)} of {ROWS_PER_SEGMENT} rows", path=name, line=len(lines) + 1
        )
    bad = np.isnan(out) | out_of_range(out)
    if bad.any():
        r, c = (int(v[0]) for v in np.nonzero(bad))
        raise DataFormatError(
            f"NaN or infinite value {out[r, c]:g} in column {c + 1} (beyond float32's range counts; DSADS has no missing values)",
            path=name, line=r + 1,
        )
    return out.astype(np.float32)


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _parse(src: Path) -> HARDataset:
    if src.is_file():
        try:
            with zipfile.ZipFile(src) as zf:
                infos = {i.filename: i for i in zf.infolist()}
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataFormatError(f"cannot open zip: {exc}", path=str(src)) from None
        index = _index(list(infos), str(src))
        keys = sorted(index)
        items: list = [_Member.of(infos[index[k]]) for k in keys]
    else:
        index = _index([p.relative_to(src).as_posix() for p in src.rglob("*.txt")], str(src))
        keys = sorted(index)
        items = [index[k] for k in keys]
    # Decompression and parsing are CPU-bound and np.loadtxt holds the GIL,
    # so contiguous chunks go to a process pool.
    workers = max(1, min(os.cpu_count() or 1, 4))
    n_tasks = 4 * workers
    step = -(-len(items) // n_tasks)
    chunks = [items[i : i + step] for i in range(0, len(items), step)]
    if workers == 1 or len(items) < 400:
        parts = [_load_chunk(str(src), c) for c in chunks]
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_load_chunk, str(src), c) for c in chunks]
            for _ in progress(as_completed(futures), total=len(futures), desc="parsing DSADS", unit="chunk"):
                pass
            parts = [f.result() for f in futures]
    return _assemble(keys, np.concatenate(parts), str(src))


def _load_chunk(src: str, items: list) -> np.ndarray:
    """Read and parse zip members or files of a folder (runs in a worker)."""
    path = Path(src)
    if path.is_file():
        labels = [f"{src}:{m.name}" for m in items]
        fd = os.open(path, os.O_RDONLY)
        try:
            contents = [_read_member(fd, m, lab) for m, lab in zip(items, labels)]
        finally:
            os.close(fd)
    else:
        labels = [str(path / m) for m in items]
        contents = [(path / m).read_bytes() for m in items]
    return _parse_block(contents, labels)


def _assemble(keys: list[tuple[int, int, int]], segs: np.ndarray, source: str) -> HARDataset:
    recs: list[Recording] = []
    i = 0
    n = len(keys)
    while i < n:
        a, p, _ = keys[i]
        j = i
        while j < n and keys[j][:2] == (a, p):
            j += 1
        data = segs[i:j].reshape(-1, N_COLUMNS)
        seg_ids = np.repeat(np.arange(j - i, dtype=np.int32), ROWS_PER_SEGMENT)
        recs.append(
            Recording(
                subject=f"p{p}",
                data=data,
                labels=np.full(len(data), a, dtype=np.int64),
                session=f"a{a:02d}",
                segment=seg_ids,
            )
        )
        i = j
    recs.sort(key=lambda r: (int(r.subject[1:]), r.session))
    return HARDataset(
        name="dsads",
        rate_hz=RATE_HZ,
        channels=list(CHANNELS),
        activities=dict(ACTIVITIES),
        recordings=recs,
        source=source,
        notes={"n_segments": n, "segment_rows": ROWS_PER_SEGMENT},
    )


# ---------------------------------------------------------------- synthetic
def write_synthetic(
    out: str | Path,
    n_subjects: int = 8,
    seed: int = 0,
    *,
    n_segments: int = 12,
    as_zip: bool = False,
) -> list[Path]:
    """Write synthetic DSADS in the official layout under ``out``.

    Produces ``out/data/aXX/pY/sZZ.txt`` (or ``out/dsads_synthetic.zip`` with
    ``as_zip``) for all 19 activities, ``n_subjects`` subjects and
    ``n_segments`` consecutive 5-second segments each.
    """
    from fedotl.simulations.synthetic import SyntheticHAR, format_rows

    if not 1 <= n_subjects <= 99:
        raise ValueError(f"n_subjects must be in 1..99, got {n_subjects}")
    out = Path(out)
    gen = SyntheticHAR(n_activities=len(ACTIVITIES), positions=list(POSITIONS), seed=seed)
    n = n_segments * ROWS_PER_SEGMENT
    files: dict[str, bytes] = {}
    for a in ACTIVITIES:
        for p in range(1, n_subjects + 1):
            x = np.concatenate([gen.signal(p - 1, a - 1, pos, n, RATE_HZ) for pos in POSITIONS], axis=1)
            for s in range(n_segments):
                rows = x[s * ROWS_PER_SEGMENT : (s + 1) * ROWS_PER_SEGMENT]
                files[f"data/a{a:02d}/p{p}/s{s + 1:02d}.txt"] = format_rows(rows, ",").encode()
    if as_zip:
        target = out / "dsads_synthetic.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, content in files.items():
                zf.writestr(name, content)
        return [target]
    written = []
    for name, content in files.items():
        f = out / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(content)
        written.append(f)
    return written
