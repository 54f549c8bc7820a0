"""Drains one recipient's outbox over MQTT, in order, with bounded memory.

At most ``max_inflight`` messages are handed to the connection at a time; each is deleted from
the outbox once its PUBACK has arrived (``on_publish``, never ``wait_for_publish``). After a
reconnect everything not yet acknowledged is sent again from the outbox: at-least-once, and the
recipient drops duplicates by sequence number. When the outbox holds nothing more and there is
room, the publisher asks ``refill`` to make the next messages (a backlog of samples becomes a
few large messages); a message made while it is caught up goes straight to the broker
(:meth:`offer`). Before any message leaves, ``allowed`` is asked: a grant revoked a moment ago
stops it. A message the outbox holds as a recipe is made again by ``remake``.

A fault inside the publisher (the database refusing the deletions, a bug) is logged once and
retried after a pause, from the outbox; it never ends the recipient's task, and the other
recipients never notice it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import structlog

from agent.delivery.mqtt import MqttConnection, NotConnected
from agent.delivery.outbox import Outbox, Pending

log = structlog.get_logger("hpagent.publisher")

RETRY_FAULT: Final = 5.0  # seconds until a publisher that hit a fault tries again


def _nothing(room: int) -> list[Pending]:
    return []


@dataclass
class PublisherStats:
    sent: int = 0
    acked: int = 0
    refused: int = 0
    withheld: int = 0  # queued messages that ``allowed`` stopped (a revoked or expired grant)


class Publisher:
    def __init__(self, name: str, outbox: Outbox, connection: MqttConnection,
                 max_inflight: int = 20, retry_refused: float = 60.0) -> None:
        self.name = name
        self.outbox = outbox
        self.connection = connection
        self.max_inflight = max_inflight
        self.refill: Callable[[int], list[Pending]] = _nothing
        self.allowed: Callable[[Pending], bool] = lambda message: True
        self.remake: Callable[[Pending], str | None] = lambda message: message.token
        self.stats = PublisherStats()
        self._inflight: dict[int, int] = {}  # paho message id -> outbox id
        self._last_loaded = 0  # highest outbox id handed to this connection
        self._caught_up = False  # True when the outbox holds nothing after _last_loaded
        self._refused_from: int | None = None  # oldest refused message awaiting a retry
        self._retry_refused = retry_refused
        self._after_scheduled = False
        self._fault: str | None = None
        self._idle = asyncio.Event()
        connection.callbacks.connected = lambda: self._guarded(self._on_connected)
        connection.callbacks.disconnected = self._on_disconnected
        connection.callbacks.acked = self._on_acked

    async def run(self) -> None:
        await self.connection.run()

    @property
    def live(self) -> bool:
        """Connected and without a backlog: messages may be made for it as samples commit."""
        return self.connection.connected and self._caught_up and self._fault is None

    def offer(self, message: Pending) -> None:
        """A message was just committed to the outbox: send it now if we are caught up."""
        self._guarded(self._offer, message)

    def kick(self) -> None:
        """Something may be ready to make (a closed interval, a backlog): fill if there is room."""
        if self.connection.connected and self._fault is None \
                and len(self._inflight) < self.max_inflight:
            self._guarded(self._fill)

    @property
    def fault(self) -> str | None:
        """The fault it is recovering from, if any."""
        return self._fault

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    async def drain(self, timeout: float) -> bool:
        """Wait until nothing is in flight (or ``timeout``); True if everything was acked."""
        if not self._inflight:
            return True
        self._idle.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        await self.connection.close()
        self.outbox.flush()

    # -- internals ------------------------------------------------------------------------------

    def _guarded(self, fn: Callable[..., None], *args: object) -> None:
        """Run ``fn``; a fault is logged once and retried from the outbox after a pause."""
        try:
            fn(*args)
        except Exception as exc:
            if self._fault is None:
                log.exception("publisher.failed", recipient=self.name, error=str(exc),
                              retry_in_s=RETRY_FAULT)
                self._fault = str(exc)
                asyncio.get_running_loop().call_later(RETRY_FAULT, self._recover)

    def _recover(self) -> None:
        """After a fault: start again from the oldest message not known to be acknowledged."""
        try:
            self._restart()
        except Exception:
            asyncio.get_running_loop().call_later(RETRY_FAULT, self._recover)
            return
        self._fault = None
        log.info("publisher.recovered", recipient=self.name)

    def _restart(self) -> None:
        self.outbox.flush()
        self._last_loaded = min(self._inflight.values(), default=self._last_loaded + 1) - 1
        self._inflight.clear()
        self._caught_up = False
        if self.connection.connected:
            self._fill()

    def _offer(self, message: Pending) -> None:
        if not self.connection.connected or self._fault is not None:
            return
        if self._caught_up and message.id > self._last_loaded \
                and len(self._inflight) < self.max_inflight:
            self._send(message)
        else:
            self._caught_up = False
            self._fill()

    def _send(self, message: Pending) -> None:
        self._last_loaded = message.id
        token = message.token if message.token is not None else self.remake(message)
        if token is None or not self.allowed(message):
            self.stats.withheld += 1
            return
        mid = self.connection.publish(message.topic, token.encode("ascii"))
        self._inflight[mid] = message.id
        self.stats.sent += 1

    def _fill(self) -> None:
        try:
            while len(self._inflight) < self.max_inflight:
                room = self.max_inflight - len(self._inflight)
                batch = self.outbox.pending(self.name, self._last_loaded, room)
                if len(batch) < room:
                    batch += self.refill(room - len(batch))
                for message in batch:
                    self._send(message)
                if len(batch) < room:
                    self._caught_up = True
                    return
        except NotConnected:
            self._caught_up = False

    def _on_connected(self) -> None:
        self.outbox.flush()  # what was acknowledged must not be sent again
        self._inflight.clear()
        self._last_loaded = 0
        self._caught_up = False
        backlog = self.outbox.backlog(self.name)
        if backlog:
            log.info("outbox.draining", recipient=self.name, backlog=backlog)
        self._fill()

    def _on_disconnected(self) -> None:
        self._inflight.clear()
        self._caught_up = False

    def _on_acked(self, mid: int, refusal: str | None) -> None:
        outbox_id = self._inflight.pop(mid, None)
        if outbox_id is None:
            return  # the retained presence message, or an ack from a previous connection
        if refusal is not None:
            self._refused(outbox_id, refusal)
        else:
            self.stats.acked += 1
            self.outbox.acknowledged(outbox_id)
        if not self._after_scheduled:  # once per burst of PUBACKs
            self._after_scheduled = True
            asyncio.get_running_loop().call_soon(self._guarded, self._after_acks)

    def _refused(self, outbox_id: int, reason: str) -> None:
        """The broker refused a message (MQTT 5 PUBACK >= 0x80): keep it, retry later."""
        self.stats.refused += 1
        if self._refused_from is None:
            log.error("broker.refused", recipient=self.name, reason=reason,
                      retry_in_s=self._retry_refused)
            self._refused_from = outbox_id
            asyncio.get_running_loop().call_later(self._retry_refused, self._guarded,
                                                  self._rewind)
            self._retry_refused = min(self._retry_refused * 2, 3600.0)
        self._refused_from = min(self._refused_from, outbox_id)

    def _rewind(self) -> None:
        """Send again from the oldest refused message (the ACL may have been fixed)."""
        if self._refused_from is None:
            return
        self._last_loaded = min(self._last_loaded, self._refused_from - 1)
        self._refused_from = None
        self._caught_up = False
        if self.connection.connected:
            self._fill()

    def _after_acks(self) -> None:
        self._after_scheduled = False
        if self.connection.connected and not self._caught_up and self._fault is None:
            self._fill()
        # draining a backlog, no samples come to carry the deletions: delete in batches
        if self.outbox.unflushed >= self.max_inflight or (self._caught_up and not self._inflight
                                                          and self.outbox.unflushed >= 100):
            self.outbox.flush()
        if not self._inflight:
            self._idle.set()
