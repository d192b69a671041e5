"""Whitespace-separated numeric tables (PAMAP2, OPPORTUNITY) and their NaN policies.

Shared by the readers whose raw files are space-separated numbers with
``NaN`` for missing values: fast parsing with exact error locations, code
checks, gap measurement and interpolation, and run splitting.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from fedotl.simulations.dataset import DataFormatError


def load_table(path: Path, n_columns: int) -> np.ndarray:
    """Parse a whitespace-separated numeric file with exactly ``n_columns`` per row.

    The happy path is one ``np.loadtxt`` call; only when it fails (or the
    shape is wrong) is the file scanned line by line to name the culprit.
    Blank lines are skipped, as ``np.loadtxt`` does.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from None
    if not raw.strip():
        raise DataFormatError("file is empty (no data rows)", path=str(path))
    reason = ""
    try:
        with warnings.catch_warnings():  # "input contained no data": said below, naming the file
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(io.BytesIO(raw), dtype=np.float64, comments=None, ndmin=2)
        if table.shape[0] == 0:  # only characters loadtxt splits on, such as \x1c
            raise DataFormatError("file is empty (no data rows)", path=str(path))
        if table.shape[1] == n_columns:
            return table
    except DataFormatError:
        raise
    except ValueError as exc:
        reason = f": {exc}"
    _diagnose(raw, n_columns, path)
    # Only reached when Python's float() accepts what np.loadtxt refused.
    raise DataFormatError(f"could not parse file{reason}", path=str(path))


def _diagnose(raw: bytes, n_columns: int, path: Path) -> None:
    """Raise a DataFormatError naming the first bad line (the slow path)."""
    # bytes.splitlines breaks at \n, \r and \r\n only, as an editor (and data_line_numbers) counts;
    # str.splitlines would also break at \x0b, \x0c, \x1c-\x1e, \x85, \u2028 and shift the line numbers
    lines = [ln.decode("utf-8", errors="replace") for ln in raw.splitlines()]
    last = len(lines) - 1
    while last >= 0 and not lines[last].strip():
        last -= 1
    unterminated = not raw.endswith((b"\n", b"\r"))
    for i, line in enumerate(lines):
        cells = line.split()
        if not cells:
            continue
        truncated = i == last and unterminated
        if len(cells) != n_columns:
            what = "truncated last line: " if truncated else ""
            raise DataFormatError(
                f"{what}expected {n_columns} columns, found {len(cells)}", path=str(path), line=i + 1
            )
        for j, c in enumerate(cells):
            try:
                if "_" in c:  # float() accepts "1_0", np.loadtxt does not
                    raise ValueError(c)
                float(c)
            except ValueError:
                what = " (truncated last line?)" if truncated else ""
                raise DataFormatError(
                    f"non-numeric value {c!r} in column {j + 1}{what}", path=str(path), line=i + 1
                ) from None


def data_line_numbers(path: Path) -> np.ndarray:
    """1-based line number of each non-blank line (row i of load_table -> line)."""
    lines = path.read_bytes().splitlines()
    return np.array([i + 1 for i, ln in enumerate(lines) if ln.strip()], dtype=np.int64)


def check_codes(values: np.ndarray, known: set[int], path: Path, what: str, known_from: str = "") -> np.ndarray:
    """Integer label codes from a float column; unknown or non-integer codes raise.

    ``known_from`` says where the known codes come from (e.g. a legend file), for the message.
    """
    ok = np.isfinite(values) & (np.abs(values) < 2**53)  # beyond: no exact integer, and the cast overflows
    ok[ok] = values[ok] == np.round(values[ok])
    codes = np.where(ok, values, -1).astype(np.int64)
    ok &= np.isin(codes, np.fromiter(known, dtype=np.int64, count=len(known)))
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise DataFormatError(
            f"unknown {what} code {float(values[row]):g}" + (f" (not in {known_from})" if known_from else ""),
            path=str(path),
            line=int(data_line_numbers(path)[row]),
        )
    return codes


