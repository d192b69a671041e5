"""deploy/: certificates, and a real TLS deployment (SuperLink, SuperNodes, `flwr run`) on this machine."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fedotl.deploy import local_deployment as ld

ROOT = Path(__file__).resolve().parents[2]
CERTS_SH = ROOT / "deploy" / "certs.sh"
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not on PATH: deploy/certs.sh cannot make certificates")


@pytest.fixture(scope="module")
def dsads5(tmp_path_factory) -> Path:
    """Synthetic DSADS with one subject: 5 devices (one per body unit)."""
    from fedotl.simulations.readers.dsads import write_synthetic

    out = tmp_path_factory.mktemp("dsads5")
    write_synthetic(out, n_subjects=1, seed=3, n_segments=4)
    return out


@pytest.fixture(scope="module")
def dsads3(tmp_path_factory) -> Path:
    """Synthetic DSADS with three subjects: 3 devices with ``clients-by = subject`` (the runs' data)."""
    from fedotl.simulations.readers.dsads import write_synthetic

    out = tmp_path_factory.mktemp("dsads3")
    write_synthetic(out, n_subjects=3, seed=3, n_segments=4)
    return out


ONE_DEVICE_PER_SUBJECT = ("--set", "clients-by=subject")
NODES = 3


def make_certs(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CERTS_SH), *args, str(out)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    done = make_certs(out)
    assert done.returncode == 0, done.stderr
    return out


def free_block(n: int) -> int:
    """A base port with ``n`` free ports from it, clear of Flower's defaults and of the script's."""
    base = ld.free_port_block(n, 39800, 39990)
    if base is None:
        pytest.skip("no block of free ports in 39800-39990")
    return base


def leftover_processes(marks: list[str], wait: float = 10.0) -> list[str]:
    """Live (non-zombie) processes whose command line names one of ``marks``, after up to ``wait`` s."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(m in cmd for m in marks):
                found.append(f"{entry.name} {cmd}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def launcher(certs: Path, tmp: Path, *args: str) -> tuple[list[str], list[str]]:
    """The launcher's command line on a free block of ports, and the marks of the processes it starts.

    The marks are the certificates' and the test's folders, then the SuperLink's address, then SuperNode i's at [3 + i].
    """
    base = free_block(NODES + 2)
    cmd = [
        sys.executable, "-m", "fedotl.deploy.local_deployment", "--nodes", str(NODES), "--certs", str(certs),
        "--flwr-home", str(tmp / "flwr-home"), "--port", str(base), "--node-port", str(base + 1), "--connect-timeout", "90", "--json", *args,
    ]  # fmt: skip
    return cmd, [str(certs), str(tmp)] + [f"127.0.0.1:{p}" for p in range(base, base + NODES + 1)]


def deploy(data: Path, certs: Path, tmp: Path, *extra: str, timeout: float = 600) -> tuple[subprocess.CompletedProcess, list[str]]:
    cmd, marks = launcher(certs, tmp, "--dataset", "dsads", str(data), *ONE_DEVICE_PER_SUBJECT, "--out", str(tmp / "run"), *extra)
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout), marks


# ------------------------------------------------------------ certs.sh
@needs_openssl
def test_certs_sh_makes_a_ca_and_a_server_cert_with_sans(certs):
    assert {p.name for p in certs.iterdir()} == {"ca.crt", "ca.key", "server.crt", "server.key"}
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((certs / key).stat().st_mode) == 0o600
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(certs / "ca.crt"), str(certs / "server.crt")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    san = subprocess.run(["openssl", "x509", "-in", str(certs / "server.crt"), "-noout", "-ext", "subjectAltName"], capture_output=True, text=True).stdout
    assert "DNS:localhost" in san and "IP Address:127.0.0.1" in san


@pytest.mark.parametrize("args", [["--bogus"], ["--days", "x"], ["--hosts"], ["--hosts", "a b;c"], ["one", "two"]])
def test_certs_sh_bad_arguments(tmp_path, args):
    done = subprocess.run(["bash", str(CERTS_SH), *args], capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "usage:" in done.stderr
    assert not (ROOT / "deploy" / "certs" / "one").exists()


def test_certs_folder_is_git_ignored():
    assert "deploy/certs/" in (ROOT / ".gitignore").read_text().splitlines()


# ------------------------------------------------------------ argument errors
@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "dsads", "DATA"], "required: --nodes"),
        (["--dataset", "dsads", "DATA", "--nodes", "0"], "--nodes: expected a positive integer"),
        (["--dataset", "dsads", "DATA", "--nodes", "3"], "--nodes 3 but the data gives 5 devices (p1/T, p1/RA, p1/LA, p1/RL, p1/LL)"),
        (["--dataset", "dsads", "DATA", "--nodes", "5", "--strategy", "central"], "invalid choice: 'central'"),
        (["--dataset", "dsads", "DATA", "--nodes", "5", "--set", "no-such-key=1"], "--set no-such-key: unknown run-config key"),
        (["--dataset", "dsads", "DATA", "--nodes", "5", "--set", "local-epochs=two"], "cannot read 'two' as int"),
        (["--dataset", "dsads", "DATA", "--nodes", "5", "--set", "out-dir=/x"], "use --out instead"),
        (["--dataset", "dsads", "DATA", "--nodes", "5", "--port", "70000"], "--port: expected a TCP port"),
        (["--dataset", "dsads", "DATA", "--nodes", "5", "--node-restarts", "-1"], "--node-restarts: expected a non-negative integer, got '-1'"),
        (["--dataset", "dsads", "DATA", "--nodes", "5"], "missing ca.crt, server.crt, server.key"),
        (["--dataset", "dsads", "MISSING", "--nodes", "5"], "no such file or folder"),
    ],
)
def test_argument_errors_are_one_line_and_exit_2(argv, message, dsads5, tmp_path, capsys):
    subst = {"DATA": str(dsads5), "MISSING": str(tmp_path / "missing")}
    # An explicit --certs folder that lacks certificates is an error (the default one would be made).
    argv = [subst.get(a, a) for a in argv] + ["--out", str(tmp_path / "run"), "--certs", str(tmp_path / "nocerts")]
    try:
        rc = ld.main(argv)
    except SystemExit as exc:  # argparse's own checks
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "run" / "logs").exists()  # nothing was started


def test_an_earlier_run_is_refused_unless_forced_and_resume_takes_the_runs_own_config(dsads5, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text("{}")
    assert ld.main(["--dataset", "dsads", str(dsads5), "--nodes", "5", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"--out {run}: is not empty" in err and "--force" in err and sorted(p.name for p in run.iterdir()) == ["summary.json"]
    assert ld.main(["--nodes", "5", "--resume", str(run)]) == 2
    assert "no run_config.json there" in capsys.readouterr().err
    (run / "run_config.json").write_text(json.dumps({"strategy": "fedavg"}))
    assert ld.main(["--nodes", "5", "--resume", str(run)]) == 2
    assert "no checkpoint.npz there" in capsys.readouterr().err
    assert ld.main(["--nodes", "5", "--resume", str(run), "--rounds", "4"]) == 2
    assert "--resume continues the run with its own config: drop --rounds" in capsys.readouterr().err
    assert ld.main(["--nodes", "5"]) == 2
    assert "needs --dataset D PATH, or --resume RUN_DIR" in capsys.readouterr().err


def test_flower_env_sets_flowers_settings_home_and_this_venv_first(tmp_path):
    env = ld.flower_env(tmp_path)
    assert {k: env[k] for k in ld.FLOWER_ENV} == ld.FLOWER_ENV and env["FLWR_HOME"] == str(tmp_path)
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


def test_run_config_file_overrides_only_what_differs(dsads5, tmp_path):
    args = ld.build_parser().parse_args(["--dataset", "dsads", str(dsads5), "--nodes", "5", "--rounds", "2", "--set", "local-epochs=1", "--secagg"])
    cfg, devices = ld.run_config_from_args(args, tmp_path / "run")
    text = ld.write_run_config(cfg, tmp_path / "rc.toml").read_text()
    import tomllib

    # Only app keys travel (Flower refuses others); the data reach each SuperNode as its own store.
    assert tomllib.loads(text) == {
        "data-dir": str(tmp_path / "run" / "stores"), "out-dir": str(tmp_path / "run"), "num-server-rounds": 2,
        "local-epochs": 1, "secagg": True, "min-available-nodes": 5,
    }  # fmt: skip
    assert devices.ids == ["p1/T", "p1/RA", "p1/LA", "p1/RL", "p1/LL"]
    assert all((devices.store(i) / "store.json").is_file() for i in range(5))
    home = ld.write_flwr_config(tmp_path / "home", 39999, tmp_path / "ca.crt")
    conn = tomllib.loads(home.read_text())["superlink"]
    assert conn["default"] == ld.FEDERATION
    assert conn[ld.FEDERATION] == {"address": "127.0.0.1:39999", "root-certificates": str(tmp_path / "ca.crt")}


# ------------------------------------------------------------ end to end
@pytest.mark.slow
@needs_openssl
def test_tls_deployment_end_to_end(dsads3, certs, tmp_path):
    """FedHealth on 3 SuperNodes with TLS and node auth; meanwhile p1's device runtime records into its store."""
    t0 = time.monotonic()
    cmd, marks = launcher(
        certs, tmp_path, "--dataset", "dsads", str(dsads3), *ONE_DEVICE_PER_SUBJECT, "--out", str(tmp_path / "run"),
        "--rounds", "2", "--run-timeout", "400",
        "--set", "local-epochs=1", "--set", "personalize-epochs=2", "--set", "train-fraction=0.5", "--set", "eval-every=2",
    )  # fmt: skip
    run = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = tmp_path / "run" / "stores" / "devices" / "00000"  # device p1's, which its SuperNode trains on
    while not (store / "windows" / "000000.npz").exists():
        assert run.poll() is None and time.monotonic() - t0 < 120, "the launcher wrote no store"
        time.sleep(0.1)
    # p1's device runtime, streaming its recording at 8x and appending its labelled windows to that store
    device = subprocess.Popen([sys.executable, "-m", "fedotl.simulations.cli", "device", "--replay", "dsads", str(dsads3), "--subject", "p1",
                               "--speed", "8", "--store", str(store), "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        out, err = run.communicate(timeout=600)
        _, device_err = device.communicate(timeout=120)
    finally:
        for p in (run, device):
            if p.poll() is None:
                p.kill()
    assert run.returncode == 0, err[-3000:]
    assert device.returncode == 0, device_err[-2000:]
    result = json.loads(out)
    assert result["status"] == "finished:completed"
    # Cross-check the outcome the script read with Flower's record of the run.
    assert result["summary"]["clients"] == NODES and result["summary"]["rounds"] == 2
    assert result["summary"]["strategy"] == "fedhealth" and result["summary"]["failures"] == []
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["clients"] == NODES and sorted(summary["per_client"]) == ["p1", "p2", "p3"]
    # the device appended while the rounds ran: the train rounds read the store as it grew
    history = summary["history"]
    appended = sorted(p.stat().st_mtime for p in (store / "windows").glob("*.npz"))[1:]
    started, ended = history[0]["t_end"] - history[0]["seconds"], history[-1]["t_end"]
    assert appended and any(started < t < ended for t in appended), (appended, started, ended)
    logs = tmp_path / "run" / "logs"
    assert "Uvicorn running on https://" in (logs / "superlink.log").read_text()
    assert f"started run {result['run_id']}" in (logs / "flwr-run.log").read_text()
    assert leftover_processes(marks) == []
    print(f"end to end: {time.monotonic() - t0:.0f} s, {result['seconds']}")


@pytest.mark.slow
@needs_openssl
def test_supernode_with_a_wrong_ca_is_reported_and_everything_stops(dsads3, certs, tmp_path):
    other = tmp_path / "other-ca"
    assert make_certs(other).returncode == 0
    done, marks = deploy(dsads3, certs, tmp_path, "--rounds", "1", "--node-ca", str(other / "ca.crt"), timeout=300)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: SuperNode ") and "CERTIFICATE_VERIFY_FAILED" in last, done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "run" / "logs" / "flwr-run.log").exists()  # no run was submitted
    assert leftover_processes(marks) == []


@pytest.mark.slow
@needs_openssl
def test_a_run_whose_superlink_is_killed_resumes_to_the_weights_of_an_uninterrupted_run(dsads3, certs, tmp_path):
    from fedotl.server.checkpoint import CHECKPOINT, load_checkpoint

    run = tmp_path / "run"
    setting = ["--strategy", "fedavg", "--rounds", "2", "--set", "local-epochs=1", "--set", "seed=5"]
    cmd, marks = launcher(certs, tmp_path, "--dataset", "dsads", str(dsads3), *ONE_DEVICE_PER_SUBJECT, "--out", str(run), *setting)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while not (run / CHECKPOINT).exists():
        assert proc.poll() is None and time.monotonic() - t0 < 500, "no checkpoint before the run ended"
        time.sleep(0.2)
    port = marks[2].rsplit(":", 1)[1]
    superlink = [line.split()[0] for line in leftover_processes(["flower-superlink"], wait=0) if f"--port {port}" in line]
    assert len(superlink) == 1
    os.kill(int(superlink[0]), 9)  # the server machine crashes after round 1
    _, err = proc.communicate(timeout=120)
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("error: the SuperLink was killed by SIGKILL during run"), err[-2000:]
    assert last.endswith(f"continue it with --resume {run}")
    assert leftover_processes(marks) == []  # its SuperExec and ServerApp too, though their parent died first
    assert load_checkpoint(run)[0] == 1 and not (run / "summary.json").exists()

    cmd, marks = launcher(certs, tmp_path, "--resume", str(run))
    resumed = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout)["summary"]
    assert [h["round"] for h in summary["history"]] == [1, 2]
    events = [json.loads(x)["event"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert events.count("round") == 2 and "resume" in events and events[-1] == "summary"
    assert leftover_processes(marks) == []

    # The Simulation Engine computes what the Deployment Engine does: the same seeds, the same sorted replies.
    whole = tmp_path / "simulated"
    sim = [sys.executable, "-m", "fedotl.simulations.cli", "simulate", "--dataset", "dsads", str(dsads3), "--clients-by", "subject",
           *setting[:4], "--local-epochs", "1", "--seed", "5", "--out", str(whole)]  # fmt: skip
    done = subprocess.run(sim, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    a, b = np.load(whole / "global_model.npz"), np.load(run / "global_model.npz")
    names = [k for k in a.files if k != "__card__"]  # the model card names its run directory
    assert names == [k for k in b.files if k != "__card__"] and all(np.array_equal(a[k], b[k]) for k in names)


# ------------------------------------------------------------ node authentication
def test_node_keys_are_p384_openssh_pairs_made_once_and_private(tmp_path, capsys):
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

    from fedotl.deploy.node_keys import key_pair, main

    private, public = key_pair(tmp_path / "keys", "node-0")
    key = load_ssh_private_key(private.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
    assert load_ssh_public_key(public.read_bytes()).public_numbers() == key.public_key().public_numbers()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    before = private.read_bytes()
    assert key_pair(tmp_path / "keys", "node-0") == (private, public) and private.read_bytes() == before  # kept
    assert main([str(tmp_path / "keys"), "../escape"]) == 2
    assert "use letters, digits" in capsys.readouterr().err and not (tmp_path / "escape").exists()


@pytest.mark.slow
@needs_openssl
def test_only_registered_supernodes_join(certs, tmp_path):
    from fedotl.deploy.node_keys import key_pair

    base = free_block(4)
    home = tmp_path / "flwr-home"
    ld.write_flwr_config(home, base, certs / "ca.crt")
    env = ld.flower_env(home)
    (tmp_path / "logs").mkdir()
    procs = ld.Processes(env=env, cwd=tmp_path, logs=tmp_path / "logs")
    ca = certs / "ca.crt"
    try:
        link = ld.start_superlink(procs, certs, base)
        ld.wait_for_superlink(procs, link, base, 90)
        (k0, p0), (k1, _) = key_pair(tmp_path / "keys", "device"), key_pair(tmp_path / "keys", "rogue")
        ids = ld.register_supernodes(env, [p0], ["u1/wrist"])
        ld.start_supernode(procs, 0, base, ca, base + 1, k0, "partition-id=0 num-partitions=1")
        # a rogue node claiming the same partition, with a key nobody registered, and one with no key
        rogue = ld.start_supernode(procs, 1, base, ca, base + 2, k1, "partition-id=0 num-partitions=1")
        keyless = ld.start_supernode(procs, 2, base, ca, base + 3, None, "partition-id=0 num-partitions=1")
        assert rogue.wait(timeout=120) != 0 and keyless.wait(timeout=120) != 0
        assert "Failed to activate SuperNode" in (tmp_path / "logs" / "supernode-1.log").read_text()
        assert "All SuperNodes must be registered" in (tmp_path / "logs" / "supernode-2.log").read_text()
        deadline = time.monotonic() + 60
        while True:
            nodes = ld.flwr_json(env, "supernode", "list", ld.FEDERATION).get("nodes", [])
            online = [n["node-id"] for n in nodes if n.get("status") == "online"]
            if online or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert online == ids and len(nodes) == 1  # only the registered device, and nobody else ever listed
    finally:
        procs.stop_all(10)
    assert leftover_processes([str(tmp_path), str(certs)]) == []


def supernode_pids(port: int) -> list[int]:
    """The live flower-supernode serving its ClientAppIO API on ``port``."""
    return [int(line.split()[0]) for line in leftover_processes(["flower-supernode"], wait=0) if f"--port {port} " in line]


@pytest.mark.slow
@needs_openssl
def test_supernodes_that_die_mid_run_are_restarted_and_rejoin_and_one_lost_for_good_never_hangs_it(dsads3, certs, tmp_path):
    """Two of the three SuperNodes are killed after round 1 (one restart allowed each): p3 comes back
    and rejoins; p2 is killed again once restarted, so it is lost for good and the run goes on with
    those that remain (min-train-nodes = 1)."""
    from fedotl.server.checkpoint import CHECKPOINT

    run = tmp_path / "run"
    cmd, marks = launcher(certs, tmp_path, "--dataset", "dsads", str(dsads3), *ONE_DEVICE_PER_SUBJECT, "--out", str(run),
                          "--strategy", "fedavg", "--rounds", "4", "--set", "local-epochs=1", "--set", "round-timeout=150",
                          "--set", "min-train-nodes=1", "--set", "min-evaluate-nodes=1", "--node-restarts", "1", "--run-timeout", "900")  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while not (run / CHECKPOINT).exists():
        assert proc.poll() is None and time.monotonic() - t0 < 500, "no checkpoint before the run ended"
        time.sleep(0.2)
    p2_port, p3_port = (int(m.rsplit(":", 1)[1]) for m in marks[4:6])  # SuperNodes 1 and 2: devices p2 and p3
    first = {port: supernode_pids(port) for port in (p2_port, p3_port)}
    assert all(len(pids) == 1 for pids in first.values())
    for pids in first.values():
        os.kill(pids[0], 9)
    while not (again := [p for p in supernode_pids(p2_port) if p not in first[p2_port]]):  # p2 restarted: kill it for good
        assert proc.poll() is None and time.monotonic() - t0 < 700, "p2 was never restarted"
        time.sleep(0.2)
    os.kill(again[0], 9)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    result = json.loads(out)
    assert result["restarts"] == {"p2": 1, "p3": 1} and result["lost"] == ["p2"]
    summary = result["summary"]
    assert [h["round"] for h in summary["history"]] == [1, 2, 3, 4]
    rounds = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"event": "round"' in line]
    last = rounds[-1]
    assert sorted(last["per_client"]) == ["p1", "p3"] and last["train"]["replies"] == 2  # p3 rejoined; p2 is lost
    failed = {f.get("client") for f in summary["failures"]}
    assert failed <= {"p2", "p3"} and "p2" in failed  # named by device, never by node ID alone
    assert all(f["round"] >= 2 for f in summary["failures"])  # from the round after the kill
    keys = [(f["round"], f["stage"], f["node_id"]) for f in summary["failures"]]
    assert len(keys) == len(set(keys))  # one failure per node and stage of a round, never two
    assert leftover_processes(marks) == []


def test_node_supervisor_restarts_after_offline_up_to_its_limit_then_calls_the_device_lost(tmp_path, monkeypatch):
    """The supervisor's bookkeeping, with real short-lived processes and a scripted `flwr supernode list`."""
    listed = {"online": {"11", "22"}}
    monkeypatch.setattr(ld, "flwr_json", lambda env, *args: {"nodes": [{"node-id": n, "status": "online"} for n in listed["online"]]})
    (tmp_path / "logs").mkdir()
    procs = ld.Processes(env=dict(os.environ), cwd=tmp_path, logs=tmp_path / "logs")
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    nodes = [procs.start("supernode-0", sleeper), procs.start("supernode-1", sleeper)]
    said: list[str] = []
    sup = ld.NodeSupervisor(procs, nodes, ["u1/wrist", "u2/wrist"], ["11", "22"], 1, said.append)
    try:
        nodes[1].kill()
        nodes[1].wait()
        sup.check()
        assert said[-1].startswith("SuperNode 1 (u2/wrist) was killed by SIGKILL; restarting it once")
        killed = sup.nodes[1]
        sup._next_check = 0.0
        sup.check()
        assert sup.nodes[1] is killed and sup.restarts == {}  # still listed online: not yet
        listed["online"] = {"11"}
        sup._next_check = 0.0
        sup.check()
        assert sup.nodes[1] is not killed and sup.nodes[1].poll() is None and sup.nodes[1].args == sleeper
        assert sup.restarts == {"u2/wrist": 1} and said[-1] == "SuperNode 1 (u2/wrist) restarted"
        sup.nodes[1].kill()
        sup.nodes[1].wait()
        sup.check()
        sup.check()
        assert sup.lost == {1} and sup.restarts == {"u2/wrist": 1} and "lost for good (1 of 1 restarts used)" in said[-1]
        assert sum("lost" in m for m in said) == 1  # said once
        assert sup.nodes[0].poll() is None  # the healthy node is never touched
    finally:
        procs.stop_all(5)


@pytest.mark.slow
@needs_openssl
def test_a_registered_second_node_claiming_a_device_gets_it_excluded_never_averaged(dsads3, certs, tmp_path):
    """A 4th SuperNode, registered, claims p2 (partition 1) with p2's own store: once it is online,
    both claimants are excluded from each round and counted, and the run goes on with p1 and p3."""
    from fedotl.deploy.node_keys import key_pair

    run = tmp_path / "run"
    cmd, marks = launcher(certs, tmp_path, "--dataset", "dsads", str(dsads3), *ONE_DEVICE_PER_SUBJECT, "--out", str(run),
                          "--strategy", "fedavg", "--rounds", "2", "--set", "local-epochs=1", "--run-timeout", "400")  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    home, port = tmp_path / "flwr-home", int(marks[2].rsplit(":", 1)[1])
    env = ld.flower_env(home)
    t0 = time.monotonic()
    while not ld.flwr_json(env, "supernode", "list", ld.FEDERATION).get("nodes"):  # the launcher has registered its own
        assert proc.poll() is None and time.monotonic() - t0 < 120, "the launcher registered no SuperNode"
        time.sleep(1)
    key, pub = key_pair(tmp_path / "keys", "intruder")
    assert ld.register_supernodes(env, [pub], ["intruder"])
    (tmp_path / "logs").mkdir()
    procs = ld.Processes(env=env, cwd=tmp_path, logs=tmp_path / "logs")
    try:
        io_port = ld.free_port_block(1, port + NODES + 2, port + 100)
        ld.start_supernode(procs, 9, port, certs / "ca.crt", io_port, key,
                           f'partition-id=1 num-partitions={NODES} data-dir="{run / "stores" / "devices" / "00001"}"')
        out, err = proc.communicate(timeout=500)
    finally:
        procs.stop_all(10)
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads(out)["summary"]
    # the intruder is online by round 2 (round 1 may have sampled before it connected)
    assert sorted(summary["per_client"]) == ["p1", "p3"]
    claims = [f for f in summary["failures"] if "claim device p2: all excluded" in f["reason"]]
    last = [(f["stage"], f["client"]) for f in claims if f["round"] == 2]
    assert sorted(last) == [("evaluate", "p2"), ("evaluate", "p2"), ("train", "p2"), ("train", "p2")]  # both claimants, both stages
    assert summary["history"][-1]["train"]["replies"] == 2  # p1 and p3 averaged; p2's two claims never
    assert not [f for f in summary["failures"] if f not in claims]
    assert leftover_processes(marks + ["intruder"]) == []
