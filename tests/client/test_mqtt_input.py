"""MqttInput against a real mosquitto broker: samples in order, bad messages rejected and counted, no hangs."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

mqtt = pytest.importorskip("paho.mqtt.client")

from fedotl.client.mqtt_input import WARN_FIRST, MqttError, MqttInput, parse_mqtt_url  # noqa: E402

PUBLISHER = "test-publisher"  # the publish fixture's client id (tests/conftest.py)


def paho_threads() -> list[str]:
    """The paho network threads alive, but the test publisher's."""
    return [t.name for t in threading.enumerate() if t.name.startswith("paho-mqtt-client") and not t.name.endswith(PUBLISHER)]


# -- URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("mqtt://broker:1884/a/b", ("broker", 1884, "a/b")),
        ("mqtt://broker/wear/+/imu", ("broker", 1883, "wear/+/imu")),
        ("mqtt://10.0.0.2:1883/wear/#", ("10.0.0.2", 1883, "wear/#")),
        ("mqtt://[::1]:2000/#", ("::1", 2000, "#")),
    ],
)
def test_parse_mqtt_url(url, expected):
    assert parse_mqtt_url(url) == expected


@pytest.mark.parametrize(
    "url, words",
    [
        ("tcp://h/t", "mqtt://"),
        ("mqtt://h", "no topic"),
        ("mqtt://h/", "no topic"),
        ("mqtt://:1883/t", "no host"),
        ("mqtt://h:0/t", "port"),
        ("mqtt://h:99999/t", "port"),
        ("mqtt://h:x/t", "port"),
        ("mqtt://h/a/#/b", "'#'"),
        ("mqtt://h/a+/b", "'+'"),
        ("mqtt://u:p@h/t", "password"),
    ],
)
def test_bad_urls_are_clear_value_errors(url, words):
    with pytest.raises(ValueError) as info:
        parse_mqtt_url(url)
    assert words in str(info.value) and repr(url) in str(info.value)


# -- samples -----------------------------------------------------------------------------


def test_single_objects_and_a_batch_arrive_in_order_with_channels_and_labels(broker, publish):
    with MqttInput(broker + "/wear/u1/imu", idle_timeout=0.5) as src:
        assert src.channels is None  # not known until the first message
        publish("wear/u1/imu", {"timestamp": 0.00, "acc_y": 1.0, "acc_x": 2.0, "label": "walking"})
        publish("wear/u1/imu", [{"timestamp": 0.02, "acc_x": 4.0, "acc_y": 3.0}, {"timestamp": 0.04, "acc_y": None, "acc_x": 6.0, "label": ""}])
        publish("wear/u1/imu", {"label": "sitting", "acc_x": 8.0, "timestamp": 0.06, "acc_y": 7.0})
        samples = list(src)
    assert src.channels == ["acc_y", "acc_x"]  # the first message's order
    assert [s.t for s in samples] == [0.0, 0.02, 0.04, 0.06]
    assert [s.label for s in samples] == ["walking", None, None, "sitting"]
    np.testing.assert_array_equal(np.stack([s.values for s in samples]), [[1, 2], [3, 4], [np.nan, 6], [7, 8]])
    assert src.stats == {"messages": 3, "samples": 4, "rejected": 0}
    assert paho_threads() == []


def test_given_channels_fix_the_order_and_extra_keys_are_ignored(broker, publish):
    with MqttInput(broker + "/wear/+/imu", channels=["b", "a"], idle_timeout=0.4) as src:
        assert src.channels == ["b", "a"]
        publish("wear/u7/imu", {"timestamp": 1, "a": 1, "b": 2, "gyro": 9})
        publish("wear/u8/imu", {"timestamp": 2, "a": 3})  # lacks b: rejected
        samples = list(src)
    assert [s.values.tolist() for s in samples] == [[2.0, 1.0]]
    assert src.stats == {"messages": 2, "samples": 1, "rejected": 1}


