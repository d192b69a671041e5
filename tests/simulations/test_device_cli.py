"""``fedotl device`` and ``fedotl replay`` as a user runs them: stdin, a growing file, MQTT, replays."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fedotl.client.store import DeviceStore
from fedotl.simulations.cli import main

FEDOTL = [sys.executable, "-m", "fedotl.simulations.cli"]


def csv_rows(n=25 * 60, rate=25.0, seed=0):
    """A 3-channel recording whose activity (walk/sit, 20 s bouts) shows in its level."""
    rng = np.random.default_rng(seed)
    y = np.array(["walk", "sit"])[(np.arange(n) // int(rate * 20)) % 2]
    X = rng.normal(size=(n, 3)) + (y == "walk")[:, None] * 1.5
    return [f"{i / rate:.3f},{X[i, 0]:.4f},{X[i, 1]:.4f},{X[i, 2]:.4f},{y[i]}" for i in range(n)]


HEADER = "timestamp,acc_x,acc_y,acc_z,label"


def run(args, stdin=None, timeout=120):
    return subprocess.run(FEDOTL + args, input=stdin, capture_output=True, text=True, timeout=timeout)


def lines(out: str) -> list[dict]:
    return [json.loads(x) for x in out.splitlines() if x.strip()]


# ---------------------------------------------------------------------- standard input and files
def test_device_on_standard_input_prints_a_line_per_window_and_writes_its_metrics(tmp_path):
    rows = csv_rows()
    r = run(["device", "--input", "-", "--rate-hz", "25", "--out", str(tmp_path / "m.json")], "\n".join([HEADER, *rows]) + "\n")
    assert r.returncode == 0, r.stderr
    ev = lines(r.stdout)
    windows = [e for e in ev if e["kind"] == "window"]
    labels = [e for e in ev if e["kind"] == "label"]
    assert len(windows) == 56 and len(labels) == 56  # 60 s, 5 s windows every 1 s
    assert windows[0]["t"] == pytest.approx(4.96) and windows[1]["t"] == pytest.approx(5.96)
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["windows_predicted"] == 56 and m["labels_used"] == 56 and m["interrupted"] is False
    assert m["accuracy"] == pytest.approx(np.mean([e["correct"] for e in labels]))
    assert m["accuracy"] > 0.8 and m["persistence_accuracy"] is not None and m["latency_ms"]["p99"] > 0


@pytest.mark.parametrize(
    "bad_row, expected",
    [
        ("1.000,0.1,abc,0.3,walk", "line 27, field 'acc_y': 'abc' is not a number"),
        ("0.500,0.1,0.2,0.3,walk", "line 27, field 'timestamp': timestamps go backwards"),
        ("1.000,0.1,0.2,walk", "line 27"),
    ],
)
def test_a_malformed_row_is_one_error_line_naming_row_and_field_and_nothing_is_written(tmp_path, bad_row, expected):
    rows = csv_rows()[:25] + [bad_row] + csv_rows()[26:50]
    out = tmp_path / "m.json"
    r = run(["device", "--input", "-", "--rate-hz", "25", "--out", str(out)], "\n".join([HEADER, *rows]) + "\n")
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: <stdin>, ") and expected in err[0], r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_a_missing_timestamp_column_and_a_missing_rate_are_errors(tmp_path):
    r = run(["device", "--input", "-", "--rate-hz", "25"], "time,acc_x\n0,1\n")
    assert r.returncode == 2 and "field 'timestamp'" in r.stderr
    (tmp_path / "s.csv").write_text(HEADER + "\n")
    r = run(["device", "--input", str(tmp_path / "s.csv")])
    assert r.returncode == 2 and "--rate-hz" in r.stderr


def test_tail_f_into_standard_input_is_read_as_rows_arrive(tmp_path):
    path = tmp_path / "sensor.csv"
    rows = csv_rows(25 * 30)
    path.write_text(HEADER + "\n" + "\n".join(rows[:25 * 8]) + "\n")
    tail = subprocess.Popen(["tail", "-n", "+1", "-f", str(path)], stdout=subprocess.PIPE)
    dev = subprocess.Popen(FEDOTL + ["device", "--input", "-", "--rate-hz", "25", "--out", str(tmp_path / "m.json")],
                           stdin=tail.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tail.stdout.close()
    try:
        first = json.loads(dev.stdout.readline())  # while the file is still growing
        assert first["kind"] == "window" and first["t"] == pytest.approx(4.96)
        with path.open("a") as f:
            f.write("\n".join(rows[25 * 8:]) + "\n")
        seen = [first]
        while len([e for e in seen if e["kind"] == "window"]) < 26:
            seen.append(json.loads(dev.stdout.readline()))
    finally:
        tail.terminate()  # the end of the pipe ends the device
        tail.wait(10)
    out, err = dev.communicate(timeout=60)
    assert dev.returncode == 0, err
    assert json.loads((tmp_path / "m.json").read_text())["windows_predicted"] == 26


def test_follow_a_growing_file_until_it_goes_idle(tmp_path):
    path = tmp_path / "sensor.csv"
    rows = csv_rows(25 * 20)
    path.write_text(HEADER + "\n")
    dev = subprocess.Popen(FEDOTL + ["device", "--input", str(path), "--follow", "--idle-timeout", "1.5", "--rate-hz", "25"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with path.open("a") as f:
        for a in range(0, len(rows), 100):
            f.write("\n".join(rows[a:a + 100]) + "\n")
            f.flush()
            time.sleep(0.1)
    out, err = dev.communicate(timeout=60)
    assert dev.returncode == 0, err
    assert sum(e["kind"] == "window" for e in lines(out)) == 16


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_cleanly_and_writes_the_metrics(tmp_path, interruptible, sig):
    out = tmp_path / "m.json"
    dev = subprocess.Popen(FEDOTL + ["device", "--input", "-", "--rate-hz", "25", "--out", str(out)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **interruptible)
    dev.stdin.write("\n".join([HEADER, *csv_rows(25 * 10)]) + "\n")
    dev.stdin.flush()
    seen = [json.loads(dev.stdout.readline()) for _ in range(12)]  # 6 windows and their labels
    assert [e["kind"] for e in seen].count("window") == 6  # it has read everything, waits for more
    dev.send_signal(sig)
    _, err = dev.communicate(timeout=30)
    assert dev.returncode == 130 and "Traceback" not in err
    m = json.loads(out.read_text())
    assert m["interrupted"] is True and m["windows_predicted"] == 6


# ---------------------------------------------------------------------- MQTT
def test_device_on_an_mqtt_topic_of_a_real_broker(broker, publish, tmp_path):
    out = tmp_path / "m.json"
    dev = subprocess.Popen(FEDOTL + ["device", "--input", f"{broker}/wearable/imu", "--channels", "acc_x,acc_y,acc_z",
                                     "--rate-hz", "25", "--idle-timeout", "3", "--out", str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # messages published before the subscription are lost (QoS 1 keeps none for a new subscriber)
    assert dev.stderr.readline().strip() == f"subscribed to {broker}/wearable/imu"
    rows = csv_rows(25 * 12)
    for a in range(0, len(rows), 25):  # a gateway's batches of one second
        batch = []
        for r in rows[a:a + 25]:
            t, x, y, z, lab = r.split(",")
            batch.append({"timestamp": float(t), "acc_x": float(x), "acc_y": float(y), "acc_z": float(z), "label": lab})
        publish("wearable/imu", batch)
    publish("wearable/imu", "not json")
    stdout, err = dev.communicate(timeout=60)
    assert dev.returncode == 0, err
    ev = lines(stdout)
    assert sum(e["kind"] == "window" for e in ev) == 8 and sum(e["kind"] == "label" for e in ev) == 8
    m = json.loads(out.read_text())
    assert m["input_stats"] == {"messages": 13, "samples": 300, "rejected": 1}


# ---------------------------------------------------------------------- replay
def test_replay_with_faults_and_an_uncertainty_budget(synth_dsads, tmp_path):
    out = tmp_path / "m.json"
    code = main(["device", "--replay", "dsads", str(synth_dsads), "--subject", "p1", "--position", "RA", "--speed", "max",
                 "--labels", "budget", "--budget", "0.2", "--query", "uncertainty", "--drop", "0.05",
                 "--nan-bursts", "3", "--nan-burst-s", "1.0", "--quiet", "--out", str(out)])
    assert code == 0
    m = json.loads(out.read_text())
    f = m["faults"]
    assert f["samples_in"] == 19 * 6 * 125 and f["dropped"] > 0 and f["nan_bursts"] > 0
    assert m["samples"]["received"] == f["samples_out"]
    assert m["windows_skipped"] > 0 and m["windows_interpolated"] > 0
    assert m["labels_known"] == m["windows_predicted"]
    assert 0.15 * m["windows_predicted"] < m["labels_used"] <= 0.2 * m["windows_predicted"] + 1


def test_replay_at_real_speed_takes_stream_time_on_the_wall(synth_dsads, tmp_path):
    t0 = time.monotonic()
    code = main(["device", "--replay", "dsads", str(synth_dsads), "--subject", "p2", "--position", "LA",
                 "--speed", "10", "--duration", "10", "--window", "2", "--quiet"])
    took = time.monotonic() - t0
    assert code == 0 and 0.9 <= took < 5.0  # 10 s of stream at 10×, plus reading the data


def test_replay_from_source_subjects_with_homotlms_and_its_store(synth_dsads, tmp_path):
    out, store = tmp_path / "m.json", tmp_path / "store"
    code = main(["device", "--replay", "dsads", str(synth_dsads), "--subject", "p1", "--position", "LA",
                 "--source-position", "RA", "--learner", "homotlms", "--speed", "max", "--quiet",
                 "--labels", "delayed", "--delay", "3", "--store", str(store), "--out", str(out)])
    assert code == 0
    m = json.loads(out.read_text())
    assert m["learner"] == "homotlms" and m["sources"] == ["p1", "p2", "p3", "p4"]  # all subjects at RA
    snap = DeviceStore(store).snapshot()
    assert len(snap.y) == m["labels_used"] > 0 and snap.X.shape[1:] == (125, 9)


def test_sources_on_a_csv_need_their_channels(synth_dsads, tmp_path, capsys):
    path = tmp_path / "s.csv"
    path.write_text(HEADER + "\n" + "\n".join(csv_rows(100)) + "\n")
    code = main(["device", "--input", str(path), "--rate-hz", "25", "--learner", "paio",
                 "--source-dataset", "dsads", "--source-path", str(synth_dsads), "--source-position", "RA"])
    assert code == 2 and "the sources have 9 channels" in capsys.readouterr().err


def test_fedotl_replay_many_devices_batched_and_one_learner_each(synth_dsads, capsys):
    args = ["replay", "--dataset", "dsads", str(synth_dsads), "--devices", "25", "--duration", "90", "--json"]
    assert main(args) == 0
    batched = json.loads(capsys.readouterr().out)
    assert main(args + ["--per-device-learners"]) == 0
    single = json.loads(capsys.readouterr().out)
    names = [d["device"] for d in batched["per_device"]]
    assert len(names) == 25 and names[20] == "p1@T#2"  # 4 subjects × 5 positions, then cycled
    assert batched["windows_predicted"] == 25 * 86 and batched["labels_used"] == batched["windows_predicted"]
    for k in ("accuracy", "persistence_accuracy", "labels_used"):
        assert batched[k] == single[k]
    assert [d["accuracy"] for d in batched["per_device"]] == [d["accuracy"] for d in single["per_device"]]
    assert batched["latency_ms"]["p99"] > 0 and batched["realtime_factor"] > 1


def test_fedotl_replay_on_real_dsads_reports_persistence_beside_accuracy(dsads_zip, capsys):
    assert main(["replay", "--dataset", "dsads", str(dsads_zip), "--devices", "40", "--duration", "120", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["devices"] == 40 and r["windows_predicted"] == 40 * 116
    assert 0.5 < r["accuracy"] <= 1 and 0.9 < r["persistence_accuracy"] <= 1  # one activity bout per 5 min


def test_a_device_from_scratch_keeps_a_store_its_clientapp_can_train_on(tmp_path):
    from fedotl.client.data import load_device

    store = tmp_path / "store"
    rows = csv_rows(25 * 120)
    r = run(["device", "--input", "-", "--rate-hz", "25", "--quiet", "--store", str(store), "--classes", "walk,sit",
             "--labels", "budget", "--budget", "0.5"], "\n".join([HEADER, *rows]) + "\n")
    assert r.returncode == 0, r.stderr
    snap = DeviceStore(store).snapshot()
    assert snap.classes == (0, 1) and set(snap.y.tolist()) == {0, 1} and 30 < len(snap.y) < 90
    data = load_device(store, 0.5)
    assert len(data.y_train) > 0 and len(data.y_test) > 0
    # reopened without --classes: the vocabulary comes from the store, and the store grows
    r = run(["device", "--input", "-", "--rate-hz", "25", "--quiet", "--store", str(store)], "\n".join([HEADER, *rows]) + "\n")
    assert r.returncode == 0, r.stderr
    assert len(DeviceStore(store).snapshot().y) > len(snap.y) and DeviceStore(store).meta()["labels"] == ["walk", "sit"]
    r = run(["device", "--input", "-", "--rate-hz", "25", "--store", str(store), "--classes", "run,walk"], HEADER + "\n")
    assert r.returncode == 2 and "the store's labels are walk, sit" in r.stderr
    r = run(["device", "--input", "-", "--rate-hz", "25", "--store", str(tmp_path / "new")], HEADER + "\n")
    assert r.returncode == 2 and "--classes" in r.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--delay", "3"], "--delay applies to --labels delayed"),
        (["--labels", "budget"], "--labels budget needs --budget"),
        (["--labels", "delayed", "--delay", "3", "--budget", "0.5"], "--budget applies to --labels budget"),
        (["--window", "0.01"], "shorter than one sample"),
        (["--subject", "p1"], "apply to --replay"),
    ],
)
def test_option_mistakes_are_one_line_and_exit_2(extra, message, tmp_path, capsys):
    path = tmp_path / "s.csv"
    path.write_text(HEADER + "\n" + "\n".join(csv_rows(50)) + "\n")
    assert main(["device", "--input", str(path), "--rate-hz", "25", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_speed_takes_a_factor_or_max(capsys):
    with pytest.raises(SystemExit) as info:
        main(["replay", "--dataset", "dsads", "x", "--devices", "2", "--speed", "0"])
    assert info.value.code == 2 and "positive number or 'max'" in capsys.readouterr().err


def test_a_replayed_device_computes_the_offline_features_of_the_same_windows(synth_dsads):
    from fedotl.client.features import ONLINE_STATS, window_features
    from fedotl.client.stream_windows import WindowBuffers, WindowSpec
    from fedotl.simulations.readers import load_dataset
    from fedotl.simulations.replay import subject_stream
    from fedotl.simulations.windows import make_windows

    ds = load_dataset("dsads", synth_dsads)
    view = ds.select_position("RA").select_subjects(["p2"])
    offline = make_windows(view, 5.0)  # per recording, no overlap: 6 windows per activity bout
    order = np.lexsort((offline.start, offline.recording))
    src = subject_stream(ds, "p2", "RA")
    w = WindowBuffers(1, len(src.channels), WindowSpec(src.rate_hz, 5.0, 5.0)).push(np.zeros(len(src), int), src.t, src.X)
    assert w.ok.all() and len(w) == len(offline) == 19 * 6
    assert np.allclose(window_features(w.X, (), ONLINE_STATS), offline.features(ONLINE_STATS, magnitude=False)[order])
    names = np.array([ds.activities[c] for c in offline.y[order]], dtype=object)
    assert [src.labels[int(i * 125)] for i in range(len(w))] == names.tolist()
