"""Run the app on Flower's Deployment Engine on this machine, over TLS.

    python -m fedotl.deploy.local_deployment --dataset dsads PATH --nodes N [--rounds R]
        [--strategy S] [--secagg] [--set KEY=VALUE ...] [--certs DIR] [--out RUN_DIR] [--node-restarts K] [--json]

What it does, with Flower's own executables only:

1. checks the options and counts the devices the data gives (``--nodes`` must
   equal that count), before anything starts, and writes each device's store
   to ``RUN_DIR/stores/devices/<i>`` (the launcher plays every device's recorder);
2. starts ``flower-superlink`` with TLS (``--ssl-ca-certfile``,
   ``--ssl-certfile``, ``--ssl-keyfile``) and SuperNode authentication
   (``--enable-supernode-auth``); in flwr 1.42 its Fleet, Control and
   Runtime APIs share one HTTPS port (``--port``);
3. makes a key pair per device in ``RUN_DIR/keys`` (:mod:`fedotl.deploy.node_keys`;
   kept for a resumed run), registers each public key with ``flwr supernode
   register`` under the device's name, and starts one ``flower-supernode`` per
   device with its private key (``--auth-supernode-private-key``), trusting the CA
   (``--root-certificates``), with ``--node-config "partition-id=i
   num-partitions=N data-dir=<its store>"`` and its own ClientAppIO (Runtime API) port
   ``--node-port + i``; it waits until the SuperLink lists all N online;
4. submits the app with ``flwr run . fedotl-tls --stream`` from a private
   FLWR_HOME whose ``config.toml`` points at the SuperLink with the CA as
   ``root-certificates``;
5. while the run goes on, restarts a SuperNode that dies, at most
   ``--node-restarts`` times per device, once the SuperLink lists it offline
   (:class:`NodeSupervisor`); past that the device is lost for good and the
   rounds go on without it;
6. reads the outcome from ``flwr list --run-id ID --format json`` (the exit
   status of ``flwr run`` is not the outcome) and the ServerApp's
   ``summary.json`` from the run directory;
7. stops every process it started, and their children (SIGTERM, then SIGKILL
   after ``--stop-timeout``), also on an error or Ctrl-C.

Logs go to ``RUN_DIR/logs/``.  Exit status: 0 when the run finished
``finished:completed``, 1 when it did not or a process failed, 2 for a bad
option, 130 when interrupted.  See deploy/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable, Sequence

from fedotl.client.config import APP_KEYS, DEFAULTS, RunConfig, parse_value
from fedotl.client.protocol import STRATEGIES
from fedotl.deploy.node_keys import key_pair
from fedotl.deploy.proctree import alive, become_subreaper, descendants, die_with_parent, in_sessions
from fedotl.simulations.devices import DeviceSet
from fedotl.simulations.arguments import (
    add_dataset_args, add_force, add_resume, bounded, dataset_config, key_value, non_negative_int, positive_float, positive_int,
    resume_config,
)
from fedotl.simulations.rundir import run_dir as checked_run_dir

REPO = Path(__file__).resolve().parent.parent
FEDERATION = "fedotl-tls"
# Defaults clear of Flower's own (8000, 9091-9094) and of the local simulation
# SuperLink (39091, 39093, 39191), which may be serving another run.
DEFAULT_PORT = 39700
DEFAULT_NODE_PORT = 39710
HOST = "127.0.0.1"
CERT_FILES = ("ca.crt", "server.crt", "server.key")
FLOWER_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    # How often a SuperExec asks its SuperLink or SuperNode for a task to launch (Flower's
    # default 1 s): a wait paid once per message, since each message starts a new process.
    "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.1",
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
tcp_port = bounded(int, lambda v: 1 <= v <= 65535, "a TCP port (1-65535)")
SUBREAPER = False  # set when run as the script: orphaned descendants are then re-parented to this process


class UsageError(Exception):
    """A bad option or input: exit status 2."""


class DeploymentError(Exception):
    """A Flower process or the run failed: exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m fedotl.deploy.local_deployment",
        description="Run the fedotl app on Flower's Deployment Engine on this machine: a TLS SuperLink, "
        "one SuperNode per device, and `flwr run`.",
    )
    add_dataset_args(p)
    add_resume(p)
    p.add_argument("--nodes", type=positive_int, required=True, metavar="N", help="SuperNodes to start: must equal the number of devices the data gives")
    p.add_argument("--rounds", type=positive_int, default=None, metavar="R", help="federated rounds (default: pyproject's num-server-rounds)")
    p.add_argument("--strategy", choices=[s for s in STRATEGIES if s != "central"], default=None, help="(default: pyproject's strategy)")
    p.add_argument("--secagg", action="store_true", help="Flower's SecAgg+ on every train round")
    p.add_argument("--set", type=key_value, action="append", default=[], metavar="KEY=VALUE", help="any other run-config key (see fedotl/client/config.py)")
    p.add_argument("--certs", type=Path, default=REPO / "deploy" / "certs", metavar="DIR", help="ca.crt, server.crt, server.key (default deploy/certs; made with deploy/certs.sh when absent)")
    p.add_argument("--node-ca", type=Path, default=None, metavar="FILE", help="CA certificate the SuperNodes trust (default DIR/ca.crt)")
    p.add_argument("--out", type=Path, default=None, metavar="RUN_DIR", help="run directory (default runs/deploy-<time>)")
    add_force(p, "RUN_DIR")
    p.add_argument("--flwr-home", type=Path, default=None, metavar="DIR", help="FLWR_HOME for this deployment (default: a temporary folder, removed at the end)")
    p.add_argument("--port", type=tcp_port, default=DEFAULT_PORT, help=f"SuperLink HTTPS port (default {DEFAULT_PORT})")
    p.add_argument("--node-port", type=tcp_port, default=DEFAULT_NODE_PORT, help=f"SuperNode i serves its ClientAppIO API on this port + i (default {DEFAULT_NODE_PORT})")
    p.add_argument("--connect-timeout", type=positive_float, default=120.0, metavar="S", help="seconds to wait for the SuperLink and every SuperNode (default 120)")
    p.add_argument("--node-restarts", type=non_negative_int, default=3, metavar="K", help="restart a SuperNode that dies during the run at most K times per device (default 3; 0: never)")
    p.add_argument("--run-timeout", type=positive_float, default=None, metavar="S", help="stop the run after S seconds (default: no limit)")
    p.add_argument("--stop-timeout", type=positive_float, default=15.0, metavar="S", help="seconds between SIGTERM and SIGKILL at shutdown (default 15)")
    p.add_argument("--verbose", action="store_true", help="copy the `flwr run --stream` log to stderr")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return p


