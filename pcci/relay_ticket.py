"""Tickets for relayed copies (pure): the master's word that one child may pull one copy's
bytes from one parent, until a time.

The master makes a random key for each parent's copy (``new_key``) and sends it to that
parent only, inside its ``copy_begin`` over the parent's TLS link; each child of that
parent gets a ticket, an HMAC-SHA256 under that key of::

    "pcci-relay-1" NUL parent's job id NUL sha256 NUL child's name NUL expiry (ms since 1970)

So a ticket is good for one parent's copy, one file, one child and a bounded time, and
no worker can make one: not the child (it never sees the key), not another parent (its
key is another), not a worker that holds only the cluster key. A leaked ticket lets its
holder read the bytes of that one file while it is relayed, which the child could do
anyway; nothing in a ticket names a path.
"""

import hashlib
import hmac
import secrets

VERSION_TAG = "pcci-relay-1"
KEY_HEX_CHARS = 64
# How long a ticket is good for: a child dials its parent when its copy begins, so it
# needs the ticket only then; clocks of Pis that keep time with NTP are within seconds.
TICKET_SECONDS = 600


def new_key():
    return secrets.token_hex(KEY_HEX_CHARS // 2)


def _message(parent_job, sha256, child, expires_ms):
    return "\0".join((VERSION_TAG, parent_job, sha256, child, str(int(expires_ms)))).encode("utf-8", "surrogatepass")


def make(key, parent_job, sha256, child, expires_ms):
    return hmac.new(bytes.fromhex(key), _message(parent_job, sha256, child, expires_ms), hashlib.sha256).hexdigest()


def problem(key, parent_job, sha256, child, expires_ms, ticket, now_ms):
    """Why this ticket does not let ``child`` pull ``parent_job``'s file now, or None."""
    if not isinstance(ticket, str) or not isinstance(expires_ms, int) or isinstance(expires_ms, bool):
        return "no ticket"
    expected = make(key, parent_job, sha256, child, expires_ms).encode("ascii")
    # As bytes: compare_digest raises TypeError for a str with any non-ASCII character.
    if not hmac.compare_digest(expected, ticket.encode("utf-8", "surrogatepass")):
        return "a ticket not made for this child, copy and file"
    if now_ms > expires_ms:
        return "an expired ticket (%d s ago)" % ((now_ms - expires_ms) // 1000)
    return None
