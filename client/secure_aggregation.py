"""The device side of SecAgg+: Flower's ``secaggplus_mod`` in front of our train handler.

When the server runs with ``secagg = true`` (see :mod:`fedotl.server.secure_aggregation`),
every ``train`` message of a federated round is one of the four SecAgg+
stages and carries a ``secaggplus`` ConfigRecord.  Flower's
:func:`flwr.client.mod.secaggplus_mod` answers the key-exchange stages
itself; in the ``collect masked vectors`` stage it calls our train handler,
then quantises, weights and masks the update before it leaves the device.

The mod reads the update as a legacy ``FitRes``; :func:`as_fitres_reply`
writes our reply in that form, with the arrays in the order the server sent
them, and the node's identity and training metrics in ``fitres.metrics`` (the
mod forwards those in plain text, as Flower's SecAgg+ always does).
A ``train`` message without the ``secaggplus`` record passes through
untouched, so the same ClientApp serves runs with and without SecAgg+.
"""

from __future__ import annotations

import zlib

import flwr.compat.common.recorddict_compat as compat
import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.client.mod import secaggplus_mod
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, RECORD_KEY_STATE
from fedotl.client.protocol import REC_ARRAYS, REC_CLIENT, REC_METRICS

# fitres.metrics keys that carry the node's identity (server.secure_aggregation reads them back)
CLIENT_KEYS = ("client-id", "partition-id")


def as_fitres_reply(request: Message, reply: Message) -> Message:
    """Our ``train`` reply rewritten as the legacy FitRes records ``secaggplus_mod`` expects."""
    if reply.has_error():
        return reply
    sent = request.content.array_records.get(REC_ARRAYS) or ArrayRecord()
    arrays = reply.content.array_records.get(REC_ARRAYS) or ArrayRecord()
    if list(arrays.keys()) != list(sent.keys()):
        # SecAgg+ sums whole vectors: a node cannot keep some layers back (FedBN) or add new ones.
        raise ValueError(
            f"SecAgg+ needs the update to have exactly the arrays the server sent; sent {len(sent)}, "
            f"replied with {len(arrays)} ({sorted(set(arrays.keys()) ^ set(sent.keys()))[:3]} differ)"
        )
    metrics = reply.content.metric_records.get(REC_METRICS) or MetricRecord()
    client = reply.content.config_records.get(REC_CLIENT) or ConfigRecord()
    fitres_metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    fitres_metrics.update({k: client[k] for k in CLIENT_KEYS if k in client})
    fitres = FitRes(
        status=Status(Code.OK, "Success"),
        parameters=ndarrays_to_parameters([arrays[k].numpy() for k in sent.keys()]),
        num_examples=int(metrics.get("num-examples", 0)),  # type: ignore[arg-type]
        metrics=fitres_metrics,  # type: ignore[arg-type]
    )
    content = compat.fitres_to_recorddict(fitres, keep_input=False)
    return Message(content=content, reply_to=request)


def check_range(fitres_reply: Message, protocol: ConfigRecord | None) -> None:
    """Refuse an update that SecAgg+ would corrupt without a word (Flower only logs it).

    The mod scales the update by num_examples / max_weight, which must not
    exceed 1, and clips it to ±clipping_range.  Past either limit the sum
    would be wrong, so the device drops out of the round with this error,
    which the server records as the reason.
    """
    if protocol is None:
        return
    clip, max_weight = float(protocol["clipping_range"]), float(protocol["max_weight"])  # type: ignore[arg-type]
    n = int(fitres_reply.content.metric_records["fitres.num_examples"]["num_examples"])  # type: ignore[arg-type]
    if n > max_weight:
        raise ValueError(f"SecAgg+ weight: {n} training examples exceed secagg-max-weight={max_weight:g}; raise it")
    for i, tensor in enumerate(fitres_reply.content.array_records["fitres.parameters"].values()):
        peak = float(np.abs(tensor.numpy()).max(initial=0.0))
        if peak * n / max_weight > clip:
            raise ValueError(
                f"SecAgg+ range: array {i} of the update reaches |w| = {peak:.3g}, and |w|·n/max-weight = "
                f"{peak * n / max_weight:.3g} > secagg-clipping-range {clip:g}; raise it or lower secagg-max-weight"
            )


def maybe_secaggplus_mod(msg: Message, context: Context, call_next) -> Message:
    """Flower's ``secaggplus_mod`` for SecAgg+ stage messages; anything else passes through.

    The mod's stochastic quantisation draws from numpy's global generator.  Seeding it from
    the update's own bytes makes a run reproducible (the masks cancel exactly, so they do
    not matter); the generator's previous state is restored afterwards.
    """
    if RECORD_KEY_CONFIGS not in msg.content.config_records:
        return call_next(msg, context)

    def train_as_fitres(request: Message, ctx: Context) -> Message:
        # The handler (and Flower's fixedclipping_mod, which wants one ConfigRecord) sees
        # the plain train message; the mod already holds the protocol record.
        protocol_record = request.content.config_records.pop(RECORD_KEY_CONFIGS)
        try:
            reply = as_fitres_reply(request, call_next(request, ctx))
        finally:
            request.content.config_records[RECORD_KEY_CONFIGS] = protocol_record
        if not reply.has_error():
            check_range(reply, ctx.state.config_records.get(RECORD_KEY_STATE))
            tensors = reply.content.array_records["fitres.parameters"]
            np.random.seed(zlib.crc32(b"".join(a.data for a in tensors.values())))
        return reply

    saved = np.random.get_state()
    try:
        return secaggplus_mod(msg, context, train_as_fitres)
    finally:
        np.random.set_state(saved)
