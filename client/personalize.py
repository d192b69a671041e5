"""FedHealth's personalisation step on one device.

Chen, Qin, Wang, Yu and Gao, "FedHealth: A Federated Transfer Learning
Framework for Wearable Healthcare", IEEE Intelligent Systems 35(4), 2020,
its personalisation step:

* the convolutional layers of the global (cloud) model are frozen, they
  extract low-level features every user shares;
* the fully connected layers (here the bottleneck "alignment layer" and the
  classifier head) are fine-tuned on the user's own labelled data;
* the CORAL loss of Sun & Saenko, "Deep CORAL: Correlation Alignment for
  Deep Domain Adaptation", ECCV-W 2016 (equation numbers not re-checked)

  .. math:: \\ell_{CORAL} = \\frac{1}{4d^2} \\lVert C_S - C_T \\rVert_F^2

  aligns the covariance ``C_T`` of the user's bottleneck features with the
  source covariance ``C_S``.  ``C_S`` arrives from the server as a summary
  statistic (a d × d matrix), never as raw data.  It never contains the
  user's own features: it is the cloud's (server-held data) or the pooled
  covariance of the *other* clients (:func:`fedotl.server.aggregation.leave_one_out_covariances`),
  since a target aligned partly to itself measures little.

The total loss is ``CE + λ · ℓ_CORAL`` (λ = ``coral_weight``).

Deviations from Deep CORAL, written down:

* ``C_S`` is fixed for the whole step (the received model's features, computed
  once by the server or the other clients); Deep CORAL recomputes it on each
  source batch with shared weights.  There is no source data on the device.
* Both covariances are taken the same way: eval mode (BatchNorm running
  statistics) on the *un-augmented* windows.  ``C_S`` comes from
  :func:`fedotl.client.train.embedding_moments` (eval mode, no augmentation),
  so the CORAL term re-embeds each raw batch in eval mode, while the
  cross-entropy still sees the augmented batch in train mode.
* λ: Deep CORAL sets it so that the classification and CORAL losses are of
  the same order by the end of training (its experiments; the passage was not
  re-read here).  The default ``coral-weight`` follows that rule, calibrated
  on training losses only (docs/federated.md).  :func:`personalize` returns
  both losses for the first and last epoch so that the rule can be checked
  on any run.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedotl.client.protocol import METRIC_PERSONALIZE_LOSSES
from fedotl.client.train import TrainSettings, batches_per_epoch, train_local


def covariance(f: torch.Tensor) -> torch.Tensor:
    """Unbiased covariance of the rows of ``f`` (n × d), as Deep CORAL's C_S and C_T."""
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


def eval_embed(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Bottleneck features of ``x`` in eval mode, with gradients: the mode ``C_S`` is computed in."""
    was = [m.training for m in model.modules()]
    model.eval()
    try:
        return model.embed(x)
    finally:
        for m, t in zip(model.modules(), was):
            m.training = t


def personalize(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    source_cov: np.ndarray | None,
    settings: TrainSettings,
    *,
    seed: int,
    coral_weight: float,
) -> dict[str, float]:
    """Fine-tune the FC layers of ``model`` in place on (X, y) with CE + λ·CORAL.

    With ``source_cov`` None or ``coral_weight`` 0 this is plain head
    fine-tuning (with ``source_cov`` given, the CORAL loss is still measured).
    The conv layers and their BatchNorm statistics are frozen.  Besides
    :func:`train_local`'s results, returns the mean cross-entropy
    (``ce-start``/``ce-end``) and unweighted CORAL loss
    (``coral-start``/``coral-end``) over the first and last epoch.
    """
    params = freeze_features(model)
    extra = None
    ces: list[float] = []
    corals: list[float] = []
    if source_cov is not None:
        cs = torch.as_tensor(np.asarray(source_cov), dtype=torch.float32)

        def extra(m, _xb, yb, emb, raw):
            with torch.no_grad():
                ces.append(float(F.cross_entropy(m.head(emb), yb)))
            if coral_weight > 0:
                c = coral_loss(cs, eval_embed(m, raw))  # C_T as C_S: eval mode, un-augmented
                corals.append(float(c.detach()))
                return coral_weight * c
            with torch.no_grad():  # λ = 0: measured, no gradient, training unchanged
                corals.append(float(coral_loss(cs, eval_embed(m, raw))))
            return 0.0

    out = train_local(model, X, y, settings, seed=seed, params=params, extra_loss=extra, frozen=model.features)
    for p in model.parameters():
        p.requires_grad_(True)
    if ces:
        k = batches_per_epoch(len(y), settings.batch_size)
        first_last = (np.mean(ces[:k]), np.mean(corals[:k]), np.mean(ces[-k:]), np.mean(corals[-k:]))
        out.update({name: float(v) for name, v in zip(METRIC_PERSONALIZE_LOSSES, first_last)})
    return out