# ------------------------------------------------------------ configuration
def run_config_from_args(args: argparse.Namespace, run_dir: Path) -> tuple[dict[str, object], DeviceSet]:
    """The full run config and the device stores; checks both, and that ``--nodes`` equals the device count.

    With ``--resume`` the config is the run's own ``run_config.json``, set to resume from its checkpoint.
    """
    if args.resume is not None:
        given = [flag for flag, v in (("--dataset", args.dataset), ("--rounds", args.rounds), ("--strategy", args.strategy),
                                      ("--secagg", args.secagg or None), ("--set", args.set or None)) if v is not None]
        if given:
            raise UsageError(f"--resume continues the run with its own config: drop {', '.join(given)}")
        cfg = dict(RunConfig(resume_config(args.resume)))
        return cfg, _devices(cfg, args, run_dir)
    if args.dataset is None or args.path is None:
        raise UsageError("needs --dataset D PATH, or --resume RUN_DIR")
    cfg = dict(RunConfig(dataset_config(args), out_dir=str(run_dir)))
    if args.strategy:
        cfg["strategy"] = args.strategy
    if args.rounds:
        cfg["num-server-rounds"] = args.rounds
    if args.secagg:
        cfg["secagg"] = True
    for key, text in args.set:
        if key in ("out-dir", "data-path", "data-dir"):
            raise UsageError(f"--set {key}: use {'--out' if key == 'out-dir' else 'PATH'} instead")
        try:
            cfg[key] = parse_value(key, text)
        except ValueError as e:
            raise UsageError(f"--set {e}") from None
    if cfg["strategy"] == "central":
        raise UsageError("strategy central is not federated: run it with `fedotl simulate`")
    return cfg, _devices(cfg, args, run_dir)


