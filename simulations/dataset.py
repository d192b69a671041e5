"""One in-memory representation shared by every dataset reader.

A :class:`HARDataset` is a list of :class:`Recording` objects, each one a
contiguous multichannel stream of a single subject sampled at a fixed rate,
plus metadata that is the same for all recordings: channel descriptions,
activity names and the sampling rate.

Body positions are a property of channels (DSADS has five units, PAMAP2
three IMUs), so a per-position view is a channel selection:
:meth:`HARDataset.select_position` returns a dataset whose recordings carry
only that unit's channels and whose ``position`` field is set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np


class DataFormatError(ValueError):
    """A dataset file or folder does not match its documented layout.

    The message always names the file (and the line, where there is one), so
    that the CLI can print it as is instead of a traceback.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)
        self.message = message
        self.path = path
        self.line = line

    def __reduce__(self):
        # Keep path and line when the error crosses a process boundary (parallel readers).
        return (_rebuild_error, (type(self), self.message, self.path, self.line))


def _rebuild_error(cls, message, path, line):
    return cls(message, path=path, line=line)


class DataWarning(UserWarning):
    """A reader applied a documented data policy (NaN interpolated, rows dropped, a channel filled).

    The message names the source and gives the counts; the ``fedotl`` command line prints it as
    one ``warning: ...`` line.  Tests can ``pytest.warns(DataWarning)``.
    """


@dataclass(frozen=True)
class Channel:
    """Description of one sensor column."""

    name: str
    unit: str = ""
    position: str = ""  # body unit, e.g. "RA" or "hand"; "" when not body-worn
    sensor: str = ""  # sensor group within a position, e.g. "acc", "gyro"
    axis: str = ""  # "x", "y", "z" for triples, "" otherwise


@dataclass
class Recording:
    """A contiguous stream of one subject at ``rate_hz``.

    ``data`` is float32 of shape (T, C); ``labels`` is int64 of shape (T,),
    holding activity codes (keys of :attr:`HARDataset.activities`).
    ``segment`` optionally gives, per row, the index of an original file
    segment (DSADS's 5-second files).  ``t0`` is the time in seconds of the
    first row, so row ``i`` happened at ``t0 + i / rate_hz``.
    """

    subject: str
    data: np.ndarray
    labels: np.ndarray
    session: str = ""
    position: str = ""
    t0: float = 0.0
    segment: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.data.ndim != 2:
            raise ValueError(f"recording data must be 2-D (T, C), got shape {self.data.shape}")
        if self.labels.shape != (self.data.shape[0],):
            raise ValueError(
                f"labels must have shape ({self.data.shape[0]},), got {self.labels.shape}"
            )

    def __len__(self) -> int:
        return int(self.data.shape[0])


@dataclass
class HARDataset:
    """Recordings plus the metadata common to them."""

    name: str
    rate_hz: float
    channels: list[Channel]
    activities: dict[int, str]
    recordings: list[Recording] = field(default_factory=list)
    source: str = ""
    # Per-reader facts worth reporting (rows dropped by a policy, segment counts...).
    notes: dict[str, object] = field(default_factory=dict)

    # ------------------------------------------------------------------ views
    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def channel_names(self) -> list[str]:
        return [c.name for c in self.channels]

    @property
    def subjects(self) -> list[str]:
        return sorted({r.subject for r in self.recordings}, key=natural_key)

    @property
    def positions(self) -> list[str]:
        """Body positions, from channel tags (DSADS, PAMAP2) or recordings (generic CSV)."""
        seen: list[str] = []
        tags = [c.position for c in self.channels] + [r.position for r in self.recordings]
        for p in tags:
            if p and p not in seen:
                seen.append(p)
        return seen

    @property
    def n_samples(self) -> int:
        return int(sum(len(r) for r in self.recordings))

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.rate_hz

    def activity_counts(self) -> dict[int, int]:
        """Number of sensor rows per activity code."""
        counts: dict[int, int] = {}
        for r in self.recordings:
            codes, n = np.unique(r.labels, return_counts=True)
            for c, k in zip(codes.tolist(), n.tolist()):
                counts[c] = counts.get(c, 0) + k
        return dict(sorted(counts.items()))

    def position_channels(self, position: str) -> list[int]:
        idx = [i for i, c in enumerate(self.channels) if c.position == position]
        if not idx:
            raise ValueError(
                f"{self.name} has no position {position!r}; positions are {self.positions}"
            )
        return idx

    # -------------------------------------------------------------- selection
    def select_channels(self, indices: Sequence[int], position: str = "") -> "HARDataset":
        idx = list(indices)
        recs = [replace(r, data=r.data[:, idx], position=position or r.position) for r in self.recordings]
        return replace(self, channels=[self.channels[i] for i in idx], recordings=recs)

    def select_position(self, position: str) -> "HARDataset":
        """One body unit: its channels (DSADS, PAMAP2) or its recordings (generic CSV)."""
        if any(c.position == position for c in self.channels):
            return self.select_channels(self.position_channels(position), position=position)
        recs = [r for r in self.recordings if r.position == position]
        if not recs:
            raise ValueError(f"{self.name} has no position {position!r}; positions are {self.positions}")
        return replace(self, recordings=recs)

    def select_subjects(self, subjects: Iterable[str]) -> "HARDataset":
        wanted = {str(s) for s in subjects}
        unknown = wanted - set(self.subjects)
        if unknown:
            raise ValueError(
                f"unknown subject(s) {sorted(unknown)} in {self.name}; subjects are {self.subjects}"
            )
        return replace(self, recordings=[r for r in self.recordings if r.subject in wanted])

    def select_activities(self, codes: Iterable[int]) -> "HARDataset":
        """Keep only rows with these activity codes, splitting recordings at the gaps."""
        keep = np.array(sorted(set(codes)), dtype=np.int64)
        recs: list[Recording] = []
        for r in self.recordings:
            mask = np.isin(r.labels, keep)
            recs.extend(_split_by_mask(r, mask, self.rate_hz))
        acts = {c: n for c, n in self.activities.items() if c in set(keep.tolist())}
        return replace(self, recordings=recs, activities=acts)

    def summary(self) -> dict[str, object]:
        """A JSON-ready description, the payload of ``fedotl data info --json``."""
        counts = self.activity_counts()
        out: dict[str, object] = {
            "dataset": self.name,
            "source": self.source,
            "subjects": self.subjects,
            "positions": self.positions,
            "activities": [self.activities.get(c, str(c)) for c in counts],
            "activity_codes": list(counts),
            "activity_rows": {self.activities.get(c, str(c)): n for c, n in counts.items()},
            "channels": self.n_channels,
            "channel_names": self.channel_names,
            "units": sorted({c.unit for c in self.channels if c.unit}),
            "rate_hz": self.rate_hz,
            "n_samples": self.n_samples,
            "n_recordings": len(self.recordings),
            "duration_s": round(self.duration_s, 3),
        }
        out.update(self.notes)
        return out


def _split_by_mask(r: Recording, mask: np.ndarray, rate_hz: float) -> list[Recording]:
    """Split a recording into the contiguous runs where ``mask`` is true."""
    if mask.all():
        return [r]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    out = []
    for start, stop in zip(edges[::2], edges[1::2]):
        seg = None if r.segment is None else r.segment[start:stop]
        out.append(
            replace(
                r,
                data=r.data[start:stop],
                labels=r.labels[start:stop],
                t0=r.t0 + start / rate_hz,
                segment=seg,
            )
        )
    return out


def natural_key(s: str) -> tuple:
    """Sort "p2" before "p10"."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))
