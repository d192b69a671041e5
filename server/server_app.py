"""The Flower ServerApp (Message API, flwr 1.42).

Thin: ``main`` merges the run config over baked-in defaults and calls
:func:`fedotl.server.run.run_server`, which drives a strategy's ``start()``.
``app`` is what ``flwr run .`` loads (pyproject: ``serverapp =
"fedotl.server.server_app:app"``); :func:`make_server_app` bakes the run config in
for ``flwr.simulation.run_simulation``, which passes none.
"""

from __future__ import annotations

from typing import Mapping

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedotl.server.run import run_server


def make_server_app(defaults: Mapping[str, object] | None = None) -> ServerApp:
    defaults = dict(defaults or {})
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        cfg = dict(defaults)
        cfg.update(context.run_config)
        run_server(grid, cfg)

    return app


app = make_server_app()