def _devices(cfg: dict[str, object], args: argparse.Namespace, run_dir: Path) -> DeviceSet:
    """Check ``cfg``, write the device stores (once), and check ``--nodes`` against the device count."""
    from fedotl.simulations.federated import check_config

    # Each SuperNode gets its own store (node config data-dir); the launcher plays every device's recorder.
    devices = check_config(cfg, run_dir / "stores")
    ids = devices.ids
    if args.nodes != len(ids):
        raise UsageError(f"--nodes {args.nodes} but the data gives {len(ids)} devices ({', '.join(ids[:6])}{', ...' if len(ids) > 6 else ''})")
    # Round 1 waits for every SuperNode, so that it never samples a subset.
    cfg["min-available-nodes"] = max(int(cfg["min-available-nodes"]), len(ids))  # type: ignore[call-overload]
    return devices


def toml_value(value: object) -> str:
    """A run-config value as TOML (JSON strings are valid TOML basic strings).

    >>> print(toml_value(True), toml_value(3), toml_value(0.5), toml_value("/data/x"))
    true 3 0.5 "/data/x"
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def write_run_config(cfg: dict[str, object], path: Path) -> Path:
    """The app keys that differ from pyproject's defaults, as a TOML file for ``flwr run --run-config``."""
    lines = [f"{k} = {toml_value(cfg[k])}" for k in APP_KEYS if k in cfg and cfg[k] != DEFAULTS[k]]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_flwr_config(home: Path, port: int, ca: Path) -> Path:
    """``$FLWR_HOME/config.toml`` with the TLS SuperLink as the default connection (flwr 1.42 keys)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(
        f'[superlink]\ndefault = "{FEDERATION}"\n\n'
        f'[superlink.{FEDERATION}]\naddress = "{HOST}:{port}"\nroot-certificates = {json.dumps(str(ca))}\n'
    )
    return path


def ensure_certs(folder: Path, explicit: bool) -> None:
    """Check DIR holds the certificates; make them with certs.sh when the default folder lacks them."""
    missing = [f for f in CERT_FILES if not (folder / f).is_file()]
    if not missing:
        return
    if explicit:
        raise UsageError(f"--certs {folder}: missing {', '.join(missing)} (make them with deploy/certs.sh {folder})")
    if shutil.which("openssl") is None:
        raise UsageError(f"{folder}: no certificates, and openssl is not on PATH to make them")
    subprocess.run(["bash", str(REPO / "deploy" / "certs.sh"), str(folder)], check=True, stdout=subprocess.DEVNULL)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the servers do: a port in TIME_WAIT is free, one being listened on is not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def check_ports(ports: Sequence[int]) -> None:
    for port in ports:
        if port > 65535:
            raise UsageError(f"port {port} is out of range")
        if not port_is_free(port):
            raise UsageError(f"port {port} on {HOST} is in use; choose others with --port / --node-port")


def free_port_block(n: int, start: int, stop: int) -> int | None:
    """The first base port in [start, stop) from which ``n`` consecutive ports are free on loopback, else None."""
    return next((base for base in range(start, stop - n + 1, n) if all(port_is_free(p) for p in range(base, base + n))), None)


def flower_env(home: Path) -> dict[str, str]:
    """This environment with Flower's settings (:data:`FLOWER_ENV`), FLWR_HOME = ``home``, and this venv's executables first on PATH."""
    env = dict(os.environ, **FLOWER_ENV, FLWR_HOME=str(home), RAY_TMPDIR=str(home / "ray"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def flower_bin(name: str) -> str:
    """An executable from this interpreter's environment (the venv), else from PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise UsageError(f"{name} not found: install flwr into this environment")
    return found


