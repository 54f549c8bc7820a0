"""An MQTT connection driven by the asyncio loop: paho-mqtt without its network thread.

The only module that imports paho. paho's external-loop API (socket callbacks plus
``loop_read``/``loop_write``/``loop_misc``) is wired to the event loop's reader and writer
watches, so an idle agent sleeps in epoll instead of waking a thread every second, and every
callback runs on the loop. Each connection attempt uses a fresh paho client: the outbox, not
paho's memory, is the queue, so nothing is lost when a connection or the process dies.

Connection faults are logged once per transition (``broker.unavailable`` / ``broker.connected``).
With ``protocol="auto"`` MQTT 5 is tried first; a broker that refuses it gets 3.1.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as paho
import structlog
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = structlog.get_logger("hpagent.mqtt")

_UNSUPPORTED_PROTOCOL = (132, 1)  # v5 "Unsupported Protocol Version"; 3.1.1 CONNACK code 1


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    client_id: str
    keepalive: float = 60.0
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls: bool = False
    will_topic: str | None = None  # a retained "offline" is left here if we vanish
    session_expiry: int | None = None  # keep our subscriptions and queued messages on the
    #                                    broker this many seconds (recipients that must not miss)
    connect_timeout: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 120.0

    @property
    def label(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context; an error names the file that is wrong."""
        try:
            ctx = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None)
        except (ssl.SSLError, OSError) as exc:
            raise ssl.SSLError(f"CA file {self.ca_file}: {_describe(exc)}") from None
        if self.cert_file is not None and self.key_file is not None:
            try:
                ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
            except (ssl.SSLError, OSError) as exc:
                raise ssl.SSLError(f"client certificate {self.cert_file} or key "
                                   f"{self.key_file}: {_describe(exc)}") from None
        return ctx


class NotConnected(Exception):
    pass


@dataclass
class Callbacks:
    """What the owner of a connection hears; all run on the event loop."""

    connected: Callable[[], None] = lambda: None
    disconnected: Callable[[], None] = lambda: None
    unavailable: Callable[[str], None] = lambda reason: None  # a connection attempt failed
    acked: Callable[[int, str | None], None] = lambda mid, refusal: None  # refusal: why not
    message: Callable[[str, bytes], None] = lambda topic, payload: None
    subscriptions: list[str] = field(default_factory=list)


