"""The report: metrics.json pieces, plots, report.md and a self-contained report.html.

Fast tests build metrics by hand or from a central run (in process); the federated ones reuse
runs of the other modules' fixtures only through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedotl.online.evaluation import mistake_trace
from fedotl.simulations.cli import main
from fedotl.simulations.report import write_run_report
from fedotl.simulations.report import metrics as M


def _trace(wrong) -> dict:
    return mistake_trace(np.cumsum(wrong))


def hand_metrics() -> dict:
    """A complete demo-shaped metrics dict with known numbers."""
    m = M.new_metrics("demo", config={"rounds": 2}, seed=3)
    m["dataset"] = {"name": "toy", "subjects": 3}
    summary = {
        "mean_accuracy": 0.75, "worst_accuracy": 0.5, "worst_client": "a", "mean_macro_f1": 0.7, "rounds": 2,
        "per_client": {"a": 0.5, "b": 1.0}, "per_client_macro_f1": {"a": 0.4, "b": 1.0},
        "history": [{"round": 1, "mean_accuracy": 0.6, "worst_accuracy": 0.4, "mean_macro_f1": 0.5},
                    {"round": 2, "mean_accuracy": 0.75, "worst_accuracy": 0.5, "mean_macro_f1": 0.7}],
        "confusion": {"labels": ["sit", "walk"], "matrix": [[3, 1], [0, 4]]},
    }
    m["strategies"] = {"fedavg": M.strategy_piece(summary), "local": M.strategy_piece({**summary, "mean_accuracy": 0.6, "confusion": None})}
    rng = np.random.default_rng(0)
    m["online"] = {
        "pa_scratch": M.learner_piece({"d1": {"mistake_rate": 0.2, "trace": _trace(rng.random(200) < 0.2)},
                                       "d2": {"mistake_rate": 0.3, "trace": _trace(rng.random(150) < 0.3)}}),
        "persistence": M.learner_piece({"d1": {"mistake_rate": 0.05, "trace": _trace(rng.random(200) < 0.05)}}),
    }
    m["devices"] = M.devices_piece([{"device": "d1", "learner": "pa_scratch", "windows_predicted": 200, "accuracy": 0.8}],
                                   {"pa_scratch": rng.lognormal(0.5, 0.3, 500)}, realtime_factor=50.0)
    m["steps"] = [{"name": "load", "seconds": 1.0}]
    return M.finish(m)


def test_pieces_hold_the_numbers_they_were_given():
    m = hand_metrics()
    fedavg = m["strategies"]["fedavg"]
    assert (fedavg["mean_accuracy"], fedavg["worst_accuracy"], fedavg["worst_device"], fedavg["macro_f1"]) == (0.75, 0.5, "a", 0.7)
    assert [r["round"] for r in fedavg["per_round"]] == [1, 2] and fedavg["per_round"][0]["mean_accuracy"] == 0.6
    assert M.best_strategy(m["strategies"]) == "fedavg"
    pa = m["online"]["pa_scratch"]
    assert pa["mistake_rate_mean"] == pytest.approx(0.25) and pa["devices"] == 2
    # the mean curve stops where the shorter device's stream does, and never decreases
    assert pa["curve"]["windows"] == 150 and max(pa["curve"]["at"]) <= 150
    assert np.all(np.diff(pa["curve"]["mistakes"]) >= 0)
    assert set(pa["mistakes_at"]) == {"10", "50", "100"}
    hist = m["devices"]["latency_hist"]
    assert sum(hist["groups"]["pa_scratch"]["counts"]) == 500 and len(hist["edges"]) == 41


def test_learner_piece_averages_the_devices_mistakes_by_hand():
    a = {"mistake_rate": 0.5, "trace": _trace([1, 0, 1, 0])}  # cumulative 1, 1, 2, 2
    b = {"mistake_rate": 0.0, "trace": _trace([0, 0, 0])}
    piece = M.learner_piece({"a": a, "b": b})
    assert piece["curve"]["at"] == [1, 2, 3] and piece["curve"]["mistakes"] == [0.5, 0.5, 1.0]
    assert piece["mistake_rate_mean"] == 0.25 and piece["mistakes_at"] == {}


def test_report_files_are_whole_and_the_html_is_self_contained(tmp_path, self_contained):
    paths = write_run_report(tmp_path, hand_metrics())
    for name in ("metrics.json", "report.md", "report.html"):
        assert (tmp_path / name).is_file()
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert pngs == ["accuracy_per_device.png", "accuracy_per_round.png", "confusion_matrix.png", "latency.png", "mistake_rate_curves.png"]
    assert all((tmp_path / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    self_contained(paths["html"], images=5)
    assert not list(tmp_path.rglob("*.tmp"))
    md = (tmp_path / "report.md").read_text()
    assert "| fedavg (best) | 0.750 | 0.500 (a) | 0.700 | 2 |" in md
    assert "PARTIAL" not in md and "plots/latency.png" in md
    html = (tmp_path / "report.html").read_text()
    assert "<td>pa_scratch</td>" in html and "0.250" in html


def test_an_interrupted_run_is_marked_partial(tmp_path):
    m = hand_metrics()
    M.finish(m, "interrupted", "federate")
    write_run_report(tmp_path, m)
    md = (tmp_path / "report.md").read_text()
    assert "PARTIAL RUN: interrupted during step 'federate'" in md
    assert "PARTIAL RUN" in (tmp_path / "report.html").read_text()
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "interrupted"


def test_a_simulation_without_a_summary_is_reported_as_partial(tmp_path):
    rounds = [{"event": "start"}, {"event": "round", "round": 1, "mean_accuracy": 0.4, "worst_accuracy": 0.2, "worst_client": "x",
                                   "mean_macro_f1": 0.3, "per_client": {"x": 0.2, "y": 0.6}}]
    # the last line was cut off when the run was killed
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rounds) + '{"event": "round", "rou')
    (tmp_path / "run_config.json").write_text(json.dumps({"strategy": "fedavg", "seed": 1}))
    assert main(["report", str(tmp_path)]) == 0
    m = M.load_metrics(tmp_path)
    assert m["status"] == "interrupted" and m["strategies"]["fedavg"]["per_device"] == {"x": 0.2, "y": 0.6}
    assert m["notes"][-1] == "metrics.jsonl: 1 unreadable line(s) skipped"
    assert "PARTIAL RUN" in (tmp_path / "report.md").read_text()


def test_report_of_a_folder_with_nothing_gives_one_line_and_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing to report" in err and err.count("\n") == 1
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "metrics.json").write_text("{not json")
    assert main(["report", str(tmp_path)]) == 2
    assert "metrics.json: unreadable" in capsys.readouterr().err


# ------------------------------------------------------------ from real runs of the harness
@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from fedotl.simulations.readers import dsads

    out = tmp_path_factory.mktemp("report_dsads")
    dsads.write_synthetic(out, n_subjects=2, seed=3, n_segments=4)  # 10 devices, 19 activities
    return out


def test_fedotl_report_rebuilds_a_simulate_run(data, tmp_path, capsys, self_contained):
    out = tmp_path / "run"
    rc = main(["simulate", "--dataset", "dsads", str(data), "--strategy", "central", "--rounds", "2",
               "--train-fraction", "0.5", "--out", str(out), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    metrics = json.loads((out / "metrics.json").read_text())
    piece = metrics["strategies"]["central"]
    assert metrics["kind"] == "simulate" and metrics["status"] == "complete"
    assert piece["mean_accuracy"] == summary["mean_accuracy"] and len(piece["per_round"]) == 2
    assert all(0.0 <= a <= 1.0 for a in piece["per_device"].values())
    cm = np.asarray(piece["confusion"]["matrix"])
    assert cm.shape == (19, 19) and piece["confusion"]["labels"][0] == "sitting"
    # every device tests on its later 2 windows per activity: the summed matrix counts all 380, and its
    # diagonal (the correct ones) gives back the mean of the devices' accuracies
    assert cm.sum() == 10 * 19 * 2
    assert cm.trace() / cm.sum() == pytest.approx(np.mean(list(piece["per_device"].values())))
    for f in ("report.md", "report.html"):
        (out / f).unlink()
    assert main(["report", str(out)]) == 0
    self_contained(out / "report.html", images=3)  # rounds, devices, confusion: no learners, no latency


def test_replay_out_writes_the_devices_and_online_pieces(data, tmp_path, capsys, self_contained):
    out = tmp_path / "replay"
    rc = main(["replay", "--dataset", "dsads", str(data), "--devices", "3", "--duration", "120", "--out", str(out)])
    assert rc == 0
    capsys.readouterr()
    text = (out / "metrics.json").read_text()
    assert "Infinity" not in text and "NaN" not in text  # strict JSON: --speed max is written as a string
    m = json.loads(text)
    assert m["kind"] == "replay" and len(m["devices"]["devices"]) == 3 and m["config"]["speed"] == "inf"
    assert set(m["online"]) == {"pa_scratch", "persistence"}
    full = json.loads((out / "replay.json").read_text())
    assert m["online"]["pa_scratch"]["mistake_rate_mean"] == pytest.approx(1 - np.mean([d["accuracy"] for d in full["per_device"]]))
    assert sum(m["devices"]["latency_hist"]["groups"]["pa_scratch"]["counts"]) == full["windows_predicted"]
    self_contained(out / "report.html", images=2)  # mistake curves and latency


@pytest.mark.parametrize("command", ["demo", "simulate", "replay"])
def test_a_bad_out_gets_one_line_and_exit_2(command, data, tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    args = {"demo": ["demo", "--quick"], "simulate": ["simulate", "--dataset", "dsads", str(data), "--strategy", "central"],
            "replay": ["replay", "--dataset", "dsads", str(data), "--devices", "1"]}[command]
    # root writes anywhere it has permission bits for: a read-only file system then
    unwritable = Path("/sys/fedotl-test-run") if _root() else locked / "run"
    try:
        for out, says in ((a_file, "is a file, not a folder"), (unwritable, "cannot write there")):
            assert main([*args, "--out", str(out)]) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: --out ") and says in err and err.count("\n") == 1
    finally:
        locked.chmod(0o700)


def _root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0


def test_a_run_refused_before_any_output_leaves_no_folder(data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default run directory is runs/<kind>-<time> here
    assert main(["simulate", "--dataset", "dsads", str(tmp_path / "missing"), "--strategy", "fedavg"]) == 2
    assert main(["demo", "--quick", "--holdout-subjects", "p9"]) == 2
    assert main(["replay", "--dataset", "dsads", str(data), "--devices", "1", "--positions", "XX", "--out", "made/here"]) == 2
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
