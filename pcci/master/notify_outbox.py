"""The notification outbox's rows (table ``notify_outbox``, store migration 5).

Each function is one unit of work on either backend: it takes ``query(sql, params) ->
rows`` (``?`` marks; the MariaDB store turns them into ``%s``), and the store runs it in
one transaction on its own thread (``Store.outbox``). A row is one notification of one
pool, from submit (``waiting``) through the pool's end (``pending`` or ``skipped``) to
its last attempt (``sent`` or ``failed``); its body is kept only while it may be sent.
"""

import json
from typing import NamedTuple, Optional, Tuple

from ..errors import OutboxFull
from ..states import DeliveryState
from . import notify_rules

COLUMNS = "id, pool_id, position, url, notify_on, secret, state, body, attempts, next_at, created"
UNSENT = (DeliveryState.WAITING.value, DeliveryState.PENDING.value)
FINAL = (DeliveryState.SENT.value, DeliveryState.FAILED.value, DeliveryState.SKIPPED.value)


class Delivery(NamedTuple):
    id: str
    pool_id: str
    position: int
    url: str
    on: Tuple[str, ...]
    secret: Optional[str]
    state: DeliveryState
    body: Optional[bytes]
    attempts: list
    next_at: Optional[int]
    created: int


def _delivery(row):
    body = row[7]
    return Delivery(row[0], row[1], row[2], row[3], tuple(row[4].split(",")), row[5], DeliveryState(row[6]),
                    bytes(body) if body is not None else None, json.loads(row[8]), row[9], row[10])


class Caps(NamedTuple):
    """How many rows may be unsent (``waiting`` or ``pending``) at once."""
    per_token: int                  # of the pools of one API token
    total: Optional[int]            # of everyone's pools; None: not checked (an admin token's pool)


def add(query, pool_id, owner, notifies, ids, now, caps: Caps):
    """Rows for a new pool's notifications, ``waiting``, owned by the name of the token that
    submitted it; OutboxFull when that token, or everyone, has as many unsent as ``caps`` allow."""
    owner = owner or ""
    mine = query("SELECT COUNT(*) FROM notify_outbox WHERE owner = ? AND state IN (?, ?)", (owner,) + UNSENT)[0][0]
    if mine + len(notifies) > caps.per_token:
        raise OutboxFull("%d notifications of token %s's pools are waiting to be sent (at most %d a token): its "
                         "pools with notify are refused until they are (its receivers may be down; GET /pool/ID "
                         "shows their attempts)" % (mine, owner or "-", caps.per_token))
    if caps.total is not None:
        unsent = query("SELECT COUNT(*) FROM notify_outbox WHERE state IN (?, ?)", UNSENT)[0][0]
        if unsent + len(notifies) > caps.total:
            raise OutboxFull("%d notifications are waiting to be sent (at most %d in all): pools with notify are "
                             "refused until they are, but an admin token's (their receivers may be down)"
                             % (unsent, caps.total))
    for position, (notify, delivery_id) in enumerate(zip(notifies, ids)):
        query("INSERT INTO notify_outbox (%s, owner) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, '[]', NULL, ?, ?)" % COLUMNS,
              (delivery_id, pool_id, position, notify.url, ",".join(notify.on), notify.secret,
               DeliveryState.WAITING.value, now, owner))


def arm(query, pool, now):
    """The ended pool's waiting rows: ``pending`` (with the summary) where its outcome is one
    of their ``on``, else ``skipped``; how many became pending."""
    result = notify_rules.outcome(pool)
    armed = 0
    for row in query("SELECT %s FROM notify_outbox WHERE pool_id = ? AND state = ?" % COLUMNS,
                     (pool.pool_id, DeliveryState.WAITING.value)):
        delivery = _delivery(row)
        if notify_rules.fires(delivery.on, result):
            query("UPDATE notify_outbox SET state = ?, body = ?, next_at = ? WHERE id = ?",
                  (DeliveryState.PENDING.value, notify_rules.summary(pool, result, delivery.id), now, delivery.id))
            armed += 1
        else:
            query("UPDATE notify_outbox SET state = ? WHERE id = ?", (DeliveryState.SKIPPED.value, delivery.id))
    return armed


def due(query, now, limit):
    """Pending rows whose next attempt is due, the most overdue first."""
    rows = query("SELECT %s FROM notify_outbox WHERE state = ? AND next_at <= ? ORDER BY next_at LIMIT ?"
                 % COLUMNS, (DeliveryState.PENDING.value, now, limit))
    return [_delivery(row) for row in rows]


def next_due(query):
    """When the next pending row is due (wall ms), or None."""
    return query("SELECT MIN(next_at) FROM notify_outbox WHERE state = ?", (DeliveryState.PENDING.value,))[0][0]


def record(query, delivery_id, state: DeliveryState, attempts, next_at):
    """One attempt's outcome; a row that will not be sent again lets go of its body."""
    keep_body = state is DeliveryState.PENDING
    query("UPDATE notify_outbox SET state = ?, attempts = ?, next_at = ?%s WHERE id = ?"
          % ("" if keep_body else ", body = NULL"),
          (state.value, json.dumps(attempts), next_at if keep_body else None, delivery_id))


def for_pool(query, pool_id):
    rows = query("SELECT %s FROM notify_outbox WHERE pool_id = ? ORDER BY position" % COLUMNS, (pool_id,))
    return [_delivery(row) for row in rows]


def pools_in(query, states):
    """The ids of pools with a row in one of ``states``."""
    marks = ", ".join("?" * len(states))
    return [row[0] for row in query("SELECT DISTINCT pool_id FROM notify_outbox WHERE state IN (%s)" % marks,
                                    tuple(states))]


def forget(query, pool_id):
    """A pool that was never stored (its submit was refused) has no notifications."""
    query("DELETE FROM notify_outbox WHERE pool_id = ?", (pool_id,))


def prune(query, created_before, keep):
    """Ended rows created before ``created_before`` (wall ms), and the oldest ended rows
    beyond ``keep``, deleted; the ids of the pools whose rows went."""
    marks = ", ".join("?" * len(FINAL))
    old = query("SELECT id, pool_id FROM notify_outbox WHERE state IN (%s) AND created < ?" % marks,
                FINAL + (created_before,))
    total = query("SELECT COUNT(*) FROM notify_outbox WHERE state IN (%s)" % marks, FINAL)[0][0] - len(old)
    if total > keep:
        old += query("SELECT id, pool_id FROM notify_outbox WHERE state IN (%s) AND created >= ? ORDER BY created "
                     "LIMIT ?" % marks, FINAL + (created_before, total - keep))
    for delivery_id, _ in old:
        query("DELETE FROM notify_outbox WHERE id = ?", (delivery_id,))
    return {pool_id for _, pool_id in old}
