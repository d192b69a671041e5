"""The self-describing global model and a federation's run directory (client/model_card.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fedotl.client.model import build_model, get_arrays
from fedotl.client.model_card import (
    CARD_KEY, FederationError, fc_embed, fc_scores, load_federation, load_global_model, make_card, save_client_share,
    save_global_model, write_manifest,
)
from fedotl.client.summary import summarise

DESCRIBE = {
    "classes": [3, 5, 8], "labels": ["sit", "walk", "run"], "channels": ["a_x", "a_y"], "sensors": ["acc", "acc"],
    "axes": ["x", "y"], "rate-hz": 10.0, "window-rows": 20,
}


def _trained_model():
    model = build_model("cnn", 2, 3, seed=1, width=4, bottleneck=6)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    return model


def test_card_describes_the_windows_and_the_model():
    card = make_card(DESCRIBE, model="cnn", width=4, bottleneck=6, n_inputs=2, n_classes=3)
    assert card["classes"] == [3, 5, 8] and card["labels"] == ["sit", "walk", "run"]
    assert card["channels"][1] == {"name": "a_y", "sensor": "acc", "axis": "y"}
    assert card["window_seconds"] == 2.0 and card["representation"] == "windows" and card["fedotl"]
    with pytest.raises(FederationError, match="3 classes"):
        make_card(DESCRIBE, model="cnn", width=4, bottleneck=6, n_inputs=2, n_classes=4)


def test_a_saved_model_rebuilds_alone_and_embeds_as_the_extractor_offline(tmp_path):
    model = _trained_model()
    card = make_card(DESCRIBE, model="cnn", width=4, bottleneck=6, n_inputs=2, n_classes=3)
    path = save_global_model(tmp_path / "global_model.npz", get_arrays(model), card)
    with np.load(path) as z:
        assert CARD_KEY in z.files and json.loads(str(z[CARD_KEY]))["labels"] == card["labels"]
    loaded = load_global_model(path)
    raw = np.random.default_rng(0).normal(size=(7, 20, 2)).astype(np.float32)  # (n, L, C) as a device records
    X = loaded.inputs(raw)
    assert X.shape == (7, 2, 20)
    model.eval()
    with torch.no_grad():
        want_emb = model.embed(torch.from_numpy(X)).numpy()
        want_logits = model(torch.from_numpy(X)).numpy()
        conv = model.features(torch.from_numpy(X)).numpy()
    assert np.allclose(loaded.embed(X), want_emb, atol=1e-5)
    assert np.allclose(fc_embed(conv, loaded.fc), want_emb, atol=1e-5)
    assert np.allclose(fc_scores(loaded.conv(X), loaded.fc), want_logits, atol=1e-5)


def test_federation_dir_round_trip_and_clear_errors(tmp_path):
    model = _trained_model()
    card = make_card(DESCRIBE, model="cnn", width=4, bottleneck=6, n_inputs=2, n_classes=3)
    save_global_model(tmp_path / "global_model.npz", get_arrays(model), card)
    fc = {k: v for k, v in get_arrays(model).items() if k.startswith(("bottleneck.", "head."))}
    summary = summarise(np.random.default_rng(0).normal(size=(9, 6)), np.arange(9) % 3, 3)
    save_client_share(tmp_path, "p1/RA", fc, summary)
    clients = {"p1/RA": {"subject": "p1", "position": "RA"}, "p2/RA": {"subject": "p2", "position": "RA"}}
    write_manifest(tmp_path, config={"holdout-subjects": "p9", "server-subjects": ""}, clients=clients, shared=["p1/RA"], strategy="fedhealth")
    fed = load_federation(tmp_path)
    assert fed.manifest["subjects"] == ["p1", "p2"] and fed.manifest["holdout_subjects"] == ["p9"]
    assert [c.client_id for c in fed.clients] == ["p1/RA"] and fed.clients[0].position == "RA"
    assert np.allclose(fed.clients[0].summary["rff"], summary["rff"]) and set(fed.clients[0].fc) == set(fc)

    with pytest.raises(FederationError, match="no such run directory"):
        load_federation(tmp_path / "nope")
    weights_only = tmp_path / "old"
    weights_only.mkdir()
    np.savez(weights_only / "global_model.npz", **get_arrays(model))
    (weights_only / "manifest.json").write_text("{}")
    with pytest.raises(FederationError, match="no model card"):
        load_federation(weights_only)
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(FederationError, match="no manifest.json"):
        load_federation(tmp_path)


def _federation_dir(tmp_path, n_clients=3):
    """A hand-built federation: a random model, n clients sharing heads and summaries of random embeddings."""
    from fedotl.client.model_card import MODEL_FILE

    model = _trained_model()
    save_global_model(tmp_path / MODEL_FILE, get_arrays(model), make_card(DESCRIBE, model="cnn", width=4, bottleneck=6, n_inputs=2, n_classes=3))
    fc = {k: v for k, v in get_arrays(model).items() if k.startswith(("bottleneck.", "head."))}
    rng = np.random.default_rng(0)
    clients = {}
    for i in range(n_clients):
        E = np.abs(rng.normal(i, 1.0, size=(30, 6)))
        save_client_share(tmp_path, f"c{i}", fc, summarise(E, np.arange(30) % 3, 3))
        clients[f"c{i}"] = {"subject": f"s{i}", "position": ""}
    write_manifest(tmp_path, config={}, clients=clients, shared=list(clients), strategy="fedhealth")
    return load_federation(tmp_path)


def test_new_user_kit_builds_every_learner_on_rows_of_the_right_width(tmp_path):
    from fedotl.client.newuser import ONLINE_KEYS, NewUserKit

    fed = _federation_dir(tmp_path)
    rng = np.random.default_rng(1)
    kit = NewUserKit(fed, rng.normal(size=(12, 20, 2)), top_k=2)
    assert len(kit.chosen) == 2 and set(kit.distances) == {"c0", "c1", "c2"}
    assert kit.chosen == sorted(kit.distances, key=kit.distances.get)[:2]
    enc = kit.encode(rng.normal(size=(5, 20, 2)))
    assert enc.conv.shape[0] == enc.embedding.shape[0] == enc.features.shape[0] == 5
    assert enc.rows("conv+features").shape[1] == enc.conv.shape[1] + enc.features.shape[1]
    assert set(kit.global_predictions(enc).tolist()) <= {3, 5, 8}
    for key, (kind, factory) in kit.learner_factories(20).items():
        learner = factory()
        rows = enc.rows(kind)
        for i, y in enumerate([3, 5, 8, 3, 5]):
            assert learner.predict_learn_array(rows[i], y) in (None, 3, 5, 8), key
    assert set(kit.learner_factories(20)) == set(ONLINE_KEYS)
    with pytest.raises(ValueError, match="target inputs"):
        NewUserKit(fed, rng.normal(size=(12, 20, 2)), target_inputs="raw")


def test_a_federated_device_predicts_with_the_global_model_until_calibrated(tmp_path):
    from fedotl.client.model_card import fc_scores
    from fedotl.client.newuser import FederatedDeviceLearner

    fed = _federation_dir(tmp_path)
    rng = np.random.default_rng(2)
    windows = rng.normal(size=(8, 20, 2)).astype(np.float32)
    lrn = FederatedDeviceLearner(fed, "homotlms_topk", calibration=4, top_k=1)
    for i in range(3):
        pred = lrn.predict_array(windows[i].ravel())
        ref = fed.model.inputs(windows[: i + 1])  # standardised with the windows seen so far
        mean, std = fed.model.standardiser(ref)
        scores = fc_scores(fed.model.conv((fed.model.inputs(windows[i : i + 1]) - mean) / std), fed.model.fc)[0]
        assert pred == fed.model.labels[int(scores.argmax())]
        lrn.learn_array(windows[i].ravel(), "walk")
        assert lrn.learner is None
    lrn.predict_array(windows[3].ravel())  # the 4th window completes the calibration
    assert lrn.learner is not None and lrn.kit is not None and len(lrn.kit.chosen) == 1
    # the labels learnt while calibrating were replayed into the new learner
    assert "walk" in lrn.learner.classes_
    assert lrn.predict_array(windows[4].ravel()) in fed.model.labels
    with pytest.raises(ValueError, match="global model reads 20 × 2"):
        lrn.predict_array(np.zeros(7))


def test_oddm_pseudo_sources_are_the_same_in_every_process(tmp_path):
    import os
    import subprocess
    import sys

    _federation_dir(tmp_path)
    code = (
        "import sys; from fedotl.client.model_card import load_federation; from fedotl.client.newuser import pseudo_source;"
        "f = load_federation(sys.argv[1]); X, y = pseudo_source(f.clients[1], f.model.classes); print(repr(float(X.sum())), len(y))"
    )
    outs = {
        subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1 and outs.pop().split()[1] == "30"
