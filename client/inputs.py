"""The inputs of a device's live sensor stream: CSV lines, a growing file, (MQTT in :mod:`.mqtt_input`).

Every input yields :class:`Sample` objects, one per instant, and knows its
channel names (``.channels``).  A device runtime consumes them one at a time,
as they arrive: nothing here reads ahead of the sample it hands out, so a
``tail -f sensor.csv | fedotl ...`` pipe delivers each row as soon as it is
written.

CSV (:class:`CsvInput`)
    A header line with a ``timestamp`` column, channel columns and an
    optional ``label`` column, in any order; then one row per sample.  Empty
    fields and ``nan`` are *missing values* (NaN); anything else that is not a
    finite number, or is beyond float32's range (``1e39``: the device keeps
    float32 windows), is an :class:`InputError` that names the source, the line
    (1-based, counting every physical line, so the header is line 1 when it
    comes first) and the field.  Timestamps must increase strictly.  Column
    names must be distinct and not empty.  Bytes that are not UTF-8 (a latin-1
    or UTF-16 export) end the input with an :class:`InputError` at the line
    reached.  Blank lines and ``#`` comments are skipped.  The CSV is a recording a device
    made itself, so a bad row is fatal: it is better to stop than to learn
    from a shifted column.  (MQTT, fed by a gateway, rejects bad messages
    and goes on instead: see :mod:`fedotl.client.mqtt_input`.)

:func:`follow`
    The lines of a file that is still being written, like ``tail -f`` from
    its start; feed them to :class:`CsvInput`.

>>> src = CsvInput(["timestamp,acc_y,label,acc_x", "0.00,1.5,walking,0.1", "# a comment", "0.02,,,0.2"], "sensor.csv")
>>> src.channels
['acc_y', 'acc_x']
>>> for s in src:
...     print(s.t, s.values, s.label)
0.0 [1.5 0.1] walking
0.02 [nan 0.2] None
>>> list(CsvInput(["timestamp,acc_x", "0.0,0.1", "0.0,0.2"], "sensor.csv"))
Traceback (most recent call last):
...
fedotl.client.inputs.InputError: sensor.csv, line 3, field 'timestamp': timestamp repeats (0.0 again)
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from operator import itemgetter
from typing import Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np

__all__ = ["Sample", "SampleInput", "InputError", "CsvInput", "follow", "TIMESTAMP", "LABEL"]

TIMESTAMP = "timestamp"
LABEL = "label"
_MISSING = frozenset({"", "nan", "+nan", "-nan"})  # lower-cased; float() reads all but "" as NaN
_F32_MAX = float(np.finfo(np.float32).max)  # windows are float32: a larger value would become inf there


@dataclass(frozen=True, slots=True, eq=False)
class Sample:
    """One instant of the stream: time ``t`` (seconds), one value per channel, an optional label.

    ``values`` is a read-only float64 array of shape (C,), in the input's
    channel order; NaN is a missing value.  Two samples are equal when their
    times, labels and values are (NaN equals NaN).

    >>> Sample(0.5, np.array([1.0, np.nan]), "sit") == Sample(0.5, np.array([1.0, np.nan]), "sit")
    True
    """

    t: float
    values: np.ndarray
    label: str | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sample):
            return NotImplemented
        return (
            self.t == other.t
            and self.label == other.label
            and self.values.shape == other.values.shape
            and bool(np.array_equal(self.values, other.values, equal_nan=True))
        )

    __hash__ = None  # type: ignore[assignment]  # equal by value, holds an array: unhashable


class SampleInput(Protocol):
    """What a device runtime consumes: an iterable of samples with known channel names."""

    @property
    def channels(self) -> list[str] | None: ...

    def __iter__(self) -> Iterator[Sample]: ...


class InputError(ValueError):
    """A bad input, located: ``"<source>, line <n>, field '<name>': <problem>"``.

    ``field`` is None only when no single field is to blame (e.g. an empty
    input or an extra field with no column); the CLI prints ``str(err)`` on
    one line and exits 2.

    >>> str(InputError("sensor.csv", 7, "acc_x", "'abc' is not a number"))
    "sensor.csv, line 7, field 'acc_x': 'abc' is not a number"
    """

    def __init__(self, source: str, line: int, field: str | None, problem: str) -> None:
        self.source, self.line, self.field, self.problem = source, line, field, problem
        where = f"{source}, line {line}" + (f", field {field!r}" if field is not None else "")
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # picklable across processes despite the 4-argument constructor
        return (type(self), (self.source, self.line, self.field, self.problem))


def _clip(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[:n] + "...")


class CsvInput:
    """Samples from CSV lines, one per data row, as the rows arrive.

    ``lines`` is any iterable of lines (a list, an open file, ``sys.stdin``,
    :func:`follow`); it is read one line at a time and never ahead of the row
    being returned.  ``source`` names it in errors (a file name or
    ``"<stdin>"``).  ``required`` lists channel columns the header must have.

    The header is read lazily: on the first use of :attr:`channels`,
    :meth:`read_header` or iteration, whichever comes first (so constructing a
    ``CsvInput`` on ``sys.stdin`` never blocks).  Iteration is a single pass
    over ``lines``; it raises :class:`InputError` at the first bad line.
    """

    def __init__(self, lines: Iterable[str], source: str, required: Sequence[str] | None = None) -> None:
        if isinstance(lines, (str, bytes)):
            raise TypeError("CsvInput takes an iterable of lines, not one string (use text.splitlines())")
        self.source = source
        self.required = list(required) if required is not None else []
        self._lines = iter(lines)
        self._lineno = 0  # physical lines read so far
        self._channels: list[str] | None = None
        self._columns: list[str] = []
        self._parse: Callable[[str, int], Sample] | None = None
        self._last_t = -math.inf

    # -- header ---------------------------------------------------------------

    @property
    def channels(self) -> list[str]:
        """The channel names in header order (every column but ``timestamp`` and ``label``); reads the header if needed."""
        return list(self.read_header())

    @property
    def columns(self) -> list[str]:
        """All header columns, in order (reads the header if needed)."""
        self.read_header()
        return list(self._columns)

    @property
    def line(self) -> int:
        """The number of the last line read (0 before any)."""
        return self._lineno

    def read_header(self) -> list[str]:
        """Read the header line (once; later calls return the same channels) and return the channel names."""
        if self._channels is not None:
            return self._channels
        try:
            for raw in self._lines:
                self._lineno += 1
                text = raw.strip().lstrip("\ufeff").strip()  # a byte-order mark from a spreadsheet export
                if text and not text.startswith("#"):
                    self._set_header([c.strip() for c in text.split(",")])
                    assert self._channels is not None
                    return self._channels
        except UnicodeDecodeError as exc:
            raise self._not_utf8(exc) from None
        raise InputError(self.source, self._lineno + 1, None, f"no header line (expected a header with a {TIMESTAMP!r} column)")

    def _set_header(self, cols: list[str]) -> None:
        err = lambda field, problem: InputError(self.source, self._lineno, field, problem)  # noqa: E731
        for i, c in enumerate(cols):
            if not c:
                raise err(None, f"column {i + 1} of {len(cols)} has no name")
        seen: set[str] = set()
        for c in cols:
            if c in seen:
                raise err(c, "duplicate column name")
            seen.add(c)
        if TIMESTAMP not in seen:
            raise err(TIMESTAMP, f"the header has no {TIMESTAMP!r} column (columns: {', '.join(cols)})")
        for r in self.required:
            if r not in seen:
                raise err(r, "required column is missing from the header")
        channels = [c for c in cols if c not in (TIMESTAMP, LABEL)]
        if not channels:
            raise err(None, f"no channel columns besides {TIMESTAMP!r} and {LABEL!r}")
        self._columns = cols
        self._channels = channels
        self._parse = self._row_parser(cols, channels)

    # -- rows -----------------------------------------------------------------

    def _row_parser(self, cols: list[str], channels: list[str]) -> Callable[[str, int], Sample]:
        """A closure that turns one stripped data line into a Sample (the hot path: plain ``str.split``)."""
        source, n = self.source, len(cols)
        ti = cols.index(TIMESTAMP)
        li = cols.index(LABEL) if LABEL in cols else None
        idx = [cols.index(c) for c in channels]
        pick = itemgetter(*idx) if len(idx) > 1 else (lambda f: (f[idx[0]],))
        array = np.array

        def bad_values(fields: list[str], lineno: int) -> list[float]:
            """The slow path: find the field to blame, or read missing values as NaN."""
            out = []
            for name, i in zip(channels, idx):
                text = fields[i].strip()
                if text.lower() in _MISSING:
                    out.append(math.nan)
                    continue
                try:
                    if "_" in text:
                        raise ValueError
                    v = float(text)
                except ValueError:
                    raise InputError(source, lineno, name, f"{_clip(text)} is not a number") from None
                if math.isinf(v):
                    raise InputError(source, lineno, name, f"{_clip(text)} is not a finite number")
                if abs(v) > _F32_MAX:
                    raise InputError(source, lineno, name, f"{_clip(text)} is out of range (beyond ±{_F32_MAX:.3g})")
                out.append(v)
            return out

        def parse(text: str, lineno: int) -> Sample:
            fields = text.split(",")
            if len(fields) != n:
                missing = cols[len(fields)] if len(fields) < n else None
                raise InputError(source, lineno, missing, f"expected {n} fields ({','.join(cols)}), got {len(fields)}")
            ts = fields[ti]
            try:
                t = float(ts)
            except ValueError:
                ts = ts.strip()
                raise InputError(source, lineno, TIMESTAMP, "the timestamp is empty" if not ts else f"{_clip(ts)} is not a number") from None
            if not math.isfinite(t) or "_" in ts:
                raise InputError(source, lineno, TIMESTAMP, f"{_clip(ts.strip())} is not a finite number")
            last = self._last_t
            if t <= last:
                problem = f"timestamp repeats ({t!r} again)" if t == last else f"timestamps go backwards ({t!r} after {last!r})"
                raise InputError(source, lineno, TIMESTAMP, problem)
            strs = pick(fields)
            try:
                vals = list(map(float, strs))
                # not (max <= F32_MAX): inf, out of range, or NaN (which the slow path reads as missing)
                if not max(map(abs, vals)) <= _F32_MAX or ("_" in text and any("_" in s for s in strs)):
                    raise ValueError
            except ValueError:
                vals = bad_values(fields, lineno)
            values = array(vals)
            values.setflags(write=False)
            label = fields[li].strip() or None if li is not None else None
            self._last_t = t
            return Sample(t, values, label)

        return parse

    def __iter__(self) -> Iterator[Sample]:
        self.read_header()
        parse = self._parse
        assert parse is not None
        try:
            for raw in self._lines:
                self._lineno += 1
                text = raw.strip()
                if not text or text[0] == "#":
                    continue
                yield parse(text, self._lineno)
        except UnicodeDecodeError as exc:  # from the file or stdin being decoded as it is read
            raise self._not_utf8(exc) from None

    def _not_utf8(self, exc: UnicodeDecodeError) -> InputError:
        # A text stream decodes ahead in chunks: the bad byte is on this line or a later one.
        byte = exc.object[exc.start] if isinstance(exc.object, (bytes, bytearray)) else None
        what = f" (byte {byte:#04x})" if byte is not None else ""
        return InputError(self.source, self._lineno + 1, None, f"not UTF-8 text{what} at or after this line: save the input as UTF-8")


def follow(path: str | os.PathLike[str], poll_s: float = 0.1, idle_timeout: float | None = None, stop: threading.Event | None = None) -> Iterator[str]:
    """The lines of a file that is still being written, from its start, as they are completed.

    Yields each complete line (with its ``"\\n"``) once its newline is on
    disk; at the end of the file waits ``poll_s`` and looks again.  Ends when
    the file has not grown for ``idle_timeout`` seconds (None: never) or when
    ``stop`` is set (checked every ``poll_s``).  A last line without its
    newline is held back until the newline arrives; once idle it is yielded
    as it is (a file that just does not end in a newline), while on ``stop``
    it is dropped (it may be half written).  The file must exist; truncation
    or rotation is not followed.  Bytes are decoded as UTF-8 (invalid bytes
    become U+FFFD, which a parser then reports with its line number).
    """
    if poll_s <= 0:
        raise ValueError(f"poll_s must be > 0, got {poll_s}")
    with open(path, "rb", buffering=0) as f:
        pending = b""
        last_growth = time.monotonic()
        while stop is None or not stop.is_set():
            chunk = f.read(1 << 16)
            if chunk:
                last_growth = time.monotonic()
                pending += chunk
                if b"\n" in chunk:
                    *complete, pending = pending.split(b"\n")
                    for line in complete:
                        yield line.decode("utf-8", "replace") + "\n"
                continue
            if idle_timeout is not None and time.monotonic() - last_growth >= idle_timeout:
                if pending:
                    yield pending.decode("utf-8", "replace")
                return
            wait = poll_s if idle_timeout is None else max(0.0, min(poll_s, last_growth + idle_timeout - time.monotonic()))
            if stop is not None:
                if stop.wait(wait):
                    return
            else:
                time.sleep(wait)
