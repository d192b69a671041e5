"""Models small enough for a wearable, split into the parts FL methods treat differently.

Every model here has the same three named parts, which is what the
federated strategies and the personalisation step rely on:

``features``
    the feature extractor (for the CNN: three 1-D convolution blocks, each
    Conv1d → BatchNorm1d → ReLU, with pooling).  FedHealth freezes it when it
    personalises.
``bottleneck``
    the alignment layer, Linear → BatchNorm1d → ReLU.  Its output is the
    feature vector whose covariance the CORAL loss aligns (Chen et al.,
    "FedHealth", IEEE Intelligent Systems 2020, its personalisation step), and
    its BatchNorm is one of the layers FedBN/FedAP keep local.
``head``
    the linear classifier.

The bottleneck and the head together are the "FC layers" that FedHealth
fine-tunes on each user.

:class:`HARCNN` reads raw IMU windows shaped (N, C, L); :class:`FeatureMLP`
reads the per-window feature vectors of :mod:`fedotl.client.features`.  Both are
deterministic given a seed (:func:`build_model`).

Parameter counts (``width=32``, ``bottleneck=64``, 19 classes, any L):

==========================  ========
HARCNN, 9 channels          50,451
HARCNN, 45 channels         56,211
FeatureMLP, 120 features    25,363
==========================  ========

>>> count_params(build_model("cnn", 9, 19, seed=0))
50451
>>> count_params(build_model("cnn", 45, 19, seed=0))
56211
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)
# Buffers that carry no model information and are never exchanged.
_SKIP_SUFFIXES = ("num_batches_tracked",)


class HARCNN(nn.Module):
    """1-D CNN over (N, C, L) windows: conv extractor, bottleneck, FC head.

    In the spirit of FedHealth's CNN and PersonalizedFL's PAMAP2 model
    (two or three conv+BN blocks, an FC "alignment" layer, a classifier), but
    1-D and global-pooled, so any window length works.
    """

    def __init__(self, in_channels: int, n_classes: int, width: int = 32, bottleneck: int = 64, pooled: int = 4):
        super().__init__()
        w1, w2 = width, 2 * width
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, w1, kernel_size=5, padding=2),
            nn.BatchNorm1d(w1),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(w1, w2, kernel_size=5, padding=2),
            nn.BatchNorm1d(w2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(w2, w2, kernel_size=5, padding=2),
            nn.BatchNorm1d(w2),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(pooled),
            nn.Flatten(),
        )
        self.bottleneck = nn.Sequential(nn.Linear(w2 * pooled, bottleneck), nn.BatchNorm1d(bottleneck), nn.ReLU())
        self.head = nn.Linear(bottleneck, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck features (the CORAL alignment layer's output)."""
        return self.bottleneck(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class FeatureMLP(nn.Module):
    """MLP over per-window feature vectors (see :mod:`fedotl.client.features`)."""

    def __init__(self, n_features: int, n_classes: int, hidden: int = 128, bottleneck: int = 64):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(n_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        self.bottleneck = nn.Sequential(nn.Linear(hidden, bottleneck), nn.BatchNorm1d(bottleneck), nn.ReLU())
        self.head = nn.Linear(bottleneck, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


MODELS = ("cnn", "mlp")


def build_model(kind: str, n_inputs: int, n_classes: int, *, seed: int = 0, width: int = 32, bottleneck: int = 64) -> nn.Module:
    """A freshly initialised model; the same seed gives the same weights.

    ``n_inputs`` is the number of channels for ``cnn`` and the feature
    dimension for ``mlp``.
    """
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(MODELS)}")
    if n_inputs < 1 or n_classes < 2:
        raise ValueError(f"need at least 1 input and 2 classes, got {n_inputs} and {n_classes}")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        if kind == "cnn":
            return HARCNN(n_inputs, n_classes, width=width, bottleneck=bottleneck)
        return FeatureMLP(n_inputs, n_classes, hidden=2 * bottleneck, bottleneck=bottleneck)
    finally:
        torch.random.set_rng_state(gen_state)


def count_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# ------------------------------------------------------------ key groups
def bn_keys(model: nn.Module) -> list[str]:
    """State-dict keys of every BatchNorm layer (weight, bias, running stats)."""
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, BN_TYPES):
            out.extend(f"{name}.{k}" for k in mod.state_dict() if not k.endswith(_SKIP_SUFFIXES))
    return out


def state_keys(model: nn.Module) -> list[str]:
    """Every exchanged state-dict key, in model order."""
    return [k for k in model.state_dict() if not k.endswith(_SKIP_SUFFIXES)]


def shared_keys(model: nn.Module) -> list[str]:
    """Keys FedBN/FedAP share: everything except BatchNorm layers (Li et al., ICLR 2021)."""
    bn = set(bn_keys(model))
    return [k for k in state_keys(model) if k not in bn]


def fc_keys(model: nn.Module) -> list[str]:
    """Keys of the FC layers FedHealth personalises: bottleneck and head."""
    return [k for k in state_keys(model) if k.startswith(("bottleneck.", "head."))]


def get_arrays(model: nn.Module, keys: list[str] | None = None) -> "OrderedDict[str, np.ndarray]":
    """A copy of the model's state as numpy arrays (``keys`` default: all exchanged)."""
    sd = model.state_dict()
    keys = state_keys(model) if keys is None else keys
    return OrderedDict((k, sd[k].detach().cpu().numpy().copy()) for k in keys)


def set_arrays(model: nn.Module, arrays: dict[str, np.ndarray]) -> None:
    """Load a subset of the state (unknown keys are an error, missing ones stay)."""
    sd = model.state_dict()
    unknown = set(arrays) - set(sd)
    if unknown:
        raise KeyError(f"arrays for unknown model keys {sorted(unknown)[:5]}")
    with torch.no_grad():
        for k, v in arrays.items():
            t = torch.as_tensor(np.asarray(v))
            if tuple(t.shape) != tuple(sd[k].shape):
                raise ValueError(f"shape mismatch for {k}: got {tuple(t.shape)}, model has {tuple(sd[k].shape)}")
            sd[k].copy_(t)
