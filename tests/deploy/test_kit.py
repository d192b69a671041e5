"""deploy/docker and deploy/systemd: the kit for a server and real devices, checked structurally.

Docker cannot run on this machine, so the files are parsed and checked against the code they
start: every mounted file exists or is one that deploy/certs.sh or deploy/node_keys.py makes,
the ports and store paths agree with the launcher, every flag exists in the program it is given
to, and each SuperNode trains on the store its device runtime writes.
"""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fedotl.deploy import local_deployment as ld

yaml = pytest.importorskip("yaml", reason="PyYAML (installed with Ray, flwr[simulation]) parses the compose file")

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
SYSTEMD = ROOT / "deploy" / "systemd"
MADE = {  # files the kit mounts that are made, not committed: the tool that makes each
    "deploy/certs/ca.crt": "certs.sh", "deploy/certs/server.crt": "certs.sh", "deploy/certs/server.key": "certs.sh",
}  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def flower_flags() -> dict[str, str]:
    """The --help text of each Flower executable the kit starts."""
    bins = Path(sys.executable).parent
    return {name: subprocess.run([str(bins / name), "--help"], capture_output=True, text=True, timeout=60).stdout
            for name in ("flower-superlink", "flower-supernode")}  # fmt: skip


def flags(command: list[str]) -> dict[str, str | None]:
    """--flag=value / --flag value / --flag of a command line."""
    out: dict[str, str | None] = {}
    args = command[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") and "=" in a:
            k, v = a.split("=", 1)
            out[k] = v
        elif a.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            out[a] = args[i + 1]
            i += 1
        elif a.startswith("--"):
            out[a] = None
        i += 1
    return out


def node_config(text: str) -> dict:
    from flwr.common.config import parse_config_args

    return parse_config_args([text])


def device_parser_accepts(argv: list[str]) -> None:
    """``fedotl device ...`` parses with fedotl's own command line (no flag the runtime does not know)."""
    from fedotl.simulations.cli import build_parser

    args = build_parser().parse_args(argv)
    assert args.func.__module__ == "fedotl.simulations.cli.device"


def mounted(service: dict) -> list[tuple[str, str]]:
    return [tuple(v.split(":")[:2]) for v in service.get("volumes", [])]  # type: ignore[misc]


# ------------------------------------------------------------------ docker compose
def test_every_mounted_file_exists_or_is_made_by_the_kits_scripts(compose):
    for name, service in compose["services"].items():
        for source, _ in mounted(service):
            if not source.startswith("."):
                assert source in compose.get("volumes", {}), f"{name}: named volume {source} not declared"
                continue
            rel = (DOCKER / source).resolve().relative_to(ROOT).as_posix()
            if rel.startswith("deploy/keys/"):
                assert re.fullmatch(r"deploy/keys/node-\d+", rel), rel  # python -m fedotl.deploy.node_keys deploy/keys node-<i>
            elif rel in MADE:
                assert Path(rel).name in ld.CERT_FILES
            else:
                assert (ROOT / rel).is_file(), f"{name}: {rel} does not exist"
    build = compose["x-fedotl"]["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    assert "deploy/certs/" in (ROOT / ".dockerignore").read_text() and "deploy/keys/" in (ROOT / ".gitignore").read_text()


def test_superlink_has_tls_and_node_auth_on_the_launchers_port(compose, flower_flags):
    link = compose["services"]["superlink"]
    f = flags(link["command"])
    assert link["command"][0] == "flower-superlink"
    assert {"--ssl-ca-certfile", "--ssl-certfile", "--ssl-keyfile", "--enable-supernode-auth"} <= set(f)
    assert f["--port"] == str(ld.DEFAULT_PORT) and link["ports"] == [f"{ld.DEFAULT_PORT}:{ld.DEFAULT_PORT}"]
    files = dict(mounted(link))
    for flag, name in (("--ssl-ca-certfile", "ca.crt"), ("--ssl-certfile", "server.crt"), ("--ssl-keyfile", "server.key")):
        assert f[flag] == f"/certs/{name}" and files[f"../certs/{name}"] == f"/certs/{name}"
    assert all(flag in flower_flags["flower-superlink"] for flag in f)


def test_each_supernode_trains_on_its_own_devices_store(compose, flower_flags):
    services = compose["services"]
    nodes = sorted(n for n in services if n.startswith("supernode-"))
    assert len(nodes) >= 2 and [n.split("-")[1] for n in nodes] == [str(i) for i in range(len(nodes))]
    stores = set()
    for name in nodes:
        i = int(name.split("-")[1])
        node, device = services[name], services[f"device-{i}"]
        f = flags(node["command"])
        assert node["command"][0] == "flower-supernode" and all(flag in flower_flags["flower-supernode"] for flag in f)
        assert f["--superlink"] == f"superlink:{ld.DEFAULT_PORT}" and f["--root-certificates"] == "/certs/ca.crt"
        cfg = node_config(f["--node-config"])
        assert cfg["partition-id"] == i and cfg["num-partitions"] == len(nodes)
        assert dict(mounted(node))[f"../keys/node-{i}"] == f["--auth-supernode-private-key"]
        # the device runtime appends to the volume the SuperNode reads as its data-dir
        d = flags(device["command"])
        store_volume = {dst: src for src, dst in mounted(device)}[d["--store"]]
        assert {dst: src for src, dst in mounted(node)}[cfg["data-dir"]] == store_volume
        stores.add(store_volume)
        assert d["--input"] == f"mqtt://broker:1883/wearable/device-{i}" and "broker" in device["depends_on"]
        argv = [a.replace("${FEDOTL_CLASSES:?set FEDOTL_CLASSES to the label vocabulary, e.g. sit,stand,walk}", "sit,walk")
                for a in device["command"][1:]]  # fmt: skip
        device_parser_accepts(argv)
    assert len(stores) == len(nodes)  # no two devices share a store


def test_broker_config_is_mounted_where_mosquitto_reads_it(compose):
    broker = compose["services"]["broker"]
    assert dict(mounted(broker))["./mosquitto.conf"] == "/mosquitto/config/mosquitto.conf"
    assert "listener 1883" in (DOCKER / "mosquitto.conf").read_text()


# ------------------------------------------------------------------ systemd
def unit(name: str) -> configparser.ConfigParser:
    p = configparser.ConfigParser(strict=False, interpolation=None)
    p.optionxform = str  # systemd keys are case-sensitive
    p.read(SYSTEMD / name)
    return p


def test_systemd_units_start_the_runtime_and_the_supernode_with_the_same_store(flower_flags):
    env = dict(line.split("=", 1) for line in (SYSTEMD / "device.env.example").read_text().splitlines() if line and not line.startswith("#"))
    commands = {}
    for name in ("fedotl-device.service", "fedotl-supernode.service"):
        u = unit(name)
        assert u["Service"]["EnvironmentFile"] == "/etc/fedotl/device.env" and u["Install"]["WantedBy"] == "multi-user.target"
        line = u["Service"]["ExecStart"]
        used = set(re.findall(r"\$\{(\w+)\}", line))
        assert used <= set(env), f"{name}: {used - set(env)} not in device.env.example"
        commands[name] = shlex.split(re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], line))
    device = commands["fedotl-device.service"]
    assert device[0] == "/opt/fedotl/.venv/bin/fedotl"
    device_parser_accepts(device[1:])
    node = commands["fedotl-supernode.service"]
    assert Path(node[0]).name == "flower-supernode" and all(flag in flower_flags["flower-supernode"] for flag in flags(node))
    cfg = node_config(flags(node)["--node-config"])
    assert cfg["data-dir"] == flags(device)["--store"] == "/var/lib/fedotl/store"
    assert cfg["partition-id"] == int(env["FEDOTL_PARTITION_ID"]) < cfg["num-partitions"] == int(env["FEDOTL_NUM_PARTITIONS"])
    assert flags(node)["--auth-supernode-private-key"] == "/etc/fedotl/node.key"
    assert "fedotl-device.service" in unit("fedotl-supernode.service")["Unit"]["After"]



def test_the_kit_runs_flower_with_the_launchers_environment():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    env_block = re.search(r"^ENV (.*?)(?:\n(?!\s))", dockerfile, re.S | re.M).group(1)  # type: ignore[union-attr]
    docker_env = dict(pair.split("=", 1) for pair in shlex.split(env_block.replace("\\\n", " ")))
    unit_env = dict(pair.split("=", 1) for pair in shlex.split(unit("fedotl-supernode.service")["Service"]["Environment"]))
    for where, env in (("Dockerfile", docker_env), ("fedotl-supernode.service", unit_env)):
        assert {k: env.get(k) for k in ld.FLOWER_ENV} == ld.FLOWER_ENV, where


def test_a_supernode_restarts_only_after_the_superlink_can_have_marked_it_offline():
    from flwr.common.constant import HEARTBEAT_DEFAULT_INTERVAL, HEARTBEAT_PATIENCE

    service = unit("fedotl-supernode.service")["Service"]
    assert service["Restart"] == "always" and int(service["RestartSec"]) > HEARTBEAT_PATIENCE * HEARTBEAT_DEFAULT_INTERVAL
