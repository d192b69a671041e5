"""Checkpoints and resuming (server/checkpoint.py): the file, the metrics cut, the rules, and a real kill -9."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fedotl.client.config import RunConfig
from fedotl.server.checkpoint import CHECKPOINT, cut_metrics, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkpoint_round_trips_arrays_and_state(tmp_path):
    arrays = {"conv.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "bn.num_batches_tracked": np.array(7)}
    save_checkpoint(tmp_path, 3, arrays, {"history": [{"round": 1}], "failures": []})
    r, back, state = load_checkpoint(tmp_path)
    assert r == 3 and state == {"history": [{"round": 1}], "failures": []}
    assert set(back) == set(arrays) and all(np.array_equal(back[k], arrays[k]) and back[k].dtype == arrays[k].dtype for k in arrays)
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT]  # no temporary file left


def test_no_checkpoint_is_a_named_error(tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint\.npz: no checkpoint to resume from"):
        load_checkpoint(tmp_path)


def test_metrics_are_cut_back_to_the_checkpoint_round(tmp_path):
    lines = [{"event": "start"}, {"event": "round", "round": 1}, {"event": "round", "round": 2}, {"event": "round", "round": 3}, {"event": "interrupted"}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines) + '{"event": "rou')
    cut_metrics(tmp_path, 2)
    assert [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == lines[:3]


def test_only_strategies_without_node_state_resume():
    with pytest.raises(ValueError, match="fedbn keeps per-node state"):
        RunConfig({"strategy": "fedbn", "resume": True, "out-dir": "/x"})
    with pytest.raises(ValueError, match="resume needs out-dir"):
        RunConfig({"strategy": "fedavg", "resume": True})
    assert RunConfig({"strategy": "fedhealth", "resume": True, "out-dir": "/x"}).resume


def test_resume_of_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    from fedotl.simulations.cli import main

    assert main(["simulate", "--resume", str(tmp_path)]) == 2
    assert "no run_config.json there" in capsys.readouterr().err
    assert main(["simulate", "--rounds", "1"]) == 2
    assert "needs --dataset D PATH, or --resume RUN_DIR" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_killed_after_a_round_and_resumed_ends_bit_for_bit_as_an_uninterrupted_one(tmp_path):
    from fedotl.simulations.readers import dsads

    data = tmp_path / "data"
    dsads.write_synthetic(data, n_subjects=2, seed=3, n_segments=4)
    base = [sys.executable, "-m", "fedotl.simulations.cli", "simulate"]
    args = ["--dataset", "dsads", str(data), "--strategy", "fedhealth", "--rounds", "3", "--local-epochs", "1",
            "--personalize-epochs", "2", "--seed", "5", "--json"]
    whole = subprocess.run([*base, *args, "--out", str(tmp_path / "whole")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-2000:]

    run = tmp_path / "killed"
    proc = subprocess.Popen([*base, *args, "--out", str(run)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while not (run / CHECKPOINT).exists():
        assert proc.poll() is None and time.monotonic() - t0 < 300, "no checkpoint before the run ended"
        time.sleep(0.1)
    proc.kill()  # kill -9 after round 1 (or 2)
    proc.communicate(timeout=60)
    done = load_checkpoint(run)[0]
    assert 1 <= done < 3 and not (run / "summary.json").exists()

    resumed = subprocess.run([*base, "--resume", str(run), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming after round {done} of 3" in resumed.stderr
    a, b = np.load(tmp_path / "whole" / "global_model.npz"), np.load(run / "global_model.npz")
    assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
    sa, sb = json.loads(whole.stdout), json.loads(resumed.stdout)
    assert [h["round"] for h in sb["history"]] == [1, 2, 3]
    assert sb["per_client"] == sa["per_client"]  # personalised on the same global model: the same accuracies
    events = [json.loads(x)["event"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert events.count("round") == 3 and events[0] == "start" and "resume" in events and events[-1] == "summary"