# Channels are kept as float32: a value beyond its range would become inf there.
F32_MAX = float(np.finfo(np.float32).max)


def out_of_range(values: np.ndarray) -> np.ndarray:
    """True where a value is infinite or beyond float32's range (NaN, a missing value, is not)."""
    with np.errstate(invalid="ignore"):
        return np.abs(values) > F32_MAX


def check_in_range(data: np.ndarray, path: Path, names: Sequence[str]) -> None:
    """Refuse an infinite or out-of-range value in a (T, C) block of channels, naming line and channel."""
    bad = out_of_range(data)
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise DataFormatError(
            f"infinite or out-of-range value {float(data[row, col]):g} in channel {names[col]!r}",
            path=str(path),
            line=int(data_line_numbers(path)[row]),
        )


def check_finite(values: np.ndarray, path: Path, what: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFormatError(f"missing {what}", path=str(path), line=int(data_line_numbers(path)[row]))


def nan_run_lengths(mask: np.ndarray) -> np.ndarray:
    """For a (T, C) boolean mask, the length of the True run each True cell lies in (0 elsewhere)."""
    t, c = mask.shape
    out = np.zeros((t, c), dtype=np.int32)  # int32: half the memory on 400k-row files
    if not mask.any():
        return out
    # Walk the columns one after another (column-major), with a False
    # sentinel between columns so runs never join across them.
    padded = np.zeros((c, t + 1), dtype=np.int8)
    padded[:, :t] = mask.T
    flat = np.concatenate([[0], padded.ravel()])
    d = np.diff(flat)
    lengths = np.flatnonzero(d == -1) - np.flatnonzero(d == 1)
    out_t = out.T  # a view: filling it fills out
    out_t[mask.T] = np.repeat(lengths, lengths)
    return out


def fill_nan_linear(
    block: np.ndarray, out: np.ndarray | None = None, columns: Sequence[int] | None = None
) -> np.ndarray:
    """Linearly interpolate NaN over rows, per column; ends take the nearest value.

    Columns without any value stay NaN.  Writes into ``out[:, columns]``
    when given (so callers can fill a view of a larger array), else in place.
    """
    target = block if out is None else out
    cols = range(block.shape[1]) if columns is None else columns
    idx = np.arange(block.shape[0])
    for k, col in enumerate(cols):
        x = block[:, k]
        nan = np.isnan(x)
        if not nan.any() or nan.all():
            continue
        filled = x.copy()
        filled[nan] = np.interp(idx[nan], idx[~nan], x[~nan])
        target[:, col] = filled
    return target


def time_breaks(times: np.ndarray, rate_hz: float) -> np.ndarray:
    """True at row i when it does not follow row i-1 by about one sample period."""
    dt = np.diff(times, prepend=times[0] - 1.0 / rate_hz)
    return (dt <= 0) | (dt > 1.5 / rate_hz)


def contiguous_runs(keep: np.ndarray, breaks: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of the maximal runs of ``keep`` rows not interrupted by a break."""
    n = len(keep)
    if n == 0:
        return []
    prev_keep = np.concatenate([[False], keep[:-1]])
    starts = np.flatnonzero(keep & (~prev_keep | breaks))
    next_keep = np.concatenate([keep[1:], [False]])
    next_break = np.concatenate([breaks[1:], [True]])
    stops = np.flatnonzero(keep & (~next_keep | next_break)) + 1
    return list(zip(starts.tolist(), stops.tolist()))


def write_table(path: Path, table: np.ndarray, fmt: Sequence[str]) -> None:
    """Write rows space-separated, with NaN spelled "NaN" as in the UCI files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savetxt(buf, table, fmt=list(fmt), delimiter=" ")
    path.write_bytes(buf.getvalue().replace(b"nan", b"NaN"))
