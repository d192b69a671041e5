"""``metrics.json``: what every run of the harness leaves for ``fedotl report``.

One JSON object per run directory, built from pieces so that every command writes the
pieces it has and the report shows what applies:

``strategies``
    name → ``mean_accuracy``, ``worst_accuracy``, ``worst_device``, ``macro_f1``,
    ``per_round`` (``round``, ``mean_accuracy``, ``worst_accuracy``, ``macro_f1``),
    ``per_device``, ``per_device_macro_f1``, ``confusion`` (``labels``, ``matrix``: true ×
    predicted, summed over devices) and, for FedHealth, ``global_mean_accuracy`` (before
    personalisation).  From a federated run's ``summary.json`` (:func:`strategy_piece`).
``online``
    learner → ``mistake_rate_mean`` (over devices), ``mistakes_at`` (mean cumulative mistakes
    after 10, 50 and 100 windows), ``curve`` (the mean mistake trace:
    :func:`fedotl.online.evaluation.mistake_trace`) and ``per_device``.
``devices``
    ``devices`` (one row per replayed device and learner: windows, accuracy, persistence,
    latency p50/p99), ``latency_ms`` (p50, p99 over every prediction) and ``latency_hist``
    (log-spaced bins), so a plot can be redrawn from this file alone.

Beside them: ``kind`` (demo, simulate, replay, newuser), ``status`` (``complete``, or
``interrupted`` or ``failed`` with ``interrupted_in`` naming the step), ``config``, ``seed``, ``dataset``,
``steps`` (name, seconds) and ``notes``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

import fedotl
from fedotl.client.device import latency_percentiles
from fedotl.client.storage import atomic_write_text
from fedotl.online.evaluation import CURVE_AT, mean_trace

METRICS_FILE = "metrics.json"
MISTAKES_AT = CURVE_AT[:3]  # the report's "mistakes after" columns: 10, 50 and 100 windows
STATUSES = ("complete", "interrupted", "failed")
SCRATCH, PERSISTENCE = "pa_scratch", "persistence"  # the device learner from scratch, and the baseline
BASELINES = {SCRATCH: "PA-I from scratch on the device's own running-standardised features",
             PERSISTENCE: "the previous window's label (the baseline of recorded order)"}


class ReportError(ValueError):
    """A run directory that holds nothing to report (the message names it)."""


def new_metrics(kind: str, *, config: Mapping[str, object] | None = None, seed: int | None = None) -> dict:
    """An empty ``metrics.json`` of one kind of run, marked interrupted until :func:`finish` says otherwise."""
    return {
        "kind": kind, "status": "interrupted", "fedotl": fedotl.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seed": seed, "config": dict(config or {}),
        "steps": [], "notes": [],
    }


def finish(metrics: dict, status: str = "complete", step: str | None = None) -> dict:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    metrics["status"] = status
    if step is not None:
        metrics["interrupted_in"] = step
    return metrics


def write_metrics(run_dir: str | Path, metrics: Mapping[str, object]) -> Path:
    """``metrics.json`` written whole (temporary name, then rename)."""
    path = Path(run_dir) / METRICS_FILE
    atomic_write_text(path, json.dumps(metrics, indent=1, default=_plain))
    return path


def _plain(v: object) -> object:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"{type(v).__name__} is not JSON")


# ---------------------------------------------------------------- strategies
def strategy_piece(summary: Mapping[str, object]) -> dict:
    """A federated (or central) run's summary as one entry of ``strategies``."""
    history: Sequence[Mapping] = summary.get("history") or []  # type: ignore[assignment]
    per_round = [
        {"round": int(h["round"]), "mean_accuracy": h["mean_accuracy"], "worst_accuracy": h.get("worst_accuracy"),
         "macro_f1": h.get("mean_macro_f1")}
        for h in history if h.get("mean_accuracy") is not None
    ]
    piece = {
        "mean_accuracy": summary.get("mean_accuracy"),
        "worst_accuracy": summary.get("worst_accuracy"),
        "worst_device": summary.get("worst_client"),
        "macro_f1": summary.get("mean_macro_f1"),
        "rounds": summary.get("rounds"),
        "per_round": per_round,
        "per_device": dict(summary.get("per_client") or {}),  # type: ignore[call-overload]
        "per_device_macro_f1": dict(summary.get("per_client_macro_f1") or {}),  # type: ignore[call-overload]
        "confusion": summary.get("confusion"),
        "failures": len(summary.get("failures") or []),  # type: ignore[arg-type]
        "seconds": summary.get("seconds"),
    }
    if summary.get("global_mean_accuracy") is not None:
        piece["global_mean_accuracy"] = summary["global_mean_accuracy"]
    if summary.get("run_dir"):
        piece["run_dir"] = summary["run_dir"]
    return piece


