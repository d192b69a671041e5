"""The ServerApp's body as a plain function: settings, model, strategy, start().

:func:`run_server` is what ``server/server_app.py``'s ``main`` calls.  It

1. asks one node (``query.info``) for the input and class counts, so the
   server never needs the clients' data to build the model;
2. for FedHealth and FedAP, when the server holds data (stores under
   ``<data-dir>/cloud``, written for ``server-subjects``), pretrains the cloud
   model on it (FedHealth step 1; FedAP's pretrained model);
3. builds the strategy (:mod:`fedotl.server.strategies`), optionally wrapped in
   Flower's differential-privacy wrapper, and calls its ``start()``, on a
   Grid that runs each train round through SecAgg+ when ``secagg`` is on
   (:mod:`fedotl.server.secure_aggregation`);
4. for FedHealth, runs the personalisation stage;
5. writes metrics, models and the summary (:class:`fedotl.server.report.RunRecorder`).
"""

from __future__ import annotations

import random
import time
from logging import INFO, WARNING
from typing import Mapping

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, DifferentialPrivacyServerSideFixedClipping
from flwr.supercore import log

import fedotl
from fedotl.client.config import RunConfig
from fedotl.client.protocol import MSG_INFO, REC_CONFIG, REC_DESCRIBE
from fedotl.client.records import arrays_to_record, record_to_arrays
from fedotl.server.checkpoint import cut_metrics, load_checkpoint, save_checkpoint
from fedotl.server.report import RunRecorder, honest_summary
from fedotl.server.strategies import FedAP, FedBN, FedHealth, FedHealthAP, FedHealthBN, LocalOnly, TrackedFedAvg, TrackedFedProx


def check_server(cfg: RunConfig) -> None:
    """What only the ServerApp refuses (the rest is checked by :class:`RunConfig`)."""
    if cfg.strategy == "central":
        raise ValueError("strategy 'central' pools raw data and is not federated: run it with `fedotl simulate --strategy central`")


