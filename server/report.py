"""What a run leaves behind: progress lines, metrics JSONL, models, a summary.

The ServerApp writes everything itself, to the absolute ``out-dir`` of the
run config, because under ``flwr run`` it runs in another process and its
return value is lost.  In ``out-dir``:

``metrics.jsonl``
    one JSON object per line: ``{"event": "start", ...}``, one
    ``{"event": "round", ...}`` per round (train metrics, per-client
    evaluation, failures, seconds), ``{"event": "pretrain", ...}`` and
    ``{"event": "personalize", ...}`` where they happen, and the final
    ``{"event": "summary", ...}``.
``summary.json``
    the summary alone (what ``fedotl simulate --json`` prints), with ``confusion``: the
    devices' test confusion matrices of the final evaluation, summed, and the class names.
``global_model.npz``
    the final global model (state-dict keys → arrays).
``heads/<client>.npz``
    each device's personalised FC layers (FedHealth), written by the device
    itself (:mod:`fedotl.client.storage`): heads never reach the server.

Progress goes to stderr, one line per round.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from fedotl.client.storage import save_npz


def summarise(per_client: Mapping[str, Mapping[str, float]]) -> dict[str, object]:
    """Unweighted mean over devices, worst device, per-device accuracy.

    >>> s = summarise({"a": {"accuracy": 0.5, "macro_f1": 0.4}, "b": {"accuracy": 1.0, "macro_f1": 1.0}})
    >>> s["mean_accuracy"], s["worst_accuracy"], s["worst_client"]
    (0.75, 0.5, 'a')
    """
    if not per_client:
        return {"clients": 0, "mean_accuracy": None, "mean_macro_f1": None, "worst_accuracy": None, "worst_client": None, "per_client": {}}
    acc = {k: float(v["accuracy"]) for k, v in per_client.items()}
    f1 = {k: float(v["macro_f1"]) for k, v in per_client.items()}
    worst = min(acc, key=lambda k: (acc[k], k))
    return {
        "clients": len(acc),
        "mean_accuracy": float(np.mean(list(acc.values()))),
        "mean_macro_f1": float(np.mean(list(f1.values()))),
        "worst_accuracy": acc[worst],
        "worst_client": worst,
        "per_client": acc,
        "per_client_macro_f1": f1,
    }


def summed_confusion(per_client: Mapping[str, Mapping[str, object]], labels: list[str] | None = None) -> dict | None:
    """The devices' test confusion matrices added up (rows: true class, columns: predicted), or None.

    >>> summed_confusion({"a": {"confusion": [2, 0, 1, 1]}, "b": {"confusion": [1, 0, 0, 3]}}, ["sit", "walk"])
    {'labels': ['sit', 'walk'], 'matrix': [[3, 0], [1, 4]]}
    """
    flats = [np.asarray(v["confusion"], dtype=np.int64) for v in per_client.values() if v.get("confusion")]
    if not flats:
        return None
    k = math.isqrt(flats[0].size)
    mats = [f.reshape(k, k) for f in flats if f.size == k * k]
    names = list(labels) if labels is not None and len(labels) == k else [str(i) for i in range(k)]
    return {"labels": names, "matrix": np.sum(mats, axis=0).tolist()}


def honest_summary(recorder: "RunRecorder", partitions: Mapping[str, int], cfg) -> dict[str, object]:
    """The attack (run config ``attack``) and the accuracy over the honest devices only:
    the final global model's (``global_mean_accuracy``) and, after FedHealth's personalisation,
    the personalised models' (``mean_accuracy``)."""
    attacking = set(cfg.attack_partition_list)
    attackers = sorted(c for c, p in partitions.items() if p in attacking)
    final = recorder.personalized if recorder.personalized is not None else recorder.last_eval
    honest = {c: v for c, v in final.items() if c not in attackers}
    if recorder.personalized is not None:
        before = {c: {"accuracy": v["global_accuracy"], "macro_f1": v["global_macro_f1"]} for c, v in honest.items()}
    else:
        before = honest
    return {
        "attack": str(cfg.attack), "scale": float(cfg.attack_scale), "attackers": attackers, "honest_clients": len(honest),
        "mean_accuracy": summarise(honest)["mean_accuracy"], "global_mean_accuracy": summarise(before)["mean_accuracy"],
    }


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXC_LINE = re.compile(r"^\s*(?:[\w.]+\.)?\w*(?:Error|Exception|Failure|Interrupt)\b.*")


