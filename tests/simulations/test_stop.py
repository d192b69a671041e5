"""Stopping ``fedotl simulate`` under Ray: Ctrl-C, SIGTERM and SIGKILL of the harness.

Each test starts a real simulation in a subprocess, waits for its first round,
signals the harness, and checks the exit status, the time it took, that the
simulation's whole process group (Ray's driver and every Ray process) is gone,
and what the run directory says.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedotl.simulations.federated import GROUP_FILE, RAY_TMP_PREFIX, _group_alive, sweep_leftovers

ROOT = Path(__file__).resolve().parents[2]
# SIGINT is ignored in a background child of a non-interactive shell; a test restores it.
RESTORE_SIGINT = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from fedotl.simulations.readers import dsads

    out = tmp_path_factory.mktemp("stop_dsads")
    dsads.write_synthetic(out, n_subjects=2, seed=3, n_segments=4)
    return out


def _start(data: Path, out: Path) -> subprocess.Popen:
    argv = [sys.executable, "-c", RESTORE_SIGINT, "-m", "fedotl.simulations.cli", "simulate", "--dataset", "dsads", str(data),
            "--strategy", "fedavg", "--rounds", "200", "--local-epochs", "1", "--out", str(out)]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_round(proc: subprocess.Popen, out: Path, timeout: float = 240.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.stderr.read()[-2000:]}")
        metrics = out / "metrics.jsonl"
        if metrics.exists() and '"event": "round"' in metrics.read_text():
            return
        time.sleep(0.2)
    pytest.fail("no round within the timeout")


def _group_of(harness_pid: int) -> tuple[Path, int]:
    for folder in Path("/tmp").glob(f"{RAY_TMP_PREFIX}*"):
        try:
            owner, pgid = (int(v) for v in (folder / GROUP_FILE).read_text().split())
        except (OSError, ValueError):
            continue
        if owner == harness_pid:
            return folder, pgid
    pytest.fail(f"no {RAY_TMP_PREFIX}* folder names harness {harness_pid}")


def _gone_within(pgid: int, seconds: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if not _group_alive(pgid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("sig, status, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_first_signal_stops_the_run_cleanly(data, tmp_path, sig, status, word):
    out = tmp_path / "run"
    proc = _start(data, out)
    _wait_for_round(proc, out)
    folder, pgid = _group_of(proc.pid)
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    seconds = time.monotonic() - t0
    assert proc.returncode == status, err[-2000:]
    assert seconds < 10, f"took {seconds:.1f} s to stop"
    assert "Traceback" not in err and "logging.cc" not in err, err[-2000:]
    assert err.strip().splitlines()[-1] == word
    assert _gone_within(pgid, 5), "a Ray process outlived the run"
    assert not folder.exists(), "Ray's temporary folder was left behind"
    last = json.loads((out / "metrics.jsonl").read_text().strip().splitlines()[-1])
    assert last == {"event": "interrupted", "signal": signal.Signals(sig).name}
    assert not (out / "summary.json").exists()


@pytest.mark.slow
def test_sigkill_of_the_harness_leaves_nothing_running_and_the_next_run_sweeps_its_folder(data, tmp_path):
    out = tmp_path / "run"
    proc = _start(data, out)
    _wait_for_round(proc, out)
    folder, pgid = _group_of(proc.pid)
    proc.kill()
    proc.communicate(timeout=30)
    assert _gone_within(pgid, 10), "Ray's processes outlived a SIGKILLed harness"
    assert folder.exists()  # nobody was left to remove it ...
    assert sweep_leftovers() >= 1  # ... so the next run does
    assert not folder.exists()
