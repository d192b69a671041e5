"""Refused before any work: an earlier run (without --force), a folder with other files, an untrainable single-class dataset."""

from __future__ import annotations

import pytest

from fedotl.simulations.cli import main
from fedotl.simulations.rundir import prepare_run_dir


def test_a_folder_holding_a_run_is_refused_unless_forced(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.png").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"is not empty \(2 entries.*--force"):
        prepare_run_dir(tmp_path, fresh=True)
    assert (tmp_path / "summary.json").exists()  # untouched
    assert prepare_run_dir(tmp_path, fresh=True, force=True) == tmp_path.resolve()
    assert list(tmp_path.iterdir()) == []
    assert prepare_run_dir(tmp_path, fresh=True) == tmp_path.resolve()  # empty is fine


def test_simulate_refuses_an_earlier_run_before_any_work(tmp_path, capsys, synth_dsads):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"event": "start"}\n')
    rc = main(["simulate", "--dataset", "dsads", str(synth_dsads), "--rounds", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "is not empty" in err and "--force" in err
    assert (out / "metrics.jsonl").read_text() == '{"event": "start"}\n'
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl"]


def test_a_single_class_dataset_is_refused_before_any_store_or_run_folder(tmp_path, capsys):
    f = tmp_path / "one_class.csv"
    f.write_text("subject,label,ax\n" + "".join(f"{'uv'[i % 2]},walk,{i % 7}\n" for i in range(400)))
    out = tmp_path / "run"
    rc = main(["simulate", "--dataset", "generic", str(f), "--rate", "10", "--rounds", "1", "--clients-by", "subject", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and f"{f}: the devices' windows hold 1 class(es) ['walk']; training needs at least two" in err, err
    assert not out.exists()


def test_data_synth_refuses_a_folder_with_files_unless_forced(tmp_path, capsys):
    keep = tmp_path / "mine.txt"
    keep.write_text("not synthetic")
    assert main(["data", "synth", "--dataset", "generic", "--out", str(tmp_path), "--subjects", "1"]) == 2
    assert "is not empty" in capsys.readouterr().err and keep.read_text() == "not synthetic"
    assert main(["data", "synth", "--dataset", "generic", "--out", str(tmp_path), "--subjects", "1", "--force"]) == 0
    assert not keep.exists() and any(tmp_path.iterdir())


def test_stream_refuses_a_single_class_target_naming_the_file(tmp_path, capsys):
    f = tmp_path / "one_class.csv"
    f.write_text("subject,label,ax\n" + "".join(f"{'uv'[i // 200]},walk,{i % 7}\n" for i in range(400)))
    rc = main(["stream", "--dataset", "generic", str(f), "--rate", "10", "--target-subject", "u"])
    err = capsys.readouterr().err
    assert rc == 2 and "windows hold 1 class(es); an online learner needs at least two" in err and str(f) in err, err


@pytest.mark.parametrize("command", [
    ["demo", "--quick"],
    ["replay", "--dataset", "dsads", "{data}", "--devices", "2", "--speed", "max"],
    ["newuser", "--dataset", "dsads", "{data}", "--federation", "{out}", "--subjects", "p1"],
])
def test_demo_replay_and_newuser_refuse_an_earlier_run_before_any_work(tmp_path, capsys, synth_dsads, command):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    argv = [a.format(data=synth_dsads, out=out) for a in command] + ["--out", str(out)]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and f"--out {out}: is not empty" in err and "--force" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"] and (out / "metrics.json").read_text() == "{}"


def test_replay_with_force_replaces_the_earlier_run(tmp_path, capsys, synth_dsads):
    out = tmp_path / "run"
    out.mkdir()
    (out / "stale.txt").write_text("an earlier run")
    rc = main(["replay", "--dataset", "dsads", str(synth_dsads), "--devices", "2", "--speed", "max", "--out", str(out), "--force"])
    assert rc == 0, capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    assert "stale.txt" not in names and {"replay.json", "metrics.json"} <= names
