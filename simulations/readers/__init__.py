"""Readers for the official raw layouts of the supported datasets.

Each module knows one layout, both ways: ``read(path, **options)`` parses it
into a :class:`~fedotl.simulations.dataset.HARDataset`, and
``write_synthetic(out, n_subjects, seed, **options)`` writes synthetic data
in the same layout (for tests and the embedded demo).

Every reader validates at the boundary: a file that breaks its layout raises
:class:`~fedotl.simulations.dataset.DataFormatError` naming the file (and the
line and column where there is one); a documented policy that changed the data
(NaN interpolated, rows dropped) warns with a
:class:`~fedotl.simulations.dataset.DataWarning` giving the counts.  What a
reader returns holds only finite float32 channel values.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from fedotl.simulations.dataset import DataFormatError, DataWarning, HARDataset

__all__ = ["DATASETS", "DataFormatError", "DataWarning", "load_dataset", "writer"]

DATASETS = ("dsads", "pamap2", "opportunity", "generic")


def _module(name: str):
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return importlib.import_module(f"fedotl.simulations.readers.{name}")


def load_dataset(name: str, path: str | Path, **options) -> HARDataset:
    """Read dataset ``name`` from ``path`` (raises DataFormatError on bad files)."""
    return _module(name).read(path, **options)


def writer(name: str) -> Callable[..., list[Path]]:
    return _module(name).write_synthetic
