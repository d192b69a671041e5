"""Samples from an MQTT topic: a wearable's gateway publishes, the device runtime subscribes.

``MqttInput("mqtt://HOST:PORT/TOPIC")`` connects (paho-mqtt 2.x), subscribes
with QoS 1 and yields :class:`~fedotl.client.inputs.Sample` objects from the
message payloads, in arrival order.  A payload is a JSON object::

    {"timestamp": 12.04, "acc_x": 0.1, "acc_y": -0.3, "label": "walking"}

(``label`` optional; ``null`` or ``""`` is unlabelled) or a JSON array of such
objects, a gateway's batch.  Channel values are JSON numbers; ``null`` or
``NaN`` is a missing value (NaN).  The channels, and their order, are the
``channels`` argument when given, else the keys of the first accepted
message other than ``timestamp`` and ``label``, in the order they appear.
Keys beyond the channels are ignored.

Policy: bad messages are rejected, not fatal.  Unlike a CSV recording
(:class:`~fedotl.client.inputs.CsvInput`, which stops at its first bad row),
an MQTT stream comes from a gateway over a radio link, and one garbled or
misconfigured packet must not stop a device that runs for weeks.  A message
is rejected as a whole (a batch with one bad object is dropped entirely, so
a batch is never half applied) when it is not JSON, not an object or an
array of objects, lacks ``timestamp`` or a channel, has a non-numeric or
infinite value, a label that is not a string, or a timestamp not after the
previous accepted one (within a batch too).  Rejections are counted in
:attr:`MqttInput.stats` (``messages`` received, ``samples`` yielded,
``rejected`` messages); the first :data:`WARN_FIRST` of them are logged as
warnings on ``logging.getLogger("fedotl.device")``, naming the message number
(1-based, in arrival order) and the field, and the rest are only counted.

Connection failures are not: :class:`MqttError` names the broker's host and
port, raised after at most ``connect_timeout`` seconds.  Once connected, a
lost connection is retried in the background (paho's loop) and logged; the
subscription is renewed on reconnect.

>>> parse_mqtt_url("mqtt://broker.local/wearables/+/imu")
('broker.local', 1883, 'wearables/+/imu')
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from typing import Any, Iterator, Sequence

import numpy as np

from fedotl.client.inputs import LABEL, TIMESTAMP, Sample

__all__ = ["MqttError", "MqttInput", "parse_mqtt_url", "WARN_FIRST"]

log = logging.getLogger("fedotl.device")

WARN_FIRST = 5  # rejections logged as warnings; later ones are only counted
_POLL_S = 0.1  # the longest the consumer waits on the queue before it looks at stop/idle again


class MqttError(ConnectionError):
    """The broker cannot be reached, refuses the connection, or refuses the subscription."""

    def __init__(self, host: str, port: int, problem: str) -> None:
        self.host, self.port, self.problem = host, port, problem
        super().__init__(f"MQTT broker {host}:{port}: {problem}")

    def __reduce__(self):
        return (type(self), (self.host, self.port, self.problem))


def parse_mqtt_url(url: str) -> tuple[str, int, str]:
    """``"mqtt://HOST[:PORT]/TOPIC"`` → ``(host, port, topic)``; port 1883 by default.

    The topic is everything after the first ``/`` following the host; it may
    hold ``/``, and ``+`` or ``#`` wildcards as whole levels (``#`` last).
    An IPv6 host goes in brackets: ``mqtt://[::1]:1883/t``.

    >>> parse_mqtt_url("mqtt://127.0.0.1:18830/home/#")
    ('127.0.0.1', 18830, 'home/#')
    >>> parse_mqtt_url("http://x/t")
    Traceback (most recent call last):
    ...
    ValueError: bad MQTT URL 'http://x/t': it must start with mqtt:// (mqtt://HOST:PORT/TOPIC)
    """
    form = "(mqtt://HOST:PORT/TOPIC)"

    def bad(problem: str) -> ValueError:
        return ValueError(f"bad MQTT URL {url!r}: {problem} {form}")

    if not isinstance(url, str) or not url.startswith("mqtt://"):
        raise bad("it must start with mqtt://")
    hostport, slash, topic = url[len("mqtt://"):].partition("/")
    if not slash or not topic:
        raise bad("no topic")
    if "@" in hostport:
        raise bad("user names and passwords in the URL are not supported")
    if hostport.startswith("["):
        host, bracket, rest = hostport[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise bad("an IPv6 host must be in brackets, [::1]:1883")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_ = hostport.partition(":")
        port_text = port_text_ if colon else None
    if not host or any(c.isspace() for c in host):
        raise bad("no host" if not host else "the host contains whitespace")
    port = 1883
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise bad(f"the port must be a number 1-65535, got {port_text!r}")
        port = int(port_text)
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "+" in level and level != "+":
            raise bad(f"'+' must be a whole topic level, got {level!r}")
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise bad("'#' must be the whole last topic level")
    if "\x00" in topic:
        raise bad("the topic contains a NUL character")
    return host, port, topic


class _Rejected(Exception):
    """A message that is not a valid sample (the field to blame, and why)."""


class MqttInput:
    """Samples from an MQTT topic (see the module docstring for the payload and the rejection policy).

    Connects and subscribes in the constructor (raising :class:`MqttError`
    within ``connect_timeout`` seconds if it cannot), so a misconfigured
    broker fails at start-up.  Iterating yields samples until ``idle_timeout``
    seconds pass without a message (counted from connecting, then from the
    last message; None: never), until ``stop`` is set, or until
    :meth:`close`; then, or on any exception (Ctrl-C included), the network
    thread is stopped and the client disconnected.  Iteration is single
    pass: leaving the loop (``break`` included) closes the client, and a
    closed input yields nothing.  :attr:`channels` is None until it is known
    (given, or the first accepted message).  Use as a context manager, or
    call :meth:`close`, to close one that is never iterated.
    """

    def __init__(
        self,
        url: str,
        channels: Sequence[str] | None = None,
        idle_timeout: float | None = None,
        connect_timeout: float = 10.0,
        stop: threading.Event | None = None,
    ) -> None:
        import paho.mqtt.client as mqtt  # an optional dependency, needed only here

        self.url = url
        self.host, self.port, self.topic = parse_mqtt_url(url)
        if channels is not None:
            channels = list(channels)
            if not channels:
                raise ValueError("channels must not be empty")
            if len(set(channels)) != len(channels):
                raise ValueError(f"duplicate channel names in {channels}")
            if TIMESTAMP in channels or LABEL in channels:
                raise ValueError(f"{TIMESTAMP!r} and {LABEL!r} are not channels")
        if connect_timeout <= 0:
            raise ValueError(f"connect_timeout must be > 0, got {connect_timeout}")
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be > 0, got {idle_timeout}")
        self._channels: list[str] | None = channels
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.stop = stop
        self._stats = {"messages": 0, "samples": 0, "rejected": 0}
        self._last_t = -math.inf
        self._queue: queue.Queue[bytes] = queue.Queue()
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()  # ("connack" | "suback", failure or None)
        self._closed = False
        self._connected_once = False
        self._loop_started = False
        self._ready = False  # connected and subscribed: later failures are logged, not raised
        self._lock = threading.Lock()

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.connect_timeout = connect_timeout
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        self._client = client
        try:
            self._connect()
        except BaseException:
            self.close()
            raise
        self._connected_at = time.monotonic()
        self._ready = True

    # -- connection -------------------------------------------------------------

    def _connect(self) -> None:
        deadline = time.monotonic() + self.connect_timeout
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as e:  # refused, unreachable, timed out, name not resolved
            raise MqttError(self.host, self.port, f"cannot connect: {e.strerror or e}") from e
        self._client.loop_start()
        self._loop_started = True
        for step in ("connack", "suback"):
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise MqttError(self.host, self.port, f"no {'answer to CONNECT' if step == 'connack' else 'SUBACK for ' + repr(self.topic)} within {self.connect_timeout:g} s")
                try:
                    kind, failure = self._events.get(timeout=min(_POLL_S, left))
                except queue.Empty:
                    continue
                if failure is not None:
                    raise MqttError(self.host, self.port, failure)
                if kind == step:
                    break

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._events.put(("connack", f"connection refused: {reason_code}"))
            if not self._ready:
                client.disconnect()  # do not retry a refusal at start-up
            return
        if self._connected_once:
            log.info("%s: reconnected to the MQTT broker", self.url)
        self._connected_once = True
        self._events.put(("connack", None))
        client.subscribe(self.topic, qos=1)  # here, so a reconnect subscribes again

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        self._events.put(("suback", f"subscription to {self.topic!r} refused: {failed[0]}" if failed else None))
        if failed and self._ready:
            log.error("%s: subscription refused: %s", self.url, failed[0])

    def _on_message(self, client, userdata, message) -> None:
        self._queue.put(message.payload)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if not self._closed and self._connected_once:
            log.warning("%s: lost the connection to the MQTT broker (%s); reconnecting", self.url, reason_code)

    # -- samples ----------------------------------------------------------------

    @property
    def channels(self) -> list[str] | None:
        """The channel names, or None until the first accepted message sets them."""
        return None if self._channels is None else list(self._channels)

    @property
    def stats(self) -> dict[str, int]:
        """``{"messages": received, "samples": yielded, "rejected": messages rejected}`` (a copy)."""
        return dict(self._stats)

    def __iter__(self) -> Iterator[Sample]:
        try:
            last_message = self._connected_at
            while not self._closed and (self.stop is None or not self.stop.is_set()):
                if self.idle_timeout is not None:
                    left = last_message + self.idle_timeout - time.monotonic()
                    if left <= 0:
                        return
                    wait = min(_POLL_S, left)
                else:
                    wait = _POLL_S
                try:
                    payload = self._queue.get(timeout=wait)
                except queue.Empty:
                    continue
                last_message = time.monotonic()
                self._stats["messages"] += 1
                samples = self._accept(payload, self._stats["messages"])
                for sample in samples:
                    self._stats["samples"] += 1
                    yield sample
        finally:
            self.close()

    def _accept(self, payload: bytes, number: int) -> list[Sample]:
        """The samples of one message, or [] (counted and maybe logged) if it is rejected."""
        try:
            return self._parse(payload)
        except _Rejected as e:
            self._stats["rejected"] += 1
            n = self._stats["rejected"]
            if n <= WARN_FIRST:
                more = " (further rejections are only counted in .stats)" if n == WARN_FIRST else ""
                log.warning("%s: message %d rejected: %s%s", self.url, number, e, more)
            return []

    def _parse(self, payload: bytes) -> list[Sample]:
        try:
            doc = json.loads(payload)
        except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise _Rejected(f"not JSON ({_short(e)})") from None
        if isinstance(doc, dict):
            items, batch = [doc], False
        elif isinstance(doc, list) and doc:
            items, batch = doc, True
        else:
            raise _Rejected("not a JSON object or a non-empty array of objects")
        channels = self._channels
        if channels is None:
            first = items[0]
            if not isinstance(first, dict):
                raise _Rejected("item 1: not a JSON object")
            channels = [k for k in first if k not in (TIMESTAMP, LABEL)]
            if not channels:
                raise _Rejected(f"{'item 1: ' if batch else ''}no channel fields besides {TIMESTAMP!r} and {LABEL!r}")
        out = []
        last = self._last_t
        for i, item in enumerate(items, 1):
            where = f"item {i}, " if batch else ""
            if not isinstance(item, dict):
                raise _Rejected(f"item {i}: not a JSON object")
            if TIMESTAMP not in item:
                raise _Rejected(f"{where}field {TIMESTAMP!r}: missing")
            t = _finite(item[TIMESTAMP])
            if t is None or math.isnan(t):
                raise _Rejected(f"{where}field {TIMESTAMP!r}: {_short(item[TIMESTAMP])} is not a finite number")
            if t <= last:
                problem = f"timestamp repeats ({t!r} again)" if t == last else f"timestamps go backwards ({t!r} after {last!r})"
                raise _Rejected(f"{where}field {TIMESTAMP!r}: {problem}")
            values = np.empty(len(channels))
            for j, name in enumerate(channels):
                if name not in item:
                    raise _Rejected(f"{where}field {name!r}: missing")
                raw = item[name]
                v = math.nan if raw is None else _finite(raw)
                if v is None:
                    raise _Rejected(f"{where}field {name!r}: {_short(raw)} is not a {'finite ' if _is_number(raw) else ''}number")
                values[j] = v
            label = item.get(LABEL)
            if label is not None and not isinstance(label, str):
                raise _Rejected(f"{where}field {LABEL!r}: {_short(label)} is not a string")
            values.setflags(write=False)
            out.append(Sample(t, values, label.strip() or None if label is not None else None))
            last = t
        # accepted as a whole: commit the state
        self._channels = channels
        self._last_t = last
        return out

    # -- lifecycle ----------------------------------------------------------------

    def close(self) -> None:
        """Disconnect and stop the network thread (idempotent; safe from any thread)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._client.disconnect()
        finally:
            if self._loop_started:
                self._client.loop_stop()

    def __enter__(self) -> MqttInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MqttInput({self.url!r}, channels={self._channels}, {'closed' if self._closed else 'open'})"


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v: object) -> float | None:
    """``v`` as a float if it is a JSON number that is finite or NaN, else None (so +-inf, 1e999, bools, strings are None)."""
    if not _is_number(v):
        return None
    try:
        f = float(v)  # type: ignore[arg-type]
    except OverflowError:  # an integer beyond float range
        return None
    return None if math.isinf(f) else f


def _short(v: object, n: int = 60) -> str:
    text = repr(v) if not isinstance(v, BaseException) else str(v)
    return text if len(text) <= n else text[:n] + "..."
