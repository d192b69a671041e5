"""Flower records ↔ numpy dicts, the one conversion both apps use."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from flwr.app import Array, ArrayRecord


def record_to_arrays(record: ArrayRecord | None) -> dict[str, np.ndarray]:
    """An ArrayRecord as ``{name: ndarray}`` (empty for ``None``)."""
    if record is None:
        return {}
    return {k: v.numpy() for k, v in record.items()}


def arrays_to_record(arrays: Mapping[str, np.ndarray] | None) -> ArrayRecord:
    """``{name: ndarray}`` as an ArrayRecord, in the dict's order."""
    if not arrays:
        return ArrayRecord()
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})
