"""What a node does with each message, on numpy dicts (no Flower types).

The ClientApp (:mod:`fedotl.client.client_app`) converts records to and from
these dicts and keeps ``state`` in ``context.state``; everything here is
testable without the Simulation Engine.  Every setting comes from the run
config (:class:`fedotl.client.config.RunConfig`); a message carries only
what changes per message (the round, FedProx's μ, FedAP's request for
BatchNorm statistics, FedHealth's source covariance).

``state`` holds what a node keeps between rounds: ``local-model`` for
local-only training, ``local-bn`` for the strategies that keep BatchNorm on
the node, ``personal-head`` after FedHealth's personalisation.
"""

from __future__ import annotations

import time

import numpy as np
from torch import nn

from fedotl.client.attacks import attack_update, flip_labels
from fedotl.client.config import RunConfig
from fedotl.client.data import ClientData
from fedotl.client.model import bn_keys, build_model, fc_keys, get_arrays, set_arrays
from fedotl.client.personalize import personalize
from fedotl.client.protocol import (
    CFG_BN_STATS, CFG_FEDAVG_ROUND, CFG_PROXIMAL_MU, CFG_SERVER_ROUND, METRIC_CONFUSION, METRIC_NON_FINITE, METRIC_PERSONALIZE_LOSSES,
)
from fedotl.client.summary import summarise
from fedotl.client.train import TrainSettings, bn_input_stats, derive_seed, embedding_moments, evaluate, predict, train_local

Arrays = dict[str, np.ndarray]
State = dict[str, Arrays]


class InjectedFailure(RuntimeError):
    """Raised on purpose (run config fail-partition/fail-round) to test failure handling."""


def train_settings(cfg: RunConfig, stage: str = "local") -> TrainSettings:
    """Training settings from the run config for one stage: ``local`` rounds, FedHealth's
    ``personalize`` step, or the cloud's ``pretrain`` on server-held data."""
    epochs = {"local": cfg.local_epochs, "personalize": cfg.personalize_epochs, "pretrain": cfg.pretrain_epochs}[stage]
    lr = cfg.personalize_learning_rate if stage == "personalize" else cfg.learning_rate
    return TrainSettings(epochs=int(epochs), lr=float(lr), batch_size=int(cfg.batch_size), augment=bool(cfg.augment))


def node_model(data: ClientData, cfg: RunConfig, incoming: Arrays, state: State) -> nn.Module:
    """The model a node works with: received weights, plus what it keeps locally."""
    model = build_model(str(cfg.model), data.n_inputs, data.n_classes, seed=int(cfg.seed), width=int(cfg.model_width), bottleneck=int(cfg.bottleneck))
    if cfg.strategy == "local" and "local-model" in state:
        set_arrays(model, state["local-model"])
        return model
    set_arrays(model, incoming)
    if cfg.local_bn and "local-bn" in state:
        # BN layers the server sent win (FedAP's pretrained model); the node's own fill the rest.
        set_arrays(model, {k: v for k, v in state["local-bn"].items() if k not in incoming})
    return model


def maybe_fail(cfg: RunConfig, partition_id: int, server_round: int) -> None:
    if partition_id == cfg.fail_partition and server_round == cfg.fail_round:
        if cfg.fail_mode == "hang":  # a straggler: answers after fail-seconds, past the round timeout
            time.sleep(float(cfg.fail_seconds))
        else:
            raise InjectedFailure(f"injected failure of partition {partition_id} in round {server_round}")


