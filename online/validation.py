"""Input validation shared by the online learners: parameters, feature values, PA variants.

* :func:`check_positive` -- hyper-parameters that must be positive finite numbers (C, gamma, ...);
* :func:`variant_code`   -- the PA variant name (``"PA"``, ``"PA-I"``, ``"PA-II"``) as the code
  0 / 1 / 2 that :func:`fedotl.online.kernels.pa_tau` takes;
* :func:`reject_values`  -- the ``ValueError`` naming the key of a non-numeric, NaN or infinite
  value in a dict of features;
* :func:`row_norms`      -- squared row norms of a 2-D batch, rejecting NaN / inf rows.

The finiteness check of one sample on the array path is done from its squared norm (which the
update needs anyway): ``x.dot(x)`` is NaN/inf exactly when some value is, or when the values are
so large that the squared norm overflows; both are reported with :data:`NONFINITE`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["F64", "NONFINITE", "VARIANTS", "check_positive", "reject_values", "row_norms", "variant_code"]

#: PA variants, in the order of their codes 0, 1, 2.
VARIANTS = ("PA", "PA-I", "PA-II")

#: float64, the dtype of the array path (compared by identity in the hot path).
F64 = np.dtype(np.float64)

#: Message of the ``ValueError`` for a sample with NaN / inf values (or an overflowing norm).
NONFINITE = "x contains NaN or infinite values (or values whose squared norm overflows)"


def variant_code(variant: str) -> int:
    """Map a PA variant name to 0 (PA), 1 (PA-I) or 2 (PA-II).

    >>> variant_code("PA-II")
    2
    """
    try:
        return VARIANTS.index(variant)
    except ValueError:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}") from None


def check_positive(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive finite int or float."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def reject_values(x: dict) -> None:
    """Raise the ``ValueError`` for a dict of features that holds a bad value, naming its key.

    Called once a dict is known to hold a non-numeric, NaN or infinite value.
    """
    for k, v in x.items():
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"feature {k!r} has a non-numeric value {v!r}") from None
        if not math.isfinite(fv):
            raise ValueError(f"feature {k!r} is {fv} (NaN or infinite values are rejected)")
    raise ValueError("features must be real numbers")  # pragma: no cover - e.g. complex


def row_norms(X: np.ndarray) -> np.ndarray:
    """Squared norms of the rows of a float 2-D array; ``ValueError`` naming the first bad row."""
    # row by row with dot, as the one-sample path (``_check_x``) does: einsum may differ in the last bit,
    # and then a stream learnt from X would not be bit for bit the same stream learnt sample by sample
    sq = np.fromiter((r.dot(r) for r in X), dtype=np.float64, count=X.shape[0])
    if not np.isfinite(sq).all():
        bad = int(np.flatnonzero(~np.isfinite(sq))[0])
        raise ValueError(f"X row {bad} contains NaN or infinite values")
    return sq
