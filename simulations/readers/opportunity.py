"""OPPORTUNITY Activity Recognition (Roggen, Chavarriaga et al., UCI no. 226), official layout.

Layout
------
``OpportunityUCIDataset/dataset/S1-ADL1.dat`` … ``S4-ADL5.dat`` and
``S1-Drill.dat`` … ``S4-Drill.dat``: space-separated text, no header, 250
columns, ``NaN`` for missing values, 30 Hz.  The same folder holds
``column_names.txt`` (lines like ``Column: 2 Accelerometer RKN^ accX; value =
round(original_value), unit = milli g``) and ``label_legend.txt`` (lines like
``406516   -   ML_Both_Arms   -   Open Door 1``); when present they give the
channel names, units and label names, else the built-in defaults below do.

====== ==============================================================
column meaning (1-based)
====== ==============================================================
1      MILLISEC timestamp
2-37   12 Bluetooth 3-axis accelerometers (milli g): RKN^ HIP LUA^ RUA_
       LH BACK RKN_ RWR RUA^ LUA_ LWR RH
38-102 5 Xsens IMUs BACK RUA RLA LUA LLA, 13 columns each: acc xyz
       (milli g), gyro xyz, magnetic xyz, Quaternion1-4 (value × 1000)
103-134 shoe IMUs L-SHOE, R-SHOE, 16 columns each: EuX-Z, Nav_Ax-z,
       Body_Ax-z, AngVelBodyFrameX-Z, AngVelNavFrameX-Z, Compass
135-243 object and ambient sensors (12 objects' acc + 2 gyro axes, 13
       reed switches, 8 furniture accelerometers, 4 location tags)
244-250 label tracks: Locomotion, HL_Activity, LL_Left_Arm,
       LL_Left_Arm_Object, LL_Right_Arm, LL_Right_Arm_Object, ML_Both_Arms
====== ==============================================================

PATH may be the ``OpportunityUCIDataset`` folder, a folder holding it, or the
``dataset`` folder.  Subjects are "S1" … "S4"; ``Recording.session`` is
"ADL1" … "ADL5" or "Drill" (``include_drill=False`` skips the Drill runs).

Options
-------
* ``label_track``: "locomotion" (column 244: Stand, Walk, Sit, Lie;
  default) or "gesture" (column 250, ML_Both_Arms: the 17 gestures).
  Label names are the legend's, verbatim ("Stand", "Open Door 1").
* ``keep_null``: rows labelled 0 ("Null") are dropped by default, and
  recordings split there; ``True`` keeps them with activity 0 = "Null".
* ``channels``: "body113" (default; the DeepConvLSTM selection: columns
  2-134 minus the 20 quaternion columns 47-50, 60-63, 73-76, 86-89,
  99-102), "imu" (the 5 Xsens IMUs' acc, gyro and magnetic xyz: 45
  channels) or "all" (columns 2-243: 242 channels).
* ``si_units``: values are kept as in the file by default (accelerometers in
  milli g, IMU gyro/magnetic as value × 1000 with unit "unknown"), the usual
  practice with this data set, with each channel's unit recorded from
  ``column_names.txt``.  ``si_units=True`` converts the "milli g" channels to
  m/s² (× 9.81 / 1000) and records unit "m/s^2".

Channels are named as in ``column_names.txt`` ("Accelerometer RKN^ accX").
Their position is the sensor location token ("RKN^", "BACK", "L-SHOE"; ""
for objects and ambient sensors).  Their sensor is "bt_acc" for the
Bluetooth accelerometers and "acc"/"gyro"/"mag" for the Xsens IMUs (the BACK
position has both, so the two triples stay apart), "euler", "nav_acc",
"body_acc", "angvel_body", "angvel_nav", "compass" for the shoes, and
"<OBJECT>_<kind>" for object and ambient columns.

Policies
--------
* **NaN**: per selected channel, linear interpolation over time; leading
  and trailing NaN take the nearest value.  A channel with no value at all in
  a file is filled with 0, with a warning; ``notes`` count it
  (``opportunity_all_nan_channels``) and list it.
* **Timestamps**: a step of more than 1.5 sample periods (or a step back)
  splits the recording (counted in ``notes["opportunity_time_breaks"]``);
  ``t0`` is the recording's first MILLISEC / 1000.
* Bad input raises :class:`~fedotl.simulations.dataset.DataFormatError` naming the
  file and line: a missing folder or file, a wrong column count, a
  non-numeric cell, a truncated last line or empty file, an unknown label
  code in the chosen track, an infinite value or one beyond float32's range
  (``inf``, ``1e308``) in a selected channel (in an unselected column it is
  ignored), a malformed ``column_names.txt`` or ``label_legend.txt``.
* Policy warnings are :class:`~fedotl.simulations.dataset.DataWarning`.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from fedotl.simulations.cache import load_or_build
from fedotl.simulations.dataset import Channel, DataFormatError, DataWarning, HARDataset, Recording
from fedotl.simulations.readers._text import (
    check_codes,
    check_finite,
    check_in_range,
    contiguous_runs,
    fill_nan_linear,
    load_table,
    time_breaks,
    write_table,
)
from fedotl.simulations.synthetic import EARTH_FIELD_UT, GRAVITY, SyntheticHAR

RATE_HZ = 30.0
N_COLUMNS = 250
LAST_BODY_COLUMN = 134
COLUMN_NAMES_FILE = "column_names.txt"
LABEL_LEGEND_FILE = "label_legend.txt"
LABEL_TRACKS = {"locomotion": "Locomotion", "gesture": "ML_Both_Arms"}
CHANNEL_SETS = ("body113", "imu", "all")
NULL_NAME = "Null"
_DAT_FILE = re.compile(r"^S(\d+)-(ADL\d+|Drill)\.dat$")

# ------------------------------------------------------- built-in column table
BT_ACCELEROMETERS = ("RKN^", "HIP", "LUA^", "RUA_", "LH", "BACK", "RKN_", "RWR", "RUA^", "LUA_", "LWR", "RH")
IMUS = ("BACK", "RUA", "RLA", "LUA", "LLA")
SHOES = ("L-SHOE", "R-SHOE")
_IMU_FIELDS = [f"{s}{a}" for s in ("acc", "gyro", "magnetic") for a in "XYZ"] + [
    f"Quaternion{i}" for i in range(1, 5)
]
_SHOE_FIELDS = (
    ["EuX", "EuY", "EuZ"]
    + [f"Nav_A{a}" for a in "xyz"]
    + [f"Body_A{a}" for a in "xyz"]
    + [f"AngVelBodyFrame{a}" for a in "XYZ"]
    + [f"AngVelNavFrame{a}" for a in "XYZ"]
    + ["Compass"]
)
_OBJECTS = (
    "CUP",
    "SALAMI",
    "WATER",
    "CHEESE",
    "BREAD",
    "KNIFE1",
    "MILK",
    "SPOON",
    "SUGAR",
    "KNIFE2",
    "PLATE",
    "GLASS",
)
_REED_SWITCHES = (
    "DISHWASHER S1",
    "FRIDGE S3",
    "FRIDGE S2",
    "FRIDGE S1",
    "MIDDLEDRAWER S1",
    "MIDDLEDRAWER S2",
    "MIDDLEDRAWER S3",
    "LOWERDRAWER S3",
    "LOWERDRAWER S2",
    "UPPERDRAWER",
    "DISHWASHER S3",
    "LOWERDRAWER S1",
    "DISHWASHER S2",
)
_FURNITURE = (
    "DOOR1",
    "LAZYCHAIR",
    "DOOR2",
    "DISHWASHER",
    "UPPERDRAWER",
    "LOWERDRAWER",
    "MIDDLEDRAWER",
    "FRIDGE",
)
_TRACKS = (
    "Locomotion",
    "HL_Activity",
    "LL_Left_Arm",
    "LL_Left_Arm_Object",
    "LL_Right_Arm",
    "LL_Right_Arm_Object",
    "ML_Both_Arms",
)
_MG = "value = round(original_value), unit = milli g"
_MG_IMU = "value = round(original_value / 9.8 * 1000), unit = milli g"
_X1000 = "value = round(original_value * 1000), unit = unknown"
_RAW = "value = round(original_value), unit = unknown"


@dataclass(frozen=True)
class ColumnSpec:
    """One line of column_names.txt."""

    number: int  # 1-based
    name: str  # e.g. "Accelerometer RKN^ accX"
    unit: str = ""
    note: str = ""  # the text after ";" (how the value was derived)


def default_columns() -> list[ColumnSpec]:
    """The official 250-column table, built from the sensor lists above."""
    specs: list[tuple[str, str]] = [("MILLISEC", "")]
    specs += [(f"Accelerometer {p} acc{a}", _MG) for p in BT_ACCELEROMETERS for a in "XYZ"]
    for p in IMUS:
        specs += [
            (f"InertialMeasurementUnit {p} {f}", _MG_IMU if f.startswith("acc") else _X1000)
            for f in _IMU_FIELDS
        ]
    for p in SHOES:
        for f in _SHOE_FIELDS:
            if f.startswith(("Nav_A", "Body_A")):
                note = _MG_IMU
            elif f.startswith("AngVel"):
                note = _X1000
            else:
                note = "value = round(original_value), unit = degrees"
            specs.append((f"InertialMeasurementUnit {p} {f}", note))
    for o in _OBJECTS:
        specs += [(f"Accelerometer {o} acc{a}", _MG) for a in "XYZ"]
        specs += [(f"Accelerometer {o} gyro{a}", _RAW) for a in "XY"]
    specs += [(f"REED SWITCH {r}", _RAW) for r in _REED_SWITCHES]
    specs += [(f"Accelerometer {f} acc{a}", _MG) for f in _FURNITURE for a in "XYZ"]
    specs += [
        (f"LOCATION TAG{t} {a}", "value = round(original_value), unit = mm")
        for t in range(1, 5)
        for a in "XYZ"
    ]
    specs += [(t, "") for t in _TRACKS]
    assert len(specs) == N_COLUMNS, len(specs)
    return [ColumnSpec(i + 1, name, _unit_of(note), note) for i, (name, note) in enumerate(specs)]


# ------------------------------------------------------- built-in label legend
_VERBS = (
    "unlock",
    "stir",
    "lock",
    "close",
    "reach",
    "open",
    "sip",
    "clean",
    "bite",
    "cut",
    "spread",
    "release",
    "move",
)
_THINGS = (
    "Bottle",
    "Salami",
    "Bread",
    "Sugar",
    "Dishwasher",
    "Switch",
    "Milk",
    "Drawer3 (lower)",
    "Spoon",
    "Knife cheese",
    "Drawer2 (middle)",
    "Table",
    "Glass",
    "Cheese",
    "Chair",
    "Door1",
    "Door2",
    "Plate",
    "Drawer1 (top)",
    "Fridge",
    "Cup",
    "Knife salami",
    "Lazychair",
)
GESTURES = {
    406516: "Open Door 1",
    406517: "Open Door 2",
    404516: "Close Door 1",
    404517: "Close Door 2",
    406520: "Open Fridge",
    404520: "Close Fridge",
    406505: "Open Dishwasher",
    404505: "Close Dishwasher",
    406519: "Open Drawer 1",
    404519: "Close Drawer 1",
    406511: "Open Drawer 2",
    404511: "Close Drawer 2",
    406508: "Open Drawer 3",
    404508: "Close Drawer 3",
    408512: "Clean Table",
    407521: "Drink from Cup",
    405506: "Toggle Switch",
}


def default_legend() -> dict[str, dict[int, str]]:
    """Track name -> {code: label name}, as in the official label_legend.txt."""
    return {
        "Locomotion": {1: "Stand", 2: "Walk", 4: "Sit", 5: "Lie"},
        "HL_Activity": dict(
            zip(range(101, 106), ("Relaxing", "Coffee time", "Early morning", "Cleanup", "Sandwich time"))
        ),
        "LL_Left_Arm": {201 + i: v for i, v in enumerate(_VERBS)},
        "LL_Left_Arm_Object": {301 + i: t for i, t in enumerate(_THINGS)},
        "LL_Right_Arm": {401 + i: v for i, v in enumerate(_VERBS)},
        "LL_Right_Arm_Object": {501 + i: t for i, t in enumerate(_THINGS)},
        "ML_Both_Arms": dict(GESTURES),
    }


# =================================================================== reading
def read(
    path: str | Path,
    *,
    label_track: str = "locomotion",
    keep_null: bool = False,
    channels: str = "body113",
    include_drill: bool = True,
    si_units: bool = False,
    cache: bool = True,
) -> HARDataset:
    """Read OPPORTUNITY from PATH; see the module docstring for layout, options and policies."""
    if label_track not in LABEL_TRACKS:
        raise ValueError(f"label_track must be one of {sorted(LABEL_TRACKS)}, got {label_track!r}")
    if channels not in CHANNEL_SETS:
        raise ValueError(f"channels must be one of {CHANNEL_SETS}, got {channels!r}")
    folder = find_folder(Path(path))
    files = find_files(folder, include_drill)
    meta_files = [folder / n for n in (COLUMN_NAMES_FILE, LABEL_LEGEND_FILE) if (folder / n).is_file()]
    opts = {
        "label_track": label_track,
        "keep_null": bool(keep_null),
        "channels": channels,
        "si_units": bool(si_units),
    }

    def build() -> HARDataset:
        return _build(folder, files, opts, source=str(path))

    paths = [p for _, _, p in files] + meta_files
    ds = load_or_build("opportunity", paths, opts, build) if cache else build()
    _warn_from_notes(ds)
    return ds


def find_folder(root: Path) -> Path:
    """The folder holding the S*-*.dat files."""
    if not root.exists():
        raise DataFormatError(
            "no such file or folder (expected OpportunityUCIDataset or its dataset/ folder)", path=str(root)
        )
    if not root.is_dir():
        raise DataFormatError(
            "expected a folder (OpportunityUCIDataset or its dataset/ folder)", path=str(root)
        )
    for cand in (root / "OpportunityUCIDataset" / "dataset", root / "dataset", root):
        if cand.is_dir() and any(_DAT_FILE.match(p.name) for p in cand.iterdir()):
            return cand
    raise DataFormatError(
        "no S<n>-ADL<k>.dat or S<n>-Drill.dat files found (looked in dataset/ too)", path=str(root)
    )


def find_files(folder: Path, include_drill: bool = True) -> list[tuple[str, str, Path]]:
    """(subject, session, file), sorted by subject then ADL1..ADL5, Drill."""
    out = []
    for p in folder.iterdir():
        m = _DAT_FILE.match(p.name)
        if m and (include_drill or m.group(2) != "Drill"):
            session = m.group(2)
            order = int(session[3:]) if session.startswith("ADL") else 99
            out.append((int(m.group(1)), order, f"S{m.group(1)}", session, p))
    if not out:
        raise DataFormatError(
            "no ADL .dat files here (only Drill, which include_drill=False skips)", path=str(folder)
        )
    return [(s, sess, p) for _, _, s, sess, p in sorted(out)]


def _build(folder: Path, files: list[tuple[str, str, Path]], opts: dict, source: str) -> HARDataset:
    specs, legend, meta = load_metadata(folder)
    track = LABEL_TRACKS[opts["label_track"]]
    if track not in legend:
        where = folder / LABEL_LEGEND_FILE if meta["label_legend"] != "built-in" else folder
        raise DataFormatError(f"no labels for track {track!r} in the legend", path=str(where))
    names = legend[track]
    label_col = _label_column(specs, track, folder, meta)
    legend_name = str(folder / LABEL_LEGEND_FILE) if meta["label_legend"] != "built-in" else "the built-in legend"
    numbers = channel_numbers(opts["channels"])
    chans, scale = _channels(specs, numbers, opts["si_units"])
    notes: dict = {
        "opportunity_label_track": track,
        "opportunity_metadata": meta,
        "opportunity_rows_dropped_null": 0,
        "opportunity_nan_cells_interpolated": 0,
        "opportunity_all_nan_channels": 0,
        "opportunity_all_nan_channel_list": [],
        "opportunity_time_breaks": 0,
    }
    recs: list[Recording] = []
    for subject, session, path in files:
        table = load_table(path, N_COLUMNS)
        labels = check_codes(table[:, label_col - 1], set(names) | {0}, path, f"{track} label", legend_name)
        data = table[:, [n - 1 for n in numbers]]
        check_in_range(data, path, [c.name for c in chans])  # NaN has a policy; inf and 1e308 do not
        _fill(data, chans, path, notes)
        recs += _recordings(subject, session, table[:, 0], labels, data * scale, path, opts, notes)
    activities = ({0: NULL_NAME} if opts["keep_null"] else {}) | dict(sorted(names.items()))
    return HARDataset(
        name="opportunity",
        rate_hz=RATE_HZ,
        channels=chans,
        activities=activities,
        recordings=recs,
        source=source,
        notes=notes,
    )


def _channels(
    specs: list[ColumnSpec], numbers: list[int], si_units: bool
) -> tuple[list[Channel], np.ndarray]:
    """Channel descriptions of the selected columns and the per-channel unit factor."""
    chans = [_channel(specs[n - 1]) for n in numbers]
    scale = np.ones(len(chans))
    if si_units:
        for i, c in enumerate(chans):
            if c.unit == "milli g":
                scale[i] = GRAVITY / 1000.0
                chans[i] = Channel(c.name, "m/s^2", c.position, c.sensor, c.axis)
    return chans, scale


def _recordings(
    subject: str,
    session: str,
    millisec: np.ndarray,
    labels: np.ndarray,
    data: np.ndarray,
    path: Path,
    opts: dict,
    notes: dict,
) -> list[Recording]:
    """Split one file at Null rows (unless kept) and at timestamp jumps."""
    check_finite(millisec, path, "MILLISEC timestamp")
    wanted = np.ones(len(labels), bool) if opts["keep_null"] else labels != 0
    notes["opportunity_rows_dropped_null"] += int((~wanted).sum())
    breaks = time_breaks(millisec / 1000.0, RATE_HZ)
    notes["opportunity_time_breaks"] += int(breaks[1:].sum())
    data32 = data.astype(np.float32)
    return [
        Recording(subject, data32[a:b], labels[a:b], session=session, t0=float(millisec[a]) / 1000.0)
        for a, b in contiguous_runs(wanted, breaks)
    ]


def _fill(data: np.ndarray, chans: list[Channel], path: Path, notes: dict) -> None:
    """The NaN policy: interpolate per channel; a channel without values becomes 0."""
    nan = np.isnan(data)
    dead = nan.all(axis=0)
    notes["opportunity_nan_cells_interpolated"] += int(nan[:, ~dead].sum())
    fill_nan_linear(data)
    if dead.any():
        data[:, dead] = 0.0
        notes["opportunity_all_nan_channels"] += int(dead.sum())
        notes["opportunity_all_nan_channel_list"] += [
            f"{path.name}: {chans[i].name}" for i in np.flatnonzero(dead)
        ]


def _warn_from_notes(ds: HARDataset) -> None:
    n = int(ds.notes.get("opportunity_all_nan_channels", 0))
    if n:
        listed = ds.notes.get("opportunity_all_nan_channel_list", [])
        shown = "; ".join(listed[:10]) + (" …" if len(listed) > 10 else "")
        warnings.warn(
            f"OPPORTUNITY: {n} channel(s) without any value in a file, filled with 0 ({shown})", DataWarning, stacklevel=3
        )


def channel_numbers(selection: str = "body113") -> list[int]:
    """1-based file columns of a channel selection."""
    if selection == "body113":
        quats = {b + 9 + k for b in (38, 51, 64, 77, 90) for k in range(4)}  # 47-50, 60-63, …
        return [n for n in range(2, LAST_BODY_COLUMN + 1) if n not in quats]
    if selection == "imu":
        return [b + k for b in (38, 51, 64, 77, 90) for k in range(9)]
    if selection == "all":
        return list(range(2, 244))
    raise ValueError(f"channels must be one of {CHANNEL_SETS}, got {selection!r}")


_MEASURE = re.compile(
    r"^(acc|gyro|magnetic|Quaternion|Eu|Nav_A|Body_A|AngVelBodyFrame|AngVelNavFrame|Compass)([XYZxyz]|\d)?$"
)
_SENSOR = {
    "gyro": "gyro",
    "magnetic": "mag",
    "Quaternion": "quat",
    "Eu": "euler",
    "Nav_A": "nav_acc",
    "Body_A": "body_acc",
    "AngVelBodyFrame": "angvel_body",
    "AngVelNavFrame": "angvel_nav",
    "Compass": "compass",
}


def _channel(spec: ColumnSpec) -> Channel:
    """Channel description from an official column name."""
    tokens = spec.name.split()
    measure = tokens[-1] if len(tokens) >= 3 else ""
    m = _MEASURE.match(measure)
    axis = m.group(2).lower() if m and m.group(2) and m.group(2).isalpha() else ""
    if m is None:
        kind = measure.lower()
    elif m.group(1) == "acc":
        kind = "bt_acc" if tokens[0] == "Accelerometer" else "acc"
    else:
        kind = _SENSOR[m.group(1)]
    if spec.number <= LAST_BODY_COLUMN and len(tokens) >= 3:
        return Channel(spec.name, spec.unit, tokens[1], kind, axis)
    # Objects and ambient sensors: no body position; the object names the group.
    if tokens[:2] == ["REED", "SWITCH"]:
        return Channel(spec.name, spec.unit, "", "reed", "")
    if tokens[:1] == ["LOCATION"] and len(tokens) >= 3:
        return Channel(spec.name, spec.unit, "", f"{tokens[1]}_location", tokens[2].lower())
    obj = tokens[1] if len(tokens) >= 3 else spec.name
    return Channel(spec.name, spec.unit, "", f"{obj}_{kind.replace('bt_', '')}", axis)


def _label_column(specs: list[ColumnSpec], track: str, folder: Path, meta: dict) -> int:
    hits = [s.number for s in specs if s.name == track]
    if len(hits) != 1:
        where = folder / COLUMN_NAMES_FILE if meta["column_names"] != "built-in" else folder
        raise DataFormatError(
            f"expected exactly one column named {track!r}, found {len(hits)}", path=str(where)
        )
    if hits[0] <= 243:
        raise DataFormatError(
            f"label track {track!r} must be in columns 244-250, found {hits[0]}",
            path=str(folder / COLUMN_NAMES_FILE),
        )
    return hits[0]


# ------------------------------------------------------------ metadata files
_COLUMN_LINE = re.compile(r"^\s*Column:\s*(\d+)\s+(.+?)\s*$")
_LEGEND_LINE = re.compile(r"^\s*(\d+)\s+-\s+(\S+)\s+-\s+(.+?)\s*$")


def load_metadata(folder: Path) -> tuple[list[ColumnSpec], dict[str, dict[int, str]], dict[str, str]]:
    """Column table and label legend: from the folder's files when present, else built in."""
    cn, ll = folder / COLUMN_NAMES_FILE, folder / LABEL_LEGEND_FILE
    specs = parse_column_names(cn) if cn.is_file() else default_columns()
    legend = parse_label_legend(ll) if ll.is_file() else default_legend()
    meta = {
        "column_names": cn.name if cn.is_file() else "built-in",
        "label_legend": ll.name if ll.is_file() else "built-in",
    }
    return specs, legend, meta


