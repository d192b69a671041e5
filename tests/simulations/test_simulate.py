"""End to end through Flower's Simulation Engine (Ray), on small synthetic DSADS.

Ray starts in about 9 s per run, so the runs are module-scoped fixtures that
several tests assert on:

* ``fedhealth_cli``: ``fedotl simulate --strategy fedhealth --json`` in a
  subprocess (real stdout), with partition 1 crashing in round 2;
* ``fedhealth_again``: the same run in-process (determinism);
* ``fedap_server``: FedAP with a server-held subject (cloud pretraining);
* ``fedbn_dp``: FedBN with Flower's client-side DP clipping;
* ``fedhealth_secagg``: ``fedhealth_again`` with SecAgg+ on every train round;
* ``local_run`` and ``central_run``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from fedotl.client.config import APP_KEYS
from fedotl.simulations.cli import main
from fedotl.client.config import DEFAULTS
from fedotl.simulations.federated import make_config, simulate

ROOT = Path(__file__).resolve().parents[2]
FAST = {"train-fraction": 0.5, "local-epochs": 1, "personalize-epochs": 3, "pretrain-epochs": 2}


@pytest.fixture(scope="module", autouse=True)
def _module_cache(tmp_path_factory):
    # conftest isolates the cache per test; module-scoped runs start before that.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEDOTL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from fedotl.simulations.readers import dsads

    out = tmp_path_factory.mktemp("fed_dsads")
    dsads.write_synthetic(out, n_subjects=2, seed=3, n_segments=4)  # 10 devices
    return out


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory):
    return {"FEDOTL_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "cache")}


def _cfg(data: Path, out: Path, **kw) -> dict:
    cfg = make_config(data_path=str(data), out_dir=str(out), num_server_rounds=3, **{k.replace("-", "_"): v for k, v in FAST.items()})
    cfg.update({k.replace("_", "-"): v for k, v in kw.items()})
    return cfg


@pytest.fixture(scope="module")
def fedhealth_cli(data, tmp_path_factory, cache_env):
    out = tmp_path_factory.mktemp("run_fedhealth")
    argv = [
        sys.executable, "-m", "fedotl.simulations.cli", "simulate", "--dataset", "dsads", str(data),
        "--strategy", "fedhealth", "--rounds", "3", "--local-epochs", "1", "--train-fraction", "0.5",
        "--personalize-epochs", "3", "--seed", "7", "--out", str(out), "--json",
        "--set", "fail-partition=1", "--set", "fail-round=2",
    ]
    import os

    r = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **cache_env}, timeout=300)
    return r, out


@pytest.fixture(scope="module")
def fedhealth_again(data, tmp_path_factory, fedhealth_cli):
    out = tmp_path_factory.mktemp("run_fedhealth_again")
    cfg = _cfg(data, out, strategy="fedhealth", seed=7, fail_partition=1, fail_round=2)
    cfg["progress"] = False
    return simulate(cfg)


@pytest.fixture(scope="module")
def fedhealth_secagg(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run_fedhealth_secagg")
    cfg = _cfg(data, out, strategy="fedhealth", seed=7, fail_partition=1, fail_round=2, secagg=True, secagg_max_weight=100.0)
    cfg["progress"] = False
    return simulate(cfg), out


@pytest.fixture(scope="module")
def fedap_server(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run_fedap")
    return simulate(_cfg(data, out, strategy="fedap", server_subjects="p2", num_server_rounds=2)), out


@pytest.fixture(scope="module")
def fedbn_dp(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run_fedbn")
    return simulate(_cfg(data, out, strategy="fedbn", dp="client-fixed", dp_clipping_norm=5.0, num_server_rounds=2)), out


@pytest.fixture(scope="module")
def local_run(data, tmp_path_factory):
    # partition 4 is a straggler in round 2: it answers after 25 s, past the 15 s round timeout
    out = tmp_path_factory.mktemp("run_local")
    cfg = _cfg(data, out, strategy="local", num_server_rounds=2, round_timeout=15.0, fail_partition=4, fail_round=2, fail_mode="hang", fail_seconds=25.0)
    return simulate(cfg), out


# ------------------------------------------------------------ FedHealth via the CLI
@pytest.mark.slow
def test_cli_prints_exactly_one_json_object(fedhealth_cli):
    r, out = fedhealth_cli
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout)  # the whole stdout is one object
    for key in ("strategy", "rounds", "clients", "mean_accuracy", "mean_macro_f1", "worst_accuracy", "per_client", "history"):
        assert key in summary
    assert summary["strategy"] == "fedhealth" and summary["rounds"] == 3 and summary["clients"] == 10
    assert set(summary["per_client"]) == {f"p{s}/{p}" for s in (1, 2) for p in ("T", "RA", "LA", "RL", "LL")}
    assert 0 <= summary["worst_accuracy"] <= summary["mean_accuracy"] <= 1
    assert summary["mean_accuracy"] == pytest.approx(np.mean(list(summary["per_client"].values())))
    assert [h["round"] for h in summary["history"]] == [1, 2, 3]
    assert summary["global_mean_accuracy"] is not None


@pytest.mark.slow
def test_progress_per_round_on_stderr(fedhealth_cli):
    r, _ = fedhealth_cli
    for k in (1, 2, 3):
        assert f"[fedhealth] round {k}/3:" in r.stderr
    assert "[fedhealth] personalised:" in r.stderr


@pytest.mark.slow
def test_a_crashing_client_does_not_stop_the_run(fedhealth_cli):
    r, out = fedhealth_cli
    summary = json.loads(r.stdout)
    fails = summary["failures"]
    assert len(fails) == 1 and fails[0]["round"] == 2 and fails[0]["stage"] == "train"
    assert "injected failure of partition 1 in round 2" in fails[0]["reason"]
    by_round = {h["round"]: h for h in summary["history"]}
    assert by_round[2]["train"]["replies"] == 9 and by_round[2]["failures"] == 1
    assert by_round[1]["train"]["replies"] == 10 and by_round[3]["train"]["replies"] == 10
    assert summary["clients"] == 10  # the crashed device still evaluates and personalises


@pytest.mark.slow
def test_run_dir_holds_metrics_model_and_heads(fedhealth_cli):
    r, out = fedhealth_cli
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    events = [x["event"] for x in lines]
    assert events[0] == "start" and events.count("round") == 3 and "personalize" in events and events[-1] == "summary"
    rounds = [x for x in lines if x["event"] == "round"]
    assert all(len(x["per_client"]) == 10 for x in rounds)
    model = np.load(out / "global_model.npz")
    assert "head.weight" in model.files and model["head.weight"].shape == (19, 64)
    heads = sorted((out / "heads").glob("*.npz"))
    assert len(heads) == 10
    head = np.load(heads[0])
    assert set(head.files) >= {"head.weight", "bottleneck.0.weight"} and not any(k.startswith("features.") for k in head.files)
    assert (out / "source_covariance.npz").exists()
    assert json.loads((out / "summary.json").read_text())["mean_accuracy"] == json.loads(r.stdout)["mean_accuracy"]


@pytest.mark.slow
def test_same_seed_same_numbers(fedhealth_cli, fedhealth_again):
    first = json.loads(fedhealth_cli[0].stdout)
    second = fedhealth_again
    assert second["per_client"] == first["per_client"]
    assert second["mean_accuracy"] == first["mean_accuracy"]
    strip = lambda h: [{k: v for k, v in x.items() if k not in ("seconds", "t_end")} for x in h]  # noqa: E731
    assert strip(second["history"]) == strip(first["history"])


@pytest.mark.slow
def test_secagg_gives_the_plain_run_up_to_quantisation(fedhealth_cli, fedhealth_secagg):
    summary, out = fedhealth_secagg
    # Partition 1 crashes in round 2 mid-protocol; SecAgg+ recovers its masks and averages the other 9.
    assert summary["secagg"] == {"rounds": 3, "updates_aggregated": 29, "updates_dropped": 1}
    assert [(f["round"], f["stage"]) for f in summary["failures"]] == [(2, "train")]
    assert summary["history"][1]["train"]["replies"] == 9
    plain, secure = np.load(fedhealth_cli[1] / "global_model.npz"), np.load(out / "global_model.npz")
    assert plain.files == secure.files
    gaps = [np.abs(plain[k] - secure[k]).max() for k in plain.files if plain[k].dtype.kind == "f"]
    assert 0 < max(gaps) < 0.05, max(gaps)  # stochastic quantisation, not a different algorithm
    assert abs(summary["mean_accuracy"] - json.loads(fedhealth_cli[0].stdout)["mean_accuracy"]) < 0.05


# ------------------------------------------------------------ other strategies
@pytest.mark.slow
def test_fedap_with_cloud_pretraining(fedap_server):
    summary, out = fedap_server
    assert summary["clients"] == 5 and all(k.startswith("p1/") for k in summary["per_client"])
    assert summary["pretrain_seconds"] > 0
    events = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    pre = [e for e in events if e["event"] == "pretrain"]
    assert pre and pre[0]["windows"] == 5 * 19 * 4
    weights = [e for e in events if e["event"] == "fedap-weights"][0]
    W = np.array(weights["weights"])
    assert W.shape == (5, 5) and np.allclose(W.sum(1), 1) and np.allclose(np.diag(W), 0.5)


@pytest.mark.slow
def test_fedbn_with_client_side_dp_clipping(fedbn_dp):
    summary, out = fedbn_dp
    assert summary["clients"] == 10 and summary["rounds"] == 2 and not summary["failures"]
    assert summary["dp"] == {"mode": "client-fixed", "noise_multiplier": 0.0, "clipping_norm": 5.0}


@pytest.mark.slow
def test_local_only_with_a_straggler_past_the_timeout(local_run):
    summary, out = local_run
    assert summary["clients"] == 10 and summary["rounds"] == 2
    assert not (out / "global_model.npz").exists()
    timeouts = [f for f in summary["failures"] if f["reason"] == "no reply within round-timeout"]
    assert [(f["round"], f["stage"]) for f in timeouts] == [(2, "train")]
    assert summary["history"][1]["train"]["replies"] == 9


def test_central_runs_in_process(data, tmp_path):
    summary = simulate(_cfg(data, tmp_path, strategy="central", num_server_rounds=2))
    assert summary["clients"] == 10 and summary["pooled_windows"] == 10 * 19 * 2
    assert (tmp_path / "global_model.npz").exists()


# ------------------------------------------------------------ arguments
def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_bad_arguments_give_one_line_and_exit_2(data, tmp_path, capsys):
    base = ["simulate", "--dataset", "dsads", str(data), "--out", str(tmp_path)]
    rc, out, err = run(capsys, *base[:3], str(tmp_path / "missing"), "--json")
    assert rc == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1
    rc, out, err = run(capsys, *base, "--server-subjects", "p9")
    assert rc == 2 and "unknown server subject" in err and err.count("\n") == 1
    rc, out, err = run(capsys, *base, "--server-subjects", "p1", "p2")
    assert rc == 2 and "no device is left" in err
    rc, out, err = run(capsys, *base, "--set", "nope=1")
    assert rc == 2 and "unknown run-config key" in err
    rc, out, err = run(capsys, *base, "--set", "seed=x")
    assert rc == 2 and "cannot read 'x'" in err
    rc, out, err = run(capsys, *base, "--strategy", "fedap", "--dp", "client-fixed")
    assert rc == 2 and "does not apply to fedap" in err
    rc, out, err = run(capsys, *base, "--strategy", "fedbn", "--secagg")
    assert rc == 2 and "secagg" in err and "does not apply to fedbn" in err and err.count("\n") == 1
    rc, out, err = run(capsys, *base, "--min-nodes", "11")
    assert rc == 2 and "there are 10 devices" in err
    rc, out, err = run(capsys, *base, "--rate", "10")
    assert rc == 2 and "--rate applies to the generic format only" in err
    for bad in (["--train-fraction", "1.5"], ["--rounds", "0"], ["--strategy", "fedsgd"], ["--clients-by", "device"]):
        with pytest.raises(SystemExit) as e:
            main(base + bad)
        assert e.value.code == 2
        capsys.readouterr()


def test_pyproject_app_config_matches_the_harness_defaults():
    flwr = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["flwr"]
    assert flwr["app"]["components"] == {"serverapp": "fedotl.server.server_app:app", "clientapp": "fedotl.client.client_app:app"}
    assert flwr["app"]["config"] == {k: DEFAULTS[k] for k in APP_KEYS}
    with pytest.raises(ValueError, match="unknown run-config key"):
        make_config(no_such_key=1)


def test_table_output(data, tmp_path, capsys):
    rc, out, err = run(
        capsys, "simulate", "--dataset", "dsads", str(data), "--strategy", "central", "--rounds", "1",
        "--train-fraction", "0.5", "--out", str(tmp_path),
    )
    assert rc == 0
    assert "strategy    central  (1 rounds, 10 clients)" in out and "p2/LL" in out and "worst" in out
    assert "[central] round 1/1:" in err


@pytest.mark.slow
def test_an_in_process_run_restores_pythonpath(fedhealth_again):
    """Flower's Ray backend prepends the working directory to PYTHONPATH; the harness undoes it."""
    import os

    assert str(ROOT) not in os.environ.get("PYTHONPATH", "").split(os.pathsep)