def test_malformed_messages_are_rejected_counted_and_warned_about_while_good_ones_still_arrive(broker, publish, caplog):
    caplog.set_level(logging.WARNING, logger="fedotl.device")
    topic = "dev/imu"
    bad = [
        b"not json",  # 2
        {"acc": 1.0},  # 3: no timestamp
        {"timestamp": 5, "acc": "0.3"},  # 4: a string value
        {"timestamp": 0.5, "acc": 1.0},  # 5: goes backwards
        {"timestamp": 1.0, "acc": 1.0},  # 6: repeats
        [{"timestamp": 2.0, "acc": 1.0}, {"timestamp": 3.0}],  # 7: a batch with a bad item is dropped whole
        {"timestamp": 2.0, "acc": float("inf")},  # 8: json.dumps writes Infinity
        {"timestamp": 2.0, "acc": 1.0, "label": 3},  # 9
        42,  # 10
        {"timestamp": True, "acc": 1.0},  # 11
    ]
    with MqttInput(f"{broker}/{topic}", idle_timeout=0.5) as src:
        publish(topic, {"timestamp": 1.0, "acc": 0.5})  # 1
        for payload in bad:
            publish(topic, payload)
        publish(topic, {"timestamp": 2.0, "acc": 0.7, "label": "run"})  # 12
        samples = list(src)
    assert [(s.t, s.values.tolist(), s.label) for s in samples] == [(1.0, [0.5], None), (2.0, [0.7], "run")]
    assert src.stats == {"messages": 12, "samples": 2, "rejected": len(bad)}
    warnings = [r.getMessage() for r in caplog.records if r.name == "fedotl.device" and r.levelno == logging.WARNING]
    assert len(warnings) == WARN_FIRST == 5  # the rest are only counted
    assert "message 2 rejected: not JSON" in warnings[0]
    assert "message 3 rejected: field 'timestamp': missing" in warnings[1]
    assert "message 4 rejected: field 'acc': '0.3' is not a number" in warnings[2]
    assert "message 5 rejected: field 'timestamp': timestamps go backwards (0.5 after 1.0)" in warnings[3]
    assert "message 6 rejected: field 'timestamp': timestamp repeats" in warnings[4]
    assert "only counted" in warnings[4]


def test_every_kind_of_rejection_names_its_field(broker, publish, caplog):
    """WARN_FIRST is patched up so every rejection above the cut is logged too."""
    caplog.set_level(logging.WARNING, logger="fedotl.device")
    import fedotl.client.mqtt_input as m

    old, m.WARN_FIRST = m.WARN_FIRST, 100
    try:
        with MqttInput(f"{broker}/t", channels=["acc"], idle_timeout=0.4) as src:
            publish("t", [{"timestamp": 2.0, "acc": 1.0}, {"timestamp": 3.0}])
            publish("t", {"timestamp": 2.0, "acc": float("inf")})
            publish("t", {"timestamp": 2.0, "acc": 1.0, "label": 3})
            publish("t", {"timestamp": "2", "acc": 1.0})
            publish("t", [])
            list(src)
    finally:
        m.WARN_FIRST = old
    warnings = [r.getMessage() for r in caplog.records if r.name == "fedotl.device"]
    assert "message 1 rejected: item 2, field 'acc': missing" in warnings[0]
    assert "message 2 rejected: field 'acc': inf is not a finite number" in warnings[1]
    assert "message 3 rejected: field 'label': 3 is not a string" in warnings[2]
    assert "message 4 rejected: field 'timestamp': '2' is not a finite number" in warnings[3]
    assert "message 5 rejected: not a JSON object or a non-empty array" in warnings[4]
    assert src.stats["rejected"] == 5


def test_a_rejected_first_message_does_not_fix_the_channels(broker, publish):
    with MqttInput(f"{broker}/t", idle_timeout=0.4) as src:
        publish("t", {"timestamp": "x", "wrong": 1})
        publish("t", {"timestamp": 1, "right": 2})
        samples = list(src)
    assert src.channels == ["right"] and len(samples) == 1


# -- ending, closing, failing ----------------------------------------------------------------


