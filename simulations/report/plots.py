"""The report's PNG plots, drawn from ``metrics.json`` alone (matplotlib, no display needed).

Each function draws one plot from the pieces it needs and returns the file it wrote, or None
when the run has nothing for it (a replay has no strategies, a simulation no learners):

* :func:`plot_rounds`: mean accuracy over devices per round, one line per strategy (FedHealth's
  personalised result as a star after its last round);
* :func:`plot_devices`: every device's accuracy per strategy, sorted, so the worst devices show;
* :func:`plot_mistakes`: each new-user learner's cumulative mistake rate against windows seen;
* :func:`plot_confusion`: the best strategy's confusion matrix, rows normalised;
* :func:`plot_latency`: the distribution of prediction latency over the replayed devices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from fedotl.client.storage import atomic_write_bytes
from fedotl.simulations.report.metrics import best_strategy

PLOT_DIR = "plots"
DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: never a window, never a display
    import matplotlib.pyplot as plt

    return plt


def _figure():
    """A figure of the report's common size, and its axes."""
    return _pyplot().subplots(figsize=(7.5, 4.2))


def _save(fig, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    _pyplot().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


# Lines of equal values (FedHealth's rounds are FedAvg's; an ensemble that follows its own PA-I) would
# hide each other: every line gets its own dash pattern and marker, so overlaps still show.
_DASHES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)))
_MARKERS = ("o", "s", "^", "D", "v", "P")


def _style(i: int) -> dict:
    return {"ls": _DASHES[i % len(_DASHES)], "marker": _MARKERS[i % len(_MARKERS)], "ms": 3.5, "lw": 1.6}


def _label(ax, xlabel: str, ylabel: str, heading: str, *, unit_range: bool = True, log_x: bool = False, **legend) -> None:
    """Axis labels, heading, grid and legend (``legend``: its options), the same on every plot."""
    if log_x:
        ax.set_xscale("log")
    if unit_range:
        ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(heading)
    ax.grid(alpha=0.3, which="both")
    ax.legend(**{"fontsize": 9, **legend})


def plot_rounds(metrics: Mapping, out: Path) -> Path | None:
    strategies = {k: v for k, v in (metrics.get("strategies") or {}).items() if v.get("per_round")}
    if not strategies:
        return None
    fig, ax = _figure()
    for i, (name, s) in enumerate(strategies.items()):
        r = [p["round"] for p in s["per_round"]]
        line = ax.plot(r, [p["mean_accuracy"] for p in s["per_round"]], **_style(i), label=f"{name} (global model)" if "global_mean_accuracy" in s else name)
        if "global_mean_accuracy" in s and s.get("mean_accuracy") is not None:
            ax.plot([r[-1] + 0.5], [s["mean_accuracy"]], marker="*", ms=13, ls="none", color=line[0].get_color(), label=f"{name} personalised")
    _label(ax, "federated round", "mean accuracy over devices", "Accuracy per round", loc="lower right")
    return _save(fig, out / "accuracy_per_round.png")


def plot_devices(metrics: Mapping, out: Path) -> Path | None:
    strategies = {k: v for k, v in (metrics.get("strategies") or {}).items() if v.get("per_device")}
    if not strategies:
        return None
    fig, ax = _figure()
    for i, (name, s) in enumerate(strategies.items()):
        acc = np.sort(np.asarray(list(s["per_device"].values()), dtype=float))
        ax.plot(np.arange(1, acc.size + 1), acc, **_style(i), label=f"{name} (worst {acc[0]:.3f})")
    _label(ax, "device, sorted by accuracy (worst first)", "test accuracy", "Accuracy per device", loc="lower right")
    return _save(fig, out / "accuracy_per_device.png")


def plot_mistakes(metrics: Mapping, out: Path) -> Path | None:
    online = {k: v for k, v in (metrics.get("online") or {}).items() if v.get("curve", {}).get("at")}
    if not online:
        return None
    fig, ax = _figure()
    for i, (name, v) in enumerate(online.items()):
        t = np.asarray(v["curve"]["at"], dtype=float)
        ax.plot(t, np.asarray(v["curve"]["mistakes"]) / t, label=f"{name} ({v['mistake_rate_mean']:.3f})", **_style(i) | {"ms": 2.5})
    _label(ax, "windows seen (log scale)", "cumulative mistake rate", "New users: cumulative mistake rate, mean over devices",
           log_x=True, loc="upper right", title="learner (final rate)", title_fontsize=9)
    return _save(fig, out / "mistake_rate_curves.png")


def plot_confusion(metrics: Mapping, out: Path) -> Path | None:
    strategies = metrics.get("strategies") or {}
    best = best_strategy({k: v for k, v in strategies.items() if v.get("confusion")})
    if best is None:
        return None
    cm = np.asarray(strategies[best]["confusion"]["matrix"], dtype=float)
    labels = [str(v) for v in strategies[best]["confusion"]["labels"]]
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    plt = _pyplot()
    k = len(labels)
    size = min(9.0, 3.5 + 0.3 * k)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels, fontsize=8)
    ax.set_xlabel("predicted activity")
    ax.set_ylabel("true activity")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true activity's windows")
    ax.set_title(f"Confusion matrix of {best}, all devices")
    return _save(fig, out / "confusion_matrix.png")


def plot_latency(metrics: Mapping, out: Path) -> Path | None:
    hist = (metrics.get("devices") or {}).get("latency_hist") or {}
    if not hist.get("groups"):
        return None
    edges = np.asarray(hist["edges"], dtype=float)
    fig, ax = _figure()
    top = max(max(g["counts"]) for g in hist["groups"].values())
    ax.set_ylim(0, top * 1.45)  # headroom for the legend above the peaks
    for name, g in hist["groups"].items():
        ax.stairs(g["counts"], edges, fill=len(hist["groups"]) == 1, alpha=0.6 if len(hist["groups"]) == 1 else 1.0, lw=1.6,
                  label=f"{name}: {g['n']:,} predictions, p50 {g['p50']:.2f} ms, p99 {g['p99']:.2f} ms")
    _label(ax, "latency from a window's last sample to its prediction (ms, log scale)", "predictions",
           "Prediction latency over the replayed devices", unit_range=False, log_x=True, fontsize=8, title="learner", title_fontsize=9)
    return _save(fig, out / "latency.png")


#: The plots in the order the report shows them, with their captions.
PLOTS: tuple[tuple[Callable[[Mapping, Path], Path | None], str], ...] = (
    (plot_rounds, "Mean accuracy over devices after each federated round."),
    (plot_devices, "Each device's test accuracy under each strategy, sorted from the worst device."),
    (plot_mistakes, "New users: cumulative mistake rate as labelled windows arrive (mean over the held-out devices)."),
    (plot_confusion, "Confusion matrix of the best strategy, summed over devices; each row sums to 1."),
    (plot_latency, "Latency from a window's last sample to its prediction, over every replayed device."),
)


def draw_all(metrics: Mapping, run_dir: Path) -> list[tuple[Path, str]]:
    """Every plot that applies, under ``run_dir/plots``: (file, caption) pairs."""
    out = Path(run_dir) / PLOT_DIR
    drawn = []
    for draw, caption in PLOTS:
        path = draw(metrics, out)
        if path is not None:
            drawn.append((path, caption))
    return drawn
