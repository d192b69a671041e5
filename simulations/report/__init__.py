"""A run's report: ``metrics.json`` (:mod:`.metrics`), PNG plots (:mod:`.plots`), ``report.md`` and a
self-contained ``report.html`` (:mod:`.render`).

:func:`build_report` makes all of it from a run directory's outputs, which is what
``fedotl report RUN_DIR`` does and what ``demo``, ``simulate``, ``replay`` and ``newuser``
call at their end.  Every file is written to a temporary name and renamed, so an interrupted
build leaves the previous file or the new one, never half of one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from fedotl.client.storage import atomic_write_text
from fedotl.simulations.report.metrics import ReportError, load_metrics, write_metrics
from fedotl.simulations.report.plots import draw_all
from fedotl.simulations.report.render import html_page, markdown

REPORT_MD = "report.md"
REPORT_HTML = "report.html"

__all__ = ["REPORT_HTML", "REPORT_MD", "ReportError", "build_report", "write_run_report"]


def build_report(run_dir: str | Path, metrics: Mapping | None = None) -> dict[str, Path]:
    """Plots, ``report.md`` and ``report.html`` in ``run_dir``, from ``metrics`` or the run's files."""
    root = Path(run_dir)
    metrics = dict(metrics) if metrics is not None else load_metrics(root)
    plots = draw_all(metrics, root)
    md = atomic_write_text(root / REPORT_MD, markdown(metrics, plots, root))
    page = atomic_write_text(root / REPORT_HTML, html_page(metrics, plots))
    return {"markdown": md, "html": page, **{p.stem: p for p, _ in plots}}


def write_run_report(run_dir: str | Path, metrics: Mapping) -> dict[str, Path]:
    """``metrics.json``, then the report built from it."""
    root = Path(run_dir)
    paths = {"metrics": write_metrics(root, metrics)}
    paths.update(build_report(root, metrics))
    return paths

