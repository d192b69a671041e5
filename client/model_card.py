"""What a federated run leaves for a new user: a self-describing global model, heads, summaries.

A federation's run directory (``fedotl simulate --out DIR``) holds:

``global_model.npz``
    the global model's weights (state-dict keys) and, under :data:`CARD_KEY`,
    its *card*: a JSON object naming the model (kind, widths), its class codes
    and their names, its channels in order (name, sensor, axis), the sampling
    rate and window length, the input representation and standardisation,
    and the fedotl version.  A device rebuilds the model from this file alone
    (:func:`load_global_model`).
``clients/<client>.npz``
    with ``share-heads``: one federated device's personalised FC layers
    (``bottleneck.*``, ``head.*``) and, under ``summary.*``, the summary of
    its bottleneck features under the global model (:mod:`fedotl.client.summary`).
``manifest.json``
    which subjects, positions and config produced them (:func:`write_manifest`).

The standardisation is *per device*: every federated device standardised
each input channel with the mean and standard deviation of its own windows
(:func:`fedotl.client.data.standardise`), so a new device does the same with
its own first windows (:meth:`GlobalModel.standardiser`).

The extractor runs in two stages, so that one forward pass serves every
source: :meth:`GlobalModel.conv` gives the conv block's output (the input of
every head's bottleneck), and :func:`fc_embed` / :func:`fc_scores` apply a
bottleneck and a head to it in numpy (Linear → BatchNorm in eval mode → ReLU,
then Linear).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

import fedotl
from fedotl.client.config import parse_subjects
from fedotl.client.data import input_stats, window_inputs
from fedotl.client.storage import safe_name, save_npz

CARD_KEY = "__card__"
CARD_FORMAT = "fedotl-model/1"
MANIFEST = "manifest.json"
MODEL_FILE = "global_model.npz"
CLIENTS_DIR = "clients"
SUMMARY_PREFIX = "summary."
STANDARDISATION = "per-device: each input channel (or feature) with the mean and std of the device's own windows"
BN_EPS = 1e-5  # torch.nn.BatchNorm1d's default


class FederationError(ValueError):
    """A run directory or model file that cannot serve as a federation for new users."""


def make_card(describe: Mapping[str, object], *, model: str, width: int, bottleneck: int, n_inputs: int, n_classes: int) -> dict:
    """The card of a global model from a node's description of its windows (``query.info``)."""
    classes = [int(c) for c in describe["classes"]]  # type: ignore[union-attr]
    if len(classes) != n_classes:
        raise FederationError(f"the node describes {len(classes)} classes, the model has {n_classes}")
    names, sensors, axes = (list(describe.get(k, [])) for k in ("channels", "sensors", "axes"))  # type: ignore[call-overload]
    rate, rows = float(describe["rate-hz"]), int(describe["window-rows"])  # type: ignore[arg-type]
    return {
        "format": CARD_FORMAT,
        "fedotl": fedotl.__version__,
        "model": model, "width": int(width), "bottleneck": int(bottleneck),
        "n_inputs": int(n_inputs), "n_classes": int(n_classes),
        "classes": classes, "labels": [str(v) for v in describe.get("labels", classes)],  # type: ignore[union-attr]
        "channels": [{"name": n, "sensor": s, "axis": a} for n, s, a in zip(names, sensors or [""] * len(names), axes or [""] * len(names))],
        "rate_hz": rate, "window_rows": rows, "window_seconds": rows / rate if rate > 0 else 0.0,
        "representation": "features" if model == "mlp" else "windows",
        "standardisation": STANDARDISATION,
    }


def save_global_model(path: str | Path, arrays: Mapping[str, np.ndarray], card: Mapping[str, object]) -> Path:
    """Weights and card in one ``.npz`` (written whole or not at all)."""
    return save_npz(Path(path), {**arrays, CARD_KEY: np.array(json.dumps(card))})