def test_idle_timeout_ends_iteration_counted_from_connecting_and_from_the_last_message(broker, publish):
    src = MqttInput(f"{broker}/t", idle_timeout=0.3)
    t0 = time.monotonic()
    assert list(src) == []
    assert 0.3 <= time.monotonic() - t0 < 1.5
    assert paho_threads() == []

    src = MqttInput(f"{broker}/t", idle_timeout=0.6)
    def late():
        for i in range(3):
            time.sleep(0.3)  # each pause is shorter than the idle timeout
            publish("t", {"timestamp": i, "a": i})

    writer = threading.Thread(target=late)
    writer.start()
    got = [s.t for s in src]
    writer.join()
    assert got == [0.0, 1.0, 2.0]


def test_stop_event_ends_iteration_and_stops_the_network_thread(broker):
    stop = threading.Event()
    src = MqttInput(f"{broker}/t", stop=stop)
    threading.Timer(0.3, stop.set).start()
    t0 = time.monotonic()
    assert list(src) == []
    assert time.monotonic() - t0 < 1.5
    assert paho_threads() == []


def test_leaving_the_loop_closes_the_client_and_iteration_is_single_pass(broker, publish):
    src = MqttInput(f"{broker}/t")
    publish("t", {"timestamp": 0, "a": 1})
    publish("t", {"timestamp": 1, "a": 1})
    for s in src:
        assert paho_threads() != []  # connected while iterating
        break
    assert paho_threads() == []
    assert list(src) == []  # closed: nothing more, even though a message was queued
    src.close()  # idempotent


def test_the_with_block_closes_a_client_that_was_never_iterated(broker):
    with MqttInput(f"{broker}/t") as src:
        assert paho_threads() != []
    assert paho_threads() == []
    assert "closed" in repr(src)


def test_connecting_to_a_closed_port_raises_mqtt_error_naming_host_and_port(closed_port):
    port = closed_port
    t0 = time.monotonic()
    with pytest.raises(MqttError) as info:
        MqttInput(f"mqtt://127.0.0.1:{port}/t", connect_timeout=2.0)
    assert time.monotonic() - t0 < 2.5
    assert f"127.0.0.1:{port}" in str(info.value)
    assert isinstance(info.value, ConnectionError)
    assert paho_threads() == []


def test_a_broker_that_refuses_the_client_is_an_mqtt_error_not_a_retry_loop(broker_factory):
    with broker_factory(anonymous=False) as base:
        t0 = time.monotonic()
        with pytest.raises(MqttError, match="connection refused: Not authorized"):
            MqttInput(f"{base}/t", connect_timeout=3.0)
        assert time.monotonic() - t0 < 2.0
        assert paho_threads() == []


def test_a_server_that_never_answers_is_an_error_after_connect_timeout_not_a_hang():
    with socket.socket() as server:  # accepts TCP (the kernel does), never speaks MQTT
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(MqttError, match=rf"127\.0\.0\.1:{port}: no answer to CONNECT within 0\.5 s"):
            MqttInput(f"mqtt://127.0.0.1:{port}/t", connect_timeout=0.5)
        assert 0.5 <= time.monotonic() - t0 < 2.0
    assert paho_threads() == []


def test_ctrl_c_while_waiting_propagates_promptly_and_stops_the_network_thread(broker, interruptible):
    code = (
        "import sys, threading\n"
        "from fedotl.client.mqtt_input import MqttInput\n"
        f"src = MqttInput({broker + '/t'!r})\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    for s in src:\n"
        "        pass\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', [t.name for t in threading.enumerate() if t.name.startswith('paho')], flush=True)\n"
        "    sys.exit(130)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **interruptible)
    try:
        assert proc.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
        time.sleep(0.2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=5)
        assert time.monotonic() - t0 < 2.0
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert out.strip() == "interrupted []"


def test_bad_arguments():
    with pytest.raises(ValueError, match="duplicate"):
        MqttInput("mqtt://127.0.0.1:1/t", channels=["a", "a"])
    with pytest.raises(ValueError, match="not channels"):
        MqttInput("mqtt://127.0.0.1:1/t", channels=["timestamp", "a"])
    with pytest.raises(ValueError, match="mqtt://"):
        MqttInput("127.0.0.1:1883/t")
