"""fedotl: federated and online transfer learning on wearable sensor streams.

The repository's top-level folders are this package's layers, from the
bottom up (an import only points down or sideways):

* :mod:`fedotl.online`: online (transfer) learners and their math;
* :mod:`fedotl.client`: the device: windows, features, model, training, its
  local store and the Flower ClientApp;
* :mod:`fedotl.server`: the Flower ServerApp, strategies and aggregation;
* :mod:`fedotl.simulations`, :mod:`fedotl.deploy`, :mod:`fedotl.benchmarks`:
  the harness (datasets, experiments, the ``fedotl`` command line), the
  Deployment Engine launcher and the speed benchmarks.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fedotl")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
