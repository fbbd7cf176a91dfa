"""MQTT: Home Assistant discovery, availability, states on change, commands from the broker.

The edge around aiomqtt (imported only when `[mqtt] host` is set, through host/optional).
`MqttDoor.run()` connects with a retained `offline` Last Will on the availability topic,
publishes the discovery configs (retained), `online` (retained) and the status, subscribes
to the command topics of this device and of `<base>/all`, and to Home Assistant's birth
topic (`online` there → discovery and status again). States go out only when they change:
the daemon calls `update(status)` from its loop, which never waits on the broker; the
publishing runs in this task. A broker that is down or slow costs a reconnect with backoff
and one log line per outage, never a stall of the loop. A command payload that is too big,
not UTF-8, or not valid for its command is ignored with one bounded log line. `close()`
publishes `offline` before a clean disconnect (the broker drops the will on a clean one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from typing import Any

import orjson

from pivox import __version__
from pivox.config import WAKE_WORDS, MqttSettings
from pivox.control.commands import ControlHost, Refused, Status, parse_command, run_command
from pivox.control.discovery import Topics, discovery_messages
from pivox.core.backoff import Backoff
from pivox.host.logsafe import shown
from pivox.host.optional import require

log = logging.getLogger("pivox.control.mqtt")

MAX_PAYLOAD_BYTES = 2048
"""Largest command payload taken: an announcement's text with room to spare."""
PUBLISH_TIMEOUT_S = 5.0
MAX_EVENTS = 32
"""Events waiting for the broker at most; older ones are dropped past it."""
MAX_INCOMING = 64
"""Messages aiomqtt queues for us at most (a flood is cut there, not in memory)."""