# ------------------------------------------------------------ poisoned devices
@pytest.mark.slow
def test_sign_flip_attackers_break_the_mean_and_the_median_withstands_them(data, tmp_path):
    runs = {}
    for rule in ("mean", "median"):
        cfg = _cfg(data, tmp_path / rule, strategy="fedavg", num_server_rounds=3, attack="sign-flip", attackers=0.2, aggregation=rule)
        cfg["progress"] = False
        runs[rule] = simulate(cfg)
    for s in runs.values():
        assert len(s["attack"]["attackers"]) == 2 and s["attack"]["honest_clients"] == 8  # 20% of 10 devices, drawn from the seed
    assert runs["mean"]["attack"]["attackers"] == runs["median"]["attack"]["attackers"]
    assert runs["median"]["aggregation"]["rule"] == "median" and "aggregation" not in runs["mean"]
    # sign-flip at 10× breaks the example-weighted mean; the coordinate-wise median keeps learning
    assert runs["median"]["attack"]["global_mean_accuracy"] > runs["mean"]["attack"]["global_mean_accuracy"] + 0.05


@pytest.mark.slow
def test_a_device_failure_is_one_line_naming_the_device_without_a_traceback(fedhealth_cli):
    import re

    r, _ = fedhealth_cli
    assert r.returncode == 0, r.stderr[-3000:]
    failed = [line for line in r.stderr.splitlines() if "failed in" in line]
    assert len(failed) == 1 and re.fullmatch(r"\[fedhealth\] round 2: device p\d/[A-Z]{1,2} failed in train: .*injected failure of partition 1 in round 2", failed[0]), failed
    assert "Traceback" not in r.stderr and "ERROR" not in r.stderr and "File \"" not in r.stderr, r.stderr[-3000:]
