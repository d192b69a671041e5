"""Readers for the official raw layouts of the supported datasets.

Each module knows one layout, both ways: ``read(path, **options)`` parses it
into a :class:`~fedotl.simulations.dataset.HARDataset`, and
``write_synthetic(out, n_subjects, seed, **options)`` writes synthetic data
in the same layout (for tests and the embedded demo).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from fedotl.simulations.dataset import HARDataset

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