def rounds_piece(events: Iterable[Mapping[str, object]]) -> dict:
    """``strategy_piece`` of a run that never wrote its summary: what its round events say."""
    rounds = [e for e in events if e.get("event") == "round"]
    last = next((e for e in reversed(rounds) if e.get("mean_accuracy") is not None), None)
    summary = {
        "history": rounds, "rounds": len(rounds),
        "mean_accuracy": last and last["mean_accuracy"], "worst_accuracy": last and last.get("worst_accuracy"),
        "worst_client": last and last.get("worst_client"), "mean_macro_f1": last and last.get("mean_macro_f1"),
        "per_client": (last or {}).get("per_client") or {},
    }
    return strategy_piece(summary)


def best_strategy(strategies: Mapping[str, Mapping[str, object]]) -> str | None:
    """The strategy with the highest mean accuracy (ties: the first)."""
    scored = [(v["mean_accuracy"], -i, k) for i, (k, v) in enumerate(strategies.items()) if v.get("mean_accuracy") is not None]
    return max(scored)[2] if scored else None


# ---------------------------------------------------------------- online learners
def learner_piece(per_device: Mapping[str, Mapping[str, object]]) -> dict:
    """One learner over several devices: each value holds ``mistake_rate`` and a ``trace``."""
    traces = [v["trace"] for v in per_device.values()]
    curve = mean_trace(traces)  # type: ignore[arg-type]
    at = dict(zip(curve["at"], curve["mistakes"]))
    return {
        "mistake_rate_mean": float(np.mean([v["mistake_rate"] for v in per_device.values()])),
        "mistakes_at": {str(t): at[t] for t in MISTAKES_AT if t in at},
        "curve": curve,
        "devices": len(per_device),
        "per_device": {k: float(v["mistake_rate"]) for k, v in per_device.items()},  # type: ignore[arg-type]
    }


def online_piece(outcomes: Iterable[tuple[str, str, Mapping[str, dict]]]) -> dict:
    """``online`` from (device, learner key, :func:`device_outcomes`) triples: each learner over its
    devices, then persistence over every device (its first entry: it depends on the labels alone)."""
    learners: dict[str, dict[str, dict]] = {}
    persistence: dict[str, dict] = {}
    for name, key, out in outcomes:
        if "learner" in out:
            learners.setdefault(key, {})[name] = out["learner"]
        if "persistence" in out:
            persistence.setdefault(name, out["persistence"])
    pieces = {k: learner_piece(v) for k, v in learners.items()}
    if persistence:
        pieces[PERSISTENCE] = learner_piece(persistence)
    return pieces


def online_from_newuser(result: Mapping[str, object]) -> dict:
    """``online`` from ``fedotl newuser``'s result: every learner over every held-out device."""
    by_learner: dict[str, dict[str, dict]] = {}
    for subject, s in result["subjects"].items():  # type: ignore[attr-defined]
        for position, d in s["devices"].items():
            for key, r in d["learners"].items():
                by_learner.setdefault(key, {})[f"{subject}@{position}"] = {"mistake_rate": r["mistake_rate_mean"], "trace": r["trace"]}
    return {k: learner_piece(v) for k, v in by_learner.items()}


