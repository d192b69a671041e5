"""``fedotl demo``: the whole system end to end on small synthetic data, and its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fedotl.simulations.cli import main
from fedotl.simulations.demo import STRATEGIES, TRANSFER, Demo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    env = {**os.environ, "FEDOTL_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "cache")}
    r = subprocess.run([sys.executable, "-m", "fedotl.simulations.cli", "demo", "--quick", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    return r, out


@pytest.mark.slow
def test_quick_demo_leaves_a_whole_report(quick_demo, self_contained):
    r, out = quick_demo
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("metrics.json", "report.md", "report.html"):
        assert (out / name).is_file()
    self_contained(out / "report.html", images=5)
    assert not list(out.rglob(".*.tmp"))
    # the console ends with the headline tables and the report's path
    tail = r.stdout.strip().splitlines()
    assert tail[-2].startswith("report: ") and tail[-2].endswith("report.html")
    assert "Strategies" in r.stdout and "New-user learners" in r.stdout


@pytest.mark.slow
def test_quick_demo_metrics_are_sane(quick_demo):
    _, out = quick_demo
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "complete" and m["seed"] == 0 and m["config"]["quick"] is True
    assert [s["name"] for s in m["steps"]] == ["load", "partition", "federate", "new users"]
    assert set(m["strategies"]) == set(STRATEGIES)
    for name, s in m["strategies"].items():
        accs = [s["mean_accuracy"], s["worst_accuracy"], *s["per_device"].values(), *(r["mean_accuracy"] for r in s["per_round"])]
        assert all(0.0 <= a <= 1.0 for a in accs), name
        assert s["worst_accuracy"] == min(s["per_device"].values()) and len(s["per_round"]) == 2
        assert len(s["per_device"]) == 10  # 2 federated subjects × 5 body units
    assert "global_mean_accuracy" in m["strategies"]["fedhealth"]
    assert set(m["online"]) == {*TRANSFER, "pa_scratch", "persistence"}
    for name, v in m["online"].items():
        assert 0.0 <= v["mistake_rate_mean"] <= 1.0 and v["devices"] == 5, name
        mistakes = np.asarray(v["curve"]["mistakes"])
        assert np.all(np.diff(mistakes) >= 0), f"{name}: a cumulative mistake count went down"
        assert np.all(mistakes <= np.asarray(v["curve"]["at"]))
    rows = m["devices"]["devices"]
    assert len(rows) == 5 * 3 and {r["learner"] for r in rows} == {*TRANSFER, "pa_scratch"}
    lat = m["devices"]["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"]
    # the held-out subject never federated: it is no device of any strategy
    assert m["dataset"]["held_out"] == "p3" and not any(d.startswith("p3/") for d in m["strategies"]["fedavg"]["per_device"])


def test_an_interrupted_demo_leaves_a_partial_report_and_exits_130(tmp_path, monkeypatch, capsys, self_contained):
    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Demo, "step_partition", interrupted)
    out = tmp_path / "run"
    assert main(["demo", "--quick", "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "interrupted" and m["interrupted_in"] == "partition"
    assert [s["name"] for s in m["steps"]] == ["load"] and m["dataset"]["subjects"] == 3
    assert "PARTIAL RUN: interrupted during step 'partition'" in (out / "report.md").read_text()
    self_contained(out / "report.html", images=0)
    assert not list(out.rglob(".*.tmp"))


def test_a_failed_step_leaves_a_report_marked_failed(tmp_path, monkeypatch):
    def broken(self):
        raise RuntimeError("the ServerApp wrote no summary")

    monkeypatch.setattr(Demo, "step_federate", broken)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):  # not a user's mistake: it propagates
        main(["demo", "--quick", "--out", str(out)])
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "failed" and m["interrupted_in"] == "federate" and [s["name"] for s in m["steps"]] == ["load", "partition"]
    assert m["notes"][-1] == "RuntimeError: the ServerApp wrote no summary"
    assert "PARTIAL RUN: failed during step 'federate'" in (out / "report.md").read_text()


def test_demo_refuses_bad_options_in_one_line(tmp_path, capsys):
    assert main(["demo", "--quick", "--holdout-subjects", "p9", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --holdout-subjects: unknown subject") and err.count("\n") == 1
    assert main(["demo", "--dataset", "dsads", str(tmp_path / "missing"), "--out", str(tmp_path / "b")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["demo", "--dataset", "nope", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    assert "--dataset nope: choose one of dsads" in capsys.readouterr().err
