"""The ServerApp's body as a plain function: settings, model, strategy, start().

:func:`run_server` is what ``server/server_app.py``'s ``main`` calls.  It

1. asks one node (``query.info``) for the input and class counts, so the
   server never needs the clients' data to build the model;
2. for FedHealth and FedAP with ``server-subjects``, pretrains the cloud
   model on the data the server holds (FedHealth step 1; FedAP's pretrained
   model);
3. builds the strategy (:mod:`server.strategies`), optionally wrapped in
   Flower's differential-privacy wrapper, and calls its ``start()``, on a
   Grid that runs each train round through SecAgg+ when ``secagg`` is on
   (:mod:`server.secure_aggregation`);
4. for FedHealth, runs the personalisation stage;
5. writes metrics, models and the summary (:class:`server.report.RunRecorder`).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from logging import INFO, WARNING
from typing import Mapping

import numpy as np
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, DifferentialPrivacyServerSideFixedClipping
from flwr.supercore import log

from server.names import DP_MODES, FEDHEALTH_AGGREGATIONS, STRATEGIES
from server.report import RunRecorder
from server.strategies import FedAP, FedBN, FedHealth, FedHealthAP, FedHealthBN, LocalOnly, TrackedFedAvg, TrackedFedProx, arrays_to_record


@dataclass
class ServerSettings:
    strategy: str = "fedavg"
    num_rounds: int = 30
    local_epochs: int = 2
    lr: float = 1e-3
    batch_size: int = 32
    seed: int = 0
    model: str = "cnn"
    width: int = 32
    bottleneck: int = 64
    augment: bool = True
    proximal_mu: float = 0.01
    fedhealth_proximal_mu: float = 0.0
    fedhealth_aggregation: str = "fedavg"
    fedap_momentum: float = 0.5
    server_subjects: str = ""
    pretrain_epochs: int = 20
    personalize_epochs: int = 30
    personalize_lr: float = 1e-3
    coral_weight: float = 1.0
    min_available_nodes: int = 2
    min_train_nodes: int = 2
    min_evaluate_nodes: int = 2
    min_replies: int = 1
    round_timeout: float = 3600.0
    eval_every: int = 1
    out_dir: str = ""
    progress: bool = True
    dp: str = "none"
    dp_noise_multiplier: float = 0.0
    dp_clipping_norm: float = 10.0
    secagg: bool = False
    secagg_num_shares: float = 0.0
    secagg_reconstruction_threshold: float = 0.5
    secagg_max_weight: float = 10000.0
    secagg_clipping_range: float = 8.0

    @classmethod
    def from_config(cls, cfg: Mapping[str, object]) -> "ServerSettings":
        d = cls()
        get = lambda key, default, kind: kind(cfg.get(key, default))  # noqa: E731
        s = cls(
            strategy=get("strategy", d.strategy, str),
            num_rounds=get("num-server-rounds", d.num_rounds, int),
            local_epochs=get("local-epochs", d.local_epochs, int),
            lr=get("learning-rate", d.lr, float),
            batch_size=get("batch-size", d.batch_size, int),
            seed=get("seed", d.seed, int),
            model=get("model", d.model, str),
            width=get("model-width", d.width, int),
            bottleneck=get("bottleneck", d.bottleneck, int),
            augment=get("augment", d.augment, bool),
            proximal_mu=get("proximal-mu", d.proximal_mu, float),
            fedhealth_proximal_mu=get("fedhealth-proximal-mu", d.fedhealth_proximal_mu, float),
            fedhealth_aggregation=get("fedhealth-aggregation", d.fedhealth_aggregation, str),
            fedap_momentum=get("fedap-momentum", d.fedap_momentum, float),
            server_subjects=get("server-subjects", d.server_subjects, str),
            pretrain_epochs=get("pretrain-epochs", d.pretrain_epochs, int),
            personalize_epochs=get("personalize-epochs", d.personalize_epochs, int),
            personalize_lr=get("personalize-learning-rate", d.personalize_lr, float),
            coral_weight=get("coral-weight", d.coral_weight, float),
            min_available_nodes=get("min-available-nodes", d.min_available_nodes, int),
            min_train_nodes=get("min-train-nodes", d.min_train_nodes, int),
            min_evaluate_nodes=get("min-evaluate-nodes", d.min_evaluate_nodes, int),
            min_replies=get("min-replies", d.min_replies, int),
            round_timeout=get("round-timeout", d.round_timeout, float),
            eval_every=get("eval-every", d.eval_every, int),
            out_dir=get("out-dir", d.out_dir, str),
            progress=get("progress", d.progress, bool),
            dp=get("dp", d.dp, str),
            dp_noise_multiplier=get("dp-noise-multiplier", d.dp_noise_multiplier, float),
            dp_clipping_norm=get("dp-clipping-norm", d.dp_clipping_norm, float),
            secagg=get("secagg", d.secagg, bool),
            secagg_num_shares=get("secagg-num-shares", d.secagg_num_shares, float),
            secagg_reconstruction_threshold=get("secagg-reconstruction-threshold", d.secagg_reconstruction_threshold, float),
            secagg_max_weight=get("secagg-max-weight", d.secagg_max_weight, float),
            secagg_clipping_range=get("secagg-clipping-range", d.secagg_clipping_range, float),
        )
        s.validate()
        return s

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if self.strategy == "central":
            raise ValueError("strategy 'central' pools raw data and is not federated: run it with `fedotl simulate --strategy central`")
        if self.fedhealth_aggregation not in FEDHEALTH_AGGREGATIONS:
            raise ValueError(f"fedhealth-aggregation must be one of {', '.join(FEDHEALTH_AGGREGATIONS)}")
        if self.num_rounds < 1 or self.local_epochs < 1 or self.batch_size < 2:
            raise ValueError("num-server-rounds and local-epochs must be >= 1, batch-size >= 2")
        if not self.lr > 0 or self.proximal_mu < 0 or self.fedhealth_proximal_mu < 0:
            raise ValueError("learning-rate must be positive and proximal mu non-negative")
        if not 0 <= self.fedap_momentum <= 1:
            raise ValueError(f"fedap-momentum must be in [0, 1], got {self.fedap_momentum}")
        if self.dp not in DP_MODES:
            raise ValueError(f"dp must be one of {', '.join(DP_MODES)}, got {self.dp!r}")
        if self.dp != "none":
            ok = {"fedavg", "fedprox"} | ({"fedbn"} if self.dp == "client-fixed" else set())
            if self.strategy == "fedhealth" and self.fedhealth_aggregation == "fedavg":
                ok.add("fedhealth")
            if self.strategy not in ok:
                raise ValueError(
                    f"dp={self.dp} wraps one aggregate per round; it does not apply to {self.strategy}"
                    + (f" with {self.fedhealth_aggregation} aggregation" if self.strategy == "fedhealth" else "")
                )
            if not self.dp_clipping_norm > 0 or self.dp_noise_multiplier < 0:
                raise ValueError("dp-clipping-norm must be positive and dp-noise-multiplier non-negative")
        if self.secagg:
            self._validate_secagg()
        if self.min_replies < 1 or self.eval_every < 1:
            raise ValueError("min-replies and eval-every must be >= 1")

    def _validate_secagg(self) -> None:
        plain_mean = self.strategy in ("fedavg", "fedprox") or (self.strategy == "fedhealth" and self.fedhealth_aggregation == "fedavg")
        if not plain_mean:
            raise ValueError(
                "secagg sums whole-model updates into one weighted mean; it does not apply to "
                + (f"fedhealth with {self.fedhealth_aggregation} aggregation" if self.strategy == "fedhealth" else self.strategy)
            )
        if self.dp == "server-fixed":
            raise ValueError("dp=server-fixed clips each update on the server, which secagg hides; use dp=client-fixed")
        if self.secagg_num_shares < 0 or not 0 < self.secagg_reconstruction_threshold:
            raise ValueError("secagg-num-shares must be >= 0 (0: automatic) and secagg-reconstruction-threshold positive")
        if not self.secagg_max_weight > 0 or not self.secagg_clipping_range > 0:
            raise ValueError("secagg-max-weight and secagg-clipping-range must be positive")

    def secagg_grid(self, grid: Grid) -> Grid:
        """``grid`` with SecAgg+ on its train rounds (values > 1 are counts, else fractions; 0 is automatic)."""
        from server.secure_aggregation import SecAggPlusGrid

        as_count = lambda v: int(v) if v > 1 and float(v).is_integer() else float(v)  # noqa: E731
        return SecAggPlusGrid(  # type: ignore[return-value]
            grid,
            num_shares=as_count(self.secagg_num_shares) if self.secagg_num_shares > 0 else None,
            reconstruction_threshold=as_count(self.secagg_reconstruction_threshold),
            max_weight=self.secagg_max_weight,
            clipping_range=self.secagg_clipping_range,
            timeout=self.round_timeout,
        )


def query_info(grid: Grid, timeout: float, min_nodes: int = 1, wait_s: float = 600.0) -> dict[str, object]:
    """Wait for ``min_nodes`` nodes; ask one for n-inputs and n-classes (others on failure)."""
    t0 = time.time()
    nodes: list[int] = []
    while len(nodes := sorted(grid.get_node_ids())) < max(1, min_nodes):
        if time.time() - t0 > wait_s:
            raise RuntimeError(f"only {len(nodes)} of {min_nodes} nodes connected within {wait_s:.0f} s")
        time.sleep(0.2)
    errors = []
    for n in nodes[:3]:
        msg = Message(RecordDict({"config": ConfigRecord()}), dst_node_id=n, message_type="query.info")
        for reply in grid.send_and_receive([msg], timeout=timeout):
            if reply.has_error():
                errors.append(reply.error.reason)
                continue
            mr = next(iter(reply.content.metric_records.values()))
            return {"n_inputs": int(mr["n-inputs"]), "n_classes": int(mr["n-classes"]), "nodes": len(nodes)}  # type: ignore[arg-type]
    raise RuntimeError(f"no node answered query.info: {errors[:1]}")


def build_strategy(s: ServerSettings, shared_keys: list[str], recorder: RunRecorder, *, pretrained: bool = False):
    """The strategy object for ``s.strategy`` (``pretrained``: round 1 sends the whole cloud model)."""
    bn = dict(full_first_round=pretrained)
    common = dict(
        min_train_nodes=s.min_train_nodes,
        min_evaluate_nodes=s.min_evaluate_nodes,
        min_available_nodes=s.min_available_nodes,
    )
    if s.strategy == "local":
        strat = LocalOnly(**common)
    elif s.strategy == "fedavg":
        strat = TrackedFedAvg(**common)
    elif s.strategy == "fedprox":
        strat = TrackedFedProx(proximal_mu=s.proximal_mu, **common)
    elif s.strategy == "fedbn":
        strat = FedBN(shared_keys, **bn, **common)
    elif s.strategy == "fedap":
        strat = FedAP(shared_keys, momentum=s.fedap_momentum, **bn, **common)
    elif s.fedhealth_aggregation == "fedbn":
        strat = FedHealthBN(shared_keys, **bn, **common)
    elif s.fedhealth_aggregation == "fedap":
        strat = FedHealthAP(shared_keys, momentum=s.fedap_momentum, **bn, **common)
    else:
        strat = FedHealth(proximal_mu=s.fedhealth_proximal_mu, **common)
    strat.setup_tracking(recorder, num_rounds=s.num_rounds, min_replies=s.min_replies, eval_every=s.eval_every)
    return strat


def wrap_privacy(strategy, s: ServerSettings, n_nodes: int):
    """Flower's DP wrappers (central DP, fixed clipping) around the strategy, if asked."""
    if s.dp == "client-fixed":
        return DifferentialPrivacyClientSideFixedClipping(strategy, s.dp_noise_multiplier, s.dp_clipping_norm, n_nodes)
    if s.dp == "server-fixed":
        return DifferentialPrivacyServerSideFixedClipping(strategy, s.dp_noise_multiplier, s.dp_clipping_norm, n_nodes)
    return strategy