# ---------------------------------------------------------------- replayed devices
def latency_histogram(groups: Mapping[str, np.ndarray], bins: int = 40) -> dict:
    """Latencies (ms) per group (a learner), counted in the same log-spaced bins, with each group's p50 and p99.

    >>> h = latency_histogram({"pa": np.array([1.0, 3.0, 3.0]), "homotlms": np.array([4.0])}, bins=2)
    >>> h["edges"][0] <= 1.0 and h["edges"][-1] >= 4.0, h["groups"]["pa"]["counts"], h["groups"]["homotlms"]["n"]
    (True, [1, 2], 1)
    """
    clean = {k: np.asarray(v, dtype=float)[np.isfinite(v) & (np.asarray(v) > 0)] for k, v in groups.items()}
    pooled = np.concatenate([v for v in clean.values()] or [np.zeros(0)])
    if pooled.size == 0:
        return {"edges": [], "groups": {}}
    lo, hi = float(pooled.min()), float(pooled.max())
    edges = np.geomspace(lo, hi * 1.0001, bins + 1) if hi > lo else np.array([lo * 0.9, lo * 1.1])
    out = {k: {"counts": np.histogram(v, bins=edges)[0].tolist(), **latency_percentiles(v), "n": int(v.size)}
           for k, v in clean.items() if v.size}
    return {"edges": [round(float(e), 4) for e in edges], "groups": out}


def device_row(name: str, learner: str, m: Mapping[str, object]) -> dict:
    """One row of ``devices`` from a device's metrics (:meth:`fedotl.client.device.Devices.metrics`)."""
    keep = ("windows_predicted", "windows_skipped", "labels_used", "accuracy", "persistence_accuracy")
    lat: Mapping = m["latency_ms"]  # type: ignore[assignment]
    return {"device": name, "learner": learner, **{k: m[k] for k in keep},
            "latency_p50_ms": lat["p50"], "latency_p99_ms": lat["p99"]}


def device_outcomes(m: Mapping[str, object], traces: Mapping[str, Mapping]) -> dict[str, dict]:
    """A device's entries for :func:`learner_piece`: its ``learner`` and its ``persistence`` baseline
    (each left out while it has no labelled window)."""
    return {which: {"mistake_rate": 1.0 - float(m[acc]), "trace": traces[which]}  # type: ignore[arg-type]
            for which, acc in (("learner", "accuracy"), ("persistence", "persistence_accuracy")) if m[acc] is not None}


def devices_piece(rows: Sequence[Mapping[str, object]], latencies_ms: Mapping[str, np.ndarray], **extra: object) -> dict:
    """``devices``: one row per replayed device and learner; latency over all of them, and per learner."""
    pooled = np.concatenate([np.asarray(v, dtype=float) for v in latencies_ms.values()] or [np.zeros(0)])
    return {"devices": [dict(r) for r in rows], "latency_ms": latency_percentiles(pooled),
            "latency_hist": latency_histogram(latencies_ms), **extra}


# ---------------------------------------------------------------- reading a run directory
def load_metrics(run_dir: str | Path) -> dict:
    """A run directory's ``metrics.json``, or what its federated outputs say (``summary.json``,
    else the round events of ``metrics.jsonl``, then marked interrupted)."""
    root = Path(run_dir)
    if not root.is_dir():
        raise ReportError(f"{root}: no such run directory")
    path = root / METRICS_FILE
    if path.is_file():
        try:
            metrics = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ReportError(f"{path}: unreadable ({e})") from None
        if not isinstance(metrics, dict) or "kind" not in metrics:
            raise ReportError(f"{path}: not a fedotl metrics file (no 'kind')")
        return metrics
    config = _json_or_none(root / "run_config.json") or {}
    summary = _json_or_none(root / "summary.json")
    if summary is not None:
        metrics = new_metrics("simulate", config=config, seed=config.get("seed"))
        metrics["strategies"] = {str(summary.get("strategy", "run")): strategy_piece(summary)}
        return finish(metrics)
    events_path = root / "metrics.jsonl"
    if events_path.is_file():
        events, broken = [], 0
        for line in events_path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                broken += 1  # a line cut off when the run was killed
        metrics = new_metrics("simulate", config=config, seed=config.get("seed"))
        metrics["strategies"] = {str(config.get("strategy", "run")): rounds_piece(events)}
        metrics["notes"].append("the run ended before its summary: the figures are from its last evaluated round")
        if broken:
            metrics["notes"].append(f"{events_path.name}: {broken} unreadable line(s) skipped")
        return finish(metrics, "interrupted", "federate")
    raise ReportError(f"{root}: nothing to report (no {METRICS_FILE}, summary.json or metrics.jsonl)")


def _json_or_none(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