class MqttConnection:
    def __init__(self, settings: BrokerSettings, callbacks: Callbacks) -> None:
        self.settings = settings
        self.callbacks = callbacks
        self.protocol = MQTTProtocolVersion.MQTTv311 if settings.protocol == "3.1.1" \
            else MQTTProtocolVersion.MQTTv5
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._up = asyncio.Event()  # set while connected
        self._ever_connected = False
        self._down_logged = False
        self.problem: str | None = None  # why the broker is unavailable, while it is
        self._closing = False
        self._session_over: asyncio.Event | None = None
        self._connack: asyncio.Future[int] | None = None
        self._misc: asyncio.TimerHandle | None = None
        self._sock: socket.socket | None = None
        self._fd = -1  # the watched socket's descriptor
        self._waiting: dict[int, asyncio.Future[None]] = {}  # message ids we await ourselves
        self._log = log.bind(broker=settings.label, client_id=settings.client_id)

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    async def wait_connected(self) -> None:
        await self._up.wait()

    # -- the connection lifecycle ------------------------------------------------------------

    async def run(self) -> None:
        """Connect, stay connected, reconnect with back-off; returns after :meth:`close`."""
        self._loop = asyncio.get_running_loop()
        delay = self.settings.reconnect_min
        while not self._closing:
            outcome = await self._session()
            if self._closing:
                break
            if outcome == "protocol" and self.settings.protocol == "auto":
                if self.protocol is MQTTProtocolVersion.MQTTv5:
                    self.protocol = MQTTProtocolVersion.MQTTv311
                    self._log.info("broker.protocol_fallback", protocol="3.1.1")
                    continue  # try 3.1.1 at once
                self.protocol = MQTTProtocolVersion.MQTTv5  # neither answered: start over later
            if outcome == "ran":
                delay = self.settings.reconnect_min
            with contextlib.suppress(asyncio.TimeoutError):
                assert self._session_over is not None
                self._session_over.clear()
                await asyncio.wait_for(self._session_over.wait(), delay)
            delay = min(delay * 2, self.settings.reconnect_max)

    async def _session(self) -> Literal["ran", "failed", "protocol"]:
        """One connection, from connect until it is lost or closed."""
        assert self._loop is not None
        self._session_over = asyncio.Event()
        self._connack = self._loop.create_future()
        try:
            client = self._new_client()  # a TLS file that went bad since the start fails here
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._note_down(_describe(exc))
            return "failed"
        self._client = client
        try:
            await asyncio.to_thread(self._connect_blocking, client)
            rc = await asyncio.wait_for(asyncio.shield(self._connack),
                                        self.settings.connect_timeout)
        except (TimeoutError, OSError, ssl.SSLError, ValueError) as exc:
            self._teardown(client)
            self._note_down(_describe(exc))
            # A broker that does not speak this version may hang up or never answer CONNECT.
            unanswered = isinstance(exc, ConnectionResetError | BrokenPipeError |
                                    _ClosedBeforeConnack | TimeoutError)
            return "protocol" if unanswered and not self._ever_connected else "failed"
        if rc != 0:
            self._teardown(client)
            self._note_down(f"broker refused the connection: {_connack_reason(rc)}")
            return "protocol" if rc in _UNSUPPORTED_PROTOCOL else "failed"
        self._up.set()
        self.problem = None
        if self._down_logged or not self._ever_connected:
            self._log.info("broker.connected", protocol=_protocol_name(self.protocol))
        self._down_logged = False
        self._ever_connected = True
        if self.settings.will_topic is not None:
            client.publish(self.settings.will_topic, b"online", qos=1, retain=True)
        for topic_filter in self.callbacks.subscriptions:
            client.subscribe(topic_filter, qos=1)
        self.callbacks.connected()
        await self._session_over.wait()
        self._up.clear()
        self._teardown(client)
        if not self._closing:
            self._note_down("connection lost")
            self.callbacks.disconnected()
        return "ran"

    def _note_down(self, reason: str) -> None:
        self.problem = reason
        self.callbacks.unavailable(reason)
        if not self._down_logged:
            self._log.warning("broker.unavailable", reason=reason)
            self._down_logged = True

    async def close(self) -> None:
        """Say 'offline' (retained), disconnect cleanly, and end :meth:`run`."""
        self._closing = True
        client = self._client
        over = self._session_over
        if client is not None and self.connected and over is not None:
            if self.settings.will_topic is not None:
                info = client.publish(self.settings.will_topic, b"offline", qos=1, retain=True)
                acked = self._loop_or_raise().create_future()
                self._waiting[info.mid] = acked
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(acked, 2.0)
            client.disconnect()  # a clean DISCONNECT: the broker discards the will
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(over.wait(), 2.0)
        if over is not None:
            over.set()

    def _loop_or_raise(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "run() has not started"
        return self._loop

    # -- publishing ---------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Queue a message; returns its message id, acknowledged through ``callbacks.acked``."""
        if self._client is None or not self.connected:
            raise NotConnected(self.settings.label)
        info = self._client.publish(topic, payload, qos=qos, retain=retain,
                                    properties=self._publish_properties)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise NotConnected(f"{self.settings.label}: {paho.error_string(info.rc)}")
        return info.mid

    # -- paho wiring --------------------------------------------------------------------------

    def _new_client(self) -> paho.Client:
        s = self.settings
        v5 = self.protocol is MQTTProtocolVersion.MQTTv5
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id,
                             protocol=self.protocol, reconnect_on_failure=False,
                             clean_session=None if v5 else s.session_expiry is None)
        client.suppress_exceptions = True
        if s.tls:
            client.tls_set_context(s.ssl_context())
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.will_topic is not None:
            client.will_set(s.will_topic, b"offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        if self.protocol is MQTTProtocolVersion.MQTTv5:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ContentType = "application/jose"
            self._publish_properties: Properties | None = props
        else:
            self._publish_properties = None
        return client

    def _connect_blocking(self, client: paho.Client) -> None:
        """DNS, TCP and the TLS handshake block: this runs in a worker thread."""
        s = self.settings
        if self.protocol is MQTTProtocolVersion.MQTTv5:
            props = None
            if s.session_expiry is not None:
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = s.session_expiry
            client.connect(s.host, s.port, keepalive=max(int(s.keepalive), 1),
                           clean_start=s.session_expiry is None, properties=props)
        else:  # 3.1.1 takes its clean-session flag from the Client
            client.connect(s.host, s.port, keepalive=max(int(s.keepalive), 1))

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the loop, also when paho calls us from the connecting thread."""
        assert self._loop is not None
        if _on_loop(self._loop):
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    # The loop watches file descriptor numbers. They are remembered per client, because a
    # closed socket no longer knows its number and the next socket may reuse it.

    def _on_socket_open(self, client: paho.Client, _ud: Any, sock: Any) -> None:
        self._call(self._watch, client, sock.fileno(), sock)

    def _watch(self, client: paho.Client, fd: int, sock: socket.socket) -> None:
        assert self._loop is not None
        if client is not self._client:
            return
        self._unwatch_fd()
        self._fd, self._sock = fd, sock
        self._loop.add_reader(fd, self._readable, client)
        self._schedule_misc(client)

    def _readable(self, client: paho.Client) -> None:
        client.loop_read()
        sock = self._sock
        # TLS may hold decrypted bytes that the socket no longer signals
        while isinstance(sock, ssl.SSLSocket) and sock.pending() and client is self._client \
                and self._sock is sock:
            client.loop_read()

    def _on_socket_close(self, client: paho.Client, _ud: Any, _sock: Any) -> None:
        self._call(self._unwatch, client)

    def _unwatch(self, client: paho.Client) -> None:
        if client is self._client:
            self._unwatch_fd()

    def _unwatch_fd(self) -> None:
        assert self._loop is not None
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._fd, self._sock = -1, None

    def _on_register_write(self, client: paho.Client, _ud: Any, _sock: Any) -> None:
        self._call(self._add_writer, client)

    def _add_writer(self, client: paho.Client) -> None:
        """paho has bytes to send: the socket is almost always writable, so try at once."""
        assert self._loop is not None
        if client is not self._client or self._fd < 0:
            return
        client.loop_write()
        if client.want_write() and client is self._client and self._fd >= 0:
            self._loop.add_writer(self._fd, client.loop_write)

    def _on_unregister_write(self, client: paho.Client, _ud: Any, _sock: Any) -> None:
        self._call(self._remove_writer, client)

    def _remove_writer(self, client: paho.Client) -> None:
        assert self._loop is not None
        if client is self._client and self._fd >= 0:
            self._loop.remove_writer(self._fd)

    def _schedule_misc(self, client: paho.Client) -> None:
        """Keep-alive bookkeeping, a few times per keep-alive period (not every second)."""
        assert self._loop is not None
        period = max(min(self.settings.keepalive / 4, 15.0), 0.5)

        def tick() -> None:
            if client is not self._client or self._sock is None:
                return
            if client.loop_misc() == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._misc = self._loop.call_later(period, tick)  # type: ignore[union-attr]

        if self._misc is not None:
            self._misc.cancel()
        self._misc = self._loop.call_later(period, tick)

    def _teardown(self, client: paho.Client) -> None:
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        if client is self._client:
            self._unwatch_fd()
        sock = client.socket()
        with contextlib.suppress(Exception):
            client.on_disconnect = None
            client.disconnect()
        with contextlib.suppress(Exception):
            if sock is not None:
                sock.close()
        if self._client is client:
            self._client = None

    def _on_connect(self, _c: paho.Client, _ud: Any, _flags: Any, rc: Any, _p: Any) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(int(rc.value) if hasattr(rc, "value") else int(rc))

    def _on_disconnect(self, client: paho.Client, _ud: Any, _f: Any, rc: Any, _p: Any) -> None:
        if client is not self._client:
            return
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(_ClosedBeforeConnack(str(rc)))
        if self._session_over is not None:
            self._session_over.set()

    def _on_publish(self, _c: paho.Client, _ud: Any, mid: int, rc: Any, _p: Any) -> None:
        waiter = self._waiting.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        # MQTT 5 brokers say why they refuse a message (e.g. 135 not authorised by the ACL);
        # 3.1.1 brokers acknowledge and drop it silently.
        refusal = str(rc) if getattr(rc, "is_failure", False) else None
        self.callbacks.acked(mid, refusal)

    def _on_message(self, _c: paho.Client, _ud: Any, msg: paho.MQTTMessage) -> None:
        self.callbacks.message(msg.topic, bytes(msg.payload))


class _ClosedBeforeConnack(ConnectionError):
    """The broker closed the connection before answering CONNECT."""


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer to CONNECT"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate rejected: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _connack_reason(rc: int) -> str:
    names = {1: "unacceptable protocol version", 2: "client id rejected", 3: "server unavailable",
             4: "bad user name or password", 5: "not authorised", 128: "unspecified error",
             132: "unsupported protocol version", 133: "client id not valid",
             134: "bad user name or password", 135: "not authorised", 136: "server unavailable",
             137: "server busy", 138: "banned"}
    return f"{names.get(rc, 'reason code')} ({rc})"


def _protocol_name(p: MQTTProtocolVersion) -> str:
    return "5" if p is MQTTProtocolVersion.MQTTv5 else "3.1.1"
