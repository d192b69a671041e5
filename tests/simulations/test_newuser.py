"""New users from a federation, end to end on small synthetic DSADS (simulate → newuser / device --federation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fedotl.client.config import RunConfig
from fedotl.client.model_card import load_federation
from fedotl.simulations.cli import main
from fedotl.simulations.devices import build_devices
from fedotl.simulations.newuser import ALL_KEYS, CURVE_AT

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from fedotl.simulations.readers import dsads

    out = tmp_path_factory.mktemp("nu_dsads")
    dsads.write_synthetic(out, n_subjects=4, seed=5, n_segments=6)
    return out


@pytest.fixture(scope="module")
def federation(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("nu_run")
    env = {**os.environ, "FEDOTL_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "cache")}
    argv = [
        sys.executable, "-m", "fedotl.simulations.cli", "simulate", "--dataset", "dsads", str(data), "--strategy", "fedhealth",
        "--rounds", "2", "--local-epochs", "1", "--personalize-epochs", "2", "--holdout-subjects", "p4", "--out", str(out), "--json",
    ]
    r = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout), out


def test_holdout_subjects_leave_every_partition(data):
    base = {"dataset": "dsads", "data-path": str(data)}
    for by in ("subject-position", "subject"):
        devs = build_devices(RunConfig({**base, "clients-by": by, "holdout-subjects": "p2,p4", "server-subjects": "p1"}))
        assert {d.subject for d in devs.devices} == {"p3"} and {d.subject for d in devs.cloud} == {"p1"}
    with pytest.raises(ValueError, match="both server-held and held out"):
        RunConfig({**base, "holdout-subjects": "p1", "server-subjects": "p1"})
    with pytest.raises(ValueError, match="unknown held-out subject"):
        build_devices(RunConfig({**base, "holdout-subjects": "p9"}))


@pytest.mark.slow
def test_a_federation_leaves_a_self_describing_model_heads_and_a_manifest(federation):
    summary, out = federation
    fed = load_federation(out)
    m = fed.manifest
    assert m["subjects"] == ["p1", "p2", "p3"] and m["holdout_subjects"] == ["p4"] and m["share_heads"]
    assert m["positions"] == ["LA", "LL", "RA", "RL", "T"] and m["config"]["strategy"] == "fedhealth"
    ids = sorted(c["client_id"] for c in m["clients"])
    assert ids == sorted(summary["per_client"]) and len(ids) == 15 and not any(i.startswith("p4") for i in ids)
    assert sorted(c.client_id for c in fed.clients) == ids
    card = fed.model.card
    assert card["n_classes"] == 19 == len(card["labels"]) and card["labels"][0] == "sitting"
    assert len(card["channels"]) == 9 and card["window_seconds"] == 5.0
    for c in fed.clients:
        assert int(np.ravel(c.summary["n"])[0]) == int(c.summary["class_count"].sum()) > 0
        assert set(c.fc) >= {"bottleneck.0.weight", "head.weight"} and not any(k.startswith("features.") for k in c.fc)


@pytest.mark.slow
def test_newuser_compares_every_learner_on_the_held_out_subject(federation, data, capsys, tmp_path, self_contained):
    _, out = federation
    code = main(["newuser", "--dataset", "dsads", str(data), "--federation", str(out), "--subjects", "p4", "--position", "LA",
                 "--permutations", "2", "--calibration", "20", "--top-k", "3", "--json"])
    assert code == 0
    res = json.loads(capsys.readouterr().out)
    dev = res["subjects"]["p4"]["devices"]["LA"]
    assert set(dev["learners"]) == set(ALL_KEYS) - {"persistence"}
    for r in dev["learners"].values():
        assert 0.0 <= r["mistake_rate_mean"] <= 1.0 and r["mistake_rate_std"] >= 0
        assert set(r["curve"]) == {str(t) for t in CURVE_AT if t <= dev["windows"]}
        assert all(0.0 <= v <= 1.0 for v in r["curve"].values())
    src = dev["sources"]
    assert len(src["chosen"]) == 3 and len(src["distances"]) == 15
    assert src["chosen"] == list(src["distances"])[:3]  # nearest first
    assert dev["calibration_windows"] == 20 and dev["windows"] + 20 == 6 * 19

    run_dir = tmp_path / "newuser"
    code = main(["newuser", "--dataset", "dsads", str(data), "--federation", str(out), "--subjects", "p4", "--position", "T",
                 "--order", "time", "--calibration", "20", "--no-offline", "--label-budget", "0.5", "--json", "--out", str(run_dir)])
    assert code == 0
    dev = json.loads(capsys.readouterr().out)["subjects"]["p4"]["devices"]["T"]
    assert "persistence" in dev["learners"] and "personalized_offline" not in dev["learners"]
    assert 0 < dev["labels_used"] < dev["windows"]
    # --out: the whole result, and the online piece of metrics.json with its report
    assert json.loads((run_dir / "newuser.json").read_text())["subjects"]["p4"]["devices"]["T"] == dev
    online = json.loads((run_dir / "metrics.json").read_text())["online"]
    assert set(online) == set(dev["learners"])
    for key, piece in online.items():
        assert piece["mistake_rate_mean"] == pytest.approx(dev["learners"][key]["mistake_rate_mean"]) and piece["devices"] == 1
        assert piece["curve"]["windows"] == dev["windows"]
        # the trace counts mistakes: after 50 windows, 50 times the cumulative rate there
        at = dict(zip(piece["curve"]["at"], piece["curve"]["mistakes"]))
        assert at[50] == pytest.approx(50 * dev["learners"][key]["curve"]["50"]) and piece["mistakes_at"]["50"] == at[50]
    self_contained(run_dir / "report.html", images=1)


@pytest.mark.slow
def test_newuser_refuses_federated_subjects_and_a_missing_federation(federation, data, capsys, tmp_path):
    _, out = federation
    assert main(["newuser", "--dataset", "dsads", str(data), "--federation", str(out), "--subjects", "p1"]) == 2
    assert "took part in the federation" in capsys.readouterr().err
    assert main(["newuser", "--dataset", "dsads", str(data), "--federation", str(tmp_path), "--subjects", "p4"]) == 2
    assert "no global_model.npz" in capsys.readouterr().err


@pytest.mark.slow
def test_device_starts_from_the_federation(federation, data, tmp_path, capsys):
    _, out = federation
    metrics = tmp_path / "m.json"
    store = tmp_path / "store"
    code = main(["device", "--replay", "dsads", str(data), "--subject", "p4", "--position", "RA", "--speed", "max",
                 "--federation", str(out), "--transfer", "homotlms_topk", "--calibration", "15", "--top-k", "2",
                 "--quiet", "--out", str(metrics), "--store", str(store)])
    assert code == 0, capsys.readouterr().err
    m = json.loads(metrics.read_text())
    assert m["learner"] == "homotlms_topk" and m["windows_predicted"] > 100 and 0.0 <= m["accuracy"] <= 1.0
    assert m["labels_used"] == m["windows_predicted"]
    meta = json.loads((store / "store.json").read_text())
    assert meta["labels"][0] == "sitting" and len(meta["classes"]) == 19
    assert main(["device", "--replay", "dsads", str(data), "--subject", "p4", "--federation", str(out), "--window", "2"]) == 2
    assert "reads 5 s windows" in capsys.readouterr().err


@pytest.mark.slow
def test_a_federation_without_shared_heads_still_serves_the_global_learners(federation, data, tmp_path, capsys):
    import shutil

    _, out = federation
    bare = tmp_path / "bare"
    shutil.copytree(out, bare)
    shutil.rmtree(bare / "clients")
    manifest = json.loads((bare / "manifest.json").read_text())
    for c in manifest["clients"]:
        c.pop("file", None)
    (bare / "manifest.json").write_text(json.dumps(manifest))
    code = main(["newuser", "--dataset", "dsads", str(data), "--federation", str(bare), "--subjects", "p4", "--position", "RL",
                 "--permutations", "1", "--calibration", "20", "--no-offline", "--json"])
    assert code == 0
    res = json.loads(capsys.readouterr().out)
    learners = res["subjects"]["p4"]["devices"]["RL"]["learners"]
    assert set(learners) == {"global", "pa_features", "pa_embedding", "otl_global"}
    assert "homotlms_all" in res["note"]


@pytest.mark.slow
def test_a_device_with_other_channels_is_refused_by_name(federation, data):
    from fedotl.client.model_card import FederationError
    from fedotl.simulations.newuser import check_channels
    from fedotl.simulations.readers import load_dataset

    _, out = federation
    whole = load_dataset("dsads", data).select_subjects(["p4"])  # all 45 channels, not one unit's 9
    with pytest.raises(FederationError, match="p4: 45 channels, but the global model reads 9"):
        check_channels(load_federation(out), whole, "p4")