def short_reason(reason: str) -> str:
    """The telling line of a ClientApp failure (Flower wraps the traceback).

    >>> short_reason("<class 'X'>:<'Traceback...\\n  File ...\\nfedotl.client.node.InjectedFailure: boom'>")
    'fedotl.client.node.InjectedFailure: boom'
    """
    text = _ANSI.sub("", reason).replace("\\n", "\n")
    lines = [ln.strip().rstrip("'>").strip() for ln in text.splitlines() if ln.strip()]
    hits = [ln for ln in lines if _EXC_LINE.match(ln) and ":" in ln]
    return (hits[-1] if hits else (lines[-1] if lines else reason))[:300]


class RunRecorder:
    """Collects per-round results; writes JSONL, models and the summary."""

    def __init__(self, out_dir: str | None, strategy: str, num_rounds: int, *, progress: bool = True, stream=None, resume: bool = False):
        self.out = Path(out_dir) if out_dir else None
        self.strategy = strategy
        self.num_rounds = num_rounds
        self.progress = progress
        self.stream = stream if stream is not None else sys.stderr
        self.history: list[dict] = []
        self.last_eval: dict[str, dict[str, float]] = {}
        self.personalized: dict[str, dict[str, float]] | None = None
        self.failures: list[dict] = []
        self._round_t0: dict[int, float] = {}
        self._train: dict[int, dict] = {}
        self.t0 = time.perf_counter()
        self.extra: dict[str, object] = {}
        self.labels: list[str] | None = None  # class names, by class index (from the nodes' describe record)
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            if not resume:  # a resumed run continues the file (fedotl.server.checkpoint.cut_metrics)
                (self.out / "metrics.jsonl").write_text("")

    # ------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> dict[str, object]:
        """What :func:`fedotl.server.checkpoint.save_checkpoint` keeps of this recorder."""
        return {"history": self.history, "failures": self.failures, "last_eval": self.last_eval, "labels": self.labels, "extra": self.extra}

    def restore(self, state: Mapping[str, object]) -> None:
        """Continue from a checkpoint's :meth:`checkpoint_state`."""
        self.history = list(state.get("history", []))  # type: ignore[call-overload]
        self.failures = list(state.get("failures", []))  # type: ignore[call-overload]
        self.last_eval = dict(state.get("last_eval", {}))  # type: ignore[call-overload]
        self.labels = state.get("labels")  # type: ignore[assignment]
        self.extra.update(state.get("extra", {}))  # type: ignore[call-overload]

    # ------------------------------------------------------------ writing
    def write(self, record: Mapping[str, object]) -> None:
        if self.out is not None:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def say(self, text: str) -> None:
        if self.progress:
            print(f"[{self.strategy}] {text}", file=self.stream, flush=True)

    def save_arrays(self, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        if self.out is not None and arrays:
            save_npz(self.out / f"{name}.npz", arrays)

    # ------------------------------------------------------------ events
    def event(self, name: str, **fields) -> None:
        self.write({"event": name, **fields})

    def failure(self, server_round: int, stage: str, node_id: int, reason: str, client: str | None = None) -> None:
        """One line naming the device (``client``, subject/position) when known, else the node id."""
        rec: dict[str, object] = {"round": server_round, "stage": stage, "node_id": int(node_id), "reason": short_reason(reason)}
        if client:
            rec["client"] = client
        self.failures.append(rec)
        who = f"device {client}" if client else f"node {node_id}"
        self.say(f"round {server_round}: {who} failed in {stage}: {str(rec['reason'])[:160]}")

    def round_started(self, server_round: int) -> None:
        self._round_t0[server_round] = time.perf_counter()

    def trained(self, server_round: int, metrics: Mapping[str, object]) -> None:
        self._train[server_round] = dict(metrics)

    def round_finished(self, server_round: int, per_client: Mapping[str, Mapping[str, float]] | None) -> None:
        seconds = time.perf_counter() - self._round_t0.get(server_round, time.perf_counter())
        entry: dict[str, object] = {"round": server_round, "seconds": round(seconds, 4), "t_end": round(time.time(), 3)}
        entry["train"] = self._train.get(server_round, {})
        fails = sum(1 for f in self.failures if f["round"] == server_round)
        entry["failures"] = fails
        if per_client:
            self.last_eval = {k: dict(v) for k, v in per_client.items()}
            s = summarise(per_client)
            entry.update({k: s[k] for k in ("clients", "mean_accuracy", "mean_macro_f1", "worst_accuracy", "worst_client")})
            entry["per_client"] = s["per_client"]
            self.say(
                f"round {server_round}/{self.num_rounds}: mean acc {s['mean_accuracy']:.4f}  macro-F1 {s['mean_macro_f1']:.4f}  "
                f"worst {s['worst_accuracy']:.4f} ({s['worst_client']})  {s['clients']} clients, {fails} failed, {seconds:.1f} s"
            )
        else:
            loss = entry["train"].get("train-loss") if isinstance(entry["train"], dict) else None
            extra = f"train loss {loss:.4f}  " if isinstance(loss, float) else ""
            self.say(f"round {server_round}/{self.num_rounds}: {extra}{fails} failed, {seconds:.1f} s")
        self.history.append({k: v for k, v in entry.items() if k != "per_client"})
        self.write({"event": "round", **entry})

    def personalized_results(self, per_client: Mapping[str, Mapping[str, float]], seconds: float) -> None:
        self.personalized = {k: dict(v) for k, v in per_client.items()}
        s = summarise(per_client)
        before = summarise({k: {"accuracy": v["global_accuracy"], "macro_f1": v["global_macro_f1"]} for k, v in per_client.items()})
        self.extra["global_mean_accuracy"] = before["mean_accuracy"]
        self.extra["global_worst_accuracy"] = before["worst_accuracy"]
        self.extra["personalize_seconds"] = round(seconds, 4)
        self.say(
            f"personalised: mean acc {s['mean_accuracy']:.4f} (global {before['mean_accuracy']:.4f})  "
            f"macro-F1 {s['mean_macro_f1']:.4f}  worst {s['worst_accuracy']:.4f} ({s['worst_client']})  {seconds:.1f} s"
        )
        self.write({"event": "personalize", "seconds": round(seconds, 4), **{k: s[k] for k in s}, "global_mean_accuracy": before["mean_accuracy"]})

    # ------------------------------------------------------------ summary
    def finish(self, **fields) -> dict[str, object]:
        final = self.personalized if self.personalized is not None else self.last_eval
        s = summarise(final)
        rounds_run = sum(1 for h in self.history)
        round_s = [h["seconds"] for h in self.history]
        summary: dict[str, object] = {
            "strategy": self.strategy,
            "rounds": rounds_run,
            "clients": s["clients"],
            "mean_accuracy": s["mean_accuracy"],
            "mean_macro_f1": s["mean_macro_f1"],
            "worst_accuracy": s["worst_accuracy"],
            "worst_client": s["worst_client"],
            "per_client": s["per_client"],
            "per_client_macro_f1": s.get("per_client_macro_f1", {}),
            "history": self.history,
            "failures": self.failures,
            "seconds_per_round": float(np.mean(round_s)) if round_s else None,
            "seconds": round(time.perf_counter() - self.t0, 3),
        }
        confusion = summed_confusion(final, self.labels)
        if confusion is not None:
            summary["confusion"] = confusion
        summary.update(self.extra)
        summary.update(fields)
        self.write({"event": "summary", **summary})
        if self.out is not None:
            (self.out / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary
