"""Each recipient's streams, made from the store under its grants, and nothing else.

The dispatcher turns what the gateway stored into signed messages on
``<prefix>/<device_id>/<recipient>/<stream>``, each stream with its own sequence numbers, hash
chain and epoch, every message naming its audience and the grant it was sent under:

* ``samples``: at a grant's ``raw`` resolution the samples themselves, projected onto the
  granted fields; at 1 min, 15 min, hourly or daily the ledger's aggregates of those fields.
  While a recipient is caught up, the samples of a commit become its message inside that very
  commit; after an outage its publisher asks for more (:meth:`refill`) and a backlog becomes
  messages of up to ``batch_samples`` samples and ``batch_bytes`` bytes of JSON each.
* ``hourly``, ``daily`` (and ``findings``): made when the ledger closes an hour or a day
  (:meth:`publish`), for the grants whose validity holds that period.
* ``status``: a signed heartbeat with the last sequence number of each of the recipient's
  streams (so a lost newest message shows), its backlog, evictions and the store's health.
* ``consent``: one ``granted`` notice with a grant's terms before anything is sent under it,
  and one ``revoked`` or ``expired`` notice when it ends.

Consent is read from the audit log (:mod:`agent.consent.audit`) and read again whenever the
file changes, which is looked at before anything is made or sent: after a revocation nothing
more leaves under that grant, not even what was already queued (it is deleted from the outbox).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson
import structlog

from agent.consent.audit import AuditLog, AuditLogError, GrantState, reconcile
from agent.consent.fields import RESOLUTIONS
from agent.consent.grants import Grant
from agent.consent.projection import Resampler, daily, hourly, sample_item
from agent.delivery.messages import ChainState, payload, topic
from agent.delivery.outbox import Outbox, Pending, Recipe
from agent.delivery.store import Store, StoredSample
from agent.figures.ledger import Spec
from agent.trust.jws import Signer, chain_hash
from drivers.timestamps import rfc3339

log = structlog.get_logger("hpagent.consent")

BATCH_SAMPLES: Final = 1000  # samples in one backlog message at most
BATCH_BYTES: Final = 256 * 1024  # bytes of sample JSON in one backlog message at most
BATCH_INTERVALS: Final = 1440  # aggregated intervals in one message at most (a day of minutes)
WORK: Final = 50  # batches one refill reads at most before it lets the loop breathe
REFILL_BYTES: Final = 1 << 20  # bytes of messages one refill makes at most: memory stays bounded
CONSENT: Final = "consent"
STATUS: Final = "status"

_PROJECT: Final[dict[str, Callable[[dict[str, Any], frozenset[str]], dict[str, Any] | None]]] = {
    "hourly": hourly, "daily": daily}


class Outlet(Protocol):
    """What the dispatcher needs of a recipient's publisher."""

    @property
    def live(self) -> bool: ...

    def offer(self, message: Pending) -> None: ...

    def kick(self) -> None: ...


@dataclass(frozen=True)
class Recipient:
    name: str
    topic_prefix: str = "hpagent/v1"


class _Making:
    """Messages made in one transaction: chain heads are staged until it commits."""

    def __init__(self) -> None:
        self.heads: dict[tuple[str, str], ChainState] = {}
        self.made: list[tuple[str, Pending]] = []


