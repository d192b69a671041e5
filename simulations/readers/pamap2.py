"""PAMAP2 Physical Activity Monitoring (Reiss & Stricker, UCI no. 231), official layout.

Layout
------
``PAMAP2_Dataset/Protocol/subject101.dat`` … ``subject109.dat`` and
``PAMAP2_Dataset/Optional/subject10N.dat`` (optional activities, some
subjects only).  Each file is one subject's session: space-separated text,
no header, 54 columns, missing values written as ``NaN``:

====== ==========================================================
column meaning
====== ==========================================================
1      timestamp (s)
2      activityID (see :data:`ACTIVITIES`; 0 = transient "other")
3      heart rate (bpm), sampled at about 9 Hz: most rows are NaN
4-20   IMU hand, 21-37 IMU chest, 38-54 IMU ankle, 17 columns each:
       temperature (°C); acc ±16 g xyz (m/s²); acc ±6 g xyz (m/s²,
       saturates in fast motion); gyro xyz (rad/s); mag xyz (μT);
       orientation ×4 (invalid in this data collection: ignored)
====== ==========================================================

PATH may be the ``PAMAP2_Dataset`` folder (both ``Protocol/`` and, unless
``include_optional=False``, ``Optional/`` are read), a folder holding it,
the ``Protocol`` or ``Optional`` folder alone (only that folder is read) or a
single ``subject10N.dat`` file.  Subjects are named by their number ("101");
``Recording.session`` is "Protocol" or "Optional".

Channels (100 Hz), in this order
--------------------------------
Per position (hand, chest, ankle): ``{pos}_acc_{x,y,z}`` (±16 g, m/s^2),
``{pos}_gyro_{x,y,z}`` (rad/s), ``{pos}_mag_{x,y,z}`` (uT): 27 channels by
default.  Options append, per position, ``{pos}_acc6_{x,y,z}``
(``acc6=True``) and ``{pos}_temp`` (``temperature=True``), and finally
``heart_rate`` (``heart_rate=True``, off by default).  Heart rate gets
position "chest" because it comes from a chest strap; so a chest-only view
keeps it, and it never leaks into the hand or ankle views.  It is off by
default so that the three positions carry the same 9 channels.

Policies
--------
* **Activity 0** (transient "other") rows are dropped unless
  ``keep_null=True``; a recording is split where rows are dropped, so a
  :class:`Recording` is always a contiguous run of one file.  ``t0`` is the
  file's timestamp of the recording's first row.
* **Heart rate** (``heart_rate=True``) is linearly interpolated between its
  ~9 Hz samples over the whole file; rows before the first or after the last
  sample take the nearest sample.  A file without any heart-rate value gets
  0 there, with a warning and ``notes["pamap2_files_without_heart_rate"]``.
* **IMU NaN** (wireless drops): per kept channel, a run of at most
  ``max_gap_s`` seconds (default 0.1 s = 10 rows) is linearly interpolated
  from its neighbours (a run at the start or end of a file takes the nearest
  value).  0.1 s bridges the typical few-packet drops without inventing
  motion: it is shorter than a step or a rope jump.  Rows inside longer runs
  are dropped and the recording is split there; a warning gives the counts,
  also kept in ``notes["pamap2_rows_dropped_long_gaps"]``,
  ``notes["pamap2_long_gaps"]`` and, per file,
  ``notes["pamap2_long_gap_rows_by_file"]``.  NaN in dropped columns
  (orientation, unrequested temperature/acc6) is ignored.  No NaN remains.
* **Timestamps**: a jump of more than 1.5 sample periods (or a step back)
  splits the recording, so ``t0 + i / rate_hz`` stays true.

Bad input raises :class:`~fedotl.simulations.dataset.DataFormatError` naming the file
and line: a missing folder or file, a wrong column count, a non-numeric cell,
a truncated last line or an empty file, an unknown activity code, a missing
timestamp, an infinite value or one beyond float32's range (``inf``, ``1e308``)
in a kept channel (in a dropped column it is ignored, like NaN there).
Policy warnings are :class:`~fedotl.simulations.dataset.DataWarning`.

The parsing helpers here (:func:`load_table`, :func:`fill_nan_linear`,
:func:`nan_run_lengths`, :func:`contiguous_runs`) are layout-independent;
:mod:`fedotl.simulations.readers.opportunity` uses them too.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from fedotl.simulations.cache import load_or_build
from fedotl.simulations.dataset import Channel, DataFormatError, DataWarning, HARDataset, Recording
from fedotl.simulations.readers._text import (
    load_table,
    check_codes,
    check_finite,
    check_in_range,
    nan_run_lengths,
    fill_nan_linear,
    time_breaks,
    contiguous_runs,
    write_table,
)
from fedotl.simulations.synthetic import GRAVITY, SyntheticHAR

RATE_HZ = 100.0
N_COLUMNS = 54
POSITIONS = ("hand", "chest", "ankle")
ACTIVITIES = {
    0: "other",
    1: "lying",
    2: "sitting",
    3: "standing",
    4: "walking",
    5: "running",
    6: "cycling",
    7: "Nordic walking",
    9: "watching TV",
    10: "computer work",
    11: "car driving",
    12: "ascending stairs",
    13: "descending stairs",
    16: "vacuum cleaning",
    17: "ironing",
    18: "folding laundry",
    19: "house cleaning",
    20: "playing soccer",
    24: "rope jumping",
}
# The order in which the protocol was performed (Reiss & Stricker 2012).
PROTOCOL_ACTIVITIES = (1, 2, 3, 17, 16, 12, 13, 4, 7, 6, 5, 24)

# 0-based column layout.
COL_TIME, COL_ACTIVITY, COL_HR = 0, 1, 2
_BLOCK_START = {"hand": 3, "chest": 20, "ankle": 37}
# Offsets inside a 17-column IMU block.
_OFFSET = {"temp": 0, "acc": 1, "acc6": 4, "gyro": 7, "mag": 10, "orient": 13}
_UNITS = {"acc": "m/s^2", "acc6": "m/s^2", "gyro": "rad/s", "mag": "uT", "temp": "degC"}
_SUBJECT_FILE = re.compile(r"^subject(\d+)\.dat$")


# ====================================================================== read
def read(
    path: str | Path,
    *,
    include_optional: bool = True,
    keep_null: bool = False,
    max_gap_s: float = 0.1,
    heart_rate: bool = False,
    temperature: bool = False,
    acc6: bool = False,
    cache: bool = True,
) -> HARDataset:
    """Read PAMAP2 from PATH; see the module docstring for layout and policies."""
    if not isinstance(max_gap_s, (int, float)) or not np.isfinite(max_gap_s) or max_gap_s < 0:
        raise ValueError(f"max_gap_s must be a finite number >= 0, got {max_gap_s!r}")
    files = find_files(Path(path), include_optional=include_optional)
    opts = {
        "keep_null": bool(keep_null),
        "max_gap_s": float(max_gap_s),
        "heart_rate": bool(heart_rate),
        "temperature": bool(temperature),
        "acc6": bool(acc6),
    }
    columns, channels = select_columns(opts["heart_rate"], opts["temperature"], opts["acc6"])

    def build() -> HARDataset:
        return _build(files, columns, channels, opts, source=str(path))

    paths = [f for _, _, f in files]
    ds = load_or_build("pamap2", paths, opts, build) if cache else build()
    _warn_from_notes(ds, opts["max_gap_s"])  # also on a cache hit: the policy still applied
    return ds


def find_files(root: Path, include_optional: bool = True) -> list[tuple[str, str, Path]]:
    """(session, subject, file) for every subject file under PATH, validated."""
    if not root.exists():
        raise DataFormatError(
            "no such file or folder (expected PAMAP2_Dataset, Protocol/ or Optional/)", path=str(root)
        )
    if root.is_file():
        m = _SUBJECT_FILE.match(root.name)
        if m is None:
            raise DataFormatError("not a PAMAP2 subject file (expected subject10N.dat)", path=str(root))
        session = root.parent.name if root.parent.name in ("Protocol", "Optional") else "Protocol"
        return [(session, m.group(1), root)]
    if (root / "PAMAP2_Dataset").is_dir():
        root = root / "PAMAP2_Dataset"
    if (root / "Protocol").is_dir():
        folders = [root / "Protocol"]
        if include_optional and (root / "Optional").is_dir():
            folders.append(root / "Optional")
    elif _subject_files(root):
        folders = [root]  # Protocol/ or Optional/ (or any folder of subject files) alone
    else:
        raise DataFormatError(
            "no Protocol/ folder and no subject10N.dat files here "
            "(expected the PAMAP2_Dataset folder, Protocol/ or Optional/)",
            path=str(root),
        )
    out = []
    for rank, folder in enumerate(folders):
        found = _subject_files(folder)
        if not found and folder.name == "Protocol":
            raise DataFormatError("no subject10N.dat files in this folder", path=str(folder))
        out.extend((n, rank, folder.name, p) for n, p in found)
    # Subject by subject, Protocol before Optional.
    return [(session, str(n), p) for n, _, session, p in sorted(out)]


def _subject_files(folder: Path) -> list[tuple[int, Path]]:
    return sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _SUBJECT_FILE.match(p.name)))


def select_columns(
    heart_rate: bool = False, temperature: bool = False, acc6: bool = False
) -> tuple[list[int], list[Channel]]:
    """0-based file columns to keep and their channel descriptions, in output order."""
    sensors = ["acc", "gyro", "mag"] + (["acc6"] if acc6 else []) + (["temp"] if temperature else [])
    cols: list[int] = []
    chans: list[Channel] = []
    for pos in POSITIONS:
        for s in sensors:
            base = _BLOCK_START[pos] + _OFFSET[s]
            axes = ("",) if s == "temp" else ("x", "y", "z")
            for k, ax in enumerate(axes):
                cols.append(base + k)
                name = f"{pos}_{s}_{ax}" if ax else f"{pos}_{s}"
                chans.append(Channel(name=name, unit=_UNITS[s], position=pos, sensor=s, axis=ax))
    if heart_rate:
        cols.append(COL_HR)
        chans.append(Channel(name="heart_rate", unit="bpm", position="chest", sensor="hr"))
    return cols, chans


def _build(
    files: list[tuple[str, str, Path]],
    columns: list[int],
    channels: list[Channel],
    opts: dict,
    source: str,
) -> HARDataset:
    recs: list[Recording] = []
    notes = {
        "pamap2_rows_dropped_null": 0,
        "pamap2_rows_dropped_long_gaps": 0,
        "pamap2_long_gaps": 0,
        "pamap2_long_gap_rows_by_file": {},
        "pamap2_nan_cells_interpolated": 0,
        "pamap2_files_without_heart_rate": [],
        "pamap2_time_breaks": 0,
    }
    for session, subject, path in files:
        table = load_table(path, N_COLUMNS)
        recs.extend(_file_recordings(table, path, session, subject, columns, channels, opts, notes))
    activities = {c: n for c, n in ACTIVITIES.items() if c != 0 or opts["keep_null"]}
    return HARDataset(
        name="pamap2",
        rate_hz=RATE_HZ,
        channels=list(channels),
        activities=activities,
        recordings=recs,
        source=source,
        notes=notes,
    )


def _file_recordings(
    table: np.ndarray,
    path: Path,
    session: str,
    subject: str,
    columns: list[int],
    channels: list[Channel],
    opts: dict,
    notes: dict,
) -> list[Recording]:
    """Apply the label, heart-rate and NaN-gap policies to one file."""
    where = f"{session}/{path.name}"
    labels = check_codes(table[:, COL_ACTIVITY], set(ACTIVITIES), path, "activity")
    times = table[:, COL_TIME]
    check_finite(times, path, "timestamp")
    data = table[:, columns]
    check_in_range(data, path, [c.name for c in channels])  # NaN has a policy; inf and 1e308 do not
    _fill_heart_rate(data, columns, where, notes)
    long_row = _imu_gap_policy(data, columns, opts["max_gap_s"], notes)
    wanted = np.ones(len(labels), bool) if opts["keep_null"] else labels != 0
    notes["pamap2_rows_dropped_null"] += int((~wanted).sum())
    lost = long_row & wanted  # count only rows the gap policy (not the null policy) cost
    if lost.any():
        notes["pamap2_rows_dropped_long_gaps"] += int(lost.sum())
        notes["pamap2_long_gaps"] += len(contiguous_runs(lost, np.zeros(len(lost), bool)))
        notes["pamap2_long_gap_rows_by_file"][where] = int(lost.sum())
    breaks = time_breaks(times, RATE_HZ)
    notes["pamap2_time_breaks"] += int(breaks[1:].sum())
    data32 = data.astype(np.float32)
    return [
        Recording(subject=subject, data=data32[a:b], labels=labels[a:b], session=session, t0=float(times[a]))
        for a, b in contiguous_runs(wanted & ~long_row, breaks)
    ]


def _fill_heart_rate(data: np.ndarray, columns: list[int], where: str, notes: dict) -> None:
    """Interpolate the ~9 Hz heart rate in place (0 when a file has none at all)."""
    if COL_HR not in columns:
        return
    hr = columns.index(COL_HR)
    if np.isnan(data[:, hr]).all():
        notes["pamap2_files_without_heart_rate"].append(where)
        data[:, hr] = 0.0
    else:
        fill_nan_linear(data[:, [hr]], out=data, columns=[hr])


def _imu_gap_policy(data: np.ndarray, columns: list[int], max_gap_s: float, notes: dict) -> np.ndarray:
    """Interpolate short IMU NaN runs in place; return the rows of longer runs (to drop)."""
    imu = [i for i, c in enumerate(columns) if c != COL_HR]
    max_gap = int(round(max_gap_s * RATE_HZ))
    nan = np.isnan(data[:, imu])
    long_row = (nan_run_lengths(nan) > max_gap).any(axis=1)
    notes["pamap2_nan_cells_interpolated"] += int(nan[~long_row].sum())
    fill_nan_linear(data[:, imu], out=data, columns=imu)
    return long_row | np.isnan(data).any(axis=1)  # | a channel with no value at all


def _warn_from_notes(ds: HARDataset, max_gap_s: float) -> None:
    n = int(ds.notes.get("pamap2_rows_dropped_long_gaps", 0))
    if n:
        per_file = ds.notes.get("pamap2_long_gap_rows_by_file", {})
        detail = ", ".join(f"{k}: {v}" for k, v in per_file.items())
        warnings.warn(
            f"PAMAP2: dropped {n} rows in {ds.notes.get('pamap2_long_gaps')} IMU NaN gaps longer "
            f"than max_gap_s={max_gap_s} s, splitting recordings there ({detail})",
            DataWarning,
            stacklevel=3,
        )
    missing = ds.notes.get("pamap2_files_without_heart_rate") or []
    if missing:
        warnings.warn(
            f"PAMAP2: no heart-rate value at all in {', '.join(missing)}; filled with 0",
            DataWarning,
            stacklevel=3,
        )


# ================================================================= synthetic
_HR_BASE = {
    1: 72,
    2: 78,
    3: 85,
    4: 108,
    5: 158,
    6: 124,
    7: 118,
    9: 76,
    10: 80,
    11: 86,
    12: 130,
    13: 122,
    16: 104,
    17: 90,
    18: 92,
    19: 100,
    20: 150,
    24: 162,
}
_ALL_CODES = tuple(c for c in ACTIVITIES if c != 0)


def write_synthetic(
    out: Path,
    n_subjects: int = 4,
    seed: int = 0,
    *,
    bout_s: float = 10.0,
    transient_s: float | None = None,
    optional: bool = True,
    activities: Sequence[int] = PROTOCOL_ACTIVITIES,
    short_gaps: int = 3,
    long_gaps: int = 0,
) -> list[Path]:
    """Write ``out/PAMAP2_Dataset/Protocol/subject101.dat`` … in the official 54-column layout.

    Each subject performs ``activities`` in order, each for about ``bout_s``
    seconds (±20 %), with transient activity-0 rows (``transient_s``,
    default ``max(0.3, bout_s / 5)``) before each bout and at the end.
    Signals come from :class:`~fedotl.simulations.synthetic.SyntheticHAR` (hand,
    chest, ankle); acc ±6 g is the ±16 g signal clipped at 6 g plus noise;
    temperature is a slow drift near 32 °C quantised like the real sensor;
    orientation columns hold arbitrary (invalid) quaternions; heart rate is
    present on every 11th row only.  ``short_gaps`` wireless drops of 1-8
    rows (all 17 columns of one IMU) per file are interpolated by the
    default reader; ``long_gaps`` drops of 0.5 s inside activity bouts are
    not.  With ``optional``, subject 101 also gets a short
    ``Optional/subject101.dat`` (computer work, house cleaning, soccer).
    """
    if n_subjects < 1:
        raise ValueError("n_subjects must be >= 1")
    unknown = [a for a in activities if a not in _ALL_CODES]
    if unknown or not activities:
        raise ValueError(f"activities must be non-empty PAMAP2 codes from {_ALL_CODES}; got {unknown}")
    if bout_s <= 0:
        raise ValueError("bout_s must be > 0")
    trans = max(0.3, bout_s / 5) if transient_s is None else float(transient_s)
    gen = SyntheticHAR(n_activities=len(_ALL_CODES), positions=list(POSITIONS), seed=seed)
    root = Path(out) / "PAMAP2_Dataset"
    written: list[Path] = []
    for i in range(n_subjects):
        plan = [("Protocol", tuple(activities))]
        if optional and i == 0:
            plan.append(("Optional", (10, 19, 20)))
        for session, acts in plan:
            rng = np.random.default_rng([seed, 31, i, len(written)])
            table = _synthetic_table(gen, i, acts, bout_s, trans, short_gaps, long_gaps, rng)
            path = root / session / f"subject{101 + i}.dat"
            write_table(path, table, ["%.2f", "%d", "%.0f"] + ["%.6g"] * (N_COLUMNS - 3))
            written.append(path)
    return written


def _synthetic_table(
    gen: SyntheticHAR,
    subject: int,
    acts: Sequence[int],
    bout_s: float,
    trans_s: float,
    short_gaps: int,
    long_gaps: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """One subject file as a (T, 54) array with NaN where the real data has none."""
    pieces: list[tuple[int, int, int]] = []  # (code, signal activity index, rows)
    n_trans = max(1, int(round(trans_s * RATE_HZ)))
    for a in acts:
        pieces.append((0, _ALL_CODES.index(a), n_trans))
        n = max(1, int(round(bout_s * RATE_HZ * rng.uniform(0.8, 1.2))))
        pieces.append((a, _ALL_CODES.index(a), n))
    pieces.append((0, _ALL_CODES.index(acts[-1]), n_trans))
    total = sum(n for _, _, n in pieces)
    table = np.full((total, N_COLUMNS), np.nan)
    table[:, COL_TIME] = np.round(rng.uniform(3, 40) + np.arange(total) / RATE_HZ, 2)
    row = 0
    for bout, (code, idx, n) in enumerate(pieces):
        table[row : row + n, COL_ACTIVITY] = code
        for pos in POSITIONS:
            # Transients reuse the next activity's signature at its own bout
            # seed, so they sit between activities rather than being noise.
            x = gen.signal(subject, idx, pos, n, RATE_HZ, bout=bout)
            _fill_imu_block(table[row : row + n], pos, x, rng)
        hr = _HR_BASE.get(code, 95) + 6 * np.sin(np.arange(n) / (20 * RATE_HZ)) + rng.normal(0, 1.5, n)
        table[row : row + n, COL_HR] = np.round(hr + 4 * (subject % 3 - 1))
        row += n
    # Heart rate at ~9 Hz: a value on every 11th row only.
    hr_missing = np.arange(total) % 11 != 0
    table[hr_missing, COL_HR] = np.nan
    _temperature(table, rng)
    _drop_packets(table, short_gaps, long_gaps, rng)
    return table


def _fill_imu_block(rows: np.ndarray, pos: str, x: np.ndarray, rng: np.random.Generator) -> None:
    b = _BLOCK_START[pos]
    acc, gyro, mag = x[:, 0:3], x[:, 3:6], x[:, 6:9]
    rows[:, b + 1 : b + 4] = acc
    rows[:, b + 4 : b + 7] = np.clip(acc, -6 * GRAVITY, 6 * GRAVITY) + rng.normal(0, 0.05, acc.shape)
    rows[:, b + 7 : b + 10] = gyro
    rows[:, b + 10 : b + 13] = mag
    q = rng.normal(size=(len(rows), 4))
    rows[:, b + 13 : b + 17] = q / np.linalg.norm(q, axis=1, keepdims=True)


def _temperature(table: np.ndarray, rng: np.random.Generator) -> None:
    n = len(table)
    for pos in POSITIONS:
        drift = np.cumsum(rng.normal(0, 0.002, n))
        t = rng.uniform(30.5, 34.0) + drift
        table[:, _BLOCK_START[pos]] = np.round(t / 0.0625) * 0.0625  # sensor resolution


def _drop_packets(table: np.ndarray, short_gaps: int, long_gaps: int, rng: np.random.Generator) -> None:
    """Wireless drops: NaN over all 17 columns of one IMU for a run of rows."""
    n = len(table)
    long_len = int(0.5 * RATE_HZ)
    grid = np.arange(0, max(0, n - long_len), 2 * long_len)  # spaced: drops never merge
    active = table[:, COL_ACTIVITY] != 0
    inside = np.array([active[s : s + long_len].all() for s in grid], dtype=bool)
    long_starts = rng.permutation(grid[inside])[:long_gaps]
    rest = np.setdiff1d(grid, long_starts)
    short_starts = rng.permutation(rest)[:short_gaps]
    for starts, lengths in (
        (long_starts, [long_len] * len(long_starts)),
        (short_starts, rng.integers(1, 9, len(short_starts))),
    ):
        for s, length in zip(starts, lengths):
            b = _BLOCK_START[POSITIONS[rng.integers(len(POSITIONS))]]
            table[s : s + length, b : b + 17] = np.nan
