"""Server strategies: Flower's own classes, subclassed where a method needs more.

All of them run through :meth:`flwr.serverapp.strategy.Strategy.start`.

============  =========================================================================
local         :class:`LocalOnly` (FedAvg subclass): no aggregation; each node keeps and
              trains its own model in ``context.state``.  The round structure, data and
              evaluation are the same as for the federated strategies.
fedavg        :class:`TrackedFedAvg`, i.e. ``flwr.serverapp.strategy.FedAvg``
              (McMahan et al. 2017), weighted by ``num-examples``.
fedprox       :class:`TrackedFedProx`, i.e. ``flwr.serverapp.strategy.FedProx``
              (Li et al., MLSys 2020): FedAvg plus ``proximal-mu`` in the train config;
              clients add ``μ/2‖w − w_t‖²``.
fedbn         :class:`FedBN` (FedAvg subclass; Li et al., "FedBN", ICLR 2021): only
              non-BatchNorm layers travel; BN layers stay on each node.
fedap         :class:`FedAP` (FedBN subclass; Lu et al., FedHealth 2 / FedAP, IEEE TBD
              2022): per-client personalised aggregates with weights from the similarity
              of BatchNorm statistics (:mod:`fedotl.server.aggregation`).
fedhealth     :class:`FedHealth` (FedProx subclass; Chen et al. 2020): FedAvg rounds (μ
              optional) on top of a cloud-pretrained model, then :meth:`personalize`;
              ``FedHealthBN``/``FedHealthAP`` run the same personalisation over
              FedBN/FedAP rounds.
============  =========================================================================

Common behaviour (:class:`_Tracked`): replies are sorted by partition id
before aggregation (so a run is reproducible whatever order the replies
arrive in), failed replies are logged and skipped, replies with zero
examples never enter a weighted average (all-zero would divide by zero), a
round with fewer than ``min_replies`` usable replies keeps the previous
model, evaluation can be thinned to every ``eval_every`` rounds, and every
round's per-client results go to the :class:`~fedotl.server.report.RunRecorder`.
With run config ``aggregation`` other than ``mean``, the round's usable replies go to one of
Flower's robust rules instead (:mod:`fedotl.server.robust`); ``round_offset`` shifts every
round number of a resumed run (:mod:`fedotl.server.checkpoint`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from logging import INFO, WARNING

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, FedProx
from flwr.supercore import log

from fedotl.client.protocol import (
    CFG_BN_STATS, CFG_FEDAVG_ROUND, METRIC_CONFUSION, METRIC_NON_FINITE, METRIC_PERSONALIZE_LOSSES, MSG_PERSONALIZE, MSG_STATS, REC_ARRAYS, REC_CLIENT, REC_CONFIG, REC_FEDAP, REC_HEAD, REC_MOMENTS, REC_SOURCE,
    REC_SUMMARY,
)
from fedotl.client.records import arrays_to_record, record_to_arrays
from fedotl.server.aggregation import fedap_weight_matrix, leave_one_out_covariances, personalised_average, pooled_moments
from fedotl.server.report import RunRecorder
from fedotl.server.robust import robust_aggregate


def reply_client(msg: Message) -> tuple[int, str]:
    """(partition id, client id) a reply says it comes from; (-1, node id) if it does not say."""
    cfg = msg.content.config_records.get(REC_CLIENT) if msg.has_content() else None
    if cfg is None:
        return -1, str(msg.metadata.src_node_id)
    return int(cfg.get("partition-id", -1)), str(cfg.get("client-id", msg.metadata.src_node_id))


def split_replies(replies: Iterable[Message]) -> tuple[list[Message], list[Message]]:
    """(valid replies sorted by partition id, error replies)."""
    valid, errors = [], []
    for m in replies:
        (errors if m.has_error() else valid).append(m)
    valid.sort(key=lambda m: (reply_client(m)[0], reply_client(m)[1]))
    return valid, errors


def _metrics(msg: Message) -> MetricRecord:
    return next(iter(msg.content.metric_records.values()))


def _evaluation(mr: MetricRecord) -> dict[str, object]:
    """A node's evaluation reply as the recorder keeps it (the confusion matrix when the node sends one)."""
    out: dict[str, object] = {"accuracy": float(mr["accuracy"]), "macro_f1": float(mr["macro-f1"]), "n": int(mr["num-examples"])}  # type: ignore[arg-type]
    if METRIC_CONFUSION in mr:
        out["confusion"] = [int(v) for v in mr[METRIC_CONFUSION]]  # type: ignore[union-attr]
    return out