class Dispatcher:
    def __init__(self, store: Store, outbox: Outbox, signer: Signer, audit: AuditLog,
                 device_id: str, recipients: list[Recipient], base: Spec,
                 now: Callable[[], float], *, batch_samples: int = BATCH_SAMPLES,
                 batch_bytes: int = BATCH_BYTES) -> None:
        self.store = store
        self.outbox = outbox
        self.signer = signer
        self.audit = audit
        self.device_id = device_id
        self.recipients = {r.name: r for r in recipients}
        self.base = base
        self.now = now
        self.batch_samples = batch_samples
        self.batch_bytes = batch_bytes
        self.outlets: dict[str, Outlet] = {}
        self.status: Callable[[], dict[str, Any]] = dict  # the agent's facts for heartbeats
        self.states: dict[str, GrantState] = {}
        self._chains: dict[tuple[str, str], ChainState] = {}
        self._resamplers: dict[str, Resampler] = {}
        self._beats: dict[str, int] = {}  # recipient -> outbox id of its last heartbeat
        self._log_problem: str | None = None
        self._unknown: set[str] = set()
        self._announced = {r[0] for r in store.db.execute(
            "SELECT grant_id FROM notices WHERE kind='granted'")}

    # -- consent ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read consent again if the audit log changed, and act on what changed (outside any
        transaction)."""
        if self.audit.changed():
            self._load()
            self.settle()

    def _load(self) -> None:
        try:
            self.states = self.audit.states()
        except AuditLogError as exc:
            if self._log_problem != str(exc):
                log.error("consent.log_invalid", problem=str(exc))
                self._log_problem = str(exc)
            self.states = {}  # fail closed: nothing is granted
            return
        if self._log_problem is not None:
            log.info("consent.log_valid")
            self._log_problem = None

    def reconcile(self, config_grants: list[Grant]) -> None:
        """Bring the config's grants into the log (at start), then act on the result."""
        try:
            for change in reconcile(self.audit, config_grants, self.now()):
                log.info("consent.changed", change=change, source="config")
        except AuditLogError as exc:
            log.error("consent.log_invalid", problem=str(exc))
        self._load()
        self.settle()

    def settle(self) -> None:
        """Expire what is due, and give every notice not yet given (one transaction)."""
        now = self.now()
        for state in list(self.states.values()):
            g = state.grant
            if state.ended is None and g.until is not None and g.until <= now:
                self.audit.append("expire", now, grant_id=g.id, by="gateway")
                log.info("grant.expired", grant=g.id, recipient=g.recipient)
                self._load()
        making = _Making()
        announced: set[str] = set()
        with self._transaction(making):
            for state in self.states.values():
                if self._notices(making, state):
                    announced.add(state.grant.id)
        self._announced |= announced
        self._deliver(making)

    def _notices(self, making: _Making, state: GrantState) -> bool:
        """Give the notices ``state`` calls for; True if the grant has been announced."""
        g = state.grant
        if g.recipient not in self.recipients:
            if g.id not in self._unknown:
                log.warning("grant.unknown_recipient", grant=g.id, recipient=g.recipient)
                self._unknown.add(g.id)
            return False
        if state.ended is None:
            if not self.outbox.noticed(g.id, "granted"):
                self._make(making, g.recipient, CONSENT, g.id,
                           {"kind": "granted", "terms": g.terms()})
                self.outbox.note(g.id, "granted")
            if "samples" in g.streams and self.outbox.cursor(g.recipient, g.id,
                                                            _position(g)) is None:
                # where its stream starts, from the first: retention counts what it lacks
                self.outbox.set_cursor(g.recipient, g.id, _position(g), self._cursor(g))
            return True
        withdrawn = self.outbox.drop_grant(g.id)
        if withdrawn:
            log.info("outbox.withdrawn", grant=g.id, recipient=g.recipient,
                     messages=sum(len(w["seqs"]) for w in withdrawn.values()))
        if self.outbox.noticed(g.id, "granted") and not self.outbox.noticed(g.id, state.ended):
            body: dict[str, Any] = {"kind": state.ended, "at": rfc3339(state.ended_at or 0.0)}
            if state.reason:
                body["reason"] = state.reason
            if withdrawn:  # made, numbered, never sent: not lost
                body["withdrawn"] = withdrawn
            self._make(making, g.recipient, CONSENT, g.id, body)
            self.outbox.note(g.id, state.ended)
        return False

    def next_expiry(self) -> float | None:
        ends = [s.grant.until for s in self.states.values()
                if s.ended is None and s.grant.until is not None]
        return min(ends, default=None)

    def active(self, recipient: str, stream: str) -> list[Grant]:
        """The grants under which ``recipient`` may receive ``stream`` now (and was told so)."""
        now = self.now()
        return [s.grant for s in self.states.values() if s.grant.recipient == recipient
                and stream in s.grant.streams and s.active(now)
                and s.grant.id in self._announced]

    def wanted(self, stream: str) -> bool:
        """Whether any recipient may receive ``stream`` now."""
        return any(self.active(name, stream) for name in self.recipients)

    def allowed(self, message: Pending) -> bool:
        """May this queued message leave now? Its grant must still be in force."""
        self.refresh()
        if message.grant is None or message.stream == CONSENT:
            return True
        state = self.states.get(message.grant)
        return state is not None and state.active(self.now())

    # -- making messages -------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, making: _Making) -> Iterator[None]:
        with self.outbox.writing():
            yield
        self._chains.update(making.heads)

    def _make(self, making: _Making, recipient: str, stream: str, grant: str | None,
              content: dict[str, Any], span: tuple[int, int] | None = None) -> Pending:
        """Sign and queue a message; with the ``span`` of samples it is made of, the outbox
        keeps its recipe instead of its bytes."""
        key = (recipient, stream)
        head = making.heads.get(key) or self._chains.get(key) or self.outbox.chain(*key)
        token = self.signer.sign(payload(self.device_id, recipient, grant, stream, head,
                                         content))
        new = ChainState(head.epoch, head.seq + 1, chain_hash(token))
        prefix = self.recipients[recipient].topic_prefix
        recipe = None if span is None else Recipe(*span, head.epoch, new.seq, head.hash,
                                                   new.hash or "")
        message = self.outbox.enqueue(recipient, stream, grant,
                                      topic(prefix, self.device_id, recipient, stream), token,
                                      new, recipe)
        making.heads[key] = new
        making.made.append((recipient, message))
        return message

    def remake(self, message: Pending) -> str | None:
        """A queued message of samples made again from its recipe: the same bytes, as Ed25519
        is deterministic (None if its grant is gone: it may not leave anyway)."""
        r = message.recipe
        state = self.states.get(message.grant or "")
        if r is None or state is None:
            return message.token
        g = state.grant
        rows = [row for row in self.store.samples(r.first_id - 1, r.last_id - r.first_id + 1)
                if row.id <= r.last_id]
        content = {"resolution": "raw", "samples": self._items(g, rows)}
        token = self.signer.sign(payload(self.device_id, g.recipient, g.id, message.stream,
                                         ChainState(r.epoch, r.seq - 1, r.prev), content))
        if chain_hash(token) != r.hash:
            log.error("outbox.remade_differently", recipient=g.recipient, grant=g.id,
                      seq=r.seq, reason="the samples or the way they are put changed")
        return token

    def _deliver(self, making: _Making) -> None:
        """Hand what was made to the publishers, from the loop: a publisher may be the one
        asking (a revocation noticed while it sends) and must not be re-entered."""
        if not making.made:
            return
        loop = asyncio.get_running_loop()
        for recipient, message in making.made:
            outlet = self.outlets.get(recipient)
            if outlet is not None:
                loop.call_soon(outlet.offer, message)

    def on_commit(self, ids: list[int]) -> Callable[[], None]:
        """Inside the commit of samples ``ids``: the messages of recipients that are caught up.
        Returns what to do once the commit holds."""
        making = _Making()
        if ids and not self.audit.changed():
            rows = None
            for name in self.recipients:
                outlet = self.outlets.get(name)
                if outlet is None or not outlet.live:
                    continue
                for g in self.active(name, "samples"):
                    if g.resolution != "raw" or self._cursor(g) < ids[0] - 1:
                        continue
                    rows = rows if rows is not None else self.store.samples(ids[0] - 1, len(ids))
                    self._raw_messages(making, g, rows)
                    self.outbox.set_cursor(name, g.id, "samples", ids[-1])

        def after() -> None:
            self._chains.update(making.heads)
            self._deliver(making)
            loop = asyncio.get_running_loop()
            for outlet in self.outlets.values():
                loop.call_soon(outlet.kick)

        return after

    def refill(self, recipient: str, room: int) -> list[Pending]:
        """Up to ``room`` more messages for ``recipient``: its backlog and closed intervals."""
        self.refresh()
        making = _Making()
        grants = self.active(recipient, "samples")
        if not grants:
            return []
        work = made = 0
        with self._transaction(making):
            for g in grants:
                while len(making.made) < room and work < WORK and made < REFILL_BYTES:
                    work += 1
                    if g.resolution == "raw":
                        progressed = self._raw_backlog(making, g)
                    else:
                        progressed = self._intervals(making, g)
                    if not progressed:
                        break
                    made = sum(len(m.token or "") for _, m in making.made)
        outlet = self.outlets.get(recipient)
        if (work >= WORK or made >= REFILL_BYTES) and outlet is not None:
            asyncio.get_running_loop().call_soon(outlet.kick)  # more to make, on the next turn
        return [m for _, m in making.made]

    def _cursor(self, g: Grant) -> float:
        """Where ``g``'s samples stream stands; set at the first sample its validity holds."""
        found = self.outbox.cursor(g.recipient, g.id, _position(g))
        if found is not None:
            return found
        if g.resolution == "raw":
            first = self.store.first_id_from(g.start)
            return (first - 1) if first is not None else float(self.store.last_id())
        oldest = self.store.oldest_time()
        return self._resampler(g).first_start(max(g.start, oldest if oldest else g.start))

    def _raw_backlog(self, making: _Making, g: Grant) -> bool:
        cursor = int(self._cursor(g))
        rows = self.store.samples(cursor, self.batch_samples)
        if not rows:
            return False
        self._raw_messages(making, g, rows)
        self.outbox.set_cursor(g.recipient, g.id, "samples", rows[-1].id)
        return True

    def _items(self, g: Grant, rows: list[StoredSample]) -> list[dict[str, Any]]:
        """What ``g`` lets through of ``rows``."""
        items = []
        for row in rows:
            if g.valid_at(row.t):
                item = sample_item(row, g.allowed)
                if item is not None:
                    items.append(item)
        return items

    def _raw_messages(self, making: _Making, g: Grant, rows: list[StoredSample]) -> None:
        """``rows`` as messages of at most ``batch_bytes`` of samples each."""
        items: list[dict[str, Any]] = []
        first = last = size = 0
        for row in rows:
            item = sample_item(row, g.allowed) if g.valid_at(row.t) else None
            if item is None:
                continue
            n = len(orjson.dumps(item))
            if items and size + n > self.batch_bytes:
                self._raw_message(making, g, items, first, last)
                items, size = [], 0
            if not items:
                first = row.id
            items.append(item)
            size += n
            last = row.id
        if items:
            self._raw_message(making, g, items, first, last)

    def _raw_message(self, making: _Making, g: Grant, items: list[dict[str, Any]], first: int,
                     last: int) -> None:
        self._make(making, g.recipient, "samples", g.id, {"resolution": "raw", "samples": items},
                   span=(first, last))

    def _resampler(self, g: Grant) -> Resampler:
        r = self._resamplers.get(g.id)
        if r is None:
            r = self._resamplers[g.id] = Resampler(g.allowed, RESOLUTIONS[g.resolution],
                                                   self.base)
        return r

    def _intervals(self, making: _Making, g: Grant) -> bool:
        """The next closed intervals of ``g``'s resolution, in one message; False if none."""
        r = self._resampler(g)
        start = self._cursor(g)
        newest = self.store.newest_time()
        if newest is None:
            return False
        limit = r.final_until(newest)
        if g.until is not None:
            limit = min(limit, g.until)
        end = start
        for _ in range(BATCH_INTERVALS):
            b = r.end_of(end)
            if b > limit:
                break
            end = b
        if end <= start:
            return False
        items = r.intervals(self.store.ledger_rows(start - r.margin, end), start, end)
        if items:
            self._make(making, g.recipient, "samples", g.id,
                       {"resolution": g.resolution, "intervals": items})
        self.outbox.set_cursor(g.recipient, g.id, "intervals", end)
        return True

    def publish(self, stream: str, start: float, end: float, content: dict[str, Any],
                write: Callable[[], object]) -> bool:
        """``write`` (the rows the content comes from) and the ``stream`` messages of
        ``content`` about [start, end), in one transaction; False if the disk refused."""
        self.refresh()
        project = _PROJECT.get(stream)
        making = _Making()
        now = self.now()
        try:
            with self._transaction(making):
                write()
                for s in self.states.values():
                    g = s.grant
                    if stream not in g.streams or not s.active(now) or not g.covers(start, end) \
                            or g.recipient not in self.recipients:
                        continue
                    body = project(content, g.allowed) if project is not None else content
                    if body is not None:
                        self._make(making, g.recipient, stream, g.id, body)
        except sqlite3.Error as exc:
            log.error("store.write_failed", error=str(exc), what=stream)
            return False
        self._deliver(making)
        return True

    def heartbeat(self) -> None:
        """A signed heartbeat to every recipient granted ``status`` whose last one has gone."""
        self.refresh()
        making = _Making()
        now = self.now()
        with self._transaction(making):
            for name in self.recipients:
                grants = self.active(name, STATUS)
                last = self._beats.get(name)
                if not grants or (last is not None and self.outbox.exists(last)):
                    continue
                streams = {s: {"epoch": c.epoch, "seq": c.seq}
                           for s, c in self.outbox.chains(name).items() if s != STATUS}
                body = {"kind": "heartbeat", "at": rfc3339(now), "streams": streams,
                        "outbox": self.outbox.backlog(name), **self.status()}
                self._beats[name] = self._make(making, name, STATUS, grants[0].id, body).id
        self._deliver(making)


def _position(g: Grant) -> str:
    """What a grant's samples cursor counts: sample ids (raw) or interval ends (aggregates)."""
    return "samples" if g.resolution == "raw" else "intervals"