def parse_column_names(path: Path) -> list[ColumnSpec]:
    """Parse column_names.txt: one ``Column: N name[; value = …, unit = U]`` line per column."""
    found: dict[int, ColumnSpec] = {}
    for i, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip().startswith("Column"):
            continue  # section headers ("Data columns:") and blank lines
        m = _COLUMN_LINE.match(line)
        if m is None:
            raise DataFormatError(f"malformed column line {line.strip()!r}", path=str(path), line=i)
        number = int(m.group(1))
        name, _, note = m.group(2).partition(";")
        if not 1 <= number <= N_COLUMNS:
            raise DataFormatError(f"column number {number} outside 1-{N_COLUMNS}", path=str(path), line=i)
        if number in found:
            raise DataFormatError(f"column {number} listed twice", path=str(path), line=i)
        found[number] = ColumnSpec(number, name.strip(), _unit_of(note), note.strip())
    missing = [n for n in range(1, N_COLUMNS + 1) if n not in found]
    if missing:
        raise DataFormatError(
            f"columns missing: {missing[:10]}{' …' if len(missing) > 10 else ''}", path=str(path)
        )
    return [found[n] for n in range(1, N_COLUMNS + 1)]


def parse_label_legend(path: Path) -> dict[str, dict[int, str]]:
    """Parse label_legend.txt: ``code   -   Track   -   Label name`` lines."""
    legend: dict[str, dict[int, str]] = {}
    for i, line in enumerate(_read_text(path).splitlines(), start=1):
        s = line.strip()
        if not s or not s[0].isdigit():
            continue  # the "Unique index - Track name - Label name" header
        m = _LEGEND_LINE.match(s)
        if m is None:
            raise DataFormatError(f"malformed legend line {s!r}", path=str(path), line=i)
        code, track, name = int(m.group(1)), m.group(2), m.group(3)
        if code == 0:
            raise DataFormatError("code 0 is reserved for Null", path=str(path), line=i)
        if code in legend.get(track, {}):
            raise DataFormatError(f"code {code} listed twice for {track}", path=str(path), line=i)
        legend.setdefault(track, {})[code] = name
    if not legend:
        raise DataFormatError(
            "no label entries (expected lines like '1   -   Locomotion   -   Stand')", path=str(path)
        )
    return legend


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise DataFormatError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from None