def run_server(grid: Grid, cfg: Mapping[str, object]) -> dict[str, object]:
    """Run one federated experiment; return (and write) its summary."""
    from client.data import load_server_data, parse_subjects, spec_from_config
    from client.model import build_model, count_params, get_arrays, shared_keys
    from client.train import TrainSettings, derive_seed, embedding_moments, train_local, use_one_thread
    from server.aggregation import pooled_moments

    use_one_thread()
    s = ServerSettings.from_config(cfg)
    random.seed(s.seed)
    np.random.seed(s.seed % (2**32))
    recorder = RunRecorder(s.out_dir or None, s.strategy, s.num_rounds, progress=s.progress)
    info = query_info(grid, timeout=s.round_timeout, min_nodes=s.min_available_nodes)
    model = build_model(s.model, info["n_inputs"], info["n_classes"], seed=s.seed, width=s.width, bottleneck=s.bottleneck)  # type: ignore[arg-type]
    recorder.event("start", config={k: v for k, v in cfg.items()}, nodes=info["nodes"], params=count_params(model))
    recorder.say(f"{info['nodes']} nodes, model {s.model} with {count_params(model):,} parameters, {s.num_rounds} rounds")

    server_X = server_y = None
    if parse_subjects(s.server_subjects) and s.strategy in ("fedhealth", "fedap"):
        t0 = time.perf_counter()
        server_X, server_y = load_server_data(spec_from_config(cfg))
        fit = train_local(
            model, server_X, server_y,
            TrainSettings(epochs=s.pretrain_epochs, lr=s.lr, batch_size=s.batch_size, augment=s.augment),
            seed=derive_seed(s.seed, "cloud-pretrain"),
        )
        seconds = time.perf_counter() - t0
        recorder.extra["pretrain_seconds"] = round(seconds, 4)
        recorder.event("pretrain", windows=int(len(server_y)), epochs=s.pretrain_epochs, loss=fit["loss"], accuracy=fit["accuracy"], seconds=seconds)
        recorder.say(f"cloud model pretrained on {len(server_y)} server-held windows ({s.server_subjects}) in {seconds:.1f} s")

    initial = arrays_to_record(get_arrays(model))
    strategy = build_strategy(s, shared_keys(model), recorder, pretrained=server_X is not None)
    runner = wrap_privacy(strategy, s, info["nodes"])  # type: ignore[arg-type]
    if s.secagg:
        grid = s.secagg_grid(grid)
    train_config = ConfigRecord({"local-epochs": s.local_epochs, "learning-rate": s.lr})
    result = runner.start(grid=grid, initial_arrays=initial, num_rounds=s.num_rounds, timeout=s.round_timeout, train_config=train_config)
    final = result.arrays if len(result.arrays) else initial

    if s.strategy == "fedhealth":
        server_cov = None
        if server_X is not None and len(server_X) > 1:
            from client.model import set_arrays

            set_arrays(model, {k: v.numpy() for k, v in final.items()})
            n, tot, outer = embedding_moments(model, server_X)
            server_cov = pooled_moments([n], [tot], [outer])[2]
        p_config = ConfigRecord(
            {"personalize-epochs": s.personalize_epochs, "personalize-learning-rate": s.personalize_lr, "coral-weight": s.coral_weight}
        )
        strategy.personalize(grid, final, config=p_config, server_cov=server_cov, timeout=s.round_timeout)

    if s.strategy != "local":
        recorder.save_arrays("global_model", {k: v.numpy() for k, v in final.items()})
    fields: dict[str, object] = {"params": count_params(model)}
    if s.secagg:
        rounds = grid.rounds  # type: ignore[attr-defined]
        fields["secagg"] = {
            "rounds": len(rounds),
            "updates_aggregated": sum(r["aggregated"] for r in rounds),
            "updates_dropped": sum(r["sampled"] - r["aggregated"] for r in rounds),
        }
    if s.dp != "none":
        fields["dp"] = {"mode": s.dp, "noise_multiplier": s.dp_noise_multiplier, "clipping_norm": s.dp_clipping_norm}
    summary = recorder.finish(**fields)
    log(INFO, "summary: mean accuracy %s over %s clients", summary["mean_accuracy"], summary["clients"])
    if summary["clients"] == 0:
        log(WARNING, "no client reported an evaluation")
    return summary
