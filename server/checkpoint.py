"""Checkpoints after every round, and resuming a run from the last one (run config ``resume``).

Flower's ``Strategy.start`` has no start round, so resuming is ours:

* after each round the ServerApp writes ``checkpoint.npz`` in the run directory
  (from ``start``'s ``evaluate_fn`` hook, which Flower calls at the end of every
  round): the global arrays and, under ``__meta__``, the round and what the
  recorder holds so far (history, failures, last evaluation).  One file through a
  temporary name and a rename, so a kill leaves the old checkpoint or the new one;
* with ``resume`` the ServerApp starts from that checkpoint's arrays, runs the
  remaining rounds with every round number shifted by the checkpoint's round
  (:attr:`fedotl.server.strategies._Tracked.round_offset`): the nodes derive
  their training seeds from the round, so a resumed run trains exactly as an
  uninterrupted one would, and ``metrics.jsonl`` is cut back to that round.

Only the strategies whose rounds keep nothing on the nodes can resume (FedAvg,
FedProx, FedHealth over FedAvg): the others keep per-node state in Flower's
``context.state``, which does not survive the run.  Node sampling is not
restored either; with every node in every round (``fraction-train`` 1) the
resumed run is bit for bit the uninterrupted one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

from fedotl.client.storage import atomic_write_text, save_npz

CHECKPOINT = "checkpoint.npz"
_META = "__meta__"


def save_checkpoint(out: Path, server_round: int, arrays: Mapping[str, np.ndarray], state: Mapping[str, object]) -> Path:
    """``checkpoint.npz``: ``arrays`` and, as JSON, the round and ``state``."""
    meta = json.dumps({"round": int(server_round), **state})
    return save_npz(Path(out) / CHECKPOINT, {**arrays, _META: np.array(meta)})


def load_checkpoint(out: str | Path) -> tuple[int, dict[str, np.ndarray], dict]:
    """(round, arrays, state) of the run directory's checkpoint; a ValueError naming the file if there is none."""
    path = Path(out) / CHECKPOINT
    if not path.exists():
        raise ValueError(f"{path}: no checkpoint to resume from (a run writes one after its first round)")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z[_META]))
        arrays = {k: z[k] for k in z.files if k != _META}
    return int(meta.pop("round")), arrays, meta


def cut_metrics(out: str | Path, last_round: int) -> None:
    """Keep ``metrics.jsonl``'s lines up to round ``last_round`` (and what came before round 1); drop the rest."""
    path = Path(out) / "metrics.jsonl"
    keep = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            break  # a line cut by the kill: nothing after it counts
        if event.get("event") == "round" and int(event.get("round", 0)) > last_round:
            break
        if event.get("event") in ("round", "start", "pretrain"):
            keep.append(line)
    atomic_write_text(path, "".join(f"{line}\n" for line in keep))
