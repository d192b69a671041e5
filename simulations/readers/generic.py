"""Generic CSV: a simple format for users' own recordings.

Files are ``.csv`` or ``.csv.gz`` with a header row.  PATH is one file or a
folder of them (read in name order).

Columns:

* ``subject`` (required): any text, e.g. ``u01``.
* ``label`` (required): an activity name or integer code.  Integer labels
  keep their codes; text labels get codes 0..K-1 in sorted order.
* ``timestamp`` (optional): seconds.  It must increase within each
  (subject, position) stream; a jump of more than twice the sampling period
  starts a new recording.
* ``position`` (optional): body position of the device that produced the row.
  Rows of one subject at different positions are separate streams.
* every other column whose first value is numeric is a sensor channel; a
  column whose first value is text is ignored and listed in the summary.
  Triples named ``<sensor>_x``, ``_y``, ``_z`` are recognised as one sensor.

Rows are in time order within each (subject, position) stream.  The rate is ``rate_hz`` when
given (``--rate`` on the CLI), else derived from the timestamps (median step).

Missing values: empty cells or ``NaN`` in a channel are linearly interpolated
within their recording, with a warning giving the count.  A text cell in a
channel column is an error naming the file and line, and so are an infinite value
(``inf``, or a number beyond float32's range, such as ``1e308``) and a column name
that appears twice in the header.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import warnings
from pathlib import Path

import numpy as np

from fedotl.simulations.cache import load_or_build
from fedotl.simulations.dataset import Channel, DataFormatError, HARDataset, Recording

RESERVED = ("subject", "label", "timestamp", "position")
_AXIS = re.compile(r"^(.*?)[_\-. ]?([xyzXYZ])$")


def read(path: str | Path, *, rate_hz: float | None = None, cache: bool = True) -> HARDataset:
    """Read one CSV file or a folder of them; see the module docstring."""
    if rate_hz is not None and not (np.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate must be a positive number of Hz, got {rate_hz}")
    files = _files(Path(path))
    if not cache:
        return _parse(files, rate_hz, str(path))
    return load_or_build("generic", files, {"rate_hz": rate_hz}, lambda: _parse(files, rate_hz, str(path)))


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
        return raw.decode("utf-8-sig")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataFormatError(f"cannot read: {exc}", path=str(f)) from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not UTF-8 text: {exc}", path=str(f)) from None


class _Table:
    """One parsed file: header, string columns and float channel columns."""

    def __init__(self, f: Path):
        text = _open_text(f)
        rows = list(csv.reader(io.StringIO(text)))
        while rows and not any(c.strip() for c in rows[-1]):
            rows.pop()  # trailing blank lines
        if not rows:
            raise DataFormatError("file is empty (a header row is required)", path=str(f))
        header = [h.strip() for h in rows[0]]
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:  # which of the two would be the channel is a guess: refuse it
            raise DataFormatError(f"column(s) {repeated} appear more than once in the header", path=str(f), line=1)
        missing = [c for c in ("subject", "label") if c not in header]
        if missing:
            raise DataFormatError(f"missing required column(s) {missing}; header is {header}", path=str(f), line=1)
        body = rows[1:]
        if not body:
            raise DataFormatError("no data rows after the header", path=str(f), line=2)
        n = len(header)
        for i, r in enumerate(body, start=2):
            if len(r) != n:
                raise DataFormatError(f"expected {n} columns, found {len(r)}", path=str(f), line=i)
        cols = list(zip(*body))
        self.path = f
        self.header = header
        self.n = len(body)
        self.str_cols = {c: np.array(cols[header.index(c)]) for c in ("subject", "label", "position") if c in header}
        self.timestamp = (
            self._numeric(cols[header.index("timestamp")], "timestamp") if "timestamp" in header else None
        )
        self.channels: dict[str, np.ndarray] = {}
        self.ignored: list[str] = []
        for j, name in enumerate(header):
            if name in RESERVED:
                continue
            if _is_number(cols[j][0]):
                self.channels[name] = self._numeric(cols[j], name)
            else:
                self.ignored.append(name)

    def _numeric(self, col: tuple[str, ...], name: str) -> np.ndarray:
        arr = np.array(col, dtype=object)
        arr[np.char.strip(arr.astype(str)) == ""] = "nan"
        try:
            values = arr.astype(np.float64)
        except ValueError:
            for i, v in enumerate(col):
                if v.strip() and not _is_number(v):
                    raise DataFormatError(f"non-numeric value {v!r} in column {name!r}", path=str(self.path), line=i + 2) from None
            raise
        # NaN is a missing value (interpolated); inf, or a value beyond float32 (what channels are kept as), is a broken one
        broken = np.flatnonzero(np.abs(np.nan_to_num(values, nan=0.0)) > np.finfo(np.float32).max)
        if broken.size:
            i = int(broken[0])
            raise DataFormatError(f"infinite or out-of-range value {col[i]!r} in column {name!r}", path=str(self.path), line=i + 2)
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
        subj = t.str_cols["subject"]
        pos = t.str_cols.get("position", np.full(t.n, "", dtype=object))
        keys = np.char.add(np.char.add(subj.astype(str), "\x1f"), pos.astype(str))
        for key in dict.fromkeys(keys.tolist()):  # first-seen order
            rows = np.flatnonzero(keys == key)
            s, p = key.split("\x1f")
            for run in _runs(t, rows, rate):
                x = data[run]
                n_interp += int(np.isnan(x).sum())
                x = _interpolate(x, t.path, run)
                ts = t.timestamp[run[0]] if t.timestamp is not None else 0.0
                recs.append(Recording(subject=s, data=x.astype(np.float32), labels=labels[run], position=p, t0=float(ts), session=t.path.name))
    if n_interp:
        warnings.warn(f"{source}: interpolated {n_interp} missing channel values", stacklevel=2)
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


def _label_codes(tables: list[_Table]) -> tuple[dict[int, str], dict[str, int]]:
    values = sorted({v.strip() for t in tables for v in t.str_cols["label"].tolist()})
    if "" in values:
        for t in tables:
            bad = np.flatnonzero(np.char.strip(t.str_cols["label"].astype(str)) == "")
            if bad.size:
                raise DataFormatError("empty label", path=str(t.path), line=int(bad[0]) + 2)
    if all(re.fullmatch(r"[+-]?\d+", v) for v in values):
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
    return float(np.round(1.0 / np.median(allsteps), 6))


def _runs(t: _Table, rows: np.ndarray, rate: float) -> list[np.ndarray]:
    """Split a subject's rows into contiguous recordings at timestamp gaps."""
    if t.timestamp is None:
        return [rows]
    ts = t.timestamp[rows]
    if not np.isfinite(ts).all():
        bad = rows[np.flatnonzero(~np.isfinite(ts))[0]]
        raise DataFormatError("missing timestamp", path=str(t.path), line=int(bad) + 2)
    d = np.diff(ts)
    if (d <= 0).any():
        bad = rows[np.flatnonzero(d <= 0)[0] + 1]
        raise DataFormatError("timestamps must increase within a subject", path=str(t.path), line=int(bad) + 2)
    cut = np.flatnonzero(d > 2.0 / rate) + 1
    return np.split(rows, cut)


def _interpolate(x: np.ndarray, path: Path, run: np.ndarray) -> np.ndarray:
    bad = np.isnan(x)
    if not bad.any():
        return x
    x = x.copy()
    idx = np.arange(len(x))
    for j in np.flatnonzero(bad.any(axis=0)):
        ok = ~bad[:, j]
        if not ok.any():
            raise DataFormatError(f"channel {j} has no values at all in a recording starting", path=str(path), line=int(run[0]) + 2)
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
