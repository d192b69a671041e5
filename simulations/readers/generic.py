"""Generic CSV: a simple format for users' own recordings.

Files are ``.csv`` or ``.csv.gz`` with a header row.  PATH is one file or a
folder of them (read in name order).

Columns (a header row names them; every name once, none empty):

* ``subject`` (required): any text, e.g. ``u01``; never empty.
* ``label`` (required): an activity name or integer code; never empty.  Integer
  labels keep their codes; text labels get codes 0..K-1 in sorted order.
* ``timestamp`` (optional): seconds.  It must increase within each
  (subject, position) stream; a jump of more than twice the sampling period
  starts a new recording.
* ``position`` (optional): body position of the device that produced the row.
  Rows of one subject at different positions are separate streams.
* every other column whose first non-empty value is numeric is a sensor
  channel (at least one is required); a column whose first non-empty value is
  text, or that holds no value at all, is ignored and listed in the summary.
  Triples named ``<sensor>_x``, ``_y``, ``_z`` are recognised as one sensor.

Rows are in time order within each (subject, position) stream; blank lines are
skipped.  The rate is ``rate_hz`` when given (``--rate`` on the CLI), else
derived from the timestamps (median step).

Missing values: empty cells or ``NaN`` in a channel are linearly interpolated
within their recording, with a :class:`~fedotl.simulations.dataset.DataWarning`
giving the count; a channel with no value at all in a recording is an error.

Errors (:class:`~fedotl.simulations.dataset.DataFormatError`, naming the file and
the line, and the column where there is one): a file that is not UTF-8 text or
not a readable ``.gz``; a header with a repeated or an empty column name, or
without ``subject`` and ``label``; a row with the wrong number of fields; an
empty subject or label; a text cell in a channel or timestamp column; an
infinite value (``inf``, or a number beyond float32's range, such as ``1e308``);
timestamps that do not increase; an integer label beyond ±2**62.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import warnings
import zlib
from pathlib import Path

import numpy as np

from fedotl.simulations.cache import load_or_build
from fedotl.simulations.dataset import Channel, DataFormatError, DataWarning, HARDataset, Recording
from fedotl.simulations.readers._text import out_of_range

RESERVED = ("subject", "label", "timestamp", "position")
_AXIS = re.compile(r"^(.*?)[_\-. ]?([xyzXYZ])$")


def read(path: str | Path, *, rate_hz: float | None = None, cache: bool = True) -> HARDataset:
    """Read one CSV file or a folder of them; see the module docstring."""
    if rate_hz is not None and not (np.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate must be a positive number of Hz, got {rate_hz}")
    files = _files(Path(path))
    build = lambda: _parse(files, rate_hz, str(path))  # noqa: E731
    ds = load_or_build("generic", files, {"rate_hz": rate_hz}, build) if cache else build()
    n = int(ds.notes.get("interpolated_values", 0))
    if n:  # also on a cache hit: the policy still applied
        warnings.warn(f"{path}: interpolated {n} missing channel values", DataWarning, stacklevel=2)
    return ds


def _files(p: Path) -> list[Path]:
    if not p.exists():
        raise DataFormatError("no such file or folder", path=str(p))
    if p.is_file():
        return [p]
    files = sorted(f for f in p.iterdir() if f.name.endswith((".csv", ".csv.gz")))
    if not files:
        raise DataFormatError("folder holds no .csv or .csv.gz files", path=str(p))
    return files


def _open_text(f: Path) -> str:
    try:
        raw = f.read_bytes()
        if f.name.endswith(".gz"):
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataFormatError(f"cannot read: {exc}", path=str(f)) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFormatError(f"not UTF-8 text (byte {raw[exc.start]:#04x}): save the file as UTF-8", path=str(f), line=line) from None


def _rows(f: Path) -> tuple[list[list[str]], list[int]]:
    """The CSV rows of ``f`` without blank ones, and the physical line each starts on."""
    reader = csv.reader(io.StringIO(_open_text(f), newline=""))  # newline="": csv splits lines itself
    rows: list[list[str]] = []
    lines: list[int] = []
    end = 0  # the last line of the previous row (a quoted field may span lines)
    try:
        for row in reader:
            start, end = end + 1, reader.line_num
            if len(row) > 1 or (row and row[0].strip()):  # a blank line is skipped
                rows.append(row)
                lines.append(start)
    except csv.Error as exc:  # e.g. a field beyond csv's size limit
        raise DataFormatError(f"not a CSV row: {exc}", path=str(f), line=end + 1) from None
    while rows and not any(c.strip() for c in rows[-1]):  # trailing rows of empty cells (",,,")
        rows.pop()
        lines.pop()
    return rows, lines


class _Table:
    """One parsed file: header, string columns and float channel columns."""

    def __init__(self, f: Path):
        self.path = f
        rows, lines = _rows(f)
        if not rows:
            raise DataFormatError("file is empty (a header row is required)", path=str(f))
        header = [h.strip() for h in rows[0]]
        self._check_header(header)
        body = rows[1:]
        if not body:
            raise DataFormatError("no data rows after the header", path=str(f), line=2)
        self.lines = lines[1:]  # body row i starts on line self.lines[i]
        n = len(header)
        for i, r in enumerate(body):
            if len(r) != n:
                raise DataFormatError(f"expected {n} columns, found {len(r)}", path=str(f), line=self.lines[i])
        cols = list(zip(*body))
        self.header = header
        self.n = len(body)
        self.str_cols = {c: np.array(cols[header.index(c)]) for c in ("subject", "label", "position") if c in header}
        for c in ("subject", "label"):
            self._require_text(c)
        self.timestamp = (
            self._numeric(cols[header.index("timestamp")], "timestamp") if "timestamp" in header else None
        )
        self.channels: dict[str, np.ndarray] = {}
        self.ignored: list[str] = []
        for j, name in enumerate(header):
            if name in RESERVED:
                continue
            first = next((v for v in cols[j] if v.strip()), "")  # an empty first cell is a missing value
            if _is_number(first):
                self.channels[name] = self._numeric(cols[j], name)
            else:
                self.ignored.append(name)
        if not self.channels:
            raise DataFormatError(
                f"no sensor channel column (a column whose first non-empty value is a number); header is {header}", path=str(f), line=1
            )

    def _check_header(self, header: list[str]) -> None:
        f = str(self.path)
        unnamed = [j + 1 for j, h in enumerate(header) if not h]
        if unnamed:
            raise DataFormatError(f"column {unnamed[0]} of {len(header)} has no name in the header", path=f, line=1)
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:  # which of the two would be the channel is a guess: refuse it
            raise DataFormatError(f"column(s) {repeated} appear more than once in the header", path=f, line=1)
        missing = [c for c in ("subject", "label") if c not in header]
        if missing:
            raise DataFormatError(f"missing required column(s) {missing}; header is {header}", path=f, line=1)

    def line(self, row: int) -> int:
        """The file line of body row ``row`` (0-based)."""
        return self.lines[int(row)]

    def _require_text(self, column: str) -> None:
        empty = np.flatnonzero(np.char.strip(self.str_cols[column].astype(str)) == "")
        if empty.size:
            raise DataFormatError(f"empty {column}", path=str(self.path), line=self.line(empty[0]))

    def _numeric(self, col: tuple[str, ...], name: str) -> np.ndarray:
        arr = np.array(col, dtype=object)
        arr[np.char.strip(arr.astype(str)) == ""] = "nan"
        try:
            values = arr.astype(np.float64)
        except ValueError:
            for i, v in enumerate(col):
                if v.strip() and not _is_number(v):
                    raise DataFormatError(f"non-numeric value {v!r} in column {name!r}", path=str(self.path), line=self.line(i)) from None
            raise
        # NaN is a missing value (interpolated); inf, or a value beyond float32 (what channels are kept as), is a broken one
        broken = np.flatnonzero(out_of_range(values))
        if broken.size:
            i = int(broken[0])
            raise DataFormatError(f"infinite or out-of-range value {col[i]!r} in column {name!r}", path=str(self.path), line=self.line(i))
        return values


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _parse(files: list[Path], rate_hz: float | None, source: str) -> HARDataset:
    tables = [_Table(f) for f in files]
    names = list(tables[0].channels)
    for t in tables[1:]:
        if list(t.channels) != names:
            raise DataFormatError(f"channel columns {list(t.channels)} differ from {names} in {tables[0].path}", path=str(t.path), line=1)
    activities, code_of = _label_codes(tables)
    rate = rate_hz if rate_hz is not None else _rate_from_timestamps(tables)
    recs: list[Recording] = []
    n_interp = 0
    for t in tables:
        data = np.column_stack([t.channels[c] for c in names]).astype(np.float64)
        labels = np.array([code_of[v] for v in t.str_cols["label"]], dtype=np.int64)
        for s, p, rows in _streams(t):
            for run in _runs(t, rows, rate):
                x = data[run]
                n_interp += int(np.isnan(x).sum())
                x = _interpolate(x, t, run, names)
                ts = t.timestamp[run[0]] if t.timestamp is not None else 0.0
                recs.append(Recording(subject=s, data=x.astype(np.float32), labels=labels[run], position=p, t0=float(ts), session=t.path.name))
    notes = {"interpolated_values": n_interp}
    ignored = sorted({c for t in tables for c in t.ignored})
    if ignored:
        notes["ignored_columns"] = ignored
    return HARDataset(
        name="generic",
        rate_hz=float(rate),
        channels=_channels(names),
        activities=activities,
        recordings=recs,
        source=source,
        notes=notes,
    )


def _streams(t: _Table) -> list[tuple[str, str, np.ndarray]]:
    """(subject, position, rows) of each stream of a file, in first-seen order."""
    subj, si = np.unique(t.str_cols["subject"], return_inverse=True)
    pos, pi = np.unique(t.str_cols.get("position", np.full(t.n, "")), return_inverse=True)
    key = si * len(pos) + pi  # one integer per (subject, position): any text is safe
    _, first = np.unique(key, return_index=True)
    return [(str(subj[si[i]]), str(pos[pi[i]]), np.flatnonzero(key == key[i])) for i in np.sort(first)]


# Integer labels keep their codes, which are stored as int64.
_MAX_CODE = 2**62


def _label_codes(tables: list[_Table]) -> tuple[dict[int, str], dict[str, int]]:
    values = sorted({v.strip() for t in tables for v in t.str_cols["label"].tolist()})
    if all(re.fullmatch(r"[+-]?\d+", v) for v in values):
        for v in values:
            if abs(int(v)) >= _MAX_CODE:
                t, row = next((t, i) for t in tables for i, u in enumerate(t.str_cols["label"].tolist()) if u.strip() == v)
                raise DataFormatError(f"integer label {v} is out of range", path=str(t.path), line=t.line(row))
        code_of = {v: int(v) for v in values}
        activities = {int(v): v for v in values}
    else:
        code_of = {v: i for i, v in enumerate(values)}
        activities = {i: v for i, v in enumerate(values)}
    # Map the raw (unstripped) strings too, so lookups need no per-row strip.
    for t in tables:
        for v in set(t.str_cols["label"].tolist()):
            code_of[v] = code_of[v.strip()]
    return activities, code_of


def _rate_from_timestamps(tables: list[_Table]) -> float:
    steps = []
    for t in tables:
        if t.timestamp is None:
            raise DataFormatError("no timestamp column: pass the sampling rate (--rate HZ)", path=str(t.path), line=1)
        subj = t.str_cols["subject"]
        for s in np.unique(subj):
            ts = t.timestamp[subj == s]
            d = np.diff(ts)
            steps.append(d[np.isfinite(d) & (d > 0)])
    allsteps = np.concatenate(steps) if steps else np.array([])
    if allsteps.size == 0:
        raise DataFormatError("cannot derive a rate from the timestamps: pass --rate HZ", path=str(tables[0].path))
    step = float(np.median(allsteps))
    with np.errstate(over="ignore"):
        rate = float(np.round(1.0 / np.float64(step), 6))
    if not (np.isfinite(rate) and rate > 0):  # a step of 1e-320 s or of months
        raise DataFormatError(f"the timestamps' median step ({step:g} s) gives no usable rate: pass --rate HZ", path=str(tables[0].path))
    return rate


def _runs(t: _Table, rows: np.ndarray, rate: float) -> list[np.ndarray]:
    """Split a stream's rows into contiguous recordings at timestamp gaps."""
    if t.timestamp is None:
        return [rows]
    ts = t.timestamp[rows]
    if not np.isfinite(ts).all():
        bad = rows[np.flatnonzero(~np.isfinite(ts))[0]]
        raise DataFormatError("missing timestamp", path=str(t.path), line=t.line(bad))
    d = np.diff(ts)
    if (d <= 0).any():
        bad = rows[np.flatnonzero(d <= 0)[0] + 1]
        raise DataFormatError("timestamps must increase within a subject", path=str(t.path), line=t.line(bad))
    cut = np.flatnonzero(d > 2.0 / rate) + 1
    return np.split(rows, cut)


