"""The active master's notification sender: rows in the outbox (``notify_outbox``) from
a pool's submit to its last attempt, sent by one loop.

* ``register``: at submit, before the pool is stored, its notifications become rows
  (``waiting``); a pool that is never stored takes them with it (``forget``).
* ``pools_ended``: once a pool's end is saved, its rows are armed (``pending`` with the
  summary, or ``skipped``). A master that stopped in between arms them when it starts
  (``load``): the pool's end is in the store, so nothing is lost.
* ``run``: sends the due rows, at most MAX_CONCURRENT at a time, each attempt bounded,
  recorded in its row and logged; a failed attempt is tried again with exponential
  backoff and jitter, up to MAX_ATTEMPTS. A row is marked sent only after the receiver
  answered: a master that stops in between sends it again (at-least-once delivery; the
  ``X-PCCI-Delivery`` id is the same, for receivers to dedupe).

Only the active master builds one (``assembly.build_active``); a standby sends nothing.
On MariaDB each row change is fenced by the lease, as every write.
"""

import json
import logging
import random
import time
import uuid

import gevent
import gevent.pool
from gevent.event import Event

from .. import __version__
from ..clock import iso_time
from ..errors import StoreUnavailable
from ..states import DeliveryState
from . import notify_outbox, notify_rules, notify_send
from .notify_allow import CurrentAllowList, parse_url

log = logging.getLogger(__name__)

MAX_CONCURRENT = 4              # attempts under way at once
ATTEMPT_SECONDS = 15.0          # one attempt, from resolving to the answer's last byte read
# Rows waiting or pending, by default (notify_max_unsent, notify_max_unsent_per_token):
# past either, pools with notify are refused (503); an admin token's pools only by its own cap.
MAX_UNSENT = 4000
MAX_UNSENT_PER_TOKEN = 500
KEEP_ENDED = 10000              # rows sent, failed or skipped kept (and no longer than pool_retention)
IDLE_SECONDS = 30.0             # the loop looks at the store at least this often
PRUNE_SECONDS = 600.0
# Whatever a backend raises when it cannot read or write now: the loop tries again.
STORE_ERRORS = (StoreUnavailable, Exception)


class AttemptTimedOut(notify_send.AttemptFailed):
    pass


