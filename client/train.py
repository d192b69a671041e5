"""Local training and evaluation on one device (plain PyTorch, no Flower).

What a client does with the model it receives:

* :func:`train_local`: a few epochs of mini-batch Adam on the device's own
  training windows, with optional light augmentation and, for FedProx, the
  proximal term ``μ/2 · ‖w − w_t‖²`` of Li et al., "Federated Optimization in
  Heterogeneous Networks", MLSys 2020 (§3.2: the local objective
  ``h_k(w; w_t) = F_k(w) + μ/2‖w − w_t‖²`` of Algorithm 2), where ``w_t`` is
  the model received from the server.
* :func:`evaluate`: accuracy and macro-F1 on the device's own test windows.
* :func:`embedding_moments`: the count, sum and sum of outer products of the
  bottleneck features, the summary statistic from which the server pools the
  source covariance for FedHealth's CORAL step (never raw data).
* :func:`bn_input_stats`: the per-channel mean and variance of the inputs of
  every BatchNorm layer, FedAP's description of a client's data
  (Lu et al., "Personalized Federated Learning with Adaptive Batchnorm for
  Healthcare", IEEE Trans. Big Data 2022; the authors' PersonalizedFL code,
  ``alg/fedap.py``, ``get_weight_preckpt``: eval mode, the clients' training data).

Everything is deterministic given ``seed`` (one CPU thread, an explicit
generator for shuffling and augmentation).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedotl.client.model import BN_TYPES


def use_one_thread() -> None:
    """Clients share 2 cores with everything else: one torch thread each."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any printable parts (seed, client, round...)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass
class TrainSettings:
    epochs: int = 1
    lr: float = 1e-3
    batch_size: int = 32
    augment: bool = True
    weight_decay: float = 0.0


