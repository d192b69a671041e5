"""The fedotl command line, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fedotl.simulations.cli import main


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_help_lists_subcommands():
    r = subprocess.run([sys.executable, "-m", "fedotl.simulations.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in ("demo", "data"):
        assert cmd in r.stdout
    r = subprocess.run([sys.executable, "-m", "fedotl.simulations.cli", "data", "info", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--dataset" in r.stdout and "--json" in r.stdout


@pytest.mark.parametrize("name", ["dsads", "pamap2", "opportunity", "generic"])
def test_synth_then_info_reads_back(tmp_path, capsys, name):
    rc, out, _ = run(capsys, "data", "synth", "--dataset", name, "--out", str(tmp_path), "--subjects", "2", "--json")
    assert rc == 0 and json.loads(out)["files"] > 0
    rc, out, _ = run(capsys, "data", "info", "--dataset", name, str(tmp_path), "--json")
    assert rc == 0
    info = json.loads(out)  # exactly one JSON object
    assert info["dataset"] == name
    assert len(info["subjects"]) == 2
    assert info["channels"] > 0 and info["rate_hz"] > 0 and info["n_samples"] > 0
    assert all(isinstance(a, str) for a in info["activities"]) and info["activities"]
    if name == "dsads":
        assert info["n_segments"] == 19 * 2 * 12


def test_info_table_and_errors(tmp_path, capsys):
    run(capsys, "data", "synth", "--dataset", "generic", "--out", str(tmp_path / "g"), "--subjects", "1")
    rc, out, _ = run(capsys, "data", "info", "--dataset", "generic", str(tmp_path / "g"))
    assert rc == 0 and "subjects    1: u01" in out and "walking" in out
    rc, out, err = run(capsys, "data", "info", "--dataset", "dsads", str(tmp_path / "missing"))
    assert rc == 2 and err.startswith("error: ") and "missing" in err and "Traceback" not in err and out == ""
    rc, _, err = run(capsys, "data", "info", "--dataset", "dsads", "--rate", "10", str(tmp_path / "g"))
    assert rc == 2 and "--rate applies to the generic format only" in err
    with pytest.raises(SystemExit) as e:
        main(["data", "info", "--dataset", "generic", "--rate", "-3", str(tmp_path)])
    assert e.value.code == 2
    assert "expected a positive number" in capsys.readouterr().err


def test_bad_file_gives_one_line_error_with_file_and_line(tmp_path, capsys):
    f = tmp_path / "x.csv"
    f.write_text("subject,label,v\ns,a,1\ns,a,zz\n")
    rc, _, err = run(capsys, "data", "info", "--dataset", "generic", "--rate", "5", str(f))
    assert rc == 2 and f"{f}, line 3: non-numeric value 'zz'" in err


def test_data_devices_writes_one_store_per_device(synth_dsads, tmp_path, capsys):
    rc = main(["data", "devices", "--dataset", "dsads", str(synth_dsads), "--out", str(tmp_path / "stores"), "--clients-by", "subject", "--server-subjects", "p4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["devices"] == ["p1", "p2", "p3"] and out["cloud"] == ["p4"]
    assert sorted(p.name for p in (tmp_path / "stores" / "devices").iterdir()) == ["00000", "00001", "00002"]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x.txt").write_text("x")
    rc = main(["data", "devices", "--dataset", "dsads", str(synth_dsads), "--out", str(tmp_path / "taken")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "not a device-store folder" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["data", "devices", "--dataset", "dsads", str(synth_dsads), "--out", str(tmp_path / "s"), "--clients-by", "device"])