def _num_examples(msg: Message, key: str = "num-examples") -> float:
    try:
        return float(_metrics(msg).get(key, 0))  # type: ignore[arg-type]
    except StopIteration:
        return 0.0


class _Tracked:
    """Mixin placed before a Flower strategy class in the MRO."""

    recorder: RunRecorder
    round_offset: int = 0  # rounds done before this start() (a resumed run, fedotl.server.checkpoint)
    min_replies: int
    eval_every: int
    num_rounds: int

    def setup_tracking(self, recorder: RunRecorder, *, num_rounds: int, min_replies: int = 1, eval_every: int = 1,
                       aggregation: str = "mean", trim_fraction: float = 0.2, byzantine_fraction: float = 0.2,
                       round_timeout: float = 3600.0) -> None:
        self.recorder = recorder
        self.aggregation = aggregation
        self.robust_options = {"trim_fraction": float(trim_fraction), "byzantine_fraction": float(byzantine_fraction)}
        self.num_rounds = num_rounds
        self.min_replies = max(1, int(min_replies))
        self.eval_every = max(1, int(eval_every))
        self.node_client: dict[int, str] = {}
        self.clients: dict[str, dict[str, str]] = {}  # client id → subject and position, as the node says
        self.partitions: dict[str, int] = {}  # client id → partition id, as the node says
        self.shared_heads: dict[str, tuple[dict, dict]] = {}  # client id → (head, feature summary), with share-heads
        self._sent: dict[tuple[int, str], list[Message]] = {}
        self.round_timeout = float(round_timeout)
        self._waited_for_all = False  # round 1 of this start() waited for min-available-nodes

    # -------------------------------------------------------------- helpers
    def _note_sent(self, server_round: int, stage: str, messages: Iterable[Message]) -> list[Message]:
        messages = list(messages)
        self._sent[(server_round, stage)] = messages  # the grid gives each its message id as it sends it
        return messages

    def _failed(self, server_round: int, stage: str, node: int, reason: str) -> None:
        """A failure, named by the device (subject/position) once the node has said which it is."""
        self.recorder.failure(server_round, stage, node, reason, client=self.node_client.get(node))

    def _usable(self, server_round: int, stage: str, replies: Iterable[Message]) -> list[Message]:
        replies = list(replies)
        sent = self._sent.pop((server_round, stage), [])
        # The SuperLink answers for a node that stopped (src = the SuperLink, "Node Unavailable"):
        # the instruction it replies to names the node.
        dst_of = {m.metadata.message_id: m.metadata.dst_node_id for m in sent if m.metadata.message_id}

        def node_of(reply: Message) -> int:
            return dst_of.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)

        valid, errors = split_replies(replies)
        for m in valid:  # learn who is who first, so that this round's failures can be named
            self.node_client[m.metadata.src_node_id] = reply_client(m)[1]
        for m in errors:
            self._failed(server_round, stage, node_of(m), str(m.error.reason))
        for m in valid:
            pid, cid = reply_client(m)
            self.node_client[m.metadata.src_node_id] = cid
            self.partitions[cid] = pid
            rec = m.content.config_records.get(REC_CLIENT)
            if rec is not None:
                self.clients[cid] = {"subject": str(rec.get("subject", "")), "position": str(rec.get("position", ""))}
        valid = self._one_reply_per_device(server_round, stage, valid)
        answered = {node_of(m) for m in replies}
        for node in sorted({m.metadata.dst_node_id for m in sent} - answered):
            self._failed(server_round, stage, node, "no reply within round-timeout")
        return valid

    def _one_reply_per_device(self, server_round: int, stage: str, valid: list[Message]) -> list[Message]:
        """Replies of a device that two or more nodes claim (its partition id) are all excluded, and
        each claimant is counted as failed: which one holds the device's data cannot be told."""
        claims: dict[str, list[int]] = {}
        for m in valid:
            pid, cid = reply_client(m)
            if pid >= 0:
                claims.setdefault(cid, []).append(m.metadata.src_node_id)
        twice = {cid: sorted(nodes) for cid, nodes in claims.items() if len(nodes) > 1}
        for cid, nodes in sorted(twice.items()):
            for node in nodes:
                self._failed(server_round, stage, node, f"{len(nodes)} nodes ({', '.join(map(str, nodes))}) claim device {cid}: all excluded")
        return [m for m in valid if reply_client(m)[1] not in twice]

    def evaluates_in(self, server_round: int) -> bool:
        return server_round % self.eval_every == 0 or server_round == self.num_rounds

    # -------------------------------------------------------------- train
    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        server_round += self.round_offset
        self.recorder.round_started(server_round)
        self._wait_for_nodes(server_round, grid, int(self.min_train_nodes))  # type: ignore[attr-defined]
        messages = super().configure_train(server_round, arrays, config, grid)  # type: ignore[misc]
        self._after_first_sampling()
        return self._note_sent(server_round, "train", messages)

    def _wait_for_nodes(self, server_round: int, grid: Grid, minimum: int) -> None:
        """Wait at most ``round-timeout`` for the nodes Flower's sampling needs, else end the run.

        Flower's sampling waits forever for ``min_available_nodes``; a device lost for good
        would hang the run.  Round 1 waits for ``min_available_nodes`` (every device, so that it
        never samples a subset); later rounds only for ``min_train_nodes`` (:meth:`_after_first_sampling`).
        """
        need = max(int(self.min_available_nodes), minimum)  # type: ignore[attr-defined]
        deadline = time.monotonic() + self.round_timeout
        while (have := len(list(grid.get_node_ids()))) < need:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"round {server_round}: {have} devices connected after round-timeout ({self.round_timeout:g} s), "
                    f"fewer than the {need} a round needs"
                )
            time.sleep(1.0)

    def _after_first_sampling(self) -> None:
        """Rounds after the first wait only for ``min_train_nodes``: a lost device leaves the run to those that remain."""
        if not self._waited_for_all:
            self._waited_for_all = True
            self.min_available_nodes = min(int(self.min_available_nodes), max(int(self.min_train_nodes), int(self.min_evaluate_nodes)))  # type: ignore[attr-defined]

    def _finite(self, server_round: int, replies: list[Message]) -> list[Message]:
        """The replies with finite updates.  A non-finite one is refused and counted as its node's failure,
        and so is a node's report that it rejected its own step (:data:`METRIC_NON_FINITE`)."""
        keep = []
        for m in replies:
            arrays = m.content.array_records.get(REC_ARRAYS)
            if _metrics(m).get(METRIC_NON_FINITE):
                self._failed(server_round, "train", m.metadata.src_node_id, "the device rejected its non-finite training step")
            elif arrays is not None and not all(np.isfinite(a.numpy()).all() for a in arrays.values()):
                self._failed(server_round, "train", m.metadata.src_node_id, "non-finite update refused")
            else:
                keep.append(m)
        return keep

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        server_round += self.round_offset
        valid = self._finite(server_round, self._usable(server_round, "train", replies))
        usable = [m for m in valid if _num_examples(m, self.weighted_by_key) > 0]  # type: ignore[attr-defined]
        if len(usable) < self.min_replies:
            log(WARNING, "round %s: %s usable train replies (< min-replies %s); keeping the previous model", server_round, len(usable), self.min_replies)
            self.recorder.trained(server_round, {"replies": len(usable), "skipped": True})
            return None, None
        arrays, metrics = self._aggregate(server_round, usable)
        train = {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float))}
        train["replies"] = len(usable)
        self.recorder.trained(server_round, train)
        return arrays, metrics

    def _aggregate(self, server_round: int, replies: list[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Flower's FedAvg aggregation over the sorted, usable replies, or the robust rule of run config
        ``aggregation`` (:mod:`fedotl.server.robust`)."""
        if self.aggregation != "mean":
            return robust_aggregate(self.aggregation, server_round, replies, **self.robust_options)  # type: ignore[arg-type]
        return super().aggregate_train(server_round, replies)  # type: ignore[misc]

    # -------------------------------------------------------------- evaluate
    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        server_round += self.round_offset
        if not self.evaluates_in(server_round):
            return []
        self._wait_for_nodes(server_round, grid, int(self.min_evaluate_nodes))  # type: ignore[attr-defined]
        return self._note_sent(server_round, "evaluate", super().configure_evaluate(server_round, arrays, config, grid))  # type: ignore[misc]

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        server_round += self.round_offset
        replies = list(replies)
        valid = self._usable(server_round, "evaluate", replies)
        per_client = {}
        for m in valid:
            mr = _metrics(m)
            per_client[reply_client(m)[1]] = _evaluation(mr)
        usable = [m for m in valid if _num_examples(m) > 0]
        agg = super().aggregate_evaluate(server_round, usable) if usable else None  # type: ignore[misc]
        if agg is not None and METRIC_CONFUSION in agg:
            del agg[METRIC_CONFUSION]  # Flower averages it; the recorder sums the counts instead
        self.recorder.round_finished(server_round, per_client or None)
        if per_client:
            accs = [v["accuracy"] for v in per_client.values()]
            agg = agg if agg is not None else MetricRecord()
            agg["mean-accuracy"] = float(np.mean(accs))
            agg["worst-accuracy"] = float(np.min(accs))
            agg["mean-macro-f1"] = float(np.mean([v["macro_f1"] for v in per_client.values()]))
        return agg


class TrackedFedAvg(_Tracked, FedAvg):
    """Flower's FedAvg with deterministic reply order and per-client reporting."""


class TrackedFedProx(_Tracked, FedProx):
    """Flower's FedProx with deterministic reply order and per-client reporting."""


class LocalOnly(_Tracked, FedAvg):
    """No federation: every node trains its own model; the server only coordinates rounds.

    Round 1 sends the common initial model; later rounds send an empty
    ArrayRecord, and nodes continue from the model in their ``context.state``.
    """

    def configure_train(self, server_round, arrays, config, grid):
        return super().configure_train(server_round, arrays if server_round == 1 else ArrayRecord(), config, grid)

    def _aggregate(self, server_round, replies):
        return None, self.train_metrics_aggr_fn([m.content for m in replies], self.weighted_by_key)

    def configure_evaluate(self, server_round, arrays, config, grid):
        return super().configure_evaluate(server_round, ArrayRecord(), config, grid)


class FedBN(_Tracked, FedAvg):
    """FedBN (Li, Jiang, Zhang, Kamp, Dou, "FedBN: Federated Learning on Non-IID
    Features via Local Batch Normalization", ICLR 2021).

    Only the ``shared_keys`` (every non-BatchNorm layer) are sent and
    averaged; each node keeps its BatchNorm weights and running statistics in
    ``context.state``.  The global ArrayRecord that :meth:`start` carries
    stays complete: its BN entries are those of the initial model.  With
    ``full_first_round`` (a cloud-pretrained initial model) round 1 sends the
    whole model, so that nodes start from the pretrained BatchNorm layers.
    """

    def __init__(self, shared_keys: list[str], full_first_round: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.shared_keys = list(shared_keys)
        self.full_first_round = full_first_round
        self._full: ArrayRecord | None = None

    def shared(self, arrays: ArrayRecord) -> ArrayRecord:
        return ArrayRecord({k: arrays[k] for k in self.shared_keys if k in arrays})

    def sends_full(self, server_round: int) -> bool:
        """Whether ``server_round`` sends the whole model, BatchNorm included (FedBN: the cloud model's round 1)."""
        return self.full_first_round and server_round == 1

    def configure_train(self, server_round, arrays, config, grid):
        self._full = arrays
        return super().configure_train(server_round, arrays if self.sends_full(server_round) else self.shared(arrays), config, grid)

    def _aggregate(self, server_round, replies):
        agg, metrics = super()._aggregate(server_round, replies)
        if agg is None:
            return None, metrics
        full = ArrayRecord({k: v for k, v in (self._full or ArrayRecord()).items()})
        for k, v in agg.items():
            full[k] = v
        return full, metrics

    def configure_evaluate(self, server_round, arrays, config, grid):
        return super().configure_evaluate(server_round, self.shared(arrays), config, grid)


class FedAP(FedBN):
    """FedAP (Lu et al., "Personalized Federated Learning with Adaptive Batchnorm
    for Healthcare", IEEE Trans. Big Data 2022; "FedHealth 2", arXiv:2112.00734).

    FedAP measures the similarity of clients with a model *pretrained for a
    while*, not with a random one (the authors' PersonalizedFL code,
    ``alg/fedap.py``: ``set_client_weight`` calls ``pretrain_model``, then
    ``get_weight_preckpt`` on the pretrained model).  Here that model is

    * the cloud-pretrained model, when the server holds data
      (``full_first_round``; ``pretrain_rounds`` is then 0), or else
    * the FedAvg model after ``pretrain_rounds`` rounds (run config
      ``fedap-pretrain-rounds``): rounds 1..k are plain FedAvg, the whole
      model, BatchNorm included, sent and averaged
      (:data:`~fedotl.client.protocol.CFG_FEDAVG_ROUND`).  They count in
      ``num-server-rounds``.  Deviation: the reference code pretrains one
      model centrally (``pretrain_model``: ``pretrained_iters`` epochs of
      SGD on a pretraining split of the whole dataset), which a federation
      cannot do; FedAvg rounds are the federated way to get a model trained
      on everyone's data.

    In the round after that (round 1 with a cloud model, round k + 1
    otherwise) every node receives the same whole pretrained model and,
    before training, reports the mean and variance of the inputs of each of
    its BatchNorm layers.  From these the server computes the weight matrix
    ``W`` once (:func:`fedotl.server.aggregation.fedap_weight_matrix`,
    momentum λ on the diagonal).  After each later round, node ``i`` gets
    ``θ_i = Σ_j W_ij θ_j`` over the shared (non-BN) layers; BatchNorm layers
    stay local as in FedBN.  ``configure_train`` and ``configure_evaluate``
    therefore send a different ArrayRecord to every node.  The plain
    weighted average is kept as the "global" model.  With
    ``pretrain_rounds`` 0 and no cloud model the matrix comes from the
    initial (random) model, as this class did before.
    """

    def __init__(self, shared_keys: list[str], momentum: float = 0.5, pretrain_rounds: int = 0, **kwargs):
        super().__init__(shared_keys, **kwargs)
        if pretrain_rounds < 0:
            raise ValueError(f"pretrain_rounds must be >= 0, got {pretrain_rounds}")
        self.momentum = momentum
        self.pretrain_rounds = int(pretrain_rounds)
        self.W: np.ndarray | None = None
        self.order: list[int] = []  # node ids, rows of W
        self.personal: dict[int, ArrayRecord] = {}

    def pretraining(self, server_round: int) -> bool:
        """Whether ``server_round`` is one of the FedAvg pretraining rounds."""
        return server_round <= self.pretrain_rounds

    def stats_round(self, server_round: int) -> bool:
        """The round whose nodes report BatchNorm statistics under the pretrained model."""
        return self.W is None and server_round > self.pretrain_rounds  # retried while no node has reported

    def _per_node(self, messages: Iterable[Message], fallback: ArrayRecord) -> list[Message]:
        out = []
        for m in messages:
            arrays = self.personal.get(m.metadata.dst_node_id, fallback)
            content = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: m.content[self.configrecord_key]})
            out.append(Message(content=content, dst_node_id=m.metadata.dst_node_id, message_type=m.metadata.message_type))
        return out

    def configure_train(self, server_round, arrays, config, grid):
        pretraining, stats = self.pretraining(server_round), self.stats_round(server_round)
        if pretraining or stats:
            config = ConfigRecord(dict(config))
            config[CFG_FEDAVG_ROUND if pretraining else CFG_BN_STATS] = True
        msgs = super().configure_train(server_round, arrays, config, grid)
        if self.sends_full(server_round):
            return list(msgs)
        return self._per_node(msgs, self.shared(arrays))

    def sends_full(self, server_round: int) -> bool:
        """FedAvg rounds, and the round that hands every node the same pretrained model."""
        if self.pretraining(server_round):
            return True
        return self.stats_round(server_round) and (self.pretrain_rounds > 0 or self.full_first_round)

    def _aggregate(self, server_round, replies):
        if self.pretraining(server_round):
            return super()._aggregate(server_round, replies)  # FedAvg over whatever came back (all keys)
        if self.stats_round(server_round):
            self._fit_weights(replies)
        full, metrics = super()._aggregate(server_round, replies)
        if self.W is not None:
            by_node = {m.metadata.src_node_id: record_to_arrays(m.content[self.arrayrecord_key]) for m in replies}
            present = [n in by_node for n in self.order]
            if any(present):
                thetas = personalised_average(self.W, [by_node.get(n) for n in self.order], present)  # type: ignore[list-item]
                self.personal = {n: arrays_to_record(t) for n, t in zip(self.order, thetas)}
        return full, metrics

    def _fit_weights(self, replies: list[Message]) -> None:
        nodes, means, variances = [], [], []
        for m in replies:
            stats = m.content.config_records.get(REC_FEDAP)
            if stats is None:
                continue
            sizes = np.cumsum([0, *stats["bn-sizes"]])  # type: ignore[misc]
            mu, var = np.asarray(stats["bn-mean"]), np.asarray(stats["bn-var"])
            means.append([mu[a:b] for a, b in zip(sizes[:-1], sizes[1:])])
            variances.append([var[a:b] for a, b in zip(sizes[:-1], sizes[1:])])
            nodes.append(m.metadata.src_node_id)
        if nodes:
            self.order = nodes
            self.W = fedap_weight_matrix(means, variances, self.momentum)
            log(INFO, "FedAP: weight matrix over %d clients (self-weight %.2f)", len(nodes), self.momentum)
            labels = [self.node_client.get(n, str(n)) for n in nodes]
            self.recorder.event("fedap-weights", clients=labels, weights=np.round(self.W, 5).tolist())

    def configure_evaluate(self, server_round, arrays, config, grid):
        if self.pretraining(server_round):  # the FedAvg model, BatchNorm included
            return _Tracked.configure_evaluate(self, server_round, arrays, config, grid)
        msgs = super().configure_evaluate(server_round, arrays, config, grid)
        return self._per_node(msgs, self.shared(arrays))

    def arrays_for(self, node_id: int, arrays: ArrayRecord) -> ArrayRecord:
        return self.personal.get(node_id, self.shared(arrays))


class _Personalizing:
    """FedHealth's last stage (Chen et al. 2020): personalise every node.

    1. The source covariance ``C_S`` of the bottleneck features under the
       final model, computed the way a node computes ``C_T`` (eval mode, no
       augmentation; :mod:`fedotl.client.personalize`): by the server on the
       data it holds (``server_cov``, the cloud), or, when it holds none,
       from the (n, Σf, Σffᵀ) each node reports (``query.stats``, summary
       statistics only), pooled for each node over the *other* nodes
       (:func:`~fedotl.server.aggregation.leave_one_out_covariances`).  A
       node's own features never enter its ``C_S``: FedHealth aligns a user
       to the source domain (the cloud), not to itself.
    2. ``train.personalize`` to every node with the final model and its
       ``C_S``: freeze convs, fine-tune FC layers with CE + λ·CORAL,
       evaluate; the node returns its metrics and personalised head.
    """

    def arrays_for(self, node_id: int, arrays: ArrayRecord) -> ArrayRecord:
        shared = getattr(self, "shared", None)
        return shared(arrays) if shared is not None else arrays

    def source_covariances(self, grid: Grid, arrays: ArrayRecord, nodes: list[int], timeout: float) -> tuple[np.ndarray | None, dict[int, np.ndarray | None]]:
        """(the pool of every reported node, each node's ``C_S`` pooled over the *other* nodes); a
        node that did not report gets the pool of all that did."""
        msgs = [
            Message(RecordDict({REC_ARRAYS: self.arrays_for(n, arrays), REC_CONFIG: ConfigRecord()}), dst_node_id=n, message_type=MSG_STATS)
            for n in nodes
        ]
        msgs = self._note_sent(-1, "stats", msgs)  # type: ignore[attr-defined]
        replies = self._usable(-1, "stats", grid.send_and_receive(msgs, timeout=timeout))  # type: ignore[attr-defined]
        counts = [int(_metrics(m)["num-examples"]) for m in replies]  # type: ignore[arg-type]
        sums = [m.content[REC_MOMENTS]["sum"].numpy() for m in replies]
        outers = [m.content[REC_MOMENTS]["outer"].numpy() for m in replies]
        loo = leave_one_out_covariances(counts, sums, outers)
        pooled = pooled_moments(counts, sums, outers)[2] if sum(counts) > 1 else None
        out: dict[int, np.ndarray | None] = {n: pooled for n in nodes}
        out.update({m.metadata.src_node_id: c for m, c in zip(replies, loo)})
        return pooled, out

    def personalize(self, grid: Grid, arrays: ArrayRecord, *, config: ConfigRecord, server_cov: np.ndarray | None = None, timeout: float = 3600) -> dict:
        t0 = time.perf_counter()
        recorder: RunRecorder = self.recorder  # type: ignore[attr-defined]
        nodes = sorted(grid.get_node_ids())
        if server_cov is not None:
            covs: dict[int, np.ndarray | None] = {n: server_cov for n in nodes}
            source = "server data"
            recorder.save_arrays("source_covariance", {"cov": server_cov})
        else:
            pooled, covs = self.source_covariances(grid, arrays, nodes, timeout)
            source = "pooled over the other clients"
            # "cov": every client, the source for a new user (fedotl newuser); "without-<client>": what that client got
            saved = {f"without-{self.node_client.get(n, str(n)).replace('/', '-')}": c for n, c in covs.items() if c is not None}  # type: ignore[attr-defined]
            recorder.save_arrays("source_covariance", {**({"cov": pooled} if pooled is not None else {}), **saved})
        msgs = []
        for n in nodes:
            content = RecordDict({REC_ARRAYS: self.arrays_for(n, arrays), REC_CONFIG: ConfigRecord(dict(config))})
            if covs.get(n) is not None:
                content[REC_SOURCE] = ArrayRecord({"cov": Array(np.asarray(covs[n], np.float32))})
            msgs.append(Message(content, dst_node_id=n, message_type=MSG_PERSONALIZE))
        msgs = self._note_sent(-1, "personalize", msgs)  # type: ignore[attr-defined]
        replies = self._usable(-1, "personalize", grid.send_and_receive(msgs, timeout=timeout))  # type: ignore[attr-defined]
        per_client = {}
        losses: dict[str, list[float]] = {k: [] for k in METRIC_PERSONALIZE_LOSSES}
        for m in replies:
            mr = _metrics(m)
            cid = reply_client(m)[1]
            if REC_HEAD in m.content.array_records and REC_SUMMARY in m.content.array_records:
                self.shared_heads[cid] = (record_to_arrays(m.content[REC_HEAD]), record_to_arrays(m.content[REC_SUMMARY]))  # type: ignore[attr-defined]
            per_client[cid] = {
                **_evaluation(mr),
                "global_accuracy": float(mr["global-accuracy"]), "global_macro_f1": float(mr["global-macro-f1"]),  # type: ignore[arg-type]
            }
            for k in METRIC_PERSONALIZE_LOSSES:
                if k in mr:
                    losses[k].append(float(mr[k]))  # type: ignore[arg-type]
        recorder.extra["source_covariance"] = source
        if any(losses.values()):  # how large CORAL is against CE, first and last epoch, mean over nodes
            recorder.extra["personalize_losses"] = {k.replace("-", "_"): round(float(np.mean(v)), 6) for k, v in losses.items() if v}
        recorder.personalized_results(per_client, time.perf_counter() - t0)
        return per_client


class FedHealth(_Personalizing, _Tracked, FedProx):
    """FedHealth over FedAvg (FedProx when ``proximal_mu`` > 0), then :meth:`personalize`."""


class FedHealthBN(_Personalizing, FedBN):
    """FedHealth whose federated rounds keep BatchNorm local (FedBN)."""


class FedHealthAP(_Personalizing, FedAP):
    """FedHealth whose federated rounds use FedAP's personalised aggregates."""

    def arrays_for(self, node_id, arrays):
        return FedAP.arrays_for(self, node_id, arrays)
