"""The Flower ClientApp (Message API, flwr 1.42): one SuperNode per wearable device.

Thin: each handler loads the node's own store (:mod:`fedotl.client.data`),
converts records to numpy dicts, and calls a plain function of
:mod:`fedotl.client.node`.  Per-node state that must survive between rounds
(local BatchNorm layers, the local-only model, the personalised head) lives
in ``context.state`` as ArrayRecords, never in module globals.

Messages handled:

``train``               local training on the received (or local) model; with
                        ``secagg`` it goes through Flower's ``secaggplus_mod``
                        (:mod:`fedotl.client.secure_aggregation`)
``evaluate``            test metrics of the node's model on its own test split
``train.personalize``   FedHealth: freeze convs, fine-tune FC layers with CORAL; the
                        head is written to this device's ``out-dir`` (client.storage);
                        the reply carries metrics, and with ``share-heads`` also the
                        head and the feature summary (client.summary) for new users
``query.stats``         bottleneck-feature moments (FedHealth's source covariance)
``query.info``          input and class counts, so the server can build the model, and
                        what the windows are (classes, channels, rate, window), so
                        that the saved global model describes itself

Every reply carries a ConfigRecord ``client`` with the node's ``client-id``,
``partition-id``, ``subject`` and ``position``, so the server can report
per-device results and aggregate in a fixed order.

``app`` reads its settings from ``context.run_config`` (``flwr run``);
:func:`make_client_app` bakes in defaults for ``run_simulation``, which
passes no run config.  Its store is node config ``data-dir`` when set (a real
SuperNode), else ``<run config data-dir>/devices/<partition-id>``.
"""

from __future__ import annotations

from typing import Mapping

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from fedotl.client.config import RunConfig
from fedotl.client.data import ClientData, load_device, representation_of, store_dir
from fedotl.client.node import node_evaluate, node_personalize, node_stats, node_train
from fedotl.client.protocol import (
    MSG_INFO, MSG_PERSONALIZE, MSG_STATS, REC_ARRAYS, REC_CLIENT, REC_CONFIG, REC_DESCRIBE, REC_FEDAP, REC_HEAD, REC_METRICS,
    REC_MOMENTS, REC_SOURCE, REC_SUMMARY,
)
from fedotl.client.records import arrays_to_record, record_to_arrays
from fedotl.client.secure_aggregation import maybe_secaggplus_mod
from fedotl.client.storage import save_head
from fedotl.client.store import DeviceStore
from fedotl.client.train import use_one_thread


def _state_dicts(context: Context) -> dict[str, dict]:
    return {k: record_to_arrays(v) for k, v in context.state.array_records.items()}


def _save_state(context: Context, state: dict[str, dict]) -> None:
    for k, v in state.items():
        context.state[k] = arrays_to_record(v)


def maybe_fixedclipping_mod(msg: Message, context: Context, call_next) -> Message:
    """Flower's ``fixedclipping_mod``, only when the server sent a clipping norm.

    The server wraps its strategy in DifferentialPrivacyClientSideFixedClipping
    when run config ``dp = "client-fixed"``; that wrapper puts the norm in the
    train config.  Without it the message passes through untouched.
    """
    cfg = msg.content.config_records.get(REC_CONFIG)
    if cfg is not None and KEY_CLIPPING_NORM in cfg:
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


class _Node:
    """What a handler needs: the validated run config and this node's data."""

    def __init__(self, context: Context, defaults: Mapping[str, object]):
        use_one_thread()
        self.cfg = RunConfig({**defaults, **context.run_config})
        self.partition_id = int(context.node_config.get("partition-id", 0))  # type: ignore[arg-type]
        path = store_dir(context.node_config, str(self.cfg.data_dir), self.partition_id)
        self.data: ClientData = load_device(path, float(self.cfg.train_fraction), representation_of(str(self.cfg.model)))
        self.meta = DeviceStore(path).meta()

    def client_record(self) -> ConfigRecord:
        meta = self.meta
        return ConfigRecord(
            {"client-id": self.data.client_id, "partition-id": self.partition_id,
             "subject": str(meta.get("subject", "")), "position": str(meta.get("position", ""))}
        )

    def describe(self) -> ConfigRecord:
        """What the windows are, so that the global model can describe itself (fedotl.client.model_card)."""
        meta = self.meta
        channels = meta["channels"]
        labels = meta.get("labels") or [str(c) for c in meta["classes"]]
        return ConfigRecord({
            "classes": [int(c) for c in meta["classes"]], "labels": [str(v) for v in labels],
            "channels": [str(c.get("name", "")) for c in channels],
            "sensors": [str(c.get("sensor", "")) for c in channels], "axes": [str(c.get("axis", "")) for c in channels],
            "rate-hz": float(meta["rate_hz"]), "window-rows": int(meta["window_rows"]),
        })