def _interpolate(x: np.ndarray, t: _Table, run: np.ndarray, names: list[str]) -> np.ndarray:
    bad = np.isnan(x)
    if not bad.any():
        return x
    x = x.copy()
    idx = np.arange(len(x))
    for j in np.flatnonzero(bad.any(axis=0)):
        ok = ~bad[:, j]
        if not ok.any():
            raise DataFormatError(
                f"channel {names[j]!r} has no value in the recording that starts here (nothing to interpolate from)",
                path=str(t.path), line=t.line(run[0]),
            )
        x[bad[:, j], j] = np.interp(idx[bad[:, j]], idx[ok], x[ok, j])
    return x


def _channels(names: list[str]) -> list[Channel]:
    out = []
    for n in names:
        m = _AXIS.match(n)
        if m and m.group(1):
            out.append(Channel(name=n, sensor=m.group(1), axis=m.group(2).lower()))
        else:
            out.append(Channel(name=n))
    # An axis only counts when its sensor has all three.
    full = {s for s in {c.sensor for c in out if c.sensor} if sorted(c.axis for c in out if c.sensor == s) == ["x", "y", "z"]}
    return [c if c.sensor in full else Channel(name=c.name) for c in out]


# ---------------------------------------------------------------- synthetic
def write_synthetic(
    out: str | Path,
    n_subjects: int = 4,
    seed: int = 0,
    *,
    rate_hz: float = 50.0,
    bout_s: float = 20.0,
    positions: tuple[str, ...] = ("wrist", "waist"),
    activities: tuple[str, ...] = ("sitting", "standing", "walking", "walking upstairs", "running", "cycling"),
    timestamps: bool = True,
    gzip_files: bool = False,
) -> list[Path]:
    """One CSV per subject: bouts of each activity, one device per position."""
    from fedotl.simulations.synthetic import SyntheticHAR, format_rows

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gen = SyntheticHAR(n_activities=len(activities), positions=list(positions), seed=seed)
    n = int(round(bout_s * rate_hz))
    sensor_cols = [f"{k}_{a}" for k in ("acc", "gyro", "mag") for a in "xyz"]
    head = (["timestamp"] if timestamps else []) + ["subject", "position", "label"] + sensor_cols
    written = []
    for s in range(n_subjects):
        lines = [",".join(head)]
        for p in positions:
            t = 0.0
            order = np.random.default_rng([seed, s]).permutation(len(activities))
            for a in order:
                x = gen.signal(s, int(a), p, n, rate_hz)
                prefix = [f"{t + i / rate_hz:.4f}," if timestamps else "" for i in range(n)]
                body = format_rows(x, ",").splitlines()
                tag = f"u{s + 1:02d},{p},{activities[a]},"
                lines.extend(pre + tag + b for pre, b in zip(prefix, body))
                t += n / rate_hz
        text = "\n".join(lines) + "\n"
        f = out / f"subject_{s + 1:02d}.csv{'.gz' if gzip_files else ''}"
        f.write_bytes(gzip.compress(text.encode()) if gzip_files else text.encode())
        written.append(f)
    return written