# ------------------------------------------------------------ processes
@dataclass
class Processes:
    """The Flower processes this script started; :meth:`stop_all` ends them and their children."""

    env: dict[str, str]
    cwd: Path
    logs: Path
    started: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], *, pipe: bool = False, append: bool = False) -> subprocess.Popen:
        log: IO | int = subprocess.PIPE if pipe else open(self.logs / f"{name}.log", "ab" if append else "wb")  # noqa: SIM115
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd, start_new_session=True,
                                preexec_fn=die_with_parent)  # kill -9 of this script takes its processes along
        if not pipe:
            log.close()  # type: ignore[union-attr]
        self.started.append((name, proc))
        return proc

    def stop_all(self, timeout: float) -> None:
        """SIGTERM to each started process and its descendants; SIGKILL to what is left after ``timeout``."""
        roots = [p for _, p in self.started if p.poll() is None]
        # each root leads its own session: what is still in one was started by it or its children;
        # as the script, a subreaper, every descendant is ours, orphans of a root that died included
        sessions = [p.pid for _, p in self.started]
        ours = descendants([os.getpid()]) if SUBREAPER else []
        tree = [d for d in descendants([p.pid for _, p in self.started]) + in_sessions(sessions) + ours if d[0] not in {p.pid for p in roots}]
        tree = list(dict.fromkeys(tree))
        for p in roots:
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(p.poll() is None for p in roots):
            time.sleep(0.2)
        # Children that outlive their parent (SuperExec watches its parent's pid) get SIGTERM too.
        tree += [d for d in descendants([p.pid for p in roots if p.poll() is None]) if d not in tree]
        for pid, start in tree:
            if alive(pid, start):
                _signal(pid, signal.SIGTERM)
        while time.monotonic() < deadline and any(alive(*d) for d in tree):
            time.sleep(0.2)
        for p in roots:
            if p.poll() is None:
                p.kill()
        for pid, start in tree:
            if alive(pid, start):
                _signal(pid, signal.SIGKILL)
        for p in roots:
            p.wait()
        reap(pid for pid, _ in tree)


def reap(pids: Iterable[int]) -> None:
    """Collect the exit status of those ``pids`` that became our children (re-parented orphans), so no zombie stays."""
    deadline = time.monotonic() + 2.0  # a SIGKILLed process takes a moment to end
    for pid in pids:
        try:
            while os.waitpid(pid, os.WNOHANG)[0] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        except ChildProcessError:  # not our child: its own parent reaps it
            pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def exit_words(proc: subprocess.Popen, log: Path) -> str:
    """How a process ended, in words: killed by a signal, or its exit status and the error it logged."""
    if proc.returncode is not None and proc.returncode < 0:
        return f"was killed by {signal.Signals(-proc.returncode).name}"
    return f"exited with status {proc.returncode}: {failure_reason(log)}"


