"""FedHealth's personalisation step on one device.

Chen, Qin, Wang, Yu and Gao, "FedHealth: A Federated Transfer Learning
Framework for Wearable Healthcare", IEEE Intelligent Systems 35(4), 2020,
§"Transfer learning" (also §11.6.2 of Wang Jindong's 迁移学习简明教程):

* the convolutional layers of the global (cloud) model are frozen, they
  extract low-level features every user shares;
* the fully connected layers (here the bottleneck "alignment layer" and the
  classifier head) are fine-tuned on the user's own labelled data;
* a CORAL loss (Sun & Saenko, "Deep CORAL", ECCV-W 2016, eq. (1))

  .. math:: \\ell_{CORAL} = \\frac{1}{4d^2} \\lVert C_S - C_T \\rVert_F^2

  aligns the covariance ``C_T`` of the user's bottleneck features with the
  source covariance ``C_S``.  ``C_S`` arrives from the server as a summary
  statistic (a d × d matrix), never as raw data.

The total loss is ``CE + λ · ℓ_CORAL`` (λ = ``coral_weight``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fedotl.client.train import TrainSettings, train_local


def covariance(f: torch.Tensor) -> torch.Tensor:
    """Unbiased covariance of the rows of ``f`` (n × d), as Deep CORAL eq. (2)."""
    n = f.shape[0]
    fc = f - f.mean(0, keepdim=True)
    return fc.T @ fc / max(n - 1, 1)


def coral_loss(source_cov: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
    """‖C_S − C_T‖²_F / (4d²) with C_T the covariance of ``target_features``.

    >>> c = torch.eye(2)
    >>> float(coral_loss(c, torch.tensor([[1.0, 0.0], [-1.0, 0.0]])))  # C_T = diag(2, 0)
    0.125
    """
    d = target_features.shape[1]
    diff = source_cov - covariance(target_features)
    return (diff * diff).sum() / (4.0 * d * d)


def freeze_features(model: nn.Module) -> list[nn.Parameter]:
    """Freeze the conv extractor (weights and BN statistics); return the FC parameters."""
    for p in model.features.parameters():
        p.requires_grad_(False)
    return [p for name, p in model.named_parameters() if name.startswith(("bottleneck.", "head."))]


def personalize(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    source_cov: np.ndarray | None,
    settings: TrainSettings,
    *,
    seed: int,
    coral_weight: float = 1.0,
) -> dict[str, float]:
    """Fine-tune the FC layers of ``model`` in place on (X, y) with CE + λ·CORAL.

    With ``source_cov`` None or ``coral_weight`` 0 this is plain head
    fine-tuning.  The conv layers and their BatchNorm statistics are frozen.
    """
    params = freeze_features(model)
    extra = None
    if source_cov is not None and coral_weight > 0:
        cs = torch.as_tensor(np.asarray(source_cov), dtype=torch.float32)

        def extra(_model, _xb, _yb, emb):
            return coral_weight * coral_loss(cs, emb)

    out = train_local(model, X, y, settings, seed=seed, params=params, extra_loss=extra, frozen=model.features)
    for p in model.parameters():
        p.requires_grad_(True)
    return out
