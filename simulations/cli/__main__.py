"""``python -m fedotl.simulations.cli``: the same as the ``fedotl`` command."""

from fedotl.simulations.cli import main

raise SystemExit(main())