def node_train(data: ClientData, cfg: RunConfig, incoming: Arrays, state: State, *, partition_id: int, config) -> tuple[Arrays, dict, dict]:
    """One round of local training.

    Returns (arrays to send, metrics, extra) and updates ``state`` in place.
    The arrays sent back have the keys that came in, less BatchNorm layers
    for the strategies that keep them local (FedBN/FedAP return only the
    shared layers; local-only returns nothing), except in FedAP's FedAvg
    pretraining rounds (:data:`~fedotl.client.protocol.CFG_FEDAVG_ROUND`),
    which send everything back, BatchNorm included.  ``extra`` carries FedAP's
    BatchNorm statistics, taken before training, when the server asked for them.

    A step whose loss or weights are not finite (a diverged step, or NaN that got into the
    windows) is rejected: ``state`` keeps its last good values, and the node sends no arrays,
    ``num-examples`` 0 and :data:`~fedotl.client.protocol.METRIC_NON_FINITE` 1, so the server
    counts the failure and averages without it.
    """
    server_round = int(config.get(CFG_SERVER_ROUND, 0))
    maybe_fail(cfg, partition_id, server_round)
    model = node_model(data, cfg, incoming, state)
    extra: dict = {}
    if config.get(CFG_BN_STATS):
        means, variances = bn_input_stats(model, data.X_train)
        extra = {"bn-mean": np.concatenate(means), "bn-var": np.concatenate(variances), "bn-sizes": [len(m) for m in means]}
    attacking = cfg.attack != "none" and partition_id in cfg.attack_partition_list
    y_train = flip_labels(data.y_train, data.n_classes) if attacking and cfg.attack == "label-flip" else data.y_train
    out = train_local(
        model, data.X_train, y_train, train_settings(cfg),
        seed=derive_seed(cfg.seed, data.client_id, server_round, "train"), proximal_mu=float(config.get(CFG_PROXIMAL_MU, 0.0)),
    )
    trained = get_arrays(model)
    if not (np.isfinite(out["loss"]) and all(np.isfinite(a).all() for a in trained.values())):
        return {}, {"num-examples": 0, METRIC_NON_FINITE: 1}, {}
    if cfg.strategy == "local":
        state["local-model"] = trained
        send: Arrays = {}
    else:
        keys = list(incoming)
        if cfg.local_bn and not config.get(CFG_FEDAVG_ROUND):
            bn = bn_keys(model)
            state["local-bn"] = {k: trained[k] for k in bn}
            keys = [k for k in keys if k not in set(bn)]  # BN never leaves the node
        send = {k: trained[k] for k in keys}
    if attacking:  # after the node's own check and state: the poisoned update only goes to the server
        learnable = {name for name, _ in model.named_parameters()}
        send = attack_update(incoming, send, str(cfg.attack), scale=float(cfg.attack_scale), learnable=learnable,
                             seed=derive_seed(cfg.seed, data.client_id, server_round, "attack"))
    metrics = {"num-examples": int(len(data.y_train)), "train-loss": float(out["loss"]), "train-accuracy": float(out["accuracy"])}
    return send, metrics, extra


def node_evaluate(data: ClientData, cfg: RunConfig, incoming: Arrays, state: State) -> dict:
    """The node's model (global, personalised or local) on its own test windows."""
    model = node_model(data, cfg, incoming, state)
    r = evaluate(model, data.X_test, data.y_test)
    return {"num-examples": r["n"], "accuracy": r["accuracy"], "macro-f1": r["macro_f1"], "loss": r["loss"], METRIC_CONFUSION: flat_confusion(r)}


def flat_confusion(result: dict) -> list[int]:
    """The confusion matrix of :func:`~fedotl.client.train.evaluate`, row-major, as a metric value (Flower's records hold flat lists)."""
    return [int(v) for v in np.asarray(result["confusion"]).ravel()]


def node_stats(data: ClientData, cfg: RunConfig, incoming: Arrays, state: State) -> tuple[Arrays, dict]:
    """(Σf, Σffᵀ) and n of the bottleneck features of the received model on the training windows."""
    model = node_model(data, cfg, incoming, state)
    n, total, outer = embedding_moments(model, data.X_train)
    return {"sum": total, "outer": outer}, {"num-examples": int(n)}


def node_personalize(data: ClientData, cfg: RunConfig, incoming: Arrays, state: State, source_cov: np.ndarray | None) -> tuple[Arrays, dict, Arrays]:
    """FedHealth's personalisation: freeze convs, fine-tune FC layers with CORAL.

    Stores the personalised FC layers in ``state["personal-head"]`` and
    returns them with the test metrics before and after.  The third value is
    the summary of the received model's bottleneck features on the training
    windows (:func:`fedotl.client.summary.summarise`) when run config
    ``share-heads`` is on, else empty: it is what a new user's device measures
    its distance to.
    """
    model = node_model(data, cfg, incoming, state)
    summary: Arrays = {}
    if cfg.share_heads:
        _, emb = predict(model, data.X_train)
        summary = summarise(emb, data.y_train, data.n_classes)
    before = evaluate(model, data.X_test, data.y_test)
    fit = personalize(
        model, data.X_train, data.y_train, source_cov, train_settings(cfg, "personalize"),
        seed=derive_seed(cfg.seed, data.client_id, "personalize"), coral_weight=float(cfg.coral_weight),
    )
    after = evaluate(model, data.X_test, data.y_test)
    head = get_arrays(model, fc_keys(model))
    state["personal-head"] = head
    metrics = {
        "num-examples": after["n"], "accuracy": after["accuracy"], "macro-f1": after["macro_f1"], "loss": after["loss"],
        "global-accuracy": before["accuracy"], "global-macro-f1": before["macro_f1"], "train-loss": float(fit["loss"]),
        METRIC_CONFUSION: flat_confusion(after),
        **{k: float(fit[k]) for k in METRIC_PERSONALIZE_LOSSES if k in fit},  # CE and CORAL, first and last epoch
    }
    return head, metrics, summary
