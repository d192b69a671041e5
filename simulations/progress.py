"""Progress bars on stderr, shown only when a person is watching (stderr is a TTY)."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], **kwargs) -> Iterable[T]:
    """``tqdm(items)`` on an interactive terminal; the plain iterable otherwise (CI, pipes)."""
    return tqdm(items, file=sys.stderr, disable=not sys.stderr.isatty(), leave=False, **kwargs)


def progress_bar(total: int, **kwargs) -> tqdm:
    """A bar to ``update()`` by hand (silent, but still callable, when nobody is watching)."""
    return tqdm(total=total, file=sys.stderr, disable=not sys.stderr.isatty(), leave=False, **kwargs)


class RoundFollower:
    """Moves ``bar`` by one for each ``round`` event a run appends to its ``metrics.jsonl``.

    The ServerApp writes that file as it goes (:mod:`fedotl.server.report`), whichever engine
    runs it, so following the file needs no hook into Flower.  A daemon thread polls it; use it
    as a context manager around the run.
    """

    def __init__(self, path, bar: tqdm, every_s: float = 0.5):
        import threading

        self.path, self.bar, self.every_s = path, bar, every_s
        self.seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True, name="round-follower")

    def _count(self) -> int:
        import json

        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError:
            return 0
        n = 0
        for line in lines:
            try:
                n += json.loads(line).get("event") == "round"
            except (ValueError, AttributeError):
                pass  # the line being written, or not an event
        return n

    def _poll(self) -> None:
        while not self._stop.wait(self.every_s):
            self._advance()

    def _advance(self) -> None:
        n = self._count()
        if n > self.seen:
            self.bar.update(n - self.seen)
            self.seen = n

    def __enter__(self) -> "RoundFollower":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._advance()