class Notifier:
    def __init__(self, store, clock, allow, retention_seconds, first_retry=notify_rules.FIRST_RETRY_SECONDS,
                 redirects=0, metrics=None, post=notify_send.post, jitter=lambda: random.uniform(0.5, 1.0),
                 caps=notify_outbox.Caps(MAX_UNSENT_PER_TOKEN, MAX_UNSENT), tls_ca=None):
        self.store = store
        self.clock = clock                  # wall ms
        self.allow = allow or CurrentAllowList()    # notify_allow, as reloaded (None: empty)
        self.caps = caps                    # notify_outbox.Caps: unsent rows a token, and in all
        self.tls_ca = tls_ca                # notify_tls_ca: the CA file https receivers are checked against
        self.retention_ms = int(retention_seconds * 1000)
        self.first_retry = first_retry
        self.redirects = redirects
        self.metrics = metrics
        self.post = post
        self.jitter = jitter
        self.known = set()                  # pools with rows: GET /pool/ID shows them
        self.waiting = set()                # pools whose rows wait for their end
        self.unarmed = {}                   # pool id -> ended pool whose arming failed (tried again)
        self.in_flight = set()              # delivery ids being attempted
        self.slots = gevent.pool.Pool(MAX_CONCURRENT)
        self.tls_context = None             # made at the first https attempt, then shared
        self.wake = Event()

    # -- from the pool service -------------------------------------------------------------
    def load(self):
        """At start: which pools have rows; arm those whose pool ended while no master ran,
        forget those whose pool was never stored."""
        self.known = set(self.store.outbox(notify_outbox.pools_in, notify_outbox.UNSENT + notify_outbox.FINAL,
                                           write=False))
        for pool_id in self.store.outbox(notify_outbox.pools_in, (DeliveryState.WAITING.value,), write=False):
            pool = self.store.get_pool(pool_id)
            if pool is None:
                log.warning("notifications of pool %s dropped: the pool was never stored", pool_id)
                self.store.outbox(notify_outbox.forget, pool_id)
                self.known.discard(pool_id)
            elif pool.end_time is None:
                self.waiting.add(pool_id)
            else:
                self.unarmed[pool_id] = pool
        self.wake.set()

    def register(self, pool, notifies, admin=False):
        """Rows for a new pool's notifications (before the pool is stored); OutboxFull if too
        many of its token's are unsent, or (unless ``admin``: the token's scope) of everyone's."""
        ids = [uuid.uuid4().hex for _ in notifies]
        caps = self.caps._replace(total=None) if admin else self.caps
        self.store.outbox(notify_outbox.add, pool.pool_id, pool.submitted_by, notifies, ids, self.clock(), caps)
        self.known.add(pool.pool_id)
        self.waiting.add(pool.pool_id)

    def forget(self, pool_id):
        """The pool was not stored after all (its submit was refused)."""
        self.waiting.discard(pool_id)
        self.known.discard(pool_id)
        try:
            self.store.outbox(notify_outbox.forget, pool_id)
        except STORE_ERRORS as exc:
            log.warning("notifications of refused pool %s stay in the outbox until a restart: %s", pool_id, exc)

    def pools_ended(self, pools):
        """These pools' ends are saved: arm their notifications (on the loop, not the caller's greenlet)."""
        for pool in pools:
            if pool.pool_id in self.waiting:
                self.waiting.discard(pool.pool_id)
                self.unarmed[pool.pool_id] = pool
                self.wake.set()

    def notifications(self, pool_id, full_urls=True):
        """GET /pool/ID's ``notifications`` (secrets never shown), or None for a pool without."""
        if pool_id not in self.known:
            return None
        return stored_notifications(self.store)(pool_id, full_urls)

    # -- the loop ---------------------------------------------------------------------------
    def run(self):
        try:
            self._loop()
        finally:
            self.slots.kill()           # a stopping master makes no more attempts (each is sent again later)

    def _loop(self):
        pruned = 0.0
        while True:
            self.wake.clear()
            wait = IDLE_SECONDS
            try:
                self._arm_ended()
                wait = self._send_due()
                if time.monotonic() - pruned > PRUNE_SECONDS:
                    pruned = time.monotonic()
                    self._prune()
            except STORE_ERRORS as exc:
                log.error("notifications: the outbox cannot be read or written now (%s); trying again", exc)
                wait = 1.0
            self.wake.wait(wait)

    def _arm_ended(self):
        """The ended pools' rows, armed in one transaction."""
        if not self.unarmed:
            return
        pools = list(self.unarmed.values())
        now = self.clock()
        armed = self.store.outbox(lambda query: [notify_outbox.arm(query, pool, now) for pool in pools])
        for pool, count in zip(pools, armed):
            del self.unarmed[pool.pool_id]
            if count:
                log.info("pool %s ended %s: %d notification(s) due", pool.pool_id, notify_rules.outcome(pool).value,
                         count)

    def _send_due(self):
        """Start the due attempts there are slots for; seconds until the next one may be due."""
        free = self.slots.free_count()
        if free:
            for delivery in self.store.outbox(notify_outbox.due, self.clock(), MAX_CONCURRENT * 2, write=False):
                if delivery.id in self.in_flight:
                    continue
                if not free:
                    break
                free -= 1
                self.in_flight.add(delivery.id)
                self.slots.spawn(self._attempt, delivery)
        next_at = self.store.outbox(notify_outbox.next_due, write=False)
        now = self.clock()
        if next_at is None or next_at <= now:
            # Nothing pending, or what is due is under way or waits for a slot: an ending
            # attempt, like a pool's end, wakes the loop.
            return IDLE_SECONDS
        return min(IDLE_SECONDS, (next_at - now) / 1000.0)

    def _attempt(self, delivery):
        try:
            self._attempt_and_record(delivery)
        finally:
            self.in_flight.discard(delivery.id)
            self.wake.set()

    def _attempt_and_record(self, delivery):
        at = self.clock()
        status, error = None, None
        try:
            with gevent.Timeout(ATTEMPT_SECONDS, AttemptTimedOut("no answer within %gs" % ATTEMPT_SECONDS)):
                url = parse_url(delivery.url)
                if url.scheme == "https" and self.tls_context is None:
                    self.tls_context = notify_send.tls_context(self.tls_ca)
                status = self.post(url, delivery.body, self._headers(delivery, at), self.allow.current,
                                   ATTEMPT_SECONDS, self.redirects, context=self.tls_context)
        except (notify_send.AttemptFailed, ValueError) as exc:
            error = str(exc) or type(exc).__name__
        except Exception as exc:
            # A bug, not the receiver: recorded as a failed attempt all the same, so the
            # backoff applies and the row cannot be retried in a tight loop.
            log.exception("notification %s: attempt failed unexpectedly", delivery.id)
            error = "internal error: %s" % type(exc).__name__
        succeeded = status is not None and 200 <= status < 300
        attempts = delivery.attempts + [notify_rules.attempt_record(at, status, error)]
        state = notify_rules.next_state(len(attempts), succeeded)
        delay = notify_rules.retry_delay(len(attempts), self.first_retry, self.jitter())
        next_at = self.clock() + int(delay * 1000) if state is DeliveryState.PENDING else None
        try:
            self.store.outbox(notify_outbox.record, delivery.id, state, attempts, next_at)
        except STORE_ERRORS as exc:
            # Not recorded: the row stays as it was and is sent again (at least once).
            log.error("notification %s of pool %s: attempt %d not recorded (%s); it will be made again",
                      delivery.id, delivery.pool_id, len(attempts), exc)
            return
        outcome = "HTTP %d" % status if status is not None else error
        then = {DeliveryState.SENT: "sent", DeliveryState.FAILED: "gave up after %d attempts" % len(attempts),
                DeliveryState.PENDING: "next attempt in %.1fs" % delay}[state]
        (log.info if succeeded else log.warning)("notification %s of pool %s to %s: attempt %d: %s; %s",
                                                 delivery.id, delivery.pool_id, url_origin(delivery.url),
                                                 len(attempts), outcome, then)
        if self.metrics is not None:
            self.metrics.notification_attempted(succeeded, state is DeliveryState.FAILED)

    @staticmethod
    def _headers(delivery, at_ms):
        timestamp = at_ms // 1000
        headers = {"Content-Type": "application/json", "User-Agent": "pcci-master/%s" % __version__,
                   "X-PCCI-Delivery": delivery.id, "X-PCCI-Timestamp": str(timestamp),
                   "X-PCCI-Event": _event(delivery.body), "Connection": "close"}
        if delivery.secret:
            headers["X-PCCI-Signature"] = notify_rules.signature(delivery.secret, timestamp, delivery.body)
        return headers

    def _prune(self):
        gone = self.store.outbox(notify_outbox.prune, self.clock() - self.retention_ms, KEEP_ENDED)
        if gone:
            remaining = set(self.store.outbox(notify_outbox.pools_in, notify_outbox.UNSENT + notify_outbox.FINAL,
                                              write=False))
            self.known &= remaining | self.waiting


def stored_notifications(store):
    """GET /pool/ID's ``notifications`` read from the store (a standby's, which keeps no
    ``known``): (pool id, full_urls) -> the list, or None."""
    def read(pool_id, full_urls=True):
        rows = store.outbox(notify_outbox.for_pool, pool_id, write=False)
        return [{"id": row.id, "url": row.url if full_urls else url_origin(row.url), "on": list(row.on),
                 "state": row.state.value, "attempts": row.attempts,
                 "nextAttempt": iso_time(row.next_at) if row.state is DeliveryState.PENDING else None}
                for row in rows] or None
    return read


def _event(body):
    """The outcome the summary carries."""
    return json.loads(body)["event"]


def url_origin(url):
    """scheme://host:port of a URL, for log lines and read-only callers (a path may hold a token)."""
    try:
        parsed = parse_url(url)
    except ValueError:
        return "(malformed URL)"
    host = "[%s]" % parsed.host if ":" in parsed.host else parsed.host
    return "%s://%s:%d/..." % (parsed.scheme, host, parsed.port)