def _bn(arrays: Mapping[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) of a BatchNorm layer in eval mode."""
    scale = arrays[f"{prefix}.weight"] / np.sqrt(arrays[f"{prefix}.running_var"] + BN_EPS)
    return scale, arrays[f"{prefix}.bias"] - arrays[f"{prefix}.running_mean"] * scale


def fc_embed(Z: np.ndarray, fc: Mapping[str, np.ndarray]) -> np.ndarray:
    """The bottleneck (Linear → BatchNorm eval → ReLU) of ``fc`` on conv outputs ``Z`` (n, m)."""
    scale, shift = _bn(fc, "bottleneck.1")
    h = Z @ fc["bottleneck.0.weight"].T + fc["bottleneck.0.bias"]
    return np.maximum(h * scale + shift, 0.0)


def fc_scores(Z: np.ndarray, fc: Mapping[str, np.ndarray]) -> np.ndarray:
    """Class scores of the bottleneck and head of ``fc`` on conv outputs ``Z``."""
    return fc_embed(Z, fc) @ fc["head.weight"].T + fc["head.bias"]


@dataclass
class GlobalModel:
    """A global model rebuilt from its file: the torch module, its card and its weights."""

    card: dict
    arrays: dict[str, np.ndarray]
    module: object = field(repr=False)

    @property
    def classes(self) -> list[int]:
        return list(self.card["classes"])

    @property
    def labels(self) -> list[str]:
        return list(self.card["labels"])

    @property
    def channels(self) -> list[dict]:
        return list(self.card["channels"])

    @property
    def fc(self) -> dict[str, np.ndarray]:
        """The global bottleneck and head (the arrays :func:`fc_scores` takes)."""
        return {k: v for k, v in self.arrays.items() if k.startswith(("bottleneck.", "head."))}

    def inputs(self, windows: np.ndarray) -> np.ndarray:
        """Raw (N, L, C) windows as the model's (unstandardised) inputs."""
        W = np.asarray(windows, dtype=np.float32)
        if W.ndim != 3 or W.shape[2] != len(self.channels):
            raise FederationError(f"windows of shape {W.shape}; the model reads (n, L, {len(self.channels)}) windows")
        return window_inputs(W, self.channels, str(self.card["representation"]))

    @staticmethod
    def standardiser(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (windows) or per-feature mean and std of ``reference`` inputs, as every federated device had."""
        return input_stats(reference)

    def conv(self, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """The frozen extractor's conv block on standardised inputs: (N, m) float64."""
        import torch

        from fedotl.client.train import use_one_thread

        use_one_thread()
        self.module.eval()  # type: ignore[attr-defined]
        out = []
        with torch.no_grad():
            for i in range(0, len(X), batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(X[i : i + batch_size], dtype=np.float32))
                out.append(self.module.features(xb).double().numpy())  # type: ignore[attr-defined]
        return np.concatenate(out) if out else np.zeros((0, 0))

    def embed(self, X: np.ndarray) -> np.ndarray:
        """The bottleneck embedding (the global extractor's output) on standardised inputs."""
        return fc_embed(self.conv(X), self.fc)


def _read_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise FederationError(f"{path}: cannot read {what} ({e})") from None


def load_global_model(path: str | Path) -> GlobalModel:
    """Rebuild a global model from its ``.npz`` alone."""
    from fedotl.client.model import build_model, set_arrays

    path = Path(path)
    arrays = _read_npz(path, "the global model")
    if CARD_KEY not in arrays:
        raise FederationError(f"{path}: weights only, no model card (written by fedotl before 0.2?); rerun the federation")
    card = json.loads(str(arrays.pop(CARD_KEY)))
    if card.get("format") != CARD_FORMAT:
        raise FederationError(f"{path}: model card format {card.get('format')!r}, expected {CARD_FORMAT}")
    module = build_model(card["model"], card["n_inputs"], card["n_classes"], width=card["width"], bottleneck=card["bottleneck"])
    try:
        set_arrays(module, arrays)
    except (KeyError, ValueError) as e:
        raise FederationError(f"{path}: the weights do not fit the card's model ({e})") from None
    return GlobalModel(card, arrays, module)


@dataclass
class ClientShare:
    """What one federated device shared: its personalised FC layers and its feature summary."""

    client_id: str
    subject: str
    position: str
    fc: dict[str, np.ndarray]
    summary: dict[str, np.ndarray]


def save_client_share(run_dir: str | Path, client_id: str, head: Mapping[str, np.ndarray], summary: Mapping[str, np.ndarray]) -> Path:
    arrays = {**head, **{SUMMARY_PREFIX + k: v for k, v in summary.items()}}
    return save_npz(Path(run_dir) / CLIENTS_DIR / f"{safe_name(client_id)}.npz", arrays)


def write_manifest(run_dir: str | Path, *, config: Mapping[str, object], clients: Mapping[str, Mapping[str, str]], shared: Sequence[str], strategy: str) -> Path:
    """``manifest.json``: the config, and each federated client's subject, position and shared file."""
    run_dir = Path(run_dir)
    entries = []
    for cid in sorted(clients):
        entry = {"client_id": cid, **clients[cid]}
        if cid in shared:
            entry["file"] = f"{CLIENTS_DIR}/{safe_name(cid)}.npz"
        entries.append(entry)
    manifest = {
        "format": "fedotl-federation/1",
        "fedotl": fedotl.__version__,
        "strategy": strategy,
        "model": MODEL_FILE,
        "subjects": sorted({e["subject"] for e in entries if e.get("subject")}),
        "positions": sorted({e["position"] for e in entries if e.get("position")}),
        "holdout_subjects": list(parse_subjects(str(config.get("holdout-subjects", "")))),
        "server_subjects": list(parse_subjects(str(config.get("server-subjects", "")))),
        "share_heads": bool(shared),
        "clients": entries,
        "config": dict(config),
    }
    tmp = run_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(run_dir / MANIFEST)
    return run_dir / MANIFEST


@dataclass
class Federation:
    """A federation's run directory, loaded: the global model, its manifest, the shared clients."""

    run_dir: Path
    model: GlobalModel
    manifest: dict
    clients: list[ClientShare]


def load_federation(run_dir: str | Path) -> Federation:
    """Read a federation's run directory (clear errors for a missing or foreign one)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FederationError(f"{run_dir}: no such run directory")
    for name in (MODEL_FILE, MANIFEST):
        if not (run_dir / name).exists():
            raise FederationError(f"{run_dir}: no {name}; is this the --out folder of a federated fedotl simulate run?")
    try:
        manifest = json.loads((run_dir / MANIFEST).read_text())
    except json.JSONDecodeError as e:
        raise FederationError(f"{run_dir / MANIFEST}: not JSON ({e})") from None
    model = load_global_model(run_dir / MODEL_FILE)
    clients = []
    for entry in manifest.get("clients", []):
        if "file" not in entry:
            continue
        arrays = _read_npz(run_dir / entry["file"], f"client {entry['client_id']}'s head")
        fc = {k: v for k, v in arrays.items() if not k.startswith(SUMMARY_PREFIX)}
        summary = {k[len(SUMMARY_PREFIX):]: v for k, v in arrays.items() if k.startswith(SUMMARY_PREFIX)}
        clients.append(ClientShare(entry["client_id"], entry.get("subject", ""), entry.get("position", ""), fc, summary))
    return Federation(run_dir, model, manifest, clients)
