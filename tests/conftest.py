"""Shared fixtures: an isolated cache, the real-data location, synthetic sets."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FEDOTL_SHARED_DATA", ROOT.parent / "shared" / "data"))
DSADS_ZIP = SHARED_DATA / "dsads" / "daily_and_sports_activities.zip"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # One cache per test session: tests never read a user's cache, and the
    # real DSADS is parsed once per session, not once per test.
    monkeypatch.setenv("FEDOTL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def dsads_zip() -> Path:
    if not DSADS_ZIP.exists():
        pytest.skip(f"real DSADS not found at {DSADS_ZIP} (set FEDOTL_SHARED_DATA to its data folder)")
    return DSADS_ZIP


@pytest.fixture(scope="session")
def synth_dsads(tmp_path_factory) -> Path:
    """Synthetic DSADS, 4 subjects × 19 activities × 6 segments, as extracted folders."""
    from fedotl.simulations.readers import dsads

    out = tmp_path_factory.mktemp("synth_dsads")
    dsads.write_synthetic(out, n_subjects=4, seed=1, n_segments=6)
    return out


@pytest.fixture
def task_identity():
    """Flower Messages need a task identity; the Simulation Engine sets one per run."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id)
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 0
    yield
    TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id = saved


# ---------------------------------------------------------------------- a real MQTT broker
PUBLISHER = "test-publisher"


def mosquitto_path() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").is_file() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def run_broker(tmp_path, anonymous: bool) -> Iterator[str]:
    exe = mosquitto_path()
    if exe is None:
        pytest.skip("mosquitto broker not installed (apt-get install mosquitto)")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous {'true' if anonymous else 'false'}\n")
    log = open(tmp_path / "mosquitto.log", "w")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not accepts(port):
            if proc.poll() is not None:
                pytest.fail(f"mosquitto exited with {proc.returncode}: {(tmp_path / 'mosquitto.log').read_text()}")
            if time.monotonic() > deadline:
                pytest.fail("mosquitto did not accept connections within 10 s")
            time.sleep(0.02)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(5)
        log.close()


@pytest.fixture
def broker(tmp_path) -> Iterator[str]:
    """A private mosquitto on a free port; yields its ``mqtt://127.0.0.1:PORT`` base URL."""
    with run_broker(tmp_path, anonymous=True) as base:
        yield base


@pytest.fixture
def broker_factory(tmp_path):
    """``with broker_factory(anonymous=False) as base:`` a broker with other settings."""
    return lambda anonymous=True: run_broker(tmp_path, anonymous)


@pytest.fixture
def closed_port() -> int:
    """A local port nobody listens on."""
    return free_port()


@pytest.fixture
def publish(broker):
    """``publish(topic, payload)``: QoS 1, returns once the broker has it."""
    mqtt = pytest.importorskip("paho.mqtt.client")
    host, port = broker.removeprefix("mqtt://").split(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=PUBLISHER)
    client.connect(host, int(port))
    client.loop_start()

    def send(topic: str, payload) -> None:
        data = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
        info = client.publish(topic, data, qos=1)
        info.wait_for_publish(timeout=5)
        assert info.is_published()

    yield send
    client.disconnect()
    client.loop_stop()


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test will Ctrl-C: a shell's background job inherits
    SIGINT ignored, and Python then never raises KeyboardInterrupt; restore the default."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def interruptible():
    """Keyword arguments for ``subprocess.Popen`` of a child that receives SIGINT."""
    return {"preexec_fn": default_sigint}



# ---------------------------------------------------------------------- a report page

class Refs(HTMLParser):
    """Every tag, and every attribute that can point outside the page."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src") or "")
        for key in ("src", "href", "srcset", "data", "action", "poster"):
            v = a.get(key)
            if v and not v.startswith("data:") and not v.startswith("#"):
                self.external.append(f"{tag} {key}={v[:60]}")
        if tag in ("script", "link", "iframe", "object", "embed"):
            self.external.append(tag)


def parse_html(path: Path) -> Refs:
    refs = Refs()
    text = path.read_text(encoding="utf-8")
    refs.feed(text)
    if "url(" in text or "@import" in text:
        refs.external.append("css url")
    return refs


def _assert_self_contained(path: Path, images: int) -> None:
    refs = parse_html(path)
    assert refs.external == []
    assert len(refs.images) == images and all(src.startswith("data:image/png;base64,") for src in refs.images)


@pytest.fixture
def self_contained():
    """``self_contained(path, images=n)``: the page has n inline PNGs and refers to nothing outside itself."""
    return _assert_self_contained