def augment_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Light, label-preserving augmentation of standardised inputs.

    For windows (N, C, L): per-window per-channel scaling ~ N(1, 0.1²),
    additive jitter ~ N(0, 0.05²) and a random circular time shift.  For
    feature vectors (N, F): jitter only.
    """
    noise = torch.randn(x.shape, generator=gen) * 0.05
    if x.dim() == 3:
        n, c, length = x.shape
        scale = 1.0 + 0.1 * torch.randn((n, c, 1), generator=gen)
        shift = int(torch.randint(0, length, (1,), generator=gen))
        return torch.roll(x * scale, shifts=shift, dims=2) + noise
    return x + noise


def batches_per_epoch(n: int, batch_size: int) -> int:
    """How many batches :func:`_batches` makes of ``n`` windows (a lone tail is folded in).

    >>> batches_per_epoch(65, 32), batches_per_epoch(64, 32), batches_per_epoch(1, 32)
    (2, 2, 1)
    """
    b = -(-n // batch_size)
    tail = n - (b - 1) * batch_size
    return b - 1 if b > 1 and tail == 1 else b


def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=gen)
    out = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    # BatchNorm cannot train on a batch of one: fold a lone tail into the previous batch.
    if len(out) > 1 and len(out[-1]) == 1:
        last = out.pop()
        out[-1] = torch.cat([out[-1], last])
    return out


def train_local(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    settings: TrainSettings,
    *,
    seed: int,
    proximal_mu: float = 0.0,
    params: list[nn.Parameter] | None = None,
    extra_loss=None,
    frozen: nn.Module | None = None,
) -> dict[str, float]:
    """Train ``model`` in place; return mean loss and training accuracy.

    ``params`` restricts the optimised parameters (default: all).  With
    ``proximal_mu > 0`` the FedProx term anchors them to their values at the
    start of the call (the received global model).  ``extra_loss(model, xb,
    yb, embedding, raw)`` may add a term (FedHealth's CORAL); ``raw`` is the
    batch before augmentation.  ``frozen`` is a
    submodule kept in eval mode (its BatchNorm statistics do not move).
    """
    use_one_thread()
    n = len(y)
    if n == 0:
        return {"loss": 0.0, "accuracy": 0.0, "steps": 0}
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
    anchor = [p.detach().clone() for p in params] if proximal_mu > 0 else None
    gen = torch.Generator().manual_seed(seed)
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    model.train()
    if frozen is not None:
        frozen.eval()
    total, correct, loss_sum, steps = 0, 0, 0.0, 0
    for _ in range(settings.epochs):
        for idx in _batches(n, settings.batch_size, gen):
            raw, yb = Xt[idx], yt[idx]
            xb = augment_batch(raw, gen) if settings.augment else raw
            emb = model.embed(xb)
            logits = model.head(emb)
            loss = F.cross_entropy(logits, yb)
            if anchor is not None:
                prox = sum(((p - a) ** 2).sum() for p, a in zip(params, anchor))
                loss = loss + 0.5 * proximal_mu * prox
            if extra_loss is not None:
                loss = loss + extra_loss(model, xb, yb, emb, raw)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            loss_sum += float(loss.detach()) * len(idx)
            total += len(idx)
            correct += int((logits.detach().argmax(1) == yb).sum())
    return {"loss": loss_sum / max(total, 1), "accuracy": correct / max(total, 1), "steps": steps}


@torch.no_grad()
def predict(model: nn.Module, X: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(logits, embeddings) in eval mode, in chunks."""
    use_one_thread()
    model.eval()
    logits, embs = [], []
    for i in range(0, len(X), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(X[i : i + batch_size], dtype=np.float32))
        e = model.embed(xb)
        embs.append(e.numpy())
        logits.append(model.head(e).numpy())
    if not logits:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(logits), np.concatenate(embs)


# Counted with numpy, not sklearn.metrics: on the Deployment Engine every message starts a
# fresh flwr-clientapp process, and importing sklearn.metrics (with scipy.stats) cost 0.74 s
# of each process's 1.85 s import of this app.
def confusion_counts(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """``c[i, j]``: windows of class ``i`` predicted as ``j``, for classes 0..k-1.

    >>> confusion_counts(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3).tolist()
    [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    """
    return np.bincount(np.asarray(y, np.int64) * k + np.asarray(pred, np.int64), minlength=k * k).reshape(k, k)


def macro_f1(confusion: np.ndarray) -> float:
    """Mean F1 over the classes present in truth or prediction: F1 = 2 TP / (2 TP + FP + FN).

    The value of sklearn's ``f1_score(average="macro", zero_division=0)`` on the same labels.

    >>> round(macro_f1(confusion_counts(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3)), 4)
    0.3889
    """
    tp = np.diag(confusion).astype(np.float64)
    truth, predicted = confusion.sum(1), confusion.sum(0)
    present = (truth + predicted) > 0
    if not present.any():
        return 0.0
    return float(np.mean(2 * tp[present] / (truth + predicted)[present]))


def evaluate(model: nn.Module, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 (over the classes present in truth or prediction), loss and the confusion matrix.

    ``confusion[i, j]`` counts windows of class index ``i`` predicted as ``j``, over every class
    the model outputs (empty when there is no window).
    """
    n = len(y)
    if n == 0:
        return {"accuracy": 0.0, "macro_f1": 0.0, "loss": 0.0, "n": 0, "confusion": np.zeros((0, 0), np.int64)}
    logits, _ = predict(model, X)
    pred = logits.argmax(1)
    k = logits.shape[1]
    loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(np.asarray(y, dtype=np.int64))))
    confusion = confusion_counts(y, pred, k)
    return {
        "accuracy": float((pred == y).mean()),
        "macro_f1": macro_f1(confusion),
        "loss": loss,
        "n": int(n),
        "confusion": confusion,
    }


def embedding_moments(model: nn.Module, X: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, Σ f, Σ f fᵀ) of the bottleneck features, in float64."""
    _, emb = predict(model, X)
    emb = emb.astype(np.float64)
    return len(emb), emb.sum(0), emb.T @ emb


@torch.no_grad()
def bn_input_stats(model: nn.Module, X: np.ndarray, batch_size: int = 512) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per BatchNorm layer: mean and variance of its input, per channel.

    Pooled over windows (and time steps for conv layers), in eval mode, as in
    FedAP's statistics of each client under a common model.
    """
    use_one_thread()
    model.eval()
    layers = [m for m in model.modules() if isinstance(m, BN_TYPES)]
    acc: list[list[np.ndarray]] = [[np.zeros(0), np.zeros(0), 0] for _ in layers]  # type: ignore[list-item]

    def hook(i):
        def fn(_mod, inputs, _out):
            x = inputs[0].double()
            flat = x.transpose(0, 1).reshape(x.shape[1], -1) if x.dim() == 3 else x.T
            s, s2, k = flat.sum(1).numpy(), (flat**2).sum(1).numpy(), flat.shape[1]
            a = acc[i]
            if a[2] == 0:
                acc[i] = [s, s2, k]
            else:
                acc[i] = [a[0] + s, a[1] + s2, a[2] + k]

        return fn

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(layers)]
    try:
        for i in range(0, len(X), batch_size):
            model(torch.from_numpy(np.ascontiguousarray(X[i : i + batch_size], dtype=np.float32)))
    finally:
        for h in handles:
            h.remove()
    means, variances = [], []
    for s, s2, k in acc:
        m = s / max(k, 1)
        means.append(m)
        variances.append(np.maximum(s2 / max(k, 1) - m**2, 0.0))
    return means, variances