def _unit_of(note: str) -> str:
    m = re.search(r"unit\s*=\s*([^,;]+)", note)
    return m.group(1).strip() if m else ""


# ================================================================= synthetic
# Body positions of the signal model (BACK carries both a Bluetooth
# accelerometer and an IMU; they share the signature of the position).
_BODY_POSITIONS = tuple(dict.fromkeys(BT_ACCELEROMETERS + IMUS + SHOES))
_ARM_POSITIONS = {"LUA^", "RUA_", "LH", "RWR", "RUA^", "LUA_", "LWR", "RH", "RUA", "RLA", "LUA", "LLA"}
# Signal-model activity index: Sit is the "twin" of Stand (similar posture),
# Walk and Lie get independent signatures; gestures follow in legend order,
# so Open/Close pairs of the same object are twins.
_LOCO_INDEX = {1: 0, 4: 1, 2: 2, 5: 4}
_GESTURE_CODES = tuple(GESTURES)
_N_SIGNATURES = 6 + len(_GESTURE_CODES)


def write_synthetic(
    out: Path,
    n_subjects: int = 4,
    seed: int = 0,
    *,
    sessions: Sequence[str] = ("ADL1", "ADL2", "Drill"),
    session_s: float = 60.0,
    metadata: bool = True,
    short_gaps: int = 6,
) -> list[Path]:
    """Write ``out/OpportunityUCIDataset/dataset/S1-ADL1.dat`` … in the official 250-column layout.

    Each session lasts about ``session_s`` seconds at 30 Hz: locomotion bouts
    (Stand, Walk, Sit, Lie) separated by short Null spans, with gestures
    (ML_Both_Arms) as 1-3 s events inside Stand and Sit bouts (denser in
    Drill, which has only Stand and Walk).  Body-worn columns come from
    :class:`~fedotl.simulations.synthetic.SyntheticHAR` (arm positions switch to a
    gesture signature during a gesture), converted to the file's units
    (milli g, value × 1000, degrees) and rounded like the originals; object
    and ambient columns hold plausible values.  ``short_gaps`` NaN runs of
    1-15 rows hit random body sensors per file, and one accelerometer starts
    a few rows late.  With ``metadata``, ``column_names.txt`` and
    ``label_legend.txt`` are written too.
    """
    if n_subjects < 1:
        raise ValueError("n_subjects must be >= 1")
    bad = [s for s in sessions if not re.fullmatch(r"ADL\d+|Drill", s)]
    if bad or not sessions:
        raise ValueError(f"sessions must be names like 'ADL1' or 'Drill'; got {list(sessions)}")
    if session_s <= 0:
        raise ValueError("session_s must be > 0")
    folder = Path(out) / "OpportunityUCIDataset" / "dataset"
    folder.mkdir(parents=True, exist_ok=True)
    gen = SyntheticHAR(n_activities=_N_SIGNATURES, positions=list(_BODY_POSITIONS), seed=seed)
    written: list[Path] = []
    for i in range(n_subjects):
        for k, session in enumerate(sessions):
            rng = np.random.default_rng([seed, 43, i, k])
            table = _synthetic_session(gen, i, session, int(round(session_s * RATE_HZ)), short_gaps, rng)
            path = folder / f"S{i + 1}-{session}.dat"
            write_table(path, table, ["%.0f"] * N_COLUMNS)
            written.append(path)
    if metadata:
        written.append(write_column_names(folder / COLUMN_NAMES_FILE, default_columns()))
        written.append(write_label_legend(folder / LABEL_LEGEND_FILE, default_legend()))
    return written


