"""SecAgg+ for the Message-API strategies: the server never sees one device's update.

Protocol: SecAgg+ (Bell et al., "Secure Single-Server Aggregation with
(Poly)Logarithmic Complexity", CCS 2020), as implemented by Flower:
:class:`flwr.server.workflow.SecAggPlusWorkflow` on the server and
:func:`flwr.client.mod.secaggplus_mod` on the devices.  Each device
quantises its weighted update, adds a private mask and pairwise masks shared
with its neighbours, and the server can only recover the masked sum.

In flwr 1.42 that workflow is written for the legacy ``DefaultWorkflow``
(a ``LegacyContext`` and a legacy strategy), while our strategies run through
``Strategy.start()``.  :class:`SecAggPlusGrid` joins the two without touching
either: it wraps the Grid that ``start()`` talks to, and turns each batch of
``train`` messages into the four SecAgg+ stages, driven by Flower's own stage
methods.  What ``aggregate_train`` then receives is one reply per surviving
device, each carrying the *same* securely aggregated arrays (the example-
weighted mean) next to that device's plain-text metrics, exactly what
Flower's legacy path hands ``aggregate_fit``.  FedAvg of identical arrays is
those arrays, so FedAvg, FedProx and FedHealth's rounds work unchanged.

Only the federated ``train`` rounds are protected.  Evaluation metrics,
example counts and FedHealth's feature moments travel in plain text
(docs/federated.md says what each privacy option covers).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import cast

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.common import FitIns, FitRes, Parameters, parameters_to_ndarrays
from flwr.server import ServerConfig
from flwr.server.client_proxy import ClientProxy
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.strategy import Strategy as LegacyStrategy
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey
from flwr.server.workflow.secure_aggregation.secaggplus_workflow import WorkflowState
from flwr.serverapp import Grid
from fedotl.client.protocol import REC_ARRAYS, REC_CLIENT, REC_CONFIG, REC_METRICS

CLIENT_KEYS = ("client-id", "partition-id")  # as client.secure_aggregation writes them
ERROR_CODE = 4242  # error replies for devices that dropped out of a SecAgg+ round


def auto_num_shares(sampled: int) -> int | float:
    """Neighbours per node: 2⌈log₂ n⌉ + 1, or everyone (1.0) when that is all of them.

    SecAgg+ replaces SecAgg's complete graph with a sparse one of O(log n)
    neighbours, which keeps its guarantees with high probability (Bell et
    al. 2020, Sec. 3) while each device's work grows as log n, not n.

    >>> auto_num_shares(40), auto_num_shares(1000), auto_num_shares(5)
    (13, 21, 1.0)
    """
    k = 2 * math.ceil(math.log2(max(sampled, 2))) + 1
    return 1.0 if k >= sampled else k


class _SingleRound(LegacyStrategy):
    """The legacy strategy the SecAgg+ stages call: it names the nodes and keeps the sum."""

    def __init__(self, grid: Grid, node_ids: list[int]):
        self.grid, self.node_ids = grid, node_ids
        self.results: list[tuple[ClientProxy, FitRes]] = []
        self.aggregate: list | None = None

    def configure_fit(self, server_round, parameters, client_manager):
        empty = FitIns(Parameters(tensors=[], tensor_type=""), {})
        return [(GridClientProxy(nid, self.grid, 0), empty) for nid in self.node_ids]

    def aggregate_fit(self, server_round, results, failures):
        # Flower puts the unmasked mean into every result; there is nothing to average.
        self.results = list(results)
        if self.results:
            self.aggregate = parameters_to_ndarrays(self.results[0][1].parameters)
        return None, {}

    def initialize_parameters(self, client_manager):
        return None

    def configure_evaluate(self, server_round, parameters, client_manager):
        return []

    def aggregate_evaluate(self, server_round, results, failures):
        return None, {}

    def evaluate(self, server_round, parameters):
        return None


class _ErrorLog:
    """The Grid as the SecAgg+ stages see it, remembering why each node failed."""

    def __init__(self, grid: Grid):
        self.grid, self.errors = grid, {}

    def send_and_receive(self, messages, *, timeout=None):
        replies = list(self.grid.send_and_receive(messages, timeout=timeout))
        for r in replies:
            if r.has_error():
                self.errors.setdefault(r.metadata.src_node_id, str(r.error.reason))
        return replies


class SecAggPlusGrid:
    """A Grid whose ``train`` rounds go through SecAgg+; every other message passes through.

    ``num_shares`` and ``reconstruction_threshold`` follow
    :class:`~flwr.server.workflow.SecAggPlusWorkflow` (a float is a fraction of
    the sampled nodes / of the shares).  ``num_shares=None`` picks, each round,
    :func:`auto_num_shares` of the sampled nodes.  Each update is scaled by
    ``num_examples / max_weight`` and clipped to ±``clipping_range`` before
    quantisation, and the mean is recovered by dividing by the (also masked)
    sum of those factors; a device whose update does not fit drops out of the
    round with the reason (:func:`fedotl.client.secure_aggregation.check_range`).
    """

    # Flower's defaults, which this wrapper keeps: 2^22 quantisation levels, sums mod 2^32.
    QUANTIZATION_RANGE = 2**22
    MODULUS_RANGE = 2**32

    def __init__(
        self,
        grid: Grid,
        *,
        num_shares: float | None = None,
        reconstruction_threshold: float = 0.5,
        max_weight: float = 10000.0,
        clipping_range: float = 8.0,
        timeout: float | None = None,
    ):
        self.grid = grid
        self.num_shares = num_shares
        self.settings = dict(
            reconstruction_threshold=reconstruction_threshold, max_weight=float(max_weight), clipping_range=clipping_range, timeout=timeout
        )
        self.workflow(2)  # Flower validates the settings here, before any round
        self.rounds: list[dict[str, int]] = []  # per SecAgg+ round: sampled, aggregated

    def workflow(self, sampled: int) -> SecAggPlusWorkflow:
        shares = auto_num_shares(sampled) if self.num_shares is None else self.num_shares
        return SecAggPlusWorkflow(num_shares=shares, **self.settings)  # type: ignore[arg-type]

    def __getattr__(self, name):
        return getattr(self.grid, name)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        messages = list(messages)
        if not messages or any(m.metadata.message_type != "train" for m in messages):
            return self.grid.send_and_receive(messages, timeout=timeout)
        return self._secure_round(messages)

    def _secure_round(self, messages: list[Message]) -> list[Message]:
        by_node = {m.metadata.dst_node_id: m for m in messages}
        if len(by_node) * self.QUANTIZATION_RANGE >= self.MODULUS_RANGE:
            raise ValueError(
                f"SecAgg+ sums {len(by_node)} updates quantised to 2^22 levels in 32-bit arithmetic, which "
                f"overflows above {self.MODULUS_RANGE // self.QUANTIZATION_RANGE - 1} devices per round; sample fewer"
            )
        cfg = messages[0].content.config_records.get(REC_CONFIG) or ConfigRecord()
        server_round = int(cfg.get("server-round", len(self.rounds) + 1))  # type: ignore[arg-type]
        legacy = _SingleRound(self.grid, sorted(by_node))
        context = LegacyContext(
            Context(run_id=0, node_id=0, node_config={}, state=RecordDict(), run_config={}),
            config=ServerConfig(num_rounds=server_round),
            strategy=legacy,
        )
        context.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord({WorkflowKey.CURRENT_ROUND: server_round})
        context.state.array_records[MAIN_PARAMS_RECORD] = ArrayRecord()
        state = WorkflowState()
        wf = self.workflow(len(by_node))
        grid = _ErrorLog(self.grid)
        ok = wf.setup_stage(grid, context, state)
        if ok:
            # Our own train content replaces the legacy FitIns; each node gets a copy,
            # because the collect stage writes that node's ciphertexts into it.
            state.nid_to_fitins = {nid: copy.deepcopy(by_node[nid].content) for nid in state.nid_to_fitins}
            ok = (
                wf.share_keys_stage(grid, context, state)
                and wf.collect_masked_vectors_stage(grid, context, state)
                and wf.unmask_stage(grid, context, state)
            )
        replies = self._replies(by_node, legacy) if ok and legacy.aggregate is not None else []
        self.rounds.append({"round": server_round, "sampled": len(by_node), "aggregated": len(replies)})
        answered = {m.metadata.src_node_id for m in replies}
        halted = "" if ok else "SecAgg+ round halted: too few nodes to unmask the sum. "
        for n in sorted(set(by_node) - answered):
            why = grid.errors.get(n, "no reply within round-timeout" if ok else "")
            reason = halted + (f"dropped out of the SecAgg+ round: {why}" if why else "")
            replies.append(Message(Error(code=ERROR_CODE, reason=reason.strip()), reply_to=by_node[n]))
        return replies

    def _replies(self, by_node: dict[int, Message], legacy: _SingleRound) -> list[Message]:
        sent = next(iter(by_node.values())).content.array_records.get(REC_ARRAYS) or ArrayRecord()
        aggregate = cast(list, legacy.aggregate)
        if len(aggregate) != len(sent):
            raise RuntimeError(f"SecAgg+ returned {len(aggregate)} arrays for {len(sent)} sent")
        # SecAgg+ dequantises to float64; hand the strategy the dtypes it sent.
        arrays = ArrayRecord({k: Array(np.asarray(a, dtype=sent[k].numpy().dtype)) for k, a in zip(sent.keys(), aggregate)})
        out = []
        for proxy, fitres in legacy.results:
            metrics = {k: v for k, v in fitres.metrics.items() if k not in CLIENT_KEYS and isinstance(v, (int, float))}
            client = {k: fitres.metrics[k] for k in CLIENT_KEYS if k in fitres.metrics}
            content = RecordDict({REC_ARRAYS: arrays, REC_METRICS: MetricRecord(metrics), REC_CLIENT: ConfigRecord(client)})  # type: ignore[arg-type]
            out.append(Message(content, reply_to=by_node[proxy.node_id]))
        return out

