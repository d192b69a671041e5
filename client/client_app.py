"""The Flower ClientApp (Message API, flwr 1.42): one SuperNode per wearable device.

Thin: each handler loads the node's own partition (:mod:`client.data`),
converts records to numpy dicts, and calls a plain function of
:mod:`client.train`.  Per-node state that must survive between rounds
(local BatchNorm layers, the local-only model, the personalised head) lives
in ``context.state`` as ArrayRecords, never in module globals.

Messages handled:

``train``               local training on the received (or local) model; with
                        ``secagg`` it goes through Flower's ``secaggplus_mod``
                        (:mod:`client.secure_aggregation`)
``evaluate``            test metrics of the node's model on its own test split
``train.personalize``   FedHealth: freeze convs, fine-tune FC layers with CORAL; the
                        head is written to this device's ``out-dir`` (client.storage)
                        and the reply carries metrics only
``query.stats``         bottleneck-feature moments (FedHealth's source covariance)
``query.info``          input and class counts, so the server can build the model

Every reply carries a ConfigRecord ``client`` with the node's ``client-id``
and ``partition-id``, so the server can report per-device results and
aggregate in a fixed order.

``app`` reads its settings from ``context.run_config`` (``flwr run``);
:func:`make_client_app` bakes in defaults for ``run_simulation``, which
passes no run config.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from client.data import ClientData, load_partition, spec_from_config
from client.secure_aggregation import maybe_secaggplus_mod
from client.storage import save_head
from client.train import NodeSettings, node_evaluate, node_personalize, node_stats, node_train, use_one_thread


def to_arrays(record: ArrayRecord | None) -> dict[str, np.ndarray]:
    if record is None:
        return {}
    return {k: v.numpy() for k, v in record.items()}


def to_record(arrays: Mapping[str, np.ndarray]) -> ArrayRecord:
    if not arrays:
        return ArrayRecord()
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})


def _state_dicts(context: Context) -> dict[str, dict[str, np.ndarray]]:
    return {k: to_arrays(v) for k, v in context.state.array_records.items()}


def _save_state(context: Context, state: dict[str, dict[str, np.ndarray]]) -> None:
    for k, v in state.items():
        context.state[k] = to_record(v)


def maybe_fixedclipping_mod(msg: Message, context: Context, call_next) -> Message:
    """Flower's ``fixedclipping_mod``, only when the server sent a clipping norm.

    The server wraps its strategy in DifferentialPrivacyClientSideFixedClipping
    when run config ``dp = "client-fixed"``; that wrapper puts the norm in the
    train config.  Without it the message passes through untouched.
    """
    cfg = msg.content.config_records.get("config")
    if cfg is not None and KEY_CLIPPING_NORM in cfg:
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


class _Node:
    """What a handler needs: merged config, settings, this node's data."""

    def __init__(self, context: Context, defaults: Mapping[str, object]):
        use_one_thread()
        cfg = dict(defaults)
        cfg.update(context.run_config)
        self.cfg = cfg
        self.settings = NodeSettings.from_config(cfg)
        self.partition_id = int(context.node_config.get("partition-id", cfg.get("partition-id", 0)))  # type: ignore[arg-type]
        self.data: ClientData = load_partition(spec_from_config(cfg), self.partition_id)

    def client_record(self) -> ConfigRecord:
        return ConfigRecord({"client-id": self.data.client_id, "partition-id": self.partition_id})


def _msg_config(msg: Message) -> dict:
    cfg = msg.content.config_records.get("config")
    return dict(cfg) if cfg is not None else {}


def make_client_app(defaults: Mapping[str, object] | None = None) -> ClientApp:
    """A ClientApp whose run config falls back to ``defaults``."""
    defaults = dict(defaults or {})
    app = ClientApp()

    @app.train(mods=[maybe_secaggplus_mod, maybe_fixedclipping_mod])
    def train(msg: Message, context: Context) -> Message:
        node = _Node(context, defaults)
        config = _msg_config(msg)
        state = _state_dicts(context)
        send, metrics, extra = node_train(
            node.data, node.settings, to_arrays(msg.content.array_records.get("arrays")), state,
            partition_id=node.partition_id, server_round=int(config.get("server-round", 0)), config=config,
        )
        _save_state(context, state)
        content = RecordDict({"arrays": to_record(send), "metrics": MetricRecord(metrics), "client": node.client_record()})
        if extra:
            content["fedap"] = ConfigRecord(
                {"bn-mean": [float(v) for v in extra["bn-mean"]], "bn-var": [float(v) for v in extra["bn-var"]], "bn-sizes": [int(v) for v in extra["bn-sizes"]]}
            )
        return Message(content=content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        node = _Node(context, defaults)
        metrics = node_evaluate(node.data, node.settings, to_arrays(msg.content.array_records.get("arrays")), _state_dicts(context))
        return Message(content=RecordDict({"metrics": MetricRecord(metrics), "client": node.client_record()}), reply_to=msg)

    @app.train("personalize")
    def personalize(msg: Message, context: Context) -> Message:
        node = _Node(context, defaults)
        state = _state_dicts(context)
        source = msg.content.array_records.get("source")
        cov = source["cov"].numpy() if source is not None and "cov" in source else None
        head, metrics = node_personalize(
            node.data, node.settings, to_arrays(msg.content.array_records.get("arrays")), state, cov, _msg_config(msg)
        )
        _save_state(context, state)
        save_head(str(node.cfg.get("out-dir", "")), node.data.client_id, head)  # on this device's disk; never sent
        content = RecordDict({"metrics": MetricRecord(metrics), "client": node.client_record()})
        return Message(content=content, reply_to=msg)

    @app.query("stats")
    def stats(msg: Message, context: Context) -> Message:
        node = _Node(context, defaults)
        arrays, metrics = node_stats(node.data, node.settings, to_arrays(msg.content.array_records.get("arrays")), _state_dicts(context))
        content = RecordDict({"moments": to_record(arrays), "metrics": MetricRecord(metrics), "client": node.client_record()})
        return Message(content=content, reply_to=msg)

    @app.query("info")
    def info(msg: Message, context: Context) -> Message:
        node = _Node(context, defaults)
        metrics = MetricRecord(
            {"n-inputs": node.data.n_inputs, "n-classes": node.data.n_classes, "num-train": len(node.data.y_train), "num-test": len(node.data.y_test)}
        )
        return Message(content=RecordDict({"metrics": metrics, "client": node.client_record()}), reply_to=msg)

    return app


app = make_client_app()