def write_column_names(path: Path, specs: Sequence[ColumnSpec]) -> Path:
    lines = ["Data columns:", ""]
    for s in specs:
        if s.number == 244:
            lines += ["", "Label columns: ", ""]
        lines.append(f"Column: {s.number} {s.name}" + (f"; {s.note}" if s.note else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_label_legend(path: Path, legend: dict[str, dict[int, str]]) -> Path:
    lines = ["Unique index   -   Track name   -   Label name", ""]
    lines += [
        f"{code}   -   {track}   -   {name}"
        for track, codes in legend.items()
        for code, name in codes.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _timeline(n: int, drill: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-row locomotion and gesture codes."""
    loco = np.zeros(n, np.int64)
    gest = np.zeros(n, np.int64)
    states = [1, 2] if drill else [1, 2, 4, 1, 5, 2, 4]
    row, k = 0, int(rng.integers(len(states)))
    while row < n:
        row += int(rng.uniform(0.5, 2.0) * RATE_HZ)  # Null between bouts
        length = int(rng.uniform(6.0, 14.0) * RATE_HZ)
        state = states[k % len(states)]
        loco[row : row + length] = state
        if state in (1, 4):
            _gestures(gest, row, min(row + length, n), drill, state, rng)
        row += length
        k += 1
    return loco, gest


def _gestures(
    gest: np.ndarray, start: int, stop: int, drill: bool, state: int, rng: np.random.Generator
) -> None:
    row = start + int(rng.uniform(0.3, 1.0) * RATE_HZ)
    while row < stop:
        length = int(rng.uniform(1.0, 3.0) * RATE_HZ)
        if row + length > stop:
            break
        code = 407521 if state == 4 else int(rng.choice(_GESTURE_CODES))  # seated: drinking
        gest[row : row + length] = code
        row += length + int(rng.uniform(0.3, 1.5 if drill else 4.0) * RATE_HZ)


def _segments(loco: np.ndarray, gest: np.ndarray) -> list[tuple[int, int]]:
    change = np.flatnonzero((np.diff(loco) != 0) | (np.diff(gest) != 0)) + 1
    edges = np.concatenate([[0], change, [len(loco)]])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def _synthetic_session(
    gen: SyntheticHAR, subject: int, session: str, n: int, short_gaps: int, rng: np.random.Generator
) -> np.ndarray:
    table = np.zeros((n, N_COLUMNS))
    table[:, 0] = np.round(np.arange(n) * 1000.0 / RATE_HZ)
    loco, gest = _timeline(n, session == "Drill", rng)
    for bout, (a, b) in enumerate(_segments(loco, gest)):
        # Null locomotion reuses the Stand signature at its own bout seed.
        li = _LOCO_INDEX.get(int(loco[a]), 0)
        gi = 6 + _GESTURE_CODES.index(int(gest[a])) if gest[a] else None
        for pos in _BODY_POSITIONS:
            act = gi if gi is not None and pos in _ARM_POSITIONS else li
            x = gen.signal(subject, act, pos, b - a, RATE_HZ, bout=bout)
            _body_columns(table[a:b], pos, x)
            if pos == "BACK":  # the BACK IMU: same motion, its own noise and phase
                x = gen.signal(subject, act, pos, b - a, RATE_HZ, bout=bout + 100_000)
                _body_columns(table[a:b], pos, x, units=("imu",))
    _shoe_orientation(table, rng)
    _objects(table, rng)
    table[:, 1:LAST_BODY_COLUMN] = np.round(table[:, 1:LAST_BODY_COLUMN]) + 0.0  # "+ 0.0": no "-0"
    table[:, 243] = loco
    table[:, 244] = _hl_activity(n, session) if session != "Drill" else 0
    table[:, 247] = gest // 1000  # LL_Right_Arm: 406516 = open (406) …
    table[:, 248] = np.where(gest > 0, gest % 1000, 0)  # … Door1 (516)
    table[:, 249] = gest
    _sprinkle_nan(table, short_gaps, rng)
    return table


def _body_columns(
    rows: np.ndarray, pos: str, x: np.ndarray, units: Sequence[str] = ("bt", "imu", "shoe")
) -> None:
    """Fill one position's columns (0-based) of the given sensor units from an SI acc/gyro/mag signal."""
    acc_mg = x[:, 0:3] / GRAVITY * 1000.0
    if pos in BT_ACCELEROMETERS and "bt" in units:
        c = 1 + 3 * BT_ACCELEROMETERS.index(pos)
        rows[:, c : c + 3] = acc_mg
        if pos == "BACK":
            return  # the BACK IMU gets its own signal
    if pos in IMUS and "imu" in units:
        c = 37 + 13 * IMUS.index(pos)
        rows[:, c : c + 3] = acc_mg
        rows[:, c + 3 : c + 6] = x[:, 3:6] * 1000.0
        rows[:, c + 6 : c + 9] = x[:, 6:9] / EARTH_FIELD_UT * 1000.0  # normalised field × 1000
    if pos in SHOES and "shoe" in units:
        c = 102 + 16 * SHOES.index(pos)
        rows[:, c + 3 : c + 6] = acc_mg[:, [1, 0, 2]] * [1, -1, 1]  # navigation frame: a fixed rotation
        rows[:, c + 6 : c + 9] = acc_mg
        rows[:, c + 9 : c + 12] = x[:, 3:6] * 1000.0
        rows[:, c + 12 : c + 15] = x[:, [4, 3, 5]] * [1000.0, -1000.0, 1000.0]
        rows[:, c + 15] = np.degrees(np.arctan2(x[:, 7], x[:, 6])) % 360.0


def _shoe_orientation(table: np.ndarray, rng: np.random.Generator) -> None:
    """Quaternions of the IMUs and Euler angles of the shoes: slow random walks."""
    n = len(table)
    for k in range(len(IMUS)):
        q = 1.0 + np.cumsum(rng.normal(0, 0.01, (n, 4)), axis=0)
        table[:, 37 + 13 * k + 9 : 37 + 13 * k + 13] = q / np.linalg.norm(q, axis=1, keepdims=True) * 1000.0
    for k in range(len(SHOES)):
        eu = np.cumsum(rng.normal(0, 0.5, (n, 3)), axis=0) + rng.uniform(-90, 90, 3)
        table[:, 102 + 16 * k : 105 + 16 * k] = (eu + 180.0) % 360.0 - 180.0


def _objects(table: np.ndarray, rng: np.random.Generator) -> None:
    """Columns 135-243: objects resting (gravity on z), switches, location tags."""
    n = len(table)
    for k in range(len(_OBJECTS)):
        c = 134 + 5 * k
        table[:, c : c + 3] = np.array([0.0, 0.0, 1000.0]) + rng.normal(0, 15, (n, 3))
        table[:, c + 3 : c + 5] = rng.normal(0, 5, (n, 2))
    reed = 194
    table[:, reed : reed + 13] = (rng.random((n, 13)) < 0.02).cumsum(axis=0) % 2  # rare toggles
    furn = reed + 13
    table[:, furn : furn + 24] = np.tile([0.0, 0.0, 1000.0], 8) + rng.normal(0, 10, (n, 24))
    tags = furn + 24
    walk = np.cumsum(rng.normal(0, 8, (n, 12)), axis=0) + rng.uniform(500, 4000, 12)
    table[:, tags : tags + 12] = np.clip(walk, 0, 6000)
    table[:, 134:243] = np.round(table[:, 134:243]) + 0.0


def _hl_activity(n: int, session: str) -> np.ndarray:
    """HL_Activity: the five ADL scripts in order, with Null between."""
    hl = np.zeros(n)
    edges = np.linspace(0, n, 6).astype(int)
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        hl[a : max(a, b - int(RATE_HZ))] = 101 + k
    return hl


def _sprinkle_nan(table: np.ndarray, short_gaps: int, rng: np.random.Generator) -> None:
    """Short NaN runs in random body sensors, one late-starting accelerometer, some object dropouts."""
    n = len(table)
    blocks = [(1 + 3 * k, 3) for k in range(len(BT_ACCELEROMETERS))] + [
        (37 + 13 * k, 13) for k in range(len(IMUS))
    ]
    for _ in range(short_gaps):
        c, w = blocks[rng.integers(len(blocks))]
        s = int(rng.integers(0, max(1, n - 15)))
        table[s : s + int(rng.integers(1, 16)), c : c + w] = np.nan
    c, w = blocks[rng.integers(len(BT_ACCELEROMETERS))]
    table[: int(rng.integers(1, 6)), c : c + w] = np.nan
    s = int(rng.integers(0, max(1, n - 30)))
    table[s : s + 30, 134:139] = np.nan  # the cup's sensor drops out for a second
