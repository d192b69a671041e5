"""FedHealth's CORAL step: C_T is computed the way C_S is (eval mode, raw windows)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fedotl.client.personalize import coral_loss, covariance, personalize
from fedotl.client.train import TrainSettings, embedding_moments
from fedotl.server.aggregation import pooled_moments


class TrainEvalNet(nn.Module):
    """Features, bottleneck and head whose train and eval modes differ (BatchNorm, dropout)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU())
        # momentum 0: running statistics never move, so eval-mode features stay put during training
        self.bottleneck = nn.Sequential(nn.Linear(6, 3), nn.BatchNorm1d(3, momentum=0.0), nn.Dropout(0.5), nn.ReLU())
        self.head = nn.Linear(3, 2)
        with torch.no_grad():  # running statistics far from any batch's: train-mode BN differs from eval-mode BN
            self.features[1].running_mean.fill_(0.7)
            self.features[1].running_var.fill_(3.0)
            self.bottleneck[1].running_mean.fill_(-0.5)
            self.bottleneck[1].running_var.fill_(4.0)

    def embed(self, x):
        return self.bottleneck(self.features(x))

    def forward(self, x):
        return self.head(self.embed(x))


@pytest.fixture()
def xy():
    rng = np.random.default_rng(1)
    return rng.normal(size=(10, 4)).astype(np.float32), np.arange(10) % 2


@pytest.mark.parametrize("augment", [False, True])
def test_target_covariance_is_taken_like_the_source_covariance(xy, augment):
    X, y = xy
    model = TrainEvalNet()
    # C_S exactly as the server builds it from a node's moments: eval mode, no augmentation
    n, s, ss = embedding_moments(model, X)
    cs = pooled_moments([n], [s], [ss])[2]
    # one step over one batch holding every window, learning rate ~0: the model does not move
    out = personalize(model, X, y, cs, TrainSettings(epochs=1, lr=1e-12, batch_size=len(y), augment=augment), seed=0, coral_weight=1.0)
    # same data, same mode, same model → C_T = C_S and the CORAL loss is 0.  Taking C_T in train
    # mode (batch statistics, dropout) or on augmented windows gives a loss far from 0:
    assert out["coral-start"] == pytest.approx(0.0, abs=1e-9)
    model.train()
    model.features.eval()
    with torch.no_grad():
        train_mode = float(coral_loss(torch.as_tensor(cs, dtype=torch.float32), model.embed(torch.from_numpy(X))))
    assert train_mode > 1e-3


def test_personalize_reports_both_losses_and_weights_coral_by_lambda(xy):
    X, y = xy
    cs = np.eye(3) * 5.0  # far from the features' covariance: the CORAL loss is large
    runs = {}
    for w in (0.0, 100.0):
        model = TrainEvalNet()
        runs[w] = personalize(model, X, y, cs, TrainSettings(epochs=20, lr=0.01, batch_size=5, augment=False), seed=0, coral_weight=w)
        assert {"ce-start", "ce-end", "coral-start", "coral-end"} <= set(runs[w])
    assert runs[0.0]["coral-start"] == pytest.approx(runs[100.0]["coral-start"])  # the same model and first batches
    assert runs[100.0]["coral-end"] < runs[0.0]["coral-end"]  # a weight that matters pulls C_T towards C_S


def test_covariance_is_the_unbiased_sample_covariance():
    f = torch.tensor([[1.0, 2.0], [3.0, 0.0], [5.0, 4.0]])
    # means (3, 2); centred rows (-2, 0), (0, -2), (2, 2) → Σ = [[8, 4], [4, 8]] / 2
    assert covariance(f).tolist() == [[4.0, 2.0], [2.0, 4.0]]
