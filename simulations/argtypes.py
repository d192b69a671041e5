"""argparse value types: a bad value is a one-line usage error, never a traceback."""

from __future__ import annotations

import argparse
from typing import Callable


def bounded(cast: Callable[[str], float], ok: Callable[[float], bool], what: str) -> Callable[[str], float]:
    """A type that parses with ``cast`` and accepts values where ``ok`` holds.

    >>> fraction = bounded(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")
    >>> fraction("0.25")
    0.25
    >>> fraction("2")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a fraction in (0, 1), got '2'
    """
    kind = "an integer" if cast is int else "a number"

    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    return parse


positive_float = bounded(float, lambda v: v > 0, "a positive number")
positive_int = bounded(int, lambda v: v >= 1, "a positive integer")
non_negative_float = bounded(float, lambda v: v >= 0, "a non-negative number")
fraction = bounded(float, lambda v: 0.0 < v < 1.0, "a fraction in (0, 1)")