def failure_reason(log: Path) -> str:
    """The error a Flower process logged before it exited, in one line."""
    try:
        lines = [_ANSI.sub("", line).strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return "(no log)"
    lines = [line for line in lines if line]
    starts = [i for i, line in enumerate(lines) if line.startswith("ERROR")]
    picked = lines[starts[0] : starts[0] + 4] if starts else lines[-3:]
    return " ".join(re.sub(r"^ERROR\s*:\s*", "", line) for line in picked)


# ------------------------------------------------------------ flwr CLI
def flwr_json(env: dict[str, str], *args: str) -> dict:
    out = subprocess.run([flower_bin("flwr"), *args, "--format", "json"], env=env, capture_output=True, text=True, timeout=120)
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        return {"success": False, "error-message": (out.stdout + out.stderr).strip()[-500:]}


def start_superlink(procs: Processes, certs: Path, port: int) -> subprocess.Popen:
    """``flower-superlink`` with TLS and SuperNode authentication: only registered SuperNodes may join."""
    return procs.start(
        "superlink",
        [flower_bin("flower-superlink"), "--ssl-ca-certfile", str(certs / "ca.crt"), "--ssl-certfile", str(certs / "server.crt"),
         "--ssl-keyfile", str(certs / "server.key"), "--host", HOST, "--port", str(port), "--enable-supernode-auth",
         "--disable-runtime-dependency-installation"],
    )  # fmt: skip


def register_supernodes(env: dict[str, str], public_keys: Sequence[Path], names: Sequence[str]) -> list[str]:
    """``flwr supernode register`` for each public key, named after its device; the node IDs the SuperLink gave."""
    ids = []
    for i, (key, name) in enumerate(zip(public_keys, names)):
        out = flwr_json(env, "supernode", "register", str(key), FEDERATION, "--name", name)
        if not out.get("success"):
            raise DeploymentError(f"registering SuperNode {i} ({name}) failed: {out.get('error-message', out)}")
        ids.append(str(out["node-id"]))
    return ids


def start_supernode(procs: Processes, i: int, port: int, ca: Path, io_port: int, private_key: Path | None, node_config: str) -> subprocess.Popen:
    """``flower-supernode`` i, trusting ``ca``, authenticating with ``private_key`` (None: no key, which auth refuses)."""
    auth = ["--auth-supernode-private-key", str(private_key)] if private_key is not None else []
    return procs.start(
        f"supernode-{i}",
        [flower_bin("flower-supernode"), "--superlink", f"{HOST}:{port}", "--root-certificates", str(ca),
         "--port", str(io_port), *auth, "--node-config", node_config],
    )  # fmt: skip


def online_node_ids(env: dict[str, str]) -> set[str]:
    """The IDs of the SuperNodes the SuperLink lists online (``flwr supernode list``)."""
    listed = flwr_json(env, "supernode", "list", FEDERATION).get("nodes", [])
    return {str(n.get("node-id")) for n in listed if n.get("status") == "online"}


def wait_for_superlink(procs: Processes, proc: subprocess.Popen, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DeploymentError(f"flower-superlink {exit_words(proc, procs.logs / 'superlink.log')}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.5)
    raise DeploymentError(f"the SuperLink did not open port {port} within {timeout:.0f} s (log: {procs.logs / 'superlink.log'})")


def wait_for_supernodes(procs: Processes, nodes: list[subprocess.Popen], timeout: float) -> None:
    """Until the SuperLink lists every SuperNode online; a SuperNode that exits is an error."""
    deadline = time.monotonic() + timeout
    online = 0
    while time.monotonic() < deadline:
        for i, proc in enumerate(nodes):
            if proc.poll() is not None:
                log = procs.logs / f"supernode-{i}.log"
                raise DeploymentError(f"SuperNode {i} {exit_words(proc, log)} (log: {log})")
        online = len(online_node_ids(procs.env))
        if online >= len(nodes):
            return
        time.sleep(1.0)
    raise DeploymentError(f"{online} of {len(nodes)} SuperNodes online after {timeout:.0f} s (logs: {procs.logs})")


@dataclass
class NodeSupervisor:
    """Restarts a SuperNode that dies during the run, at most ``limit`` times per device.

    A restart waits until the SuperLink lists the node offline (its heartbeats
    stopped: up to 60 s in flwr 1.42).  Only then does Flower answer the
    messages the dead process had pulled with "Node Unavailable", so the
    round counts the device failed once and goes on; a node back under the
    same key before that would leave those messages unanswered until
    ``round-timeout`` (so flwr 1.42's ``check_node_availability_for_in_message``
    reads; not observed).  The restarted node has the same key, node ID, store
    and node config, and joins the next round it is sampled for; its
    ``context.state`` (local BatchNorm layers, a personalised head) died with
    the process.  A device past its limit is lost for good, and the rounds go
    on without it (:class:`fedotl.server.strategies._Tracked`).
    """

    procs: Processes
    nodes: list[subprocess.Popen]  # the current process of each device's SuperNode
    devices: Sequence[str]
    node_ids: Sequence[str]
    limit: int
    say: Callable[[str], None]
    restarts: dict[str, int] = field(default_factory=dict)
    lost: set[int] = field(default_factory=set)
    _dead: set[int] = field(default_factory=set)
    _next_check: float = 0.0

    def check(self) -> None:
        for i, proc in enumerate(self.nodes):
            if proc.poll() is None or i in self.lost or i in self._dead:
                continue
            done = self.restarts.get(self.devices[i], 0)
            words = f"SuperNode {i} ({self.devices[i]}) {exit_words(proc, self.procs.logs / f'supernode-{i}.log')}"
            if done >= self.limit:
                self.lost.add(i)
                self.say(f"{words}; lost for good ({done} of {self.limit} restarts used): the run goes on without it")
            else:
                self._dead.add(i)
                self.say(f"{words}; restarting it once the SuperLink lists it offline (restart {done + 1} of {self.limit})")
        if not self._dead or time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + 2.0  # each check is a `flwr supernode list`
        online = online_node_ids(self.procs.env)
        for i in sorted(self._dead):
            if self.node_ids[i] in online:
                continue
            self._dead.discard(i)
            self.restarts[self.devices[i]] = self.restarts.get(self.devices[i], 0) + 1
            self.nodes[i] = self.procs.start(f"supernode-{i}", list(self.nodes[i].args), append=True)
            self.say(f"SuperNode {i} ({self.devices[i]}) restarted")


def submit_and_wait(procs: Processes, run_config: Path, timeout: float | None, verbose: bool, superlink: subprocess.Popen,
                    watch: Callable[[], None] = lambda: None) -> str:
    """``flwr run . fedotl-tls --stream``; return the run ID once the stream ends, or the SuperLink does.

    ``watch`` is called about every 0.5 s while the run goes on (the SuperNodes' supervisor).
    """
    run_id: list[str] = []
    proc = procs.start("flwr-run", [flower_bin("flwr"), "run", str(REPO), FEDERATION, "--stream", "--run-config", str(run_config)], pipe=True)
    log_path = procs.logs / "flwr-run.log"

    def pump() -> None:
        with open(log_path, "w") as log:
            for raw in proc.stdout:  # type: ignore[union-attr]
                line = raw.decode(errors="replace")
                log.write(line)
                log.flush()
                if verbose:
                    sys.stderr.write(line)
                m = re.search(r"started run (\d+)", _ANSI.sub("", line))
                if m and not run_id:
                    run_id.append(m.group(1))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    while proc.poll() is None:
        if superlink.poll() is not None:  # the stream may not notice a dead server for minutes
            proc.terminate()
            proc.wait()
            break
        if deadline is not None and time.monotonic() > deadline:
            if run_id:
                flwr_json(procs.env, "stop", run_id[0])
            proc.terminate()
            proc.wait()
            break
        watch()
        time.sleep(0.5)
    reader.join(timeout=10)
    if not run_id:
        raise DeploymentError(f"`flwr run` started no run: {failure_reason(log_path)} (log: {log_path})")
    return run_id[0]


def run_status(env: dict[str, str], run_id: str, wait: float = 30.0) -> tuple[str, str]:
    """(status, status-details) from ``flwr list --run-id``, waiting briefly for a final status."""
    deadline = time.monotonic() + wait
    while True:
        listed = flwr_json(env, "list", "--run-id", run_id)
        runs = listed.get("runs") or [{}]
        status, details = str(runs[0].get("status", "unknown")), str(runs[0].get("status-details", listed.get("error-message", "")))
        if status.startswith("finished") or time.monotonic() > deadline:
            return status, details
        time.sleep(1.0)


# ------------------------------------------------------------ main
def deploy(args: argparse.Namespace) -> dict[str, object]:
    if args.resume is not None and args.out is not None and args.out.resolve() != Path(args.resume).resolve():
        raise UsageError("--resume RUN_DIR continues the run in RUN_DIR: drop --out")
    run_dir = Path(args.resume or args.out or REPO / "runs" / f"deploy-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    # an earlier run is never overwritten without --force; a mistake found here leaves no folder behind
    with checked_run_dir(run_dir, fresh=args.resume is None, force=args.force):
        cfg, devices = run_config_from_args(args, run_dir)
    certs = args.certs.resolve()
    ensure_certs(certs, explicit=args.certs != build_parser().get_default("certs"))
    node_ca = (args.node_ca or certs / "ca.crt").resolve()
    if not node_ca.is_file():
        raise UsageError(f"--node-ca {node_ca}: no such file")
    ports = [args.port] + [args.node_port + i for i in range(args.nodes)]
    if args.port in ports[1:]:
        raise UsageError(f"--port {args.port} falls among the SuperNode ports {ports[1]}..{ports[-1]}")
    check_ports(ports)
    for name in ("flower-superlink", "flower-supernode", "flower-superexec", "flwr"):
        flower_bin(name)

    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").unlink(missing_ok=True)
    (run_dir / "run_config.json").write_text(json.dumps(cfg, indent=1))
    run_config = write_run_config(cfg, run_dir / "run_config.toml")
    home = args.flwr_home.resolve() if args.flwr_home else Path(tempfile.mkdtemp(prefix="fedotl-flwr-home-"))
    write_flwr_config(home, args.port, certs / "ca.crt")
    env = flower_env(home)
    procs = Processes(env=env, cwd=run_dir, logs=logs)
    say = (lambda msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.monotonic()
    times: dict[str, float] = {}
    try:
        superlink = start_superlink(procs, certs, args.port)
        wait_for_superlink(procs, superlink, args.port, args.connect_timeout)
        say(f"SuperLink up with TLS and SuperNode authentication on {HOST}:{args.port}")
        keys = [key_pair(run_dir / "keys", f"node-{i}") for i in range(args.nodes)]  # kept: a resumed run reuses them
        node_ids = register_supernodes(env, [pub for _, pub in keys], devices.ids)
        nodes = [
            start_supernode(procs, i, args.port, node_ca, args.node_port + i, keys[i][0], f'partition-id={i} num-partitions={args.nodes} data-dir="{devices.store(i)}"')
            for i in range(args.nodes)
        ]
        wait_for_supernodes(procs, nodes, args.connect_timeout)
        times["startup"] = round(time.monotonic() - t0, 1)
        say(f"{args.nodes} SuperNodes online ({times['startup']} s); submitting with `flwr run . {FEDERATION} --stream` (log: {logs / 'flwr-run.log'})")
        supervisor = NodeSupervisor(procs, nodes, devices.ids, node_ids, args.node_restarts, say)
        run_id = submit_and_wait(procs, run_config, args.run_timeout, args.verbose, superlink, watch=supervisor.check)
        if superlink.poll() is not None:
            raise DeploymentError(f"the SuperLink {exit_words(superlink, logs / 'superlink.log')} during run {run_id}; continue it with --resume {run_dir}")
        status, details = run_status(env, run_id)
        times["run"] = round(time.monotonic() - t0 - times["startup"], 1)
    finally:
        procs.stop_all(args.stop_timeout)
        if not args.flwr_home:
            shutil.rmtree(home, ignore_errors=True)
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    lost = [devices.ids[i] for i in sorted(supervisor.lost)]
    return {"run_id": run_id, "status": status, "status_details": details, "run_dir": str(run_dir), "seconds": times,
            "restarts": supervisor.restarts, "lost": lost, "summary": summary}


def print_report(result: dict) -> None:
    print(f"run {result['run_id']}  {result['status']}  (startup {result['seconds'].get('startup')} s, run {result['seconds'].get('run')} s)")
    s = result["summary"]
    if s:
        print(f"strategy    {s['strategy']}  ({s['rounds']} rounds, {s['clients']} clients)")
        for cid, acc in (s.get("per_client") or {}).items():
            print(f"  {cid:<16} accuracy {acc:.4f}")
        if s.get("mean_accuracy") is not None:
            print(f"mean        accuracy {s['mean_accuracy']:.4f}  macro-F1 {s['mean_macro_f1']:.4f}")
    for device, n in result["restarts"].items():
        print(f"restarted   {device}'s SuperNode {n} time(s)")
    if result["lost"]:
        print(f"lost        {', '.join(result['lost'])} (past --node-restarts)")
    print(f"run dir     {result['run_dir']}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        result = deploy(args)
    except (UsageError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DeploymentError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; every process this script started was stopped", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)
    if result["status"] != "finished:completed":
        print(f"error: run {result['run_id']} ended {result['status']}: {result['status_details']}", file=sys.stderr)
        return 1
    if not result["summary"]:
        print(f"error: the run completed but wrote no summary to {result['run_dir']}/summary.json", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # A Flower process whose parent dies (a killed SuperLink's SuperExec and ServerApp) is
    # re-parented to this script instead of init, so stop_all still finds, ends and reaps it.
    # Only as a script: a program that calls main() keeps its own process semantics.
    SUBREAPER = become_subreaper()
    raise SystemExit(main())
