"""Run directories: where ``demo``, ``simulate``, ``replay`` and ``newuser`` leave their outputs.

:func:`prepare_run_dir` checks a ``--out`` before any work starts, so a folder that cannot hold
the outputs fails in a second with one line rather than after the run.
:func:`run_dir` does the same around a run, and removes the folder again if the run
made it and failed before writing anything into it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Iterator


def default_run_dir(kind: str) -> Path:
    """``runs/<kind>-<date>-<time>`` under the working directory."""
    return Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run_dir(path: str | Path, flag: str = "--out", *, fresh: bool = False, force: bool = False) -> Path:
    """``path`` made (with its parents) and checked writable; a ValueError naming ``flag`` if not.

    ``fresh``: the folder must also be empty, so that an earlier run is never overwritten,
    unless ``force``, which empties it first.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a-file"
    >>> _ = f.write_text("x")
    >>> prepare_run_dir(f)
    Traceback (most recent call last):
    ...
    ValueError: --out ...a-file: is a file, not a folder
    """
    root = Path(path).expanduser()
    if root.exists() and not root.is_dir():
        raise ValueError(f"{flag} {root}: is a file, not a folder")
    if fresh and root.is_dir() and any(root.iterdir()):
        if not force:
            n = sum(1 for _ in root.iterdir())
            raise ValueError(f"{flag} {root}: is not empty ({n} entries, perhaps an earlier run); choose another folder, or pass --force to replace it")
        for entry in root.iterdir():
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".fedotl-write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"{flag} {root}: cannot write there ({e.strerror or e})") from None
    return root.resolve()


@contextlib.contextmanager
def run_dir(path: str | Path, flag: str = "--out", *, fresh: bool = False, force: bool = False) -> Iterator[Path]:
    """:func:`prepare_run_dir`, and on failure the folder removed if this run made it and left it empty.

    >>> import tempfile, pathlib
    >>> where = pathlib.Path(tempfile.mkdtemp()) / "runs" / "run"
    >>> try:
    ...     with run_dir(where):
    ...         raise ValueError("bad data path")
    ... except ValueError:
    ...     pass
    >>> where.exists(), where.parent.exists()
    (False, False)
    """
    wanted = Path(path).expanduser().absolute()
    made = [p for p in (wanted, *wanted.parents) if not p.exists()]  # what this run creates, deepest first
    root = prepare_run_dir(path, flag, fresh=fresh, force=force)
    try:
        yield root
    except BaseException:
        for p in made:
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()
        raise