def _msg_config(msg: Message) -> dict:
    cfg = msg.content.config_records.get(REC_CONFIG)
    return dict(cfg) if cfg is not None else {}


def _arrays(msg: Message, name: str = REC_ARRAYS) -> dict:
    return record_to_arrays(msg.content.array_records.get(name))


def make_client_app(defaults: Mapping[str, object] | None = None) -> ClientApp:
    """A ClientApp whose run config falls back to ``defaults``."""
    defaults = dict(defaults or {})
    app = ClientApp()

    @app.train(mods=[maybe_secaggplus_mod, maybe_fixedclipping_mod])
    def train(msg: Message, context: Context) -> Message:
        node = _Node(context, defaults)
        state = _state_dicts(context)
        send, metrics, extra = node_train(node.data, node.cfg, _arrays(msg), state, partition_id=node.partition_id, config=_msg_config(msg))
        _save_state(context, state)
        content = RecordDict({REC_ARRAYS: arrays_to_record(send), REC_METRICS: MetricRecord(metrics), REC_CLIENT: node.client_record()})
        if extra:
            content[REC_FEDAP] = ConfigRecord(
                {"bn-mean": [float(v) for v in extra["bn-mean"]], "bn-var": [float(v) for v in extra["bn-var"]], "bn-sizes": [int(v) for v in extra["bn-sizes"]]}
            )
        return Message(content=content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        node = _Node(context, defaults)
        metrics = node_evaluate(node.data, node.cfg, _arrays(msg), _state_dicts(context))
        return Message(content=RecordDict({REC_METRICS: MetricRecord(metrics), REC_CLIENT: node.client_record()}), reply_to=msg)

    @app.train(MSG_PERSONALIZE.split(".", 1)[1])
    def personalize(msg: Message, context: Context) -> Message:
        node = _Node(context, defaults)
        state = _state_dicts(context)
        source = msg.content.array_records.get(REC_SOURCE)
        cov = source["cov"].numpy() if source is not None and "cov" in source else None
        head, metrics, summary = node_personalize(node.data, node.cfg, _arrays(msg), state, cov)
        _save_state(context, state)
        save_head(str(node.cfg.out_dir), node.data.client_id, head)  # on this device's disk
        content = RecordDict({REC_METRICS: MetricRecord(metrics), REC_CLIENT: node.client_record()})
        if summary:  # share-heads: the head and the summary leave the device, raw windows never do
            content[REC_HEAD] = arrays_to_record(head)
            content[REC_SUMMARY] = arrays_to_record(summary)
        return Message(content=content, reply_to=msg)

    @app.query(MSG_STATS.split(".", 1)[1])
    def stats(msg: Message, context: Context) -> Message:
        node = _Node(context, defaults)
        arrays, metrics = node_stats(node.data, node.cfg, _arrays(msg), _state_dicts(context))
        content = RecordDict({REC_MOMENTS: arrays_to_record(arrays), REC_METRICS: MetricRecord(metrics), REC_CLIENT: node.client_record()})
        return Message(content=content, reply_to=msg)

    @app.query(MSG_INFO.split(".", 1)[1])
    def info(msg: Message, context: Context) -> Message:
        node = _Node(context, defaults)
        metrics = MetricRecord(
            {"n-inputs": node.data.n_inputs, "n-classes": node.data.n_classes, "num-train": len(node.data.y_train), "num-test": len(node.data.y_test)}
        )
        return Message(content=RecordDict({REC_METRICS: metrics, REC_CLIENT: node.client_record(), REC_DESCRIBE: node.describe()}), reply_to=msg)

    return app


app = make_client_app()
