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
