"""Every docstring example in every ``fedotl`` module runs (river's convention: examples are tests)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import fedotl

MODULES = sorted(m.name for m in pkgutil.walk_packages(fedotl.__path__, prefix="fedotl.") if not m.name.endswith(".__main__"))


def test_every_layer_is_walked():
    layers = {name.split(".")[1] for name in MODULES}
    assert {"online", "client", "server", "simulations", "deploy", "benchmarks"} <= layers


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed in {name}"