def secagg_grid(cfg: RunConfig, grid: Grid) -> Grid:
    """``grid`` with SecAgg+ on its train rounds (values > 1 are counts, else fractions; 0 is automatic)."""
    from fedotl.server.secure_aggregation import SecAggPlusGrid

    as_count = lambda v: int(v) if v > 1 and float(v).is_integer() else float(v)  # noqa: E731
    shares = float(cfg.secagg_num_shares)
    return SecAggPlusGrid(  # type: ignore[return-value]
        grid,
        num_shares=as_count(shares) if shares > 0 else None,
        reconstruction_threshold=as_count(float(cfg.secagg_reconstruction_threshold)),
        max_weight=float(cfg.secagg_max_weight),
        clipping_range=float(cfg.secagg_clipping_range),
        timeout=float(cfg.round_timeout),
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
        msg = Message(RecordDict({REC_CONFIG: ConfigRecord()}), dst_node_id=n, message_type=MSG_INFO)
        for reply in grid.send_and_receive([msg], timeout=timeout):
            if reply.has_error():
                errors.append(reply.error.reason)
                continue
            mr = next(iter(reply.content.metric_records.values()))
            describe = reply.content.config_records.get(REC_DESCRIBE)
            return {
                "n_inputs": int(mr["n-inputs"]), "n_classes": int(mr["n-classes"]), "nodes": len(nodes),  # type: ignore[arg-type]
                "describe": dict(describe) if describe is not None else None,
            }
    raise RuntimeError(f"no node answered query.info: {errors[:1]}")


def fedap_pretrain_rounds(s: RunConfig, pretrained: bool) -> int:
    """FedAP's FedAvg pretraining rounds: none over a cloud-pretrained model (it is FedAP's pretrained
    model), else ``fedap-pretrain-rounds``, leaving at least one FedAP round.

    >>> fedap_pretrain_rounds(RunConfig(strategy="fedap", num_server_rounds=3), pretrained=False)
    2
    """
    if pretrained:
        return 0
    k = min(int(s.fedap_pretrain_rounds), int(s.num_server_rounds) - 1)
    if k < int(s.fedap_pretrain_rounds):
        log(WARNING, "fedap-pretrain-rounds %s >= num-server-rounds %s: FedAP pretrains for %s rounds", s.fedap_pretrain_rounds, s.num_server_rounds, k)
    return k


def build_strategy(s: RunConfig, shared_keys: list[str], recorder: RunRecorder, *, pretrained: bool = False):
    """The strategy object for ``s.strategy`` (``pretrained``: round 1 sends the whole cloud model)."""
    bn = dict(full_first_round=pretrained)
    ap = dict(momentum=s.fedap_momentum, pretrain_rounds=fedap_pretrain_rounds(s, pretrained))
    common = dict(
        fraction_train=s.fraction_train,
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
        strat = FedAP(shared_keys, **ap, **bn, **common)
    elif s.fedhealth_aggregation == "fedbn":
        strat = FedHealthBN(shared_keys, **bn, **common)
    elif s.fedhealth_aggregation == "fedap":
        strat = FedHealthAP(shared_keys, **ap, **bn, **common)
    else:
        strat = FedHealth(proximal_mu=s.fedhealth_proximal_mu, **common)
    strat.setup_tracking(recorder, num_rounds=s.num_server_rounds, min_replies=s.min_replies, eval_every=s.eval_every,
                         aggregation=str(s.aggregation), trim_fraction=float(s.trim_fraction), byzantine_fraction=float(s.byzantine_fraction),
                         round_timeout=float(s.round_timeout))
    return strat


def wrap_privacy(strategy, s: RunConfig, n_nodes: int):
    """Flower's DP wrappers (central DP, fixed clipping) around the strategy, if asked."""
    if s.dp == "client-fixed":
        return DifferentialPrivacyClientSideFixedClipping(strategy, s.dp_noise_multiplier, s.dp_clipping_norm, n_nodes)
    if s.dp == "server-fixed":
        return DifferentialPrivacyServerSideFixedClipping(strategy, s.dp_noise_multiplier, s.dp_clipping_norm, n_nodes)
    return strategy


def save_federation(recorder: RunRecorder, s: RunConfig, values: Mapping[str, object], info: Mapping[str, object], arrays: dict, strategy) -> None:
    """The self-describing global model, the shared heads and summaries, and the manifest
    (:mod:`fedotl.client.model_card`), in the run directory."""
    from fedotl.client.model_card import MODEL_FILE, make_card, save_client_share, save_global_model, write_manifest

    if recorder.out is None:
        return
    describe = info.get("describe")
    if describe is None:  # a node of an older fedotl: weights only
        recorder.save_arrays(MODEL_FILE.removesuffix(".npz"), arrays)
        return
    card = make_card(describe, model=str(s.model), width=int(s.model_width), bottleneck=int(s.bottleneck),  # type: ignore[arg-type]
                     n_inputs=int(info["n_inputs"]), n_classes=int(info["n_classes"]))  # type: ignore[call-overload]
    save_global_model(recorder.out / MODEL_FILE, arrays, card)
    for cid, (head, summary) in strategy.shared_heads.items():
        save_client_share(recorder.out, cid, head, summary)
    write_manifest(recorder.out, config=dict(values), clients=strategy.clients, shared=list(strategy.shared_heads), strategy=str(s.strategy))


def run_server(grid: Grid, values: Mapping[str, object]) -> dict[str, object]:
    """Run one federated experiment; return (and write) its summary."""
    from fedotl.client.data import cloud_dirs, load_cloud, representation_of
    from fedotl.client.model import build_model, count_params, get_arrays, set_arrays, shared_keys
    from fedotl.client.node import train_settings
    from fedotl.client.train import derive_seed, embedding_moments, train_local, use_one_thread
    from fedotl.server.aggregation import pooled_moments

    use_one_thread()
    s = RunConfig(values)
    check_server(s)
    random.seed(s.seed)
    np.random.seed(int(s.seed) % (2**32))
    rounds = int(s.num_server_rounds)
    log(INFO, "fedotl %s (%s)", fedotl.__version__, fedotl.__file__)
    done, resumed, state = 0, None, {}
    if s.resume:
        done, resumed, state = load_checkpoint(str(s.out_dir))
        cut_metrics(str(s.out_dir), done)
    recorder = RunRecorder(str(s.out_dir) or None, str(s.strategy), rounds, progress=bool(s.progress), resume=bool(s.resume))
    recorder.restore(state)
    # The first message also starts the node's ClientApp process (torch, Flower), which
    # can take longer than a short round timeout on a loaded machine.
    info = query_info(grid, timeout=max(float(s.round_timeout), 120.0), min_nodes=int(s.min_available_nodes))
    if info.get("describe"):
        recorder.labels = [str(v) for v in info["describe"].get("labels", [])]  # type: ignore[union-attr]
    model = build_model(str(s.model), info["n_inputs"], info["n_classes"], seed=int(s.seed), width=int(s.model_width), bottleneck=int(s.bottleneck))  # type: ignore[arg-type]
    if resumed is not None:
        recorder.event("resume", from_round=done, nodes=info["nodes"])
        recorder.say(f"resuming after round {done} of {rounds} from {s.out_dir}/checkpoint.npz")
    else:
        recorder.event("start", config=dict(values), nodes=info["nodes"], params=count_params(model), fedotl=fedotl.__version__)
    recorder.say(f"{info['nodes']} nodes, model {s.model} with {count_params(model):,} parameters, {rounds} rounds")

    server_X = server_y = None
    if s.data_dir and cloud_dirs(str(s.data_dir)) and s.strategy in ("fedhealth", "fedap"):
        server_X, server_y = load_cloud(str(s.data_dir), representation_of(str(s.model)))
    if server_X is not None and resumed is None:  # a resumed run's checkpoint holds the pretrained model
        t0 = time.perf_counter()
        fit = train_local(model, server_X, server_y, train_settings(s, "pretrain"), seed=derive_seed(s.seed, "cloud-pretrain"))
        seconds = time.perf_counter() - t0
        recorder.extra["pretrain_seconds"] = round(seconds, 4)
        recorder.event("pretrain", windows=int(len(server_y)), epochs=s.pretrain_epochs, loss=fit["loss"], accuracy=fit["accuracy"], seconds=seconds)
        recorder.say(f"cloud model pretrained on {len(server_y)} server-held windows in {seconds:.1f} s")

    initial = arrays_to_record(resumed if resumed is not None else get_arrays(model))
    strategy = build_strategy(s, shared_keys(model), recorder, pretrained=server_X is not None)
    strategy.round_offset = done
    runner = wrap_privacy(strategy, s, info["nodes"])  # type: ignore[arg-type]
    if s.secagg:
        grid = secagg_grid(s, grid)
    # Every setting reaches the nodes through the run config: the train config stays empty.
    def checkpoint(server_round: int, arrays: ArrayRecord) -> None:
        """Flower calls this at the end of every round (and with round 0 before the first)."""
        if recorder.out is not None and server_round > 0:
            save_checkpoint(recorder.out, done + server_round, record_to_arrays(arrays), recorder.checkpoint_state())

    final = initial
    if rounds > done:
        result = runner.start(grid=grid, initial_arrays=initial, num_rounds=rounds - done, timeout=float(s.round_timeout),
                              train_config=ConfigRecord(), evaluate_fn=checkpoint)
        final = result.arrays if len(result.arrays) else initial

    if s.strategy == "fedhealth":
        server_cov = None
        if server_X is not None and len(server_X) > 1:
            set_arrays(model, record_to_arrays(final))
            n, tot, outer = embedding_moments(model, server_X)
            server_cov = pooled_moments([n], [tot], [outer])[2]
        strategy.personalize(grid, final, config=ConfigRecord(), server_cov=server_cov, timeout=float(s.round_timeout))

    if s.strategy != "local":
        save_federation(recorder, s, values, info, record_to_arrays(final), strategy)
    fields: dict[str, object] = {"params": count_params(model)}
    if s.secagg:
        secagg_rounds = grid.rounds  # type: ignore[attr-defined]
        fields["secagg"] = {
            "rounds": len(secagg_rounds),
            "updates_aggregated": sum(r["aggregated"] for r in secagg_rounds),
            "updates_dropped": sum(r["sampled"] - r["aggregated"] for r in secagg_rounds),
        }
    if s.attack != "none":
        fields["attack"] = honest_summary(recorder, strategy.partitions, s)
    if s.aggregation != "mean":
        fields["aggregation"] = {"rule": s.aggregation, "trim_fraction": s.trim_fraction, "byzantine_fraction": s.byzantine_fraction}
    if s.dp != "none":
        fields["dp"] = {"mode": s.dp, "noise_multiplier": s.dp_noise_multiplier, "clipping_norm": s.dp_clipping_norm}
    summary = recorder.finish(**fields)
    log(INFO, "summary: mean accuracy %s over %s clients", summary["mean_accuracy"], summary["clients"])
    if summary["clients"] == 0:
        log(WARNING, "no client reported an evaluation")
    return summary