class MqttDoor:
    """One device on the broker; see the module docstring."""

    def __init__(self, settings: MqttSettings, host: ControlHost, *, device_id: str,
                 password: str | None) -> None:
        self.settings = settings
        self.host = host
        self.topics = Topics(base=settings.base_topic, device_id=device_id,
                             discovery_prefix=settings.discovery_prefix)
        self._password = password
        self._status: bytes | None = None
        self._published: bytes | None = None
        self._events: deque[bytes] = deque(maxlen=MAX_EVENTS)
        self._wake = asyncio.Event()
        self._client: Any = None
        self.connected = False
        self.stats = {"connects": 0, "commands": 0, "ignored": 0, "published": 0}

    # ------------------------------------------------------------------ from the loop

    def update(self, status: Status) -> None:
        """The device's status now; published if it changed (never waits)."""
        payload = orjson.dumps(status.to_json(), option=orjson.OPT_SORT_KEYS)
        if payload != self._status:
            self._status = payload
            self._wake.set()

    def event(self, event_type: str, **data: Any) -> None:
        """An event for Home Assistant's event entity (never waits)."""
        self._events.append(orjson.dumps({"event_type": event_type, **data}))
        self._wake.set()

    # ------------------------------------------------------------------ the task

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff until cancelled."""
        aiomqtt = require("aiomqtt", "aiomqtt", "mqtt")
        backoff = Backoff(base=1.0, cap=60.0)
        down_since: str | None = None
        while True:
            try:
                async with self._new_client(aiomqtt) as client:
                    self._client = client
                    await self._on_connect(client)
                    if down_since is not None:
                        log.info("MQTT broker back", extra={"PIVOX_EVENT": "mqtt_up"})
                    else:
                        log.info("MQTT connected to %s:%d as %s", self.settings.host,
                                 self.settings.port, self.topics.device_id,
                                 extra={"PIVOX_EVENT": "mqtt_up"})
                    down_since = None
                    backoff.reset()
                    await asyncio.gather(self._receive(client), self._publish(client))
            except aiomqtt.MqttError as exc:
                self.connected = False
                self._client = None
                if down_since is None:
                    down_since = str(exc)
                    log.warning("MQTT broker %s:%d unreachable: %s; retrying with backoff",
                                self.settings.host, self.settings.port, shown(str(exc)),
                                extra={"PIVOX_EVENT": "mqtt_down"})
                await asyncio.sleep(backoff.next_delay())

    async def close(self) -> None:
        """Publish `offline` before a clean exit (bounded: a dead broker gets a second)."""
        client = self._client
        if client is None or not self.connected:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await client.publish(self.topics.availability, "offline", qos=1, retain=True)

    def _new_client(self, aiomqtt: Any) -> Any:
        s = self.settings
        return aiomqtt.Client(
            s.host, s.port, username=s.username or None, password=self._password,
            identifier=f"pivox-{self.topics.device_id}", keepalive=s.keepalive_s,
            will=aiomqtt.Will(self.topics.availability, "offline", qos=1, retain=True),
            tls_context=_tls(s), timeout=PUBLISH_TIMEOUT_S,
            max_queued_incoming_messages=MAX_INCOMING,
            logger=logging.getLogger("pivox.control.mqtt.client"),
        )

    async def _on_connect(self, client: Any) -> None:
        self.stats["connects"] += 1
        for topic in self.topics.subscriptions():
            await client.subscribe(topic, qos=1)
        await self._announce_device(client)
        await client.publish(self.topics.availability, "online", qos=1, retain=True)
        self.connected = True
        self._published = None  # the status goes out again on every connect
        self._wake.set()

    async def _announce_device(self, client: Any) -> None:
        configs = discovery_messages(self.topics, name=self.settings.name,
                                     version=__version__, wake_words=WAKE_WORDS)
        for topic, payload in configs.items():
            await client.publish(topic, orjson.dumps(payload), qos=1, retain=True)

    async def _publish(self, client: Any) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            status = self._status
            if status is not None and status != self._published:
                await client.publish(self.topics.status, status, qos=1, retain=True)
                self._published = status
                self.stats["published"] += 1
            while self._events:
                await client.publish(self.topics.event, self._events[0], qos=1)
                self._events.popleft()

    async def _receive(self, client: Any) -> None:
        async for message in client.messages:
            topic = str(message.topic)
            if topic == self.topics.birth:
                if message.payload == b"online":
                    log.info("Home Assistant started: discovery published again",
                             extra={"PIVOX_EVENT": "mqtt_birth"})
                    await self._announce_device(client)
                    self._published = None
                    self._wake.set()
                continue
            try:
                self._command(topic, message.payload)
            except Exception:  # a bug behind the host: logged, the door stays open
                log.exception("MQTT command on %s failed", shown(topic, 100),
                              extra={"PIVOX_EVENT": "mqtt_command"})

    def _command(self, topic: str, payload: Any) -> None:
        name = self.topics.command_of(topic)
        problem: str | None = None
        if name is None:
            problem = "not a command topic"
        elif not isinstance(payload, bytes | bytearray):
            problem = "not a byte payload"
        elif len(payload) > MAX_PAYLOAD_BYTES:
            problem = f"payload of {len(payload)} bytes, at most {MAX_PAYLOAD_BYTES}"
        else:
            try:
                text = bytes(payload).decode()
            except UnicodeDecodeError:
                problem = "payload is not UTF-8"
            else:
                command = parse_command(name, text, text=True)
                if isinstance(command, Refused):
                    problem = command.message
                else:
                    self.stats["commands"] += 1
                    reply = run_command(self.host, command)
                    if not reply.ok:
                        problem = reply.message
        if problem is not None:
            self.stats["ignored"] += 1
            log.warning("MQTT command on %s ignored: %s", shown(topic, 100), shown(problem, 160),
                        extra={"PIVOX_EVENT": "mqtt_command"})


def _tls(settings: MqttSettings) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=settings.ca_file or None) if settings.tls else None


async def probe(settings: MqttSettings, password: str | None, timeout: float = 5.0) -> str | None:
    """None when the broker accepts a connection with these settings, else why not (for
    `pivox check`; the message never holds the password)."""
    aiomqtt = require("aiomqtt", "aiomqtt", "mqtt")
    try:
        async with asyncio.timeout(timeout), aiomqtt.Client(
                settings.host, settings.port, username=settings.username or None,
                password=password, tls_context=_tls(settings), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:.0f} s"
    except (aiomqtt.MqttError, OSError, ssl.SSLError) as exc:
        return str(exc) or type(exc).__name__
